"""Remake the shipped AEDR calibrations of the zoo's autoencoders on the shared real pool.

    python scripts/calibrate_zoo.py --home H --work W [--models a,b] [--stage scores|cross|write]

Four stages, so that models can be scored in parallel processes: ``pool`` (the real samples, kept
in W), ``scores`` (real pool and own outputs per model; own outputs kept in W for the next stage), ``cross`` (each model scores every other
model's first ``cross_samples`` own outputs) and ``write`` (model_zoo/<id>.calibration.json, other
methods' calibrations kept as they were). Real photos: the calibration split of
../shared/images/real/imagenet1k (core/calibrate.py explains the split and the histories).
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import SHARED, calibrated_autoencoders, zoo_with  # noqa: E402

from forensics_app.core.calibrate import (CalibrationPlan, build_calibration, plan_tag, real_pool,  # noqa: E402
                                          score_samples)
from forensics_app.core.calibration import load_calibrations, save_calibrations  # noqa: E402
from forensics_app.core.methods.aedr import METHOD  # noqa: E402
from forensics_app.core.zoo.autoencoder import OnnxAutoencoder  # noqa: E402

REAL = SHARED / "images" / "real" / "imagenet1k"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--models", default="", help="comma-separated ids (default: every zoo autoencoder)")
    parser.add_argument("--stage", choices=("pool", "scores", "cross", "write"), required=True)
    args = parser.parse_args()
    all_ids = calibrated_autoencoders()
    ids = [i for i in args.models.split(",") if i] or all_ids
    zoo = zoo_with(args.home, all_ids)
    plan = CalibrationPlan()
    args.work.mkdir(parents=True, exist_ok=True)
    pool_file = args.work / "real_pool.pkl"
    if args.stage == "pool":
        pool = real_pool(REAL, plan)
        pool_file.write_bytes(pickle.dumps(pool))
        print(f"real pool: {len(pool)} samples", flush=True)
    elif args.stage == "scores":
        pool = pickle.loads(pool_file.read_bytes())
        for model_id in ids:
            started = time.perf_counter()
            autoencoder = OnnxAutoencoder(zoo.installed(model_id))
            calibration, own = build_calibration(autoencoder, METHOD, pool, REAL, plan)
            with open(args.work / f"{model_id}.pkl", "wb") as f:
                pickle.dump({"calibration": calibration.to_dict(), "own": own}, f)
            print(f"{model_id}: {len(pool)} real + {len(own)} own in {time.perf_counter() - started:.0f} s", flush=True)
    elif args.stage == "cross":
        for model_id in ids:
            started = time.perf_counter()
            autoencoder = OnnxAutoencoder(zoo.installed(model_id))
            cross = {}
            for other in all_ids:
                if other != model_id:
                    with open(args.work / f"{other}.pkl", "rb") as f:
                        own = pickle.load(f)["own"][:plan.cross_samples]
                    cross[other] = score_samples(autoencoder, METHOD, own).tolist()
            with open(args.work / f"{model_id}.cross.pkl", "wb") as f:
                pickle.dump(cross, f)
            print(f"{model_id}: cross scores in {time.perf_counter() - started:.0f} s", flush=True)
    else:
        from forensics_app.core.calibration import Calibration

        for model_id in ids:
            with open(args.work / f"{model_id}.pkl", "rb") as f:
                calibration = Calibration.from_dict(pickle.load(f)["calibration"])
            tag = f"@{plan_tag(plan)}"  # pools drawn before ids carried the plan's tag
            calibration.real_ids = np.array([i if i.endswith(tag) else i + tag for i in calibration.real_ids])
            with open(args.work / f"{model_id}.cross.pkl", "rb") as f:
                calibration.cross = {m: np.asarray(v) for m, v in pickle.load(f).items()}
            calibration.data["cross"] = (f"first {plan.cross_samples} own outputs of each other zoo autoencoder, "
                                         "scored by this model")
            out = ROOT / "model_zoo" / f"{model_id}.calibration.json"
            kept = {m: c for m, c in load_calibrations(out).items() if m != METHOD.name} if out.exists() else {}
            save_calibrations(out, [calibration, *kept.values()])
            print(f"written {out}")


if __name__ == "__main__":
    main()
