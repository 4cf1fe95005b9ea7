"""The CPU time policy: what it costs in accuracy (TAEF2) and whether it keeps its time (real architectures).

    python benchmarks/cpu_policy.py [--photos 60] [--speed] [--home DIR] [--json OUT]

Accuracy: the policy analyses a centred region when a candidate's check of the whole image would take
longer than its budget. Under the default (30 s per candidate at 100 GFLOP/s), the full-size VAEs
(about 27,700 GFLOP per megapixel) analyse about 0.11 megapixels, the tiny decoders about 1.5. Whether
a region of that size still attributes is measured on the one real generator the zoo can run, TAEF2
(alone, its shipped calibration, alpha 1%), on whole held-out photos (the imagenet1k test split, never
used for calibration) and on TAEF2's outputs made from them (PNG, JPEG q90), with the region forced to
the whole image, to 0.11 MP and to the smallest region the policy gives (256x256).

Speed (--speed): each architecture, at its real size with random weights (benchmarks/zoo_speed.py),
checks a 2048x1536 image under the default policy on this CPU: the region chosen, the time the policy
estimated for it, and the time it took.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, print_table, write_json, zoo_with  # noqa: E402

from forensics_app.core.calibrate import jpeg_roundtrip, test_split, to_uint8  # noqa: E402
from forensics_app.core.evidence import evidence_from_bytes  # noqa: E402
from forensics_app.core.imageprep import MIN_REGION_PIXELS, TilingSettings  # noqa: E402
from forensics_app.core.pipeline import AnalysisSettings, Engine  # noqa: E402
from forensics_app.core.runtime import RuntimeSettings  # noqa: E402
from forensics_app.core.zoo.autoencoder import OnnxAutoencoder  # noqa: E402
from forensics_app.core.zoo.store import Zoo  # noqa: E402

RATE = TilingSettings().cpu_gflop_per_second
FULL_VAE_REGION = 110_000  # pixels a full-size VAE gets under the default policy (3,000 GFLOP / 27,700 per MP)
REGIONS = {"whole image": None, "0.11 MP (full VAEs at 30 s)": FULL_VAE_REGION,
           "256x256 (the smallest)": MIN_REGION_PIXELS}
FORMS = ("real photo (as published)", "TAEF2 output, PNG", "TAEF2 output, JPEG q90")


def png(rgb8: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb8).save(buffer, "PNG")
    return buffer.getvalue()


def test_images(model, count: int) -> list[tuple[str, str, bytes]]:
    """(photo, form, bytes): each held-out photo as published and TAEF2's output made from it."""
    autoencoder = OnnxAutoencoder(model)
    out = []
    for path in test_split(SHARED / "images" / "real" / "imagenet1k")[:count]:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        rgb = rgb[:rgb.shape[0] // 8 * 8, :rgb.shape[1] // 8 * 8]
        output = to_uint8(autoencoder.reconstruct(rgb.astype(np.float32) / 255.0))
        out += [(path.name, FORMS[0], path.read_bytes()), (path.name, FORMS[1], png(output)),
                (path.name, FORMS[2], png(jpeg_roundtrip(output, 90)))]
    return out


def accuracy(zoo, count: int) -> dict:
    model = zoo.installed("taef2")
    images = test_images(model, count)
    results = {}
    for label, pixels in REGIONS.items():
        # the seconds that give TAEF2 this region: the policy as it would treat a model that costs more
        seconds = None if pixels is None else pixels * model.gflop_per_megapixel / 1e6 / RATE
        tiling = TilingSettings(cpu_seconds_per_candidate=seconds)
        engine = Engine(zoo, AnalysisSettings(models=("taef2",), tiling=tiling, runtime=RuntimeSettings("cpu")))
        verdicts, spent, sizes = {form: Counter() for form in FORMS}, [], []
        for name, form, data in images:
            findings = engine.analyse_evidence(evidence_from_bytes(Path(name), data))
            verdicts[form][findings.verdict.label] += 1
            spent.append(findings.candidates[0].seconds)
            sizes.append(findings.candidates[0].region["width"] * findings.candidates[0].region["height"])
        results[label] = {"verdicts": {form: dict(c) for form, c in verdicts.items()},
                          "mean_megapixels": float(np.mean(sizes)) / 1e6, "mean_seconds": float(np.mean(spent))}
    rows = [[label, f"{r['mean_megapixels']:.3f}",
             *(f"{r['verdicts'][form].get('attributed', 0)}/{count}" for form in FORMS),
             *(f"{r['verdicts'][form].get('not_attributed', 0)}/{count}" for form in FORMS[1:]),
             f"{r['mean_seconds']:.2f}"] for label, r in results.items()]
    print_table(f"TAEF2 alone, alpha 1%, {count} whole held-out photos (imagenet1k test split) and TAEF2's outputs",
                ["region", "mean MP", "real attributed", "own PNG attributed", "own JPEG q90 attributed",
                 "own PNG not attributed", "own JPEG not attributed", "s per check"], rows)
    return results


def speed(scratch: Path) -> list[dict]:
    from zoo_speed import ARCHITECTURES, install

    photo = Image.open(test_split(SHARED / "images" / "real" / "imagenet1k")[0]).convert("RGB")
    data = png(np.asarray(photo.resize((2048, 1536), Image.LANCZOS)))
    zoo = Zoo(scratch / "speed-home")
    rows = []
    for arch in ARCHITECTURES:
        if arch.name not in ("SD kl-f8, 4 ch", "TAEF2 (real weights)"):
            continue  # a 2-core machine: one full VAE and one tiny decoder; the rest cost the same per GFLOP
        model, _ = install(arch, zoo, scratch)
        engine = Engine(zoo, AnalysisSettings(models=(model.id,), runtime=RuntimeSettings("cpu")))
        started = time.perf_counter()
        findings = engine.analyse_evidence(evidence_from_bytes(Path("2048x1536.png"), data))
        took = time.perf_counter() - started
        region = findings.candidates[0].region
        pixels = region["width"] * region["height"]
        rows.append({"architecture": arch.name, "gflop_per_megapixel": model.gflop_per_megapixel,
                     "region": f"{region['width']}x{region['height']}",
                     "estimated_seconds": model.gflop_per_megapixel * pixels / 1e6 / RATE, "seconds": took})
    print_table("The default policy (30 s per candidate at 100 GFLOP/s) on a 2048x1536 image, this CPU",
                ["architecture", "GFLOP per MP", "region", "estimated s", "measured s"],
                [[r["architecture"], f"{r['gflop_per_megapixel']:,.0f}", r["region"], f"{r['estimated_seconds']:.1f}",
                  f"{r['seconds']:.1f}"] for r in rows])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=60, help="held-out photos (each also as TAEF2 outputs)")
    parser.add_argument("--speed", action="store_true", help="also time the policy on real-size architectures")
    parser.add_argument("--home", type=Path, help="a zoo with TAEF2 installed (default: installed into a scratch "
                                                  "folder from ../shared/zoo-mirror)")
    parser.add_argument("--json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        zoo = zoo_with(args.home or Path(scratch) / "taef2-home", ["taef2"])
        if zoo.installed("taef2").gflop_per_megapixel is None:
            raise SystemExit(f"TAEF2 in {zoo.home} was installed before costs were recorded; reinstall it.")
        result = {"accuracy": accuracy(zoo, args.photos)}
        if args.speed:
            result["speed"] = speed(Path(scratch))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
