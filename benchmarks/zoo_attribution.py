"""The whole zoo as the user meets it, measured on images that never touched calibration.

    python benchmarks/zoo_attribution.py --home H --cache C.pkl [--json OUT] [--score-only] [--per-model N]

Candidates: TAEF2 and the eight demonstration autoencoders (installed into H from the mirror when
missing, with their shipped calibrations). Images, all from the *test split* (never calibrated on,
never trained on): 256 px crops of imagenet1k's test third, Set14 and scikit-image's photos, three per
photo, each saved in one real-world form (PNG as published, JPEG q75 / q85 / q95, or JPEG q80 re-saved
as PNG), and a fourth crop blurred (Gaussian, sigma 1-3 px: a soft or out-of-focus photo) saved as
PNG; the same crops decoded by each zoo autoencoder (saved as PNG and as JPEG q90, and, for
fewer crops, cropped 3 pixels off the grid or resized 0.75x / 1.5x); Stable Diffusion 1/2 crops
(generators outside the zoo). Every image goes through the product's intake and Engine.

Scores are computed once per image and model (cached in --cache, so an interrupted run resumes; a cached
reading made with other method parameters, such as another score form, is scored again), then
decided for several candidate sets: all nine; each autoencoder held out in turn (its outputs are then
an unknown generator's: the wrong-generator rate for generators outside the installed set); TAEF2 alone.
"""

from __future__ import annotations

import argparse
import io
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (SHARED, calibrated_autoencoders, crops, generated_images, held_out_photos,  # noqa: E402
                    print_table, write_json, zoo_with)
from calibration_outputs import POOLED, named_alone, outside_rates, own_rates, without_generator  # noqa: E402

from forensics_app.core.calibrate import (blurred, jpeg_roundtrip, parameters_for, resized, test_split,  # noqa: E402
                                          to_uint8)
from forensics_app.core.calibration import HELD_OUT_RATES_FILE  # noqa: E402
from forensics_app.core.evidence import evidence_from_bytes  # noqa: E402
from forensics_app.core.family import MIN_TAIL_SAMPLES  # noqa: E402
from forensics_app.core.findings import ATTRIBUTED, INCONCLUSIVE, NOT_ATTRIBUTED  # noqa: E402
from forensics_app.core.jobs import NEVER_CANCELLED  # noqa: E402
from forensics_app.core.methods.base import MethodResult  # noqa: E402
from forensics_app.core.pipeline import AnalysisSettings, Engine, Scored  # noqa: E402
from forensics_app.core.zoo.autoencoder import OnnxAutoencoder  # noqa: E402
from forensics_app.core.zoo.manifest import shipped_manifests  # noqa: E402

SIDE = 256
REAL_FORMS = ("PNG", "JPEG q75", "JPEG q85", "JPEG q95", "JPEG q80 as PNG")


def encoded(rgb8: np.ndarray, form: str) -> bytes:
    buffer = io.BytesIO()
    if form.startswith("JPEG") and not form.endswith("as PNG"):
        Image.fromarray(rgb8).save(buffer, "JPEG", quality=int(form.split("q")[1]))
    else:
        pixels = jpeg_roundtrip(rgb8, int(form.split("q")[1].split()[0])) if form.endswith("as PNG") else rgb8
        Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def test_photos() -> list[tuple[str, np.ndarray]]:
    """imagenet1k's test split, then the other benchmarks' held-out photos (Set14, scikit-image's)."""
    paths = test_split(SHARED / "images" / "real" / "imagenet1k")
    return [(p.name, np.asarray(Image.open(p).convert("RGB"))) for p in paths] + held_out_photos()


