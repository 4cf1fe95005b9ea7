"""Does the CUDA provider give the CPU's scores? And how much faster is it per AEDR check?

    python benchmarks/provider_parity.py --home H [--photos 8] [--models a,b] [--json OUT]

Scores the real-pool samples of the first ``--photos`` calibration photos with every model, once with
onnxruntime's CPU provider and once with its CUDA provider (TF32 off, as the app runs it), and reports
the largest relative difference of the scores and how many samples' p_real against the model's shipped
calibration differ. The shipped calibrations are made on either provider; this is the evidence that
it does not matter. Needs a machine where the CUDA provider loads (else it says so and stops).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, calibrated_autoencoders, print_table, write_json  # noqa: E402

from forensics_app.core.calibrate import CalibrationPlan, real_pool, score_samples  # noqa: E402
from forensics_app.core.calibration import load_calibrations  # noqa: E402
from forensics_app.core.methods.aedr import METHOD  # noqa: E402
from forensics_app.core.runtime import RuntimeSettings, SessionCache, cuda_usable  # noqa: E402
from forensics_app.core.zoo.autoencoder import OnnxAutoencoder  # noqa: E402
from forensics_app.core.zoo.store import Zoo  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def timed_scores(autoencoder: OnnxAutoencoder, samples) -> tuple[np.ndarray, float]:
    score_samples(autoencoder, METHOD, samples[:1])  # first run: session set-up, cuDNN's algorithm search
    started = time.perf_counter()
    scores = score_samples(autoencoder, METHOD, samples)
    return scores, (time.perf_counter() - started) / len(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--models", default="")
    parser.add_argument("--json")
    args = parser.parse_args()
    if not cuda_usable():
        print("the CUDA provider is not usable on this machine: nothing to compare")
        return 1
    samples = real_pool(SHARED / "images" / "real" / "imagenet1k", replace(CalibrationPlan(), crops_per_image=4),
                        max_images=args.photos)
    zoo = Zoo(args.home)
    cpu, cuda = SessionCache(RuntimeSettings("cpu")), SessionCache(RuntimeSettings("cuda"))
    rows, results = [], []
    for model_id in [m for m in args.models.split(",") if m] or calibrated_autoencoders():
        installed = zoo.installed(model_id)
        on_cpu, on_cuda = OnnxAutoencoder(installed, cpu), OnnxAutoencoder(installed, cuda)
        cpu_scores, cpu_s = timed_scores(on_cpu, samples)
        cuda_scores, cuda_s = timed_scores(on_cuda, samples)
        relative = np.abs(cuda_scores - cpu_scores) / np.maximum(np.abs(cpu_scores), 1e-12)
        calibration = load_calibrations(ROOT / "model_zoo" / f"{model_id}.calibration.json")[METHOD.name]
        p_changed = sum(calibration.p_real(a) != calibration.p_real(b) for a, b in zip(cpu_scores, cuda_scores))
        result = {"model": model_id, "samples": len(samples), "cpu_ms": round(cpu_s * 1e3, 1),
                  "cuda_ms": round(cuda_s * 1e3, 1), "max_relative_difference": float(relative.max()),
                  "p_real_changed": int(p_changed), "cuda_provider": on_cuda.provider}
        results.append(result)
        rows.append([model_id, len(samples), result["cpu_ms"], result["cuda_ms"], f"{relative.max():.1e}", p_changed])
        print(result, flush=True)
    print_table("AEDR check per real-pool sample (128-192 px), CPU provider vs CUDA provider (TF32 off)",
                ["model", "samples", "CPU ms", "CUDA ms", "max rel. diff", "p_real changed"], rows)
    write_json(args.json, {"results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
