"""Calibrate the inversion method for one installed model and merge it into a calibration file.

Inversion costs tens of decoder passes per sample, so it is calibrated on its own (fewer, 128-pixel
crops) rather than with the cheap methods; ``--merge`` adds the "inversion" entry to an existing
calibration file (re-read just before writing, so entries computed meanwhile are kept).

    python benchmarks/calibrate_inversion.py --real ../shared/images/real/imagenet1k --max-images 240 --own 120 \
        --threads 2 --out /tmp/inv.json --merge model_zoo/taef2.calibration.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from forensics_app.core.calibrate import CalibrationPlan, build_calibration, real_pool
from forensics_app.core.calibration import load_calibrations, save_calibrations
from forensics_app.core.jobs import Progress
from forensics_app.core.methods.inversion import Inversion
from forensics_app.core.zoo.autoencoder import OnnxAutoencoder
from forensics_app.core.zoo.store import Zoo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="taef2")
    parser.add_argument("--home", type=Path, help="app home holding the installed model (default: the app's)")
    parser.add_argument("--real", type=Path, required=True, help="folder of real photos (its calibration split is used)")
    parser.add_argument("--max-images", type=int, default=50)
    parser.add_argument("--crops", type=int, default=2, help="crops per image (128 x 128)")
    parser.add_argument("--own", type=int, default=100, help="own outputs of the model")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the inversion")
    parser.add_argument("--out", type=Path, required=True, help="write the inversion calibration here")
    parser.add_argument("--merge", type=Path, help="then add it to this calibration file")
    args = parser.parse_args()

    installed = Zoo(args.home).installed(args.model)
    start = time.perf_counter()

    def progress(p: Progress) -> None:
        print(f"{p.fraction:6.1%}  {time.perf_counter() - start:6.0f} s  {p.message}", flush=True)

    plan = CalibrationPlan(crops_per_image=args.crops, crop_sides=(128,), own_samples=args.own)
    pool = real_pool(args.real, plan, args.max_images)
    calibration, _ = build_calibration(OnnxAutoencoder(installed), Inversion(threads=args.threads), pool, args.real, plan,
                                       progress=progress, max_images=args.max_images)
    calibration.data["model_hash"] = installed.model_hash
    save_calibrations(args.out, [calibration])
    print(f"{len(calibration.own_scores)} own / {len(calibration.real_scores)} real; written to {args.out}")
    if args.merge:
        merged = load_calibrations(args.merge) if args.merge.exists() else {}
        merged["inversion"] = calibration
        save_calibrations(args.merge, list(merged.values()))
        print(f"merged into {args.merge}: {', '.join(sorted(merged))}")


if __name__ == "__main__":
    main()
