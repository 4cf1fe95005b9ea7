"""Outputs of a generator outside the installed set, decided on the calibration split: how often is an
installed generator named?

    python benchmarks/outside_generators.py --home H [--alpha 0.01] [--json OUT]

Every zoo autoencoder scored the first 300 calibration outputs of every other (the cross scores in its
calibration). Holding each generator G out of the candidates in turn, each of those outputs of G is
decided among the other installed generators from its scores alone, by the product's rule
(pipeline.calibrated_readings, then verdict.decide; resampling traces taken as absent, JPEG traces from
the output's pixel condition). G's outputs enter none of the calibrations the rule reads (look-alikes,
tests between candidates and profiles use the candidates' own outputs and their scores of each other's),
so the rate is out of sample; and no image of the test split is used, so a change to the decision rule
can be measured here, on 2,700 outputs, without spending the held-out benchmark
(benchmarks/zoo_attribution.py, 144 outputs).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import calibrated_autoencoders, print_table, write_json, zoo_with  # noqa: E402

from forensics_app.core.findings import ATTRIBUTED  # noqa: E402
from forensics_app.core.methods.base import MethodResult  # noqa: E402
from forensics_app.core.pipeline import AnalysisSettings, Engine, calibrated_readings  # noqa: E402
from forensics_app.core.traces import JPEG_TRACES  # noqa: E402
from forensics_app.core.verdict import decide  # noqa: E402

SIDE = 192  # a calibration output's side at most; a multiple of every latent grid in the zoo
POOLED = "all held out, pooled"


def outside_verdicts(engine: Engine, held_out: str, alpha: float) -> list[tuple[str, str | None]]:
    """(condition, model named or None) for each of ``held_out``'s outputs that every candidate scored."""
    method = engine.methods[0]
    models = [m for m in engine.models if m.id != held_out]
    cross = {m.id: m.calibrations[method.name].cross[held_out] for m in models}
    conditions = next(m for m in engine.models if m.id == held_out).calibrations[method.name].own_conditions
    names = {m.id: m.installed.manifest.display_name for m in models}
    out = []
    for i in range(min(len(v) for v in cross.values())):
        results = [(m, method, MethodResult(method.name, method.version, m.id, float(cross[m.id][i]), {}, {}))
                   for m in models]
        candidates, context = calibrated_readings(results, alpha, conditions[i], (SIDE, SIDE))
        verdict = decide(candidates, alpha, names, jpeg_traces=conditions[i] == JPEG_TRACES, context=context)
        out.append((conditions[i], verdict.model if verdict.label == ATTRIBUTED else None))
    return out


def outside_rates(engine: Engine, ids: list[str], alpha: float) -> dict:
    """Per generator held out in turn: its outputs decided, how many were named, as which installed generator
    and under which pixel condition; and all pooled. Prints the table."""
    out = {}
    for held_out in ids:
        verdicts = outside_verdicts(engine, held_out, alpha)
        named = Counter(model for _, model in verdicts if model)
        out[held_out] = {"n": len(verdicts), "named": sum(named.values()), "as": dict(named.most_common()),
                         "by_condition": dict(Counter(condition for condition, model in verdicts if model))}
    out[POOLED] = {"n": sum(r["n"] for r in out.values()), "named": sum(r["named"] for r in out.values())}
    rows = [[m, r["n"], r["named"], f"{r['named'] / r['n']:.3f}", ", ".join(f"{k} {v}" for k, v in r.get("as", {}).items())]
            for m, r in out.items()]
    print_table(f"Calibration outputs of each generator held out of the candidates, alpha={alpha}: named as "
                f"an installed one", ["held out", "outputs", "named", "share", "named as"], rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    ids = calibrated_autoencoders()
    engine = Engine(zoo_with(args.home, ids), AnalysisSettings(models=tuple(ids), methods=("aedr",), alpha=args.alpha))
    write_json(args.json, {"alpha": args.alpha, "held_out": outside_rates(engine, ids, args.alpha)})


if __name__ == "__main__":
    main()
