"""Compare two AEDR calibrations of the same models made with different score forms, on the calibration
split alone, before a model's manifest switches form.

    python scripts/compare_score_forms.py --other DIR [--work W] [--alpha 0.01] [--json OUT]

DIR holds ``<id>.calibration.json`` files remade with another form (scripts/calibrate_zoo.py
``--score-form F --out DIR``); the shipped ones are in model_zoo. For each model in DIR, read with each
of the two forms while every other candidate keeps its shipped calibration, the all-candidates rule
(core/family.py, at the image's condition, as the analysis decides) is applied to the model's own
calibration outputs (grouped by their history when W holds the own stage's samples: PNG, JPEG q >= 90,
JPEG q < 90), to the real pool, and to the other models' outputs it scored (cross). Real photos passing
are bounded by the rule whatever the form, so the form is judged by its own outputs: it is worth
switching to when it reads at least MIN_GAIN more of them as consistent and loses at most
MAX_PNG_LOSS of the PNG ones (an output as published must not pay for the JPEG'd ones). Other models'
outputs passing are printed: the look-alike guard and the tests between candidates weigh them per image.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import calibrated_autoencoders, print_table, write_json  # noqa: E402

from forensics_app.core.calibrate import saved_jpeg_quality  # noqa: E402
from forensics_app.core.calibration import Calibration, load_calibrations  # noqa: E402
from forensics_app.core.family import FamilyRule, cross_conditions, family_rule  # noqa: E402
from forensics_app.core.verdict import reading_status  # noqa: E402
from forensics_app.core.findings import CONSISTENT  # noqa: E402

METHOD = "aedr"
MIN_GAIN = 0.05  # of all own outputs
MAX_PNG_LOSS = 0.02  # of the PNG own outputs


def group_of(history: str) -> str:
    quality = saved_jpeg_quality(history)
    if quality is None:
        return "PNG"
    return "JPEG q>=90" if quality >= 90 else "JPEG q<90"


def consistent(scores: np.ndarray, conditions: np.ndarray, model: str, calibrations: dict[str, Calibration],
               rules: dict[str, FamilyRule], alpha: float) -> np.ndarray:
    """Per score: would the analysis read it as consistent with ``model`` among all these candidates?
    ``rules``: the all-candidates rule per pixel condition."""
    out = np.zeros(len(scores), dtype=bool)
    for condition in sorted(set(conditions.tolist())):
        rule, own = rules[condition], calibrations[model].for_condition(condition)
        for i in np.flatnonzero(conditions == condition):
            status = reading_status(own.p_own(scores[i]), rule.calibrations[model].p_real(scores[i]),
                                    rule.critical_p, alpha)
            out[i] = status == CONSISTENT
    return out


def measure(model: str, calibrations: dict[str, Calibration], groups: np.ndarray, alpha: float) -> dict:
    """(consistent, n) per own-output group, for the real pool, and for the other models' outputs."""
    cal = calibrations[model]
    conditions = {c for each in calibrations.values() for c in each.own_conditions.tolist() + each.real_conditions.tolist()}
    rules = {c: family_rule(calibrations, alpha, c) for c in conditions}  # one min-p per condition, not per call
    read = lambda scores, conds: consistent(np.asarray(scores), conds, model, calibrations, rules, alpha)
    own = read(cal.own_scores, cal.own_conditions)
    row = {f"own {g}": (int(own[groups == g].sum()), int((groups == g).sum())) for g in sorted(set(groups.tolist()))}
    row["own, all"] = (int(own.sum()), len(own))
    real = read(cal.real_scores, cal.real_conditions)
    row["real"] = (int(real.sum()), len(real))
    passed = total = 0
    for other, scores in cal.cross.items():
        passed += int(read(scores, cross_conditions(cal, other, calibrations)[:len(scores)]).sum())
        total += len(scores)
    row["other models' outputs"] = (passed, total)
    return row


def worth_switching(now: dict, other: dict) -> bool:
    (before, n), (after, _) = now["own, all"], other["own, all"]
    png_loss = (now["own PNG"][0] - other["own PNG"][0]) / now["own PNG"][1] if "own PNG" in now else 0.0
    return after - before >= MIN_GAIN * n and png_loss <= MAX_PNG_LOSS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--other", type=Path, required=True, help="folder of calibrations made with another form")
    parser.add_argument("--work", type=Path, help="calibrate_zoo work folder (own samples' histories)")
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    shipped = {m: load_calibrations(ROOT / "model_zoo" / f"{m}.calibration.json")[METHOD]
               for m in calibrated_autoencoders()}
    rows, out = [], {}
    for path in sorted(args.other.glob("*.calibration.json")):
        other = load_calibrations(path)[METHOD]
        groups = other.own_conditions  # without the own samples' histories: by pixel condition
        if args.work is not None and (args.work / f"{other.model}.own.pkl").exists():
            with open(args.work / f"{other.model}.own.pkl", "rb") as f:
                groups = np.array([group_of(s.history) for s in pickle.load(f)["samples"]])
        now, then = (measure(other.model, shipped | {other.model: c}, groups, args.alpha)
                     for c in (shipped[other.model], other))
        switch = worth_switching(now, then)
        out[other.model] = {"forms": [shipped[other.model].parameters.get("score_form"), other.parameters.get("score_form")],
                            "readings": [now, then], "worth_switching": switch}
        for form, row, verdict in zip(out[other.model]["forms"], (now, then), ("", "yes" if switch else "no")):
            rows.append([other.model, form, *(f"{k}/{n}" for k, n in row.values()), verdict])
    header = ["model", "form", *next(iter(out.values()))["readings"][0].keys(), "switch"]
    print_table(f"Consistent readings among all {len(shipped)} candidates at alpha={args.alpha} (calibration split; "
                f"switch: +{MIN_GAIN:.0%} own outputs, at most {MAX_PNG_LOSS:.0%} of the PNG ones lost)", header, rows)
    if args.json:
        write_json(args.json, {"alpha": args.alpha, "min_gain": MIN_GAIN, "max_png_loss": MAX_PNG_LOSS, "models": out})


if __name__ == "__main__":
    main()
