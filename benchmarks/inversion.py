"""Inversion (input reverse-engineering) vs AEDR, and both combined: accuracy, speed, step budget.

    python benchmarks/inversion.py [--home DIR] [--crops 6] [--quick] [--skip-random-starts] [--json OUT]

Held-out split only (Set14 + scikit-image photos; calibration uses CBSD68), 128x128 crops, one per
photo, a seeded subset. Positives: the crops decoded by TAEF2 (decode(encode(crop)), saved as 8-bit).
Negatives: the real crops; the crops passed through other autoencoders (the zoo's demonstration
models OTHER_AUTOENCODERS, installed into the home if missing: three different upsamplers, one of them
GAN-trained); Stable Diffusion 1/2 outputs (made by a different VAE). "JPEG q90" re-saves both sides. The combination is
the sum of the log scores (AUC is then independent of each score's scale), computed without any
calibration; decision rates apply the product's rule instead (installed calibrations, alpha 0.01; with
both methods a model is consistent only when both readings are). Speed: seconds per image for one
candidate, both methods in the same run; inversion is timed at two step counts and its per-image time
at the default budget is fixed cost + steps x per step (it is linear in the steps), to keep the
benchmark short. Budget curve: the default inversion run against the same run with fewer steps, on
the clean real/TAEF2 sets. No-encoder path (what a GAN gets): the same candidate inverted from
random starts only (RANDOM_STARTS), real vs TAEF2 and other AEs vs TAEF2, with its time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (ALPHA, auc, crops, generated_images, held_out_photos, print_table, statuses_alone,  # noqa: E402
                    write_json, zoo_with)

from forensics_app.core.calibrate import jpeg_roundtrip, to_uint8  # noqa: E402
from forensics_app.core.calibrate import parameters_for  # noqa: E402
from forensics_app.core.calibration import calibration_for  # noqa: E402
from forensics_app.core.findings import CONSISTENT  # noqa: E402
from forensics_app.core.imageprep import TilingSettings  # noqa: E402
from forensics_app.core.jobs import NEVER_CANCELLED  # noqa: E402
from forensics_app.core.methods.aedr import METHOD as AEDR  # noqa: E402
from forensics_app.core.methods.inversion import METHOD as INVERSION, SCORE_FORM, SCORE_FORMS, Inversion  # noqa: E402
from forensics_app.core.pipeline import load_model_calibrations  # noqa: E402
from forensics_app.core.zoo.autoencoder import OnnxAutoencoder  # noqa: E402
from forensics_app.core.zoo.store import Zoo  # noqa: E402

CANDIDATE = "taef2"
OTHER_AUTOENCODERS = ("demo-ae-01", "demo-ae-04", "demo-ae-08")  # transposed conv; pixel shuffle; bilinear + GAN
RANDOM_STARTS = (Inversion(start="random", restarts=2, steps=50, learning_rate=0.2, stop_tolerance=0.0),)
SIDE = 128


def run(method, rgb8: np.ndarray, model):
    return method.run(rgb8.astype(np.float32) / 255.0, model, TilingSettings(), NEVER_CANCELLED)


def build_sets(zoo: Zoo, candidate, n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    real = crops(held_out_photos(), SIDE, 1, seed)
    real = [real[i] for i in sorted(rng.choice(len(real), size=min(n, len(real)), replace=False))]
    own = [to_uint8(candidate.reconstruct(c / 255.0)) for c in real]
    other = []
    for model_id in OTHER_AUTOENCODERS:
        other_ae = OnnxAutoencoder(zoo.installed(model_id))
        other += [to_uint8(other_ae.reconstruct(c / 255.0)) for c in real]
    sd = crops(generated_images("sd1") + generated_images("sd2"), SIDE, 1, seed)
    sd = [sd[i] for i in sorted(rng.choice(len(sd), size=min(n, len(sd)), replace=False))]
    jpeg = {f"{k} JPEG q90": [jpeg_roundtrip(c, 90) for c in v] for k, v in
            (("real", real), ("taef2", own), ("other", other))}
    return {"real": real, "taef2": own, "other": other, "sd1+sd2": sd} | jpeg


def score_all(sets: dict, candidate) -> dict:
    scores = {}
    for name, images in sets.items():
        print(f"  scoring {name} ({len(images)})", flush=True)
        aedr = [run(AEDR, im, candidate).score for im in images]
        inversion = [run(INVERSION, im, candidate).components for im in images]
        scores[name] = {"aedr": aedr} | {f"inversion {form}": [fn(c) for c in inversion]
                                           for form, fn in SCORE_FORMS.items()}
        scores[name]["inversion start (single reconstruction)"] = [c["initial_loss"] for c in inversion]
        scores[name][f"aedr + inversion {SCORE_FORM} (sum of logs)"] = list(
            np.log(aedr) + np.log(scores[name][f"inversion {SCORE_FORM}"]))
    return scores


def accuracy_table(scores: dict) -> dict:
    other_name = "other AEs"
    pairs = {"real vs taef2": ("real", "taef2"), "real vs taef2, JPEG q90": ("real JPEG q90", "taef2 JPEG q90"),
             f"{other_name} vs taef2": ("other", "taef2"),
             f"{other_name} vs taef2, JPEG q90": ("other JPEG q90", "taef2 JPEG q90"),
             "sd1+sd2 vs taef2": ("sd1+sd2", "taef2")}
    table = {score: {label: auc(scores[neg][score], scores[pos][score]) for label, (neg, pos) in pairs.items()}
             for score in scores["real"]}
    n = {k: len(v["aedr"]) for k, v in scores.items()}
    print_table(f"AUC (positives: TAEF2-decoded crops; {SIDE}x{SIDE}; n per set {n['real']}; product uses "
                f"inversion {SCORE_FORM})", ["score"] + list(pairs), [[s] + list(r.values()) for s, r in table.items()])
    return table


def decision_rates(zoo: Zoo, scores: dict) -> dict:
    """Share of each set attributed to the candidate at ALPHA: each method alone, and both agreeing."""
    calibrations, source = load_model_calibrations(zoo.installed(CANDIDATE))
    manifest = zoo.installed(CANDIDATE).manifest
    cals = {m: calibration_for(m, parameters_for(m, manifest), calibrations) for m in (AEDR, INVERSION)}
    if None in cals.values():
        print(f"\n(no matching aedr and inversion calibrations in {source}; decision rates skipped)")
        return {}
    keys = {AEDR: "aedr", INVERSION: f"inversion {SCORE_FORM}"}

    def consistent(method, name: str) -> np.ndarray:
        return np.array([s == CONSISTENT for s in statuses_alone(cals[method], scores[name][keys[method]])])

    rates = {}
    for name in scores:
        aedr, inversion = consistent(AEDR, name), consistent(INVERSION, name)
        rates[name] = {"aedr": float(aedr.mean()), "inversion": float(inversion.mean()),
                       "both agree": float((aedr & inversion).mean())}
    print_table(f"Share attributed to {CANDIDATE} at alpha {ALPHA} ({source})", ["set", *next(iter(rates.values()))],
                [[name, *r.values()] for name, r in rates.items()])
    return rates


def budget_curve(sets: dict, scores: dict, candidate, fewer_steps: list[int]) -> dict:
    curve = {}
    for steps in fewer_steps:
        method = Inversion(steps=steps)
        real = [SCORE_FORMS[SCORE_FORM](run(method, im, candidate).components) for im in sets["real"]]
        own = [SCORE_FORMS[SCORE_FORM](run(method, im, candidate).components) for im in sets["taef2"]]
        curve[steps] = auc(real, own)
    curve[INVERSION.steps] = auc(scores["real"][f"inversion {SCORE_FORM}"], scores["taef2"][f"inversion {SCORE_FORM}"])
    print_table(f"Budget: inversion {SCORE_FORM} AUC, real vs taef2 (clean)", ["steps", "AUC"],
                [[s, a] for s, a in sorted(curve.items())])
    return curve


def random_start_table(sets: dict, candidate) -> dict:
    """The no-encoder path on the same candidate: AUC of the final loss and seconds per image."""
    out = {}
    for method in RANDOM_STARTS:
        subsets = {"real": sets["real"], "taef2": sets["taef2"], "other": sets["other"][::len(OTHER_AUTOENCODERS)]}
        results = {name: [run(method, im, candidate) for im in images] for name, images in subsets.items()}
        scores = {name: [r.score for r in rs] for name, rs in results.items()}
        label = f"{method.restarts} random starts x {method.steps} steps, lr {method.learning_rate}"
        out[label] = {"real vs taef2": auc(scores["real"], scores["taef2"]),
                      "other AEs vs taef2": auc(scores["other"], scores["taef2"]),
                      "seconds_per_image": float(np.mean([r.seconds for rs in results.values() for r in rs])),
                      "scores": scores}
    print_table(f"No-encoder path (random starts, final loss) on {CANDIDATE}, {SIDE}x{SIDE}: AUC and cost",
                ["start", "real vs taef2", "other AEs vs taef2", "s/image"],
                [[k, v["real vs taef2"], v["other AEs vs taef2"], v["seconds_per_image"]] for k, v in out.items()])
    return out


def seconds_per_image(candidate, sides: list[int], timing_steps: tuple[int, int]) -> dict:
    photo = held_out_photos()
    big = next(rgb for _, rgb in photo if min(rgb.shape[:2]) >= max(sides))
    out, rows = {}, []
    for side in sides:
        image = np.ascontiguousarray(big[:side, :side])
        run(AEDR, image, candidate)  # warm-up: session and allocator
        t = time.perf_counter()
        run(AEDR, image, candidate)
        aedr = time.perf_counter() - t
        few, more = (run(Inversion(steps=s, stop_tolerance=0.0), image, candidate).seconds for s in timing_steps)
        per_step = (more - few) / (timing_steps[1] - timing_steps[0])
        inversion = few - timing_steps[0] * per_step + INVERSION.steps * per_step
        out[side] = {"aedr_s": aedr, "inversion_per_step_s": per_step, "inversion_s": inversion,
                     "ratio": inversion / aedr}
        rows.append([f"{side}x{side}", aedr, per_step, inversion, f"{inversion / aedr:.0f}x"])
    print_table(f"Seconds per image, one candidate (inversion: {INVERSION.steps} steps, projected from "
                f"{timing_steps[0]} and {timing_steps[1]} timed steps)",
                ["size", "AEDR s", "inversion s/step", "inversion s", "inversion/AEDR"], rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="app home with taef2 installed (default: install into a temp home)")
    parser.add_argument("--crops", type=int, default=6, help="crops per set")
    parser.add_argument("--quick", action="store_true", help="3 crops per set, no budget curve, 256 px timing only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-random-starts", action="store_true", help="leave out the no-encoder path (slow)")
    parser.add_argument("--json")
    args = parser.parse_args()

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        zoo = zoo_with(args.home or Path(tmp), (CANDIDATE, *OTHER_AUTOENCODERS))
        candidate = OnnxAutoencoder(zoo.installed(CANDIDATE))
        sets = build_sets(zoo, candidate, 3 if args.quick else args.crops, args.seed)
        scores = score_all(sets, candidate)
        result = {"auc": accuracy_table(scores), "decision_rates": decision_rates(zoo, scores),
                  "other_autoencoders": OTHER_AUTOENCODERS, "side": SIDE, "crops_per_set": len(sets["real"]),
                  "inversion_parameters": INVERSION.parameters, "scores": scores}
        if not args.quick:
            result["budget_auc"] = budget_curve(sets, scores, candidate, [5, 10])
            if not args.skip_random_starts:
                result["random_starts"] = random_start_table(sets, candidate)
        result["seconds"] = seconds_per_image(candidate, [256] if args.quick else [256, 512], (2, 4))
    result["benchmark_seconds"] = time.perf_counter() - start
    print(f"\nbenchmark ran {result['benchmark_seconds']:.0f} s")
    write_json(args.json, result)


if __name__ == "__main__":
    main()
