"""The calibration split's generator outputs, decided out of sample: generators outside the installed set,
and each generator's own outputs.

    python benchmarks/calibration_outputs.py --home H [--alpha 0.01] [--json OUT] [--no-histories]
                                             [--models taef2,...] [--alone taef2,...]

Every zoo autoencoder scored the first 300 calibration outputs of every other (the cross scores in its
calibration), so each output has a score under every candidate, and the product's rule
(pipeline.calibrated_readings, then verdict.decide; resampling traces taken as absent, JPEG traces from the
output's pixel condition, its fine detail from the remade output) can decide it without running a model.
No image of the test split is used, so a change to the decision rule can be measured here, on 2,700
outputs, without spending the held-out benchmark (benchmarks/zoo_attribution.py, 144 outputs).

- **Outside the installed set**: each generator G held out of the candidates in turn; its outputs decided
  among the others. G's outputs enter none of the calibrations the rule then reads (look-alikes, tests
  between candidates and profiles use the candidates' own outputs and their scores of each other's).
- **Own outputs** (the right-generator rate): all generators installed; each output of G decided with that
  one output left out of every calibration that holds it (G's own scores, which set p_own, the tests
  between candidates and the profile check; and the other candidates' scores of G's outputs, which set
  their look-alike shares). The real side never held it. What stays shared: the outputs were made from
  crops of the same calibration photos whose other crops make up the real pool, and output i of every
  generator was made from the same photo (own_pool draws them alike), so the others' calibrations keep
  their output of that photo.
- **One model alone** (``--alone``): every other generator's outputs decided with that model the only
  candidate, as a user who installs only it would; with nothing else installed no look-alike, test
  between candidates or profile check can hold a name back.

The outputs' histories (JPEG quality) and pixels are not in the calibration files; the outputs are remade
from the calibration photos (core/calibrate.py own_pool, deterministic), checked against the calibration's
recorded pixel conditions, and the table splits the own outputs by their histories (``--no-histories``: by
pixel condition only, and the fine-detail check left out). Caveat for both rates: these outputs are
128-192 px crops at random grid offsets (for models that search the grid), 60% JPEG'd at quality 70-100,
unlike the benchmark's 256 px crops.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, calibrated_autoencoders, print_table, write_json, zoo_with  # noqa: E402

from forensics_app.core.calibrate import CalibrationPlan, own_pool, saved_jpeg_quality, shifts_phase  # noqa: E402
from forensics_app.core.findings import ATTRIBUTED, CONSISTENT, NOT_ATTRIBUTED  # noqa: E402
from forensics_app.core.methods.base import MethodResult  # noqa: E402
from forensics_app.core.pipeline import AnalysisSettings, Engine, LoadedModel, calibrated_readings  # noqa: E402
from forensics_app.core.traces import JPEG_TRACES, pixel_traces  # noqa: E402
from forensics_app.core.verdict import decide  # noqa: E402

SIDE = 192  # a calibration output's side at most; a multiple of every latent grid in the zoo
POOLED = "all held out, pooled"
CALIBRATION_PHOTOS = SHARED / "images" / "real" / "imagenet1k"  # what scripts/calibrate_zoo.py made them from
OUTCOMES = ("right", "wrong", "not attributed", "inconclusive")


def scores_of(engine: Engine, generator: str) -> dict[str, np.ndarray]:
    """Each installed model's scores of ``generator``'s calibration outputs (its own scores for itself)."""
    name = engine.methods[0].name
    scores = {m.id: m.calibrations[name].own_scores if m.id == generator else m.calibrations[name].cross.get(generator)
              for m in engine.models}
    return {model: s for model, s in scores.items() if s is not None}


def own_conditions(engine: Engine, generator: str) -> np.ndarray:
    return next(m for m in engine.models if m.id == generator).calibrations[engine.methods[0].name].own_conditions


def verdict_on(engine: Engine, models: list[LoadedModel], scores: dict[str, np.ndarray], i: int, condition: str,
               alpha: float, fine_detail: float | None = None):
    """The product's verdict on output i among ``models``, from the scores they gave it, and the readings."""
    method = engine.methods[0]
    results = [(m, method, MethodResult(method.name, method.version, m.id, float(scores[m.id][i]), {}, {}))
               for m in models]
    candidates, context = calibrated_readings(results, alpha, condition, (SIDE, SIDE))
    names = {m.id: m.installed.manifest.display_name for m in models}
    return decide(candidates, alpha, names, jpeg_traces=condition == JPEG_TRACES, context=context,
                  fine_detail=fine_detail), candidates


