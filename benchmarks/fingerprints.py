"""Learned fingerprints: closed-set accuracy under benign perturbations, open-set false naming, cost.

    python -m forensics_app.train.fingerprints build --out DATA      # once (splits: see that module)
    python benchmarks/fingerprints.py --data DATA [--json OUT]

Compares the shipped extractors (RepMix, ManiFPT-style and the plain baseline; model_zoo/fp-*.toml)
on DATA/test (held-out photos: CSet14 + skimage.data crops, and those crops through each known
generator; SD1/SD2: their held-out 40% of files), each perturbation applied alone. The open-set rate
is measured on DATA/test-unknown: the two held-out generators' outputs on held-out photos, at the
threshold each manifest stores (calibrated on DATA/calibration-unknown, training-split photos),
beside how often known generators' test images are still named correctly and real photos are named.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_json  # noqa: E402

from forensics_app.core.fingerprint import load_extractor, shipped_extractors  # noqa: E402
from forensics_app.train.fingerprints import EVAL_PERTURBATIONS, REAL, evaluate, naming_rates  # noqa: E402


def inference_seconds(extractor, side: int, repeats: int = 5) -> float:
    image = np.random.default_rng(0).random((side, side, 3), dtype=np.float32)
    extractor.read(image)  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        extractor.read(image)
    return (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    results = {}
    for model_id, manifest in sorted(shipped_extractors().items()):
        extractor = load_extractor(manifest)
        closed = evaluate(extractor, args.data / "test")
        unknown = naming_rates(extractor, args.data / "test-unknown")
        known = naming_rates(extractor, args.data / "test")
        generators = [c for c in known if c != REAL]
        onnx = manifest.source.parent / "weights" / manifest.weights[0].file
        results[model_id] = {
            "kind": manifest.extra["training"]["kind"], "closed_set": closed, "threshold": extractor.threshold,
            "unknown_named": float(np.mean([r["named"] for r in unknown.values()])),
            "unknown_called_real": float(np.mean([r["called_real"] for r in unknown.values()])),
            "known_named_correctly": float(np.mean([known[c]["named_correctly"] for c in generators])),
            "real_named": known[REAL]["named"], "naming_per_class": known | unknown,
            "training_seconds": manifest.extra["training_data"]["training_seconds"],
            "inference_seconds_128px": inference_seconds(extractor, 128),
            "inference_seconds_512px": inference_seconds(extractor, 512),
            "onnx_bytes": onnx.stat().st_size, "provider": extractor.provider,
        }
    header = ["extractor"] + list(EVAL_PERTURBATIONS)
    print_table("Closed-set accuracy on held-out images (one perturbation at a time)", header,
                [[k] + [r["closed_set"]["accuracy"][p] for p in EVAL_PERTURBATIONS] for k, r in results.items()])
    print_table("Open set (at each manifest's threshold) and cost", [
        "extractor", "threshold", "unknown gen. named", "unknown called real", "known gen. named right",
        "real named", "train s", "ORT s/img 128px", "ORT s/img 512px", "ONNX KiB"],
        [[k, r["threshold"], r["unknown_named"], r["unknown_called_real"], r["known_named_correctly"],
          r["real_named"], r["training_seconds"], r["inference_seconds_128px"], r["inference_seconds_512px"],
          r["onnx_bytes"] // 1024] for k, r in results.items()])
    if args.json:
        write_json(args.json, results)


if __name__ == "__main__":
    main()
