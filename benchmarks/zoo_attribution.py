"""The whole zoo as the user meets it: which verdict does each source of images get?

    python benchmarks/zoo_attribution.py --home H [--crops 8] [--methods aedr] [--json OUT]

Every autoencoder of the zoo (TAEF2 and the eight demo AEs, installed into H from the mirror when
missing, with their shipped calibrations) is a candidate at once, as after `zoo install all`. Images:
held-out crops (Set14 + scikit-image photos, 128 px, seeded) as real photos, the same crops decoded
by each zoo autoencoder, and Stable Diffusion 1/2 crops (generators outside the zoo); each saved as
PNG and as JPEG q90, then analysed through the product's own intake and Engine, so the compression
condition is detected as it would be for a user's file. Per source: the share attributed to the
right generator, to a wrong one, not attributed, and inconclusive.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import crops, generated_images, held_out_photos, print_table, write_json, zoo_with  # noqa: E402

from forensics_app.core.calibrate import to_uint8  # noqa: E402
from forensics_app.core.evidence import evidence_from_bytes  # noqa: E402
from forensics_app.core.findings import ATTRIBUTED, INCONCLUSIVE, NOT_ATTRIBUTED  # noqa: E402
from forensics_app.core.pipeline import AnalysisSettings, Engine  # noqa: E402
from forensics_app.core.zoo.autoencoder import OnnxAutoencoder  # noqa: E402
from forensics_app.core.zoo.manifest import shipped_manifests  # noqa: E402
from forensics_app.core.zoo.store import Zoo  # noqa: E402

SIDE = 128
REAL, OUTSIDE = "real photos", "SD1+SD2 (outside the zoo)"


def encoded(rgb8: np.ndarray, form: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb8).save(buffer, "PNG" if form == "PNG" else "JPEG", **({} if form == "PNG" else {"quality": 90}))
    return buffer.getvalue()


def sources(zoo: Zoo, ids: list[str], n: int, seed: int) -> dict[str, tuple[str | None, list[np.ndarray]]]:
    """Source name -> (the generator that made the images, or None; the images)."""
    rng = np.random.default_rng(seed)
    real = crops(held_out_photos(), SIDE, 1, seed)
    real = [real[i] for i in sorted(rng.choice(len(real), size=min(n, len(real)), replace=False))]
    out = {REAL: (None, real)}
    for model_id in ids:
        autoencoder = OnnxAutoencoder(zoo.installed(model_id))
        out[model_id] = (model_id, [to_uint8(autoencoder.reconstruct(c / 255.0)) for c in real])
    sd = crops(generated_images("sd1") + generated_images("sd2"), SIDE, 1, seed)
    out[OUTSIDE] = (None, [sd[i] for i in sorted(rng.choice(len(sd), size=min(n, len(sd)), replace=False))])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="app home (default: a temporary one)")
    parser.add_argument("--crops", type=int, default=8, help="images per source")
    parser.add_argument("--methods", default="aedr", help="comma-separated, as for analyze --method")
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ids = sorted(i for i, m in shipped_manifests().items() if m.kind == "autoencoder")
        zoo = zoo_with(args.home or Path(tmp), ids)
        engine = Engine(zoo, AnalysisSettings(models=tuple(ids), methods=tuple(args.methods.split(",")),
                                              alpha=args.alpha))
        results, rows = {}, []
        for source, (maker, images) in sources(zoo, ids, args.crops, args.seed).items():
            for form in ("PNG", "JPEG q90"):
                verdicts = [engine.analyse_evidence(evidence_from_bytes(Path(f"{i}.img"), encoded(im, form))).verdict
                            for i, im in enumerate(images)]
                right = np.mean([v.label == ATTRIBUTED and v.model == maker for v in verdicts])
                wrong = np.mean([v.label == ATTRIBUTED and v.model != maker for v in verdicts])
                shares = {"attributed to the right generator": float(right), "attributed to a wrong one": float(wrong),
                          "not attributed": float(np.mean([v.label == NOT_ATTRIBUTED for v in verdicts])),
                          "inconclusive": float(np.mean([v.label == INCONCLUSIVE for v in verdicts]))}
                wrongly_named = sorted({v.model for v in verdicts if v.label == ATTRIBUTED and v.model != maker})
                results[f"{source}, {form}"] = shares | {"images": len(verdicts), "wrongly_named": wrongly_named}
                rows.append([source, form, len(verdicts), *shares.values(), ", ".join(wrongly_named)])
                print(f"  {source}, {form}: done", flush=True)
    print_table(f"Verdicts with all {len(ids)} zoo autoencoders as candidates ({args.methods}, alpha {args.alpha}, "
                f"{SIDE} px held-out crops)",
                ["source", "saved as", "n", "right generator", "wrong generator", "not attributed", "inconclusive",
                 "wrongly named"], rows)
    seconds = time.perf_counter() - started
    print(f"\nbenchmark ran {seconds:.0f} s")
    write_json(args.json, {"candidates": ids, "methods": args.methods, "alpha": args.alpha, "side": SIDE,
                           "results": results, "benchmark_seconds": seconds})


if __name__ == "__main__":
    main()