def outside_verdicts(engine: Engine, held_out: str, alpha: float) -> list[tuple[str, str | None]]:
    """(condition, model named or None) for each of ``held_out``'s outputs that every other candidate scored."""
    models = without_generator([m for m in engine.models if m.id != held_out], held_out, engine.methods[0].name)
    scores = {m: s for m, s in scores_of(engine, held_out).items() if m != held_out}
    conditions, details = own_conditions(engine, held_out), fine_details(engine, held_out)
    out = []
    for i in range(min(len(s) for s in scores.values())):
        verdict, _ = verdict_on(engine, models, scores, i, conditions[i], alpha, details[i])
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


def named_alone(engine: Engine, model: str, alpha: float) -> dict:
    """Every other generator's calibration outputs decided with ``model`` the only candidate, without that
    generator's outputs in its calibration: how many are named as it."""
    out = {}
    for generator in (m.id for m in engine.models if m.id != model):
        alone = without_generator([m for m in engine.models if m.id == model], generator, engine.methods[0].name)
        scores = {model: scores_of(engine, generator)[model]}
        conditions, details = own_conditions(engine, generator), fine_details(engine, generator)
        named = [verdict_on(engine, alone, scores, i, conditions[i], alpha, details[i])[0].label == ATTRIBUTED
                 for i in range(len(scores[model]))]
        out[generator] = {"n": len(named), "named": sum(named)}
    out[POOLED] = {"n": sum(r["n"] for r in out.values()), "named": sum(r["named"] for r in out.values())}
    print_table(f"Other generators' calibration outputs with {model} alone installed, alpha={alpha}: named as it",
                ["generator", "outputs", "named"], [[g, r["n"], r["named"]] for g, r in out.items()])
    return out


def without_output(models: list[LoadedModel], generator: str, i: int, method_name: str) -> list[LoadedModel]:
    """The models with ``generator``'s output i left out of every calibration that holds it."""
    out = []
    for m in models:
        cal = m.calibrations[method_name]
        if m.id == generator:
            keep = np.arange(len(cal.own_scores)) != i
            cal = dataclasses.replace(cal, own_scores=cal.own_scores[keep], own_conditions=cal.own_conditions[keep])
        elif generator in cal.cross:
            cal = dataclasses.replace(cal, cross={**cal.cross, generator: np.delete(cal.cross[generator], i)},
                                      cross_conditions={g: np.delete(c, i) if g == generator else c
                                                        for g, c in cal.cross_conditions.items()})
        out.append(dataclasses.replace(m, calibrations={**m.calibrations, method_name: cal}))
    return out


def without_generator(models: list[LoadedModel], generator: str, method_name: str) -> list[LoadedModel]:
    """The models without ``generator``'s outputs in their calibrations: it plays a generator no calibration
    knows (the look-alike guard reads the scores of every generator a model's calibration holds)."""
    out = []
    for m in models:
        cal = m.calibrations[method_name]
        cal = dataclasses.replace(cal, cross={g: s for g, s in cal.cross.items() if g != generator},
                                  cross_conditions={g: c for g, c in cal.cross_conditions.items() if g != generator})
        out.append(dataclasses.replace(m, calibrations={**m.calibrations, method_name: cal}))
    return out


def own_outcomes(engine: Engine, generator: str, alpha: float) -> list[tuple[str, bool]]:
    """Per output of ``generator`` that every candidate scored: right, wrong, not attributed or inconclusive;
    and whether its maker's reading was consistent (if not, the score fell short; if so, the rule held back)."""
    scores = scores_of(engine, generator)
    conditions, details = own_conditions(engine, generator), fine_details(engine, generator)
    out = []
    for i in range(min(len(s) for s in scores.values())):
        models = without_output(engine.models, generator, i, engine.methods[0].name)
        verdict, candidates = verdict_on(engine, models, scores, i, conditions[i], alpha, details[i])
        outcome = (("right" if verdict.model == generator else "wrong") if verdict.label == ATTRIBUTED else
                   "not attributed" if verdict.label == NOT_ATTRIBUTED else "inconclusive")
        out.append((outcome, next(c.status for c in candidates if c.model == generator) == CONSISTENT))
    return out