def image_set(zoo, ids: list[str], per_model: int, travelled: int, seed: int) -> list[dict]:
    """(source, form, maker, bytes) for every test image, deterministic for the seed."""
    rng = np.random.default_rng(seed)
    real = crops(test_photos(), SIDE, 2, rng)
    items = [{"source": "real photos", "form": str(rng.choice(REAL_FORMS)), "maker": None, "pixels": c} for c in real]
    for model_id in ids:
        autoencoder = OnnxAutoencoder(zoo.installed(model_id))
        chosen = [real[i] for i in rng.choice(len(real), size=per_model, replace=False)]
        for k, c in enumerate(chosen):
            out = to_uint8(autoencoder.reconstruct(c / 255.0))
            items += [{"source": model_id, "form": form, "maker": model_id, "pixels": out} for form in ("PNG", "JPEG q90")]
            if k < travelled:
                items += [{"source": model_id, "form": "cropped 3 px", "maker": model_id, "pixels": out[3:, 3:]},
                          {"source": model_id, "form": "resized 0.75x", "maker": model_id, "pixels": resized(out, 0.75)},
                          {"source": model_id, "form": "resized 1.5x", "maker": model_id, "pixels": resized(out, 1.5)}]
    sd = crops(generated_images("sd1") + generated_images("sd2"), SIDE, 1, rng)
    items += [{"source": "SD1+SD2 (outside the zoo)", "form": "PNG", "maker": None, "pixels": c} for c in sd]
    # a third crop of every test photo, drawn last so the items above keep their cache keys
    third = np.random.default_rng([seed, 3])
    items += [{"source": "real photos", "form": str(third.choice(REAL_FORMS)), "maker": None, "pixels": c}
              for c in crops(test_photos(), SIDE, 1, third)]
    fourth = np.random.default_rng([seed, 4])  # soft photos, drawn last for the same reason
    items += [{"source": "real photos", "form": "blurred, PNG", "maker": None,
               "pixels": blurred(c, fourth.uniform(1, 3))} for c in crops(test_photos(), SIDE, 1, fourth)]
    for index, item in enumerate(items):
        item["index"] = index  # the key of its scores in the cache, also in subsets of the items
        pixels = item.pop("pixels")
        item["bytes"] = encoded(pixels, item["form"]) if item["form"].startswith(("PNG", "JPEG")) else encoded(pixels, "PNG")
    return items


def cached_result(r: dict, model_id: str) -> MethodResult:
    """A cached reading as the MethodResult it was made as (without maps: the verdicts need none)."""
    return MethodResult(r["method"], r["version"], model_id, r["score"], dict(r["components"]), {}, r["provider"],
                        r["parameters"], r["seconds"])


def score_all(engine: Engine, items: list[dict], cache: Path) -> dict:
    """Each image's readings, reusing a cached one only where it was made with the method's current
    version and this model's parameters (a model switched to another score form is scored again)."""
    scored = pickle.loads(cache.read_bytes()) if cache.exists() else {}
    method = engine.methods[0]
    current = {m.id: (method.version, parameters_for(method, m.installed.manifest)) for m in engine.models}
    fresh = lambda r, model_id: r is not None and (r["version"], r["parameters"]) == current[model_id]
    started, done = time.perf_counter(), 0
    for i, item in enumerate(items):
        cached = scored.get(i, {})
        if all(fresh(cached.get(m), m) for m in current):
            continue

        def stored(sha256, loaded, method, region, cached=cached):
            r = cached.get(loaded.id)
            return cached_result(r, loaded.id) if fresh(r, loaded.id) else None

        evidence = evidence_from_bytes(Path(f"{i}.img"), item["bytes"])
        results = engine.score(evidence, stored_result=stored).results
        scored[i] = {loaded.id: {"method": method.name, "version": r.method_version, "score": r.score,
                                 "components": r.components, "parameters": r.parameters, "provider": r.provider,
                                 "seconds": r.seconds} for loaded, method, r in results}
        done += 1
        if done % 20 == 0:
            cache.write_bytes(pickle.dumps(scored))
            rate = (time.perf_counter() - started) / done
            print(f"  scored {done} images ({rate:.1f} s per image; {len(items)} in all)", flush=True)
    cache.write_bytes(pickle.dumps(scored))
    return scored


