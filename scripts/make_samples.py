"""Sample evidence for the demo: real photos, the same photos decoded by TAEF2, and a broken file.

    python scripts/make_samples.py OUT_DIR   (needs taef2 installed; FORENSICS_APP_HOME is honoured)

The real photos come with scikit-image (no download). Out-of-zoo generator outputs (Stable Diffusion)
are copied from ../shared/images/generated when that folder exists beside the checkout.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

from forensics_app.core.calibrate import to_uint8
from forensics_app.core.zoo.autoencoder import OnnxAutoencoder
from forensics_app.core.zoo.store import Zoo

PHOTOS = ("astronaut", "coffee", "chelsea")


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    taef2 = OnnxAutoencoder(Zoo().installed("taef2"))
    for name in PHOTOS:
        rgb = getattr(skimage.data, name)()
        rgb = rgb[: rgb.shape[0] // 8 * 8, : rgb.shape[1] // 8 * 8]
        Image.fromarray(rgb).save(out / f"real_{name}.png")
        decoded = to_uint8(taef2.reconstruct(rgb.astype(np.float32) / 255.0))
        Image.fromarray(decoded).save(out / f"taef2_decoded_{name}.png")
    sd = Path(__file__).resolve().parents[2] / "shared" / "images" / "generated" / "sd1"
    for path in sorted(sd.glob("*.png"))[:1]:
        shutil.copy(path, out / f"stable_diffusion_1_{path.name}")
    (out / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)  # a truncated PNG: refused with a reason
    print(f"samples written to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ".work/samples"))