def jpeg_band(history: str) -> str:
    """The saving an output went through (core/calibrate.py own_pool), in bands around the benchmark's q90."""
    quality = saved_jpeg_quality(history)
    if quality is None:
        return "not JPEG'd"
    return "JPEG q95-100" if quality >= 95 else "JPEG q86-94" if quality >= 86 else "JPEG q70-85"


class Remade(NamedTuple):
    """What the calibration files do not hold of a generator's outputs, from the outputs remade once per run."""
    histories: list[str]
    fine_details: list[float]  # core/traces.py, as the verdict reads an image's


_remade: dict[str, Remade | None] = {}  # per generator (None: not remade)


def remade(engine: Engine, generator: str) -> Remade | None:
    """The generator's calibration outputs remade from the calibration photos (once per run); None (and says why)
    when the photos are not here or the remade outputs' pixel conditions differ from the calibration's (made
    elsewhere, or from other photos)."""
    if generator not in _remade:
        _remade[generator] = _remake(engine, generator)
    return _remade[generator]


def _remake(engine: Engine, generator: str) -> Remade | None:
    if not CALIBRATION_PHOTOS.is_dir():
        print(f"{CALIBRATION_PHOTOS} is not here; split by pixel condition only, without the fine-detail check")
        return None
    loaded = next(m for m in engine.models if m.id == generator)
    outputs = own_pool(loaded.autoencoder, CALIBRATION_PHOTOS, CalibrationPlan(),
                       shifts_phase(engine.methods[0], loaded.autoencoder))
    recorded = own_conditions(engine, generator)
    if [s.condition for s in outputs[:len(recorded)]] != list(recorded):
        print(f"{generator}: the remade outputs do not match the calibration's; split by pixel condition only")
        return None
    return Remade([s.history for s in outputs], [pixel_traces(s.pixels).fine_detail for s in outputs])


def histories(engine: Engine, generator: str) -> list[str] | None:
    made = remade(engine, generator)
    return made.histories if made else None


def fine_details(engine: Engine, generator: str) -> list[float | None]:
    """Each output's fine detail (core/traces.py), None where the outputs could not be remade."""
    made = remade(engine, generator)
    return made.fine_details if made else [None] * len(own_conditions(engine, generator))


def own_rates(engine: Engine, ids: list[str], alpha: float) -> dict:
    """Per generator, all installed: its outputs' outcomes, per JPEG band (or pixel condition) and in all, with
    how many had their maker's reading consistent."""
    out = {}
    for generator in ids:
        outcomes = own_outcomes(engine, generator, alpha)
        made = histories(engine, generator)
        groups = [jpeg_band(h) for h in made[:len(outcomes)]] if made else list(own_conditions(engine, generator))
        out[generator] = {}
        for group in ["all", *sorted(set(groups))]:
            picked = [o for o, g in zip(outcomes, groups) if group in ("all", g)]
            out[generator][group] = dict(Counter(o for o, _ in picked), n=len(picked),
                                         maker_consistent=sum(m for _, m in picked))
    groups = sorted({g for r in out.values() for g in r})
    rows = [[model, group, r[group]["n"], *(f"{r[group].get(o, 0) / r[group]['n']:.2f}" for o in OUTCOMES),
             f"{r[group]['maker_consistent'] / r[group]['n']:.2f}"]
            for model, r in out.items() for group in groups if group in r]
    print_table(f"Own calibration outputs, all installed, each left out of the calibrations, alpha={alpha}",
                ["generator", "outputs", "n", *OUTCOMES, "maker consistent"], rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-histories", action="store_true", help="split own outputs by pixel condition only")
    parser.add_argument("--models", help="the installed set, comma-separated (default: every calibrated autoencoder)")
    parser.add_argument("--alone", help="models to install alone, comma-separated: how often the others' outputs are "
                                        "named as each")
    args = parser.parse_args()
    ids = args.models.split(",") if args.models else calibrated_autoencoders()
    if args.no_histories:
        _remade.update(dict.fromkeys(ids))  # not remade: no histories, no fine detail
    engine = Engine(zoo_with(args.home, ids), AnalysisSettings(models=tuple(ids), methods=("aedr",), alpha=args.alpha))
    held_out = outside_rates(engine, ids, args.alpha) if len(ids) > 1 else {}  # a generator alone has no others
    alone = {m: named_alone(engine, m, args.alpha) for m in args.alone.split(",")} if args.alone else {}
    write_json(args.json, {"alpha": args.alpha, "models": ids, "held_out": held_out, "alone": alone,
                           "own": own_rates(engine, ids, args.alpha)})


if __name__ == "__main__":
    main()