def complete_grid_checks(engine: Engine, items: list[dict], scored: dict, cache: Path) -> None:
    """The grid check (AEDR.complete) of the models scored at their stored grid only, added to the cached
    readings that lack it: it is measured after the score, so older caches hold the scores without it."""
    method = engine.methods[0]
    todo = [(item, loaded) for loaded in engine.models if not loaded.installed.manifest.phase_search_patch
            for item in items if "grid_offset_ratio" not in scored[item["index"]][loaded.id]["components"]]
    started = time.perf_counter()
    for n, (item, loaded) in enumerate(todo, 1):
        i = item["index"]
        evidence = evidence_from_bytes(Path(f"{i}.img"), item["bytes"])
        region, _ = engine.candidate_region(loaded, evidence.height, evidence.width)
        cached = scored[i][loaded.id]
        result = cached_result(cached, loaded.id)
        method.complete(result, evidence.rgb01(region), loaded.autoencoder, NEVER_CANCELLED)
        cached["components"] = result.components
        if n % 50 == 0 or n == len(todo):
            cache.write_bytes(pickle.dumps(scored))
            print(f"  grid checks {n}/{len(todo)} ({(time.perf_counter() - started) / n:.1f} s each)", flush=True)


def verdicts(engine: Engine, items: list[dict], scored: dict, candidates: list[str],
             models: list | None = None) -> list:
    """The engine's verdicts from cached readings; ``models``: the loaded models to read calibrations from."""
    by_id = {m.id: m for m in models or engine.models}
    method = engine.methods[0]
    out = []
    for item in items:
        i = item["index"]
        evidence = evidence_from_bytes(Path(f"{i}.img"), item["bytes"])
        results = [(by_id[m], method, cached_result(r, m)) for m, r in scored[i].items() if m in candidates]
        out.append(engine.conclude(evidence, Scored(results, {}, {}, None), candidates).verdict)
    return out


def shares(group: list[tuple[dict, object]]) -> dict:
    n = len(group)
    right = sum(v.label == ATTRIBUTED and v.model == item["maker"] for item, v in group)
    wrong = sum(v.label == ATTRIBUTED and v.model != item["maker"] for item, v in group)
    return {"n": n, "right": right / n, "wrong": wrong / n,
            "not attributed": sum(v.label == NOT_ATTRIBUTED for _, v in group) / n,
            "inconclusive": sum(v.label == INCONCLUSIVE for _, v in group) / n,
            "wrongly named": sorted({v.model for item, v in group if v.label == ATTRIBUTED and v.model != item["maker"]})}


def table(title: str, rows: dict[str, dict]) -> None:
    print_table(title, ["images", "n", "right generator", "wrong generator", "not attributed", "inconclusive",
                        "wrongly named"],
                [[k, r["n"], r["right"], r["wrong"], r["not attributed"], r["inconclusive"], ", ".join(r["wrongly named"])]
                 for k, r in rows.items()])


def count(r: dict, key: str) -> str:
    return f"{round(r[key] * r['n'])} of {r['n']}"


def own_calibration_line(own: dict) -> str:
    """Own outputs of the calibration split, each left out of the calibrations, per saving: named rightly
    per generator, and wrongly in all."""
    parts = []
    for band in ("not JPEG'd", "JPEG q95-100", "JPEG q86-94", "JPEG q70-85"):
        rows = {model: r[band] for model, r in own.items() if band in r}
        if not rows:
            continue
        right = ", ".join(f"{model} {r.get('right', 0)} of {r['n']}" for model, r in rows.items())
        wrong = sum(r.get("wrong", 0) for r in rows.values())
        parts.append(f"{band}: {right}; named wrongly {wrong} of {sum(r['n'] for r in rows.values())}")
    return ("own outputs on many more images: each autoencoder's 300 calibration-split outputs (128-192 px crops), "
            "each left out of every calibration and decided among all installed generators from their scores "
            "(resampling traces not seen), attributed to their generator: " + "; ".join(parts))


