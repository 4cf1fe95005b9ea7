"""Remake the shipped AEDR calibrations of the zoo's autoencoders on the shared real pool.

    python scripts/calibrate_zoo.py --home H --work W --stage real|own|cross|write [--models a,b]
                                    [--workers N] [--provider auto|cpu|cuda] [--score-form F] [--out DIR]

Stages, so that the long ones can run where there is hardware for them:
- ``real``: the real pool (core/calibrate.py: crops of the calibration split of
  ../shared/images/real/imagenet1k, each with a real-world history) scored by every model, the photos
  shared out over ``--workers`` processes (each sample's pixels depend only on its photo and number,
  so the split changes nothing). Writes W/real_scores.json.
- ``own``: each model's own outputs and their scores (W/<id>.own.pkl, the samples kept for ``cross``), and
  how high they score once downscaled (core/calibrate.py downscaled_own_ceiling).
- ``cross``: each model scores every other model's first ``--cross-samples`` own outputs (W/<id>.cross.json).
- ``write``: model_zoo/<id>.calibration.json: the real side from W/real_scores.json; the own and cross
  sides from W when those stages ran, else kept from the shipped file (they do not depend on the real
  pool); other methods' calibrations kept as they were. ``--out`` writes them elsewhere (to compare
  score forms with scripts/compare_score_forms.py before a model switches).

``--soft-only`` (stage real) scores only the soft samples (blurred photos, core/calibrate.py) of the photos
the shipped pool holds; ``--add-to-shipped`` (stage write) merges them with the shipped real side. Measured
and not shipped (README: they pull every threshold down); kept to measure the next rule on them.

``--score-form`` scores (and records) every stage with that AEDR score form instead of the one each
manifest names: the way to measure another form on the calibration split before choosing it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pickle
import sys
import time
from collections import Counter
from dataclasses import replace
from functools import cache, partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import SHARED, calibrated_autoencoders  # noqa: E402

from forensics_app.core.calibrate import (CalibrationPlan, calibration_split, downscaled_own_ceiling,  # noqa: E402
                                          own_fine_detail, own_pool, parameters_for, plan_record, real_pool,
                                          real_pool_record, score_samples, shifts_phase)
from forensics_app.core.calibration import Calibration, load_calibrations, save_calibrations  # noqa: E402
from forensics_app.core.methods.aedr import METHOD, SCORE_FORMS  # noqa: E402
from forensics_app.core.runtime import RuntimeSettings, SessionCache  # noqa: E402
from forensics_app.core.zoo.autoencoder import OnnxAutoencoder  # noqa: E402
from forensics_app.core.zoo.manifest import shipped_manifests  # noqa: E402
from forensics_app.core.zoo.store import Zoo  # noqa: E402

REAL = SHARED / "images" / "real" / "imagenet1k"


def autoencoders(home: Path, ids: list[str], provider: str, threads: int,
                 score_form: str | None) -> dict[str, OnnxAutoencoder]:
    sessions = SessionCache(RuntimeSettings(provider=provider, intra_op_threads=threads))
    zoo = Zoo(home)
    installed = {model_id: zoo.installed(model_id) for model_id in ids}
    return {model_id: OnnxAutoencoder(replace(model, manifest=with_form(model.manifest, score_form)), sessions)
            for model_id, model in installed.items()}


def with_form(manifest, score_form: str | None):
    """The manifest, read with ``score_form`` instead of the form it names (None: as it is)."""
    return manifest if score_form is None else replace(manifest, aedr_score_form=score_form)


_worker_models: dict[str, OnnxAutoencoder] = {}


def start_worker(home: Path, ids: list[str], provider: str, threads: int, score_form: str | None) -> None:
    _worker_models.update(autoencoders(home, ids, provider, threads, score_form))  # sessions made once per process


def score_photos(photos: list[Path], crops: int, kinds: tuple[bool, ...]) -> dict:
    """One share: the real samples of these photos (of these kinds: usual, soft), scored by every model."""
    samples = real_pool(REAL, replace(CalibrationPlan(), crops_per_image=crops), photos=photos, kinds=kinds)
    return {"photos": [p.name for p in photos], "ids": [s.id for s in samples],
            "histories": [s.history for s in samples], "conditions": [s.condition for s in samples],
            "scores": {m: score_samples(a, METHOD, samples).tolist() for m, a in _worker_models.items()},
            "providers": {m: [a.provider] for m, a in _worker_models.items()}}  # per model: each made its session


def stage_real(args, ids: list[str]) -> None:
    """One photo per share over the workers (a deadline loses only the photos in progress); past
    ``--deadline`` the photos done so far are kept (a subset of photos is a valid pool: each sample depends
    only on its photo and number)."""
    done = {photo_name(sid) for f in args.exclude for sid in json.loads(f.read_text())["ids"]}
    photos = [p for p in calibration_split(REAL)[:args.max_images] if p.name not in done]
    if args.soft_only:  # the soft samples of the photos the shipped pool holds
        shipped = {photo_name(sid) for sid in shipped_part(ids)["ids"]}
        photos = [p for p in photos if p.name in shipped]
    shares = [[photo] for photo in photos]
    started = time.perf_counter()
    parts = []
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers, start_worker, (args.home, ids, args.provider, 1 if args.workers > 1 else 0,
                                                         args.score_form)) as pool:
        results = pool.imap_unordered(partial(score_photos, crops=args.crops,
                                               kinds=(True,) if args.soft_only else (False,)), shares)
        try:
            while len(parts) < len(shares):
                left = args.deadline - (time.perf_counter() - started)
                parts.append(results.next(timeout=None if left == float("inf") else max(1.0, left)))
                print(f"  {sum(len(p['photos']) for p in parts)}/{len(photos)} photos, "
                      f"{time.perf_counter() - started:.0f} s", flush=True)
        except multiprocessing.TimeoutError:
            print(f"deadline: keeping the {len(parts)} of {len(shares)} shares done", flush=True)
            pool.terminate()
    result = merged(parts, photos, ids)
    (args.work / "real_scores.json").write_text(json.dumps(result | {"seconds": round(time.perf_counter() - started, 1)}))
    print(f"real pool: {len(result['ids'])} samples of {result['photos']} photos, {len(ids)} models, "
          f"{time.perf_counter() - started:.0f} s on {sorted(set().union(*result['providers'].values()))}", flush=True)


def photo_name(sample_id: str) -> str:
    return sample_id.split("/", 1)[1].split("#")[0]


def crop_number(sample_id: str) -> tuple[int, int]:
    """(0, k) for crop k, (1, k) for soft crop k (id ``#s<k>``): the usual crops of a photo come first."""
    number = sample_id.split("#")[1].split("@")[0]
    return (1, int(number[1:])) if number.startswith("s") else (0, int(number))


def shipped_part(ids: list[str]) -> dict:
    """The real side of the shipped calibrations as a part (as stage real writes one), to add samples to."""
    calibrations = {m: load_calibrations(ROOT / "model_zoo" / f"{m}.calibration.json")[METHOD.name] for m in ids}
    first = calibrations[ids[0]]
    assert all(list(c.real_ids) == list(first.real_ids) for c in calibrations.values()), "shipped pools differ"
    return {"ids": first.real_ids.tolist(), "conditions": first.real_conditions.tolist(),
            "scores": {m: c.real_scores.tolist() for m, c in calibrations.items()},
            "providers": {m: [] for m in ids}}  # each model's own record says what scored its shipped samples


def scored_with(calibration: Calibration) -> set[str]:
    """The providers a calibration's record says scored its real samples."""
    recorded = calibration.data.get("real", {}).get("scored_with", "").split(" ", 1)[-1]
    return {p.strip() for p in recorded.split(",") if p.strip()}


def merged(parts: list[dict], photos: list[Path], ids: list[str]) -> dict:
    """Parts' samples in the calibration split's order (photo, then crop number), whatever made them.
    A sample in two parts (a full real stage merged with the shipped pool, say) would count twice: refused."""
    counts = Counter(sid for part in parts for sid in part["ids"])
    twice = [sid for sid, n in counts.items() if n > 1]
    if twice:
        raise SystemExit(f"{len(twice)} real samples are in more than one part (first: {twice[0]}); merge parts "
                         f"that hold different photos (stage real --exclude) or leave out --add-to-shipped.")
    order = {p.name: i for i, p in enumerate(photos)}
    rows = sorted((order[photo_name(sid)], crop_number(sid), n, j)
                  for n, part in enumerate(parts) for j, sid in enumerate(part["ids"]))
    pick = lambda key: [parts[n][key][j] for _, _, n, j in rows]
    histories = {"histories": pick("histories")} if all("histories" in part for part in parts) else {}
    return {"ids": pick("ids"), "conditions": pick("conditions"), **histories,
            "scores": {m: [parts[n]["scores"][m][j] for _, _, n, j in rows] for m in ids},
            "providers": {m: sorted({p for part in parts for p in part["providers"].get(m, [])}) for m in ids},
            "photos": len({photo_name(sid) for part in parts for sid in part["ids"]})}


def stage_own(args, ids: list[str]) -> None:
    plan = CalibrationPlan()
    for model_id, autoencoder in autoencoders(args.home, ids, args.provider, 0, args.score_form).items():
        started = time.perf_counter()
        own = own_pool(autoencoder, REAL, plan, shifts_phase(METHOD, autoencoder))
        scores = score_samples(autoencoder, METHOD, own)
        with open(args.work / f"{model_id}.own.pkl", "wb") as f:
            pickle.dump({"samples": own, "scores": scores,
                         "downscaled_own": downscaled_own_ceiling(autoencoder, METHOD, own, plan)}, f)
        print(f"{model_id}: {len(own)} own outputs in {time.perf_counter() - started:.0f} s", flush=True)


def stage_cross(args, ids: list[str], all_ids: list[str]) -> None:
    cross_samples = args.cross_samples
    for model_id, autoencoder in autoencoders(args.home, ids, args.provider, 0, args.score_form).items():
        cross = {}
        for other in all_ids:
            if other != model_id:
                with open(args.work / f"{other}.own.pkl", "rb") as f:
                    own = pickle.load(f)["samples"][:cross_samples]
                cross[other] = score_samples(autoencoder, METHOD, own).tolist()
        (args.work / f"{model_id}.cross.json").write_text(json.dumps(cross))
        print(f"{model_id}: cross scores of {len(cross)} models", flush=True)


@cache  # read each own stage's file once
def own_stage_of(work: Path, model_id: str) -> dict:
    with open(work / f"{model_id}.own.pkl", "rb") as f:
        return pickle.load(f)


@cache  # every written calibration asks for each other model's
def own_conditions_of(work: Path, model_id: str) -> np.ndarray:
    """The pixel conditions of a model's own outputs, in order: from this run's own stage, else its shipped file."""
    if (work / f"{model_id}.own.pkl").exists():
        return np.array([s.condition for s in own_stage_of(work, model_id)["samples"]])
    return load_calibrations(ROOT / "model_zoo" / f"{model_id}.calibration.json")[METHOD.name].own_conditions


def stage_write(args, ids: list[str]) -> None:
    parts = [json.loads(f.read_text()) for f in args.real or [args.work / "real_scores.json"]]
    if args.add_to_shipped:
        parts.append(shipped_part(ids))
    real = merged(parts, calibration_split(REAL), ids)
    stale = [m for m in ids
             if (args.work / f"{m}.own.pkl").exists() and "downscaled_own" not in own_stage_of(args.work, m)]
    if stale:  # checked before any file is written, so that no run leaves new and old calibrations mixed
        raise SystemExit(f"{', '.join(stale)}: the own stage in {args.work} predates the downscaled-output ceiling; "
                         f"run --stage own again for them")
    manifests = shipped_manifests()
    for model_id in ids:
        shipped = load_calibrations(ROOT / "model_zoo" / f"{model_id}.calibration.json")
        out = args.out / f"{model_id}.calibration.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        calibration: Calibration = shipped[METHOD.name]
        providers = set(real["providers"][model_id]) | (scored_with(calibration) if args.add_to_shipped else set())
        own_file, cross_file = args.work / f"{model_id}.own.pkl", args.work / f"{model_id}.cross.json"
        if own_file.exists():
            own = own_stage_of(args.work, model_id)
            calibration.own_scores = np.asarray(own["scores"], dtype=np.float64)
            calibration.own_conditions = np.array([s.condition for s in own["samples"]])
            calibration.data["own_fine_detail"] = own_fine_detail(own["samples"])
            calibration.data["downscaled_own"] = own["downscaled_own"]
        if cross_file.exists():
            calibration.cross = {m: np.asarray(v) for m, v in json.loads(cross_file.read_text()).items()}
        calibration.cross_conditions = {other: own_conditions_of(args.work, other)[:len(scores)]
                                        for other, scores in calibration.cross.items()}
        cross_samples = max((len(v) for v in calibration.cross.values()), default=CalibrationPlan().cross_samples)
        plan = replace(CalibrationPlan(), cross_samples=cross_samples)
        # the method as it scored now: a calibration keeps what it was made with, or it is not found stale
        calibration.method_version = METHOD.version
        calibration.parameters = parameters_for(METHOD, with_form(manifests[model_id], args.score_form))
        calibration.real_scores = np.asarray(real["scores"][model_id], dtype=np.float64)
        calibration.real_conditions = np.array(real["conditions"])
        calibration.real_ids = np.array(real["ids"])
        calibration.data["real"] = real_pool_record(REAL, real["ids"]) | {
            "scored_with": f"onnxruntime {', '.join(sorted(providers))}"}
        calibration.data["plan"] = plan_record(plan)
        calibration.data["cross"] = (f"first {cross_samples} own outputs of each other zoo autoencoder, scored by "
                                     f"this model")
        save_calibrations(out, [calibration, *(c for m, c in shipped.items() if m != METHOD.name)])
        print(f"written {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--models", default="", help="comma-separated ids (default: every zoo autoencoder)")
    parser.add_argument("--stage", choices=("real", "own", "cross", "write"), required=True)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for the real stage")
    parser.add_argument("--provider", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--max-images", type=int, help="the first N calibration photos only (a trial run)")
    parser.add_argument("--exclude", type=Path, nargs="*", default=[],
                        help="real stage: leave out the photos of these real_scores.json files (done elsewhere)")
    parser.add_argument("--real", type=Path, nargs="*",
                        help="write stage: real_scores.json files to merge (default: W/real_scores.json)")
    parser.add_argument("--soft-only", action="store_true",
                        help="real stage: only the soft samples (blurred) of the photos the shipped pool holds")
    parser.add_argument("--add-to-shipped", action="store_true",
                        help="write stage: merge the --real parts with the real side of the shipped calibrations")
    parser.add_argument("--crops", type=int, default=CalibrationPlan().crops_per_image,
                        help="real stage: crops per photo (fewer: a subset of the same samples, paired by id)")
    parser.add_argument("--cross-samples", type=int, default=CalibrationPlan().cross_samples,
                        help="cross stage: how many of each other model's own outputs this model scores")
    parser.add_argument("--deadline", type=float, default=float("inf"),
                        help="seconds after which the real stage keeps only the photos done")
    parser.add_argument("--score-form", choices=sorted(SCORE_FORMS),
                        help="score with this AEDR form instead of each manifest's (to measure another form)")
    parser.add_argument("--out", type=Path, default=ROOT / "model_zoo", help="write stage: where the files go")
    args = parser.parse_args()
    all_ids = calibrated_autoencoders()
    ids = [i for i in args.models.split(",") if i] or all_ids
    args.work.mkdir(parents=True, exist_ok=True)
    if args.stage == "real":
        stage_real(args, ids)
    elif args.stage == "own":
        stage_own(args, ids)
    elif args.stage == "cross":
        stage_cross(args, ids, all_ids)
    else:
        stage_write(args, ids)


if __name__ == "__main__":
    main()