def summary_lines(results: dict, k: int) -> list[str]:
    """The held-out rates in words, for the report's error-rate section."""
    nine, outside, alone = results["all nine"], results["held out in turn"], results["taef2 alone"]
    lines = [f"real photos (PNG, JPEG q75/q85/q95, JPEG q80 re-saved as PNG, blurred as out of focus) attributed "
             f"to any of the {k} installed generators: {count(nine['real photos, all forms'], 'wrong')}",
             f"outputs of an autoencoder outside the installed set (each of the {k} held out in turn, PNG and JPEG "
             f"q90) attributed to an installed one: {count(outside[POOLED], 'wrong')}",
             f"Stable Diffusion 1/2 outputs attributed: {count(nine['SD1+SD2 (outside the zoo)'], 'wrong')}"]
    calibration = results.get("held out in turn, calibration outputs")
    if calibration:
        pooled = calibration[POOLED]
        worst = max((m for m in calibration if m != POOLED), key=lambda m: calibration[m]["named"])
        lines.append(f"the same on many more outputs: each autoencoder's calibration-split outputs, decided from the "
                     f"other candidates' scores of them (resampling traces not seen): named as an installed one "
                     f"{pooled['named']} of {pooled['n']} ({pooled['named'] / pooled['n']:.1%}); most for {worst} "
                     f"({calibration[worst]['named']} of {calibration[worst]['n']}), whose outputs resemble several "
                     f"installed generators'")
    own_calibration = results.get("own, calibration outputs")
    if own_calibration:
        lines.append(own_calibration_line(own_calibration))
    for form in ("PNG", "JPEG q90", "cropped 3 px", "resized 0.75x", "resized 1.5x"):
        rows = {source: r for source, r in nine.items() if source.endswith(f", {form}") and "real" not in source}
        right = ", ".join(f"{source.split(',')[0]} {count(r, 'right')}" for source, r in sorted(rows.items()))
        wrong = sum(round(r["wrong"] * r["n"]) for r in rows.values())
        negative = sum(round(r["not attributed"] * r["n"]) for r in rows.values())
        lines.append(f"own outputs, {form}: attributed to their generator {right}; to a wrong one {wrong} and "
                     f"'not attributed' {negative} of {sum(r['n'] for r in rows.values())}")
    own = [r for source, r in nine.items() if not source.startswith(("real", "SD"))]
    undecided = sum(round(r["inconclusive"] * r["n"]) for r in own)
    lines.append(f"with all {k} installed, own outputs inconclusive: {undecided} of {sum(r['n'] for r in own)} (the "
                 f"rule abstains where a threshold would rest on fewer than {MIN_TAIL_SAMPLES} real samples, and names "
                 f"no generator where outputs of an installed look-alike reach the image's score, where no one of "
                 f"several consistent candidates wins its test against each other, where the other candidates score "
                 f"the image unlike the named one's outputs, or where the pixels show resampling traces or strong "
                 f"JPEG traces)")
    lines += [f"TAEF2 alone, {source}: attributed {count(r, 'right') if 'taef2' in source else count(r, 'wrong')}"
              for source, r in alone.items()]
    others = results.get("taef2 alone, other generators' calibration outputs")
    if others:
        lines.append(f"TAEF2 alone, the other {len(others) - 1} autoencoders' calibration-split outputs (128-192 px "
                     f"crops, 60% JPEG'd): attributed to TAEF2 {others[POOLED]['named']} of {others[POOLED]['n']} "
                     f"(each generator's outputs taken out of TAEF2's calibration; only the look-alike guard, "
                     f"from the others' outputs that TAEF2's calibration holds, can hold a name back)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True, help="scores per image and model (resumable)")
    parser.add_argument("--per-model", type=int, default=8, help="outputs per autoencoder (PNG and JPEG q90)")
    parser.add_argument("--travelled", type=int, default=3, help="of those, cropped / resized too")
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--score-only", action="store_true", help="fill the cache and stop")
    parser.add_argument("--json")
    parser.add_argument("--write-zoo-rates", action="store_true",
                        help=f"record the summary in model_zoo/{HELD_OUT_RATES_FILE} (cited by every report)")
    args = parser.parse_args()

    started = time.perf_counter()
    ids = calibrated_autoencoders()
    zoo = zoo_with(args.home, ids)
    engine = Engine(zoo, AnalysisSettings(models=tuple(ids), alpha=args.alpha))
    items = image_set(zoo, ids, args.per_model, args.travelled, args.seed)
    print(f"{len(items)} test images", flush=True)
    scored = score_all(engine, items, args.cache)
    complete_grid_checks(engine, items, scored, args.cache)
    if args.score_only:
        return
    results = {}

    all_nine = list(zip(items, verdicts(engine, items, scored, ids)))
    rows = {}
    for item, v in all_nine:
        key = item["source"] if item["source"].startswith("SD") else f"{item['source']}, {item['form']}"
        rows.setdefault(key, []).append((item, v))
    real = [(i, v) for i, v in all_nine if i["source"] == "real photos"]
    rows = {"real photos, all forms": real, **rows}
    results["all nine"] = {k: shares(g) for k, g in rows.items()}
    table(f"All {len(ids)} zoo autoencoders as candidates (alpha {args.alpha}, {SIDE} px test-split crops)",
          results["all nine"])

    outside = {}
    for held_out in ids:
        others = [m for m in ids if m != held_out]
        own = [i for i in items if i["maker"] == held_out and i["form"] in ("PNG", "JPEG q90")]
        unknown = without_generator(engine.models, held_out, engine.methods[0].name)  # no calibration knows it
        outside[held_out] = shares(list(zip(own, verdicts(engine, own, scored, others, unknown))))  # any is wrong
    total = sum(r["n"] for r in outside.values())
    outside[POOLED] = {"n": total, "right": 0.0,
                                       "wrong": sum(r["wrong"] * r["n"] for r in outside.values()) / total,
                                       "not attributed": sum(r["not attributed"] * r["n"] for r in outside.values()) / total,
                                       "inconclusive": sum(r["inconclusive"] * r["n"] for r in outside.values()) / total,
                                       "wrongly named": sorted({m for r in outside.values() for m in r["wrongly named"]})}
    results["held out in turn"] = outside
    table("Each autoencoder held out in turn: its outputs (PNG, JPEG q90) against the other eight", outside)
    # the same question on many more outputs: each generator's calibration outputs, from their cross scores
    results["held out in turn, calibration outputs"] = outside_rates(engine, ids, args.alpha)
    results["own, calibration outputs"] = own_rates(engine, ids, args.alpha)
    results["taef2 alone, other generators' calibration outputs"] = named_alone(engine, "taef2", args.alpha)

    alone_items = [i for i in items if i["maker"] in (None, "taef2") and (i["maker"] or i["source"] == "real photos")]
    alone = list(zip(alone_items, verdicts(engine, alone_items, scored, ["taef2"])))
    alone_rows = {}
    for item, v in alone:
        alone_rows.setdefault(f"{item['source']}, {item['form']}" if item["maker"] else "real photos", []).append((item, v))
    results["taef2 alone"] = {k: shares(g) for k, g in alone_rows.items()}
    table("TAEF2 alone", results["taef2 alone"])

    seconds = time.perf_counter() - started
    print(f"\nbenchmark ran {seconds:.0f} s")
    if args.write_zoo_rates:
        summary = {"measured_on": "256 px crops of the test split (imagenet1k's test third, Set14, scikit-image), "
                                  "none of them used for calibration or training",
                   "benchmark": "benchmarks/zoo_attribution.py", "date": time.strftime("%Y-%m-%d"),
                   "alpha": args.alpha, "lines": summary_lines(results, len(ids)), "results": results}
        out = Path(shipped_manifests()[ids[0]].source).parent / HELD_OUT_RATES_FILE
        out.write_text(json.dumps(summary, indent=1), encoding="utf-8")
        print(f"written {out}")
    write_json(args.json, {"candidates": ids, "alpha": args.alpha, "side": SIDE, "results": results,
                           "benchmark_seconds": seconds})


if __name__ == "__main__":
    main()
