"""forensics-app: which AI image generator, if any, made an image. Without a command the desktop window
opens; the commands below do the same work from a terminal."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from forensics_app import __version__
from forensics_app.core.errors import ForensicsError

EXIT_OK, EXIT_BUG, EXIT_USAGE, EXIT_SOME_FAILED = 0, 1, 2, 3
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a command ended by SIGPIPE
# Crops per photo when a model is calibrated on a CPU: about 1,700 samples, a subset of the shipped
# calibrations' (the family-wise rule pairs them by id); a TAEF2-sized model takes about 10 minutes.
CPU_CALIBRATION_CROPS = 4
TORCH_ONLY = ("torch", "diffusers")  # export, training and the deep check; the desktop bundle has neither


def _zoo(args):
    from forensics_app.core.zoo.store import Zoo

    return Zoo(Path(args.home) if getattr(args, "home", None) else None)


def _print(line: str = "") -> None:
    print(line, flush=True)


def false_attribution_rate(text: str) -> float:
    """--alpha: a probability in (0, 0.5]: at 0 nothing could ever be attributed, and above one half most real
    photos would be."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (example: 0.01 = 1 real photo in 100)") from None
    if not 0 < value <= 0.5:
        raise argparse.ArgumentTypeError(f"{text} is outside 0 < alpha <= 0.5 (a false-attribution rate, "
                                         "example: 0.01 = 1 real photo in 100)")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds (0 or more)")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


# -- zoo ---------------------------------------------------------------------------------------
def cmd_zoo_list(args) -> int:
    from forensics_app.core.zoo.catalogue import catalogue, status_text

    zoo = _zoo(args)
    entries = catalogue(zoo)
    if args.json:
        print(json.dumps(entries, indent=2))
        return EXIT_OK
    _print(f"{'id':<22} {'status':<27} {'kind':<12} name")
    for e in entries:
        demo = " [demonstration]" if e["demonstration"] else ""
        gated = " [gated]" if e["source"]["gated"] else ""
        _print(f"{e['id']:<22} {status_text(e):<27} {e['kind']:<12} {e['display_name']}{demo}{gated}")
    uncalibrated = [e["id"] for e in entries if e["installed"] and not e["calibrated"]]
    if uncalibrated:
        _print(f"\nNot calibrated (their readings cannot decide anything): {', '.join(uncalibrated)}. "
               f"Run: forensics-app zoo calibrate ID --real DIR")
    _print(f"\nzoo folder: {zoo.root}   (details, sources and hashes: forensics-app zoo list --json)")
    return EXIT_OK


def cmd_zoo_install(args) -> int:
    from forensics_app.core.zoo.pack import install_pack, is_pack_argument

    zoo = _zoo(args)
    if is_pack_argument(args.id):
        if args.mirror or args.offline:
            raise ForensicsError("--mirror and --offline are for installing from a model's source; a pack file "
                                 "holds everything it installs.")
        install_pack(zoo, Path(args.id), expected_sha256=args.sha256, log=_print)
        return EXIT_OK
    if args.sha256:
        raise ForensicsError("--sha256 checks a model pack file; give the pack's file name.")
    if args.id != "all":
        zoo.install(args.id, mirrors=[Path(m) for m in args.mirror], allow_download=not args.offline, log=_print)
        _calibrate_after_install(zoo, args.id, args)
        return EXIT_OK
    # "all" goes on past an entry it cannot install (gated, not in the mirror, offline) and lists them
    failed = []
    for model_id, manifest in sorted(zoo.manifests().items()):
        if manifest.kind != "autoencoder":
            continue
        try:
            zoo.install(model_id, mirrors=[Path(m) for m in args.mirror], allow_download=not args.offline,
                        log=_print)
            _calibrate_after_install(zoo, model_id, args)
        except ForensicsError as exc:
            failed.append(model_id)
            _print(f"{model_id}: not installed: {exc}")
    if failed:
        _print(f"\nnot installed: {', '.join(failed)}")
    return EXIT_SOME_FAILED if failed else EXIT_OK


def cmd_zoo_pack(args) -> int:
    from forensics_app.core.zoo.pack import make_pack

    make_pack(_zoo(args), args.id, Path(args.out), log=_print)
    return EXIT_OK


def cmd_zoo_verify(args) -> int:
    zoo = _zoo(args)
    ids = [args.id] if args.id else zoo.installed_ids()
    bad = 0
    for model_id in ids:
        problems = zoo.verify(model_id)
        bad += bool(problems)
        model = zoo.installed(model_id)
        checked = ("ONNX files match their SHA-256; weights not installed (model pack)" if model.lacks_weights
                   else "weights and ONNX files match their SHA-256")
        _print(f"{model_id}: " + (f"OK ({checked})" if not problems else "FAILED: " + "; ".join(problems)))
    return EXIT_SOME_FAILED if bad else EXIT_OK


def cmd_zoo_remove(args) -> int:
    _zoo(args).remove(args.id)
    _print(f"{args.id} removed")
    return EXIT_OK


def cmd_zoo_import(args) -> int:
    zoo = _zoo(args)
    model = zoo.import_diffusers(Path(args.folder), args.id, log=_print)
    _print(f"imported {model.id}")
    _calibrate_after_install(zoo, model.id, args)
    return EXIT_OK


REAL_PHOTOS_ENV = "FORENSICS_APP_REAL_PHOTOS"


def _calibrate_after_install(zoo, model_id: str, args) -> None:
    """Installed means calibrated: with a real-photo folder (--real or $FORENSICS_APP_REAL_PHOTOS) a model
    without a calibration is calibrated now; without one it says plainly that it cannot decide yet."""
    from forensics_app.core.zoo.catalogue import calibration_state

    if calibration_state(zoo.installed(model_id))[0]:
        return
    real = args.real or os.environ.get(REAL_PHOTOS_ENV)
    if not real:
        _print(f"{model_id} is installed but NOT CALIBRATED: its readings cannot decide anything. Calibrate it with "
               f"real photos you may use: forensics-app zoo calibrate {model_id} --real DIR (or give --real, or set "
               f"${REAL_PHOTOS_ENV}, when installing)")
        return
    from forensics_app.core.calibrate import CalibrationPlan
    from forensics_app.core.methods import all_methods

    # the deep check (torch, ~16x slower) is calibrated on request only: zoo calibrate --method inversion
    methods = [m for m in all_methods().values() if m.decisive and not m.runs_in_torch]
    calibrate_model(zoo, model_id, Path(real), methods, args.crops, own=CalibrationPlan().own_samples, seed=0)


def calibrate_model(zoo, model_id: str, real_dir: Path, methods, crops: int | None, own: int, seed: int,
                    generated: Path | None = None, max_images: int | None = None, out: Path | None = None) -> None:
    from dataclasses import replace

    from forensics_app.core.calibrate import CalibrationPlan, Sample, build_calibration, real_pool
    from forensics_app.core.calibration import load_calibrations, save_calibrations
    from forensics_app.core.evidence import iter_image_files, load_evidence
    from forensics_app.core.runtime import cuda_usable
    from forensics_app.core.traces import pixel_traces
    from forensics_app.core.zoo.autoencoder import OnnxAutoencoder

    model = zoo.installed(model_id)
    if crops is None:  # the shipped plan's 24 crops per photo on a GPU; on a CPU a subset of the same samples
        crops = CalibrationPlan().crops_per_image if cuda_usable() else CPU_CALIBRATION_CROPS
    plan = replace(CalibrationPlan(seed=seed), own_samples=own, crops_per_image=crops)
    started = time.monotonic()
    # each step (real photos, own outputs, own outputs downscaled) runs 0 -> 1
    step = {"started": started, "fraction": 0.0, "printed": -1}

    def progress(p):
        now = time.monotonic()
        if p.fraction < step["fraction"]:  # the next step began: its time left is estimated from its own pace
            step.update(started=now, printed=-1)
        step["fraction"] = p.fraction
        pct = int(p.fraction * 100)
        if pct // 5 != step["printed"] // 5 and p.fraction > 0:
            step["printed"] = pct
            left = (now - step["started"]) / p.fraction * (1 - p.fraction)
            _print(f"  {pct:3d}%  {p.message}  ({(now - started) / 60:.0f} min so far, about {left / 60:.0f} min "
                   f"left in this step)")

    _print(f"calibrating {model_id}: {crops} crops of each photo in the calibration split of {real_dir} "
           f"({'GPU' if cuda_usable() else 'CPU'}); the time left is estimated from the samples done so far")
    pool = real_pool(real_dir, plan, max_images)
    samples = None
    if generated:
        rgbs = [(p.name, load_evidence(p).rgb) for p in iter_image_files([generated])[0][:max_images]]
        samples = [Sample(f"generated/{name}", rgb, "given", pixel_traces(rgb).condition) for name, rgb in rgbs]
    autoencoder = OnnxAutoencoder(model)
    calibrations = []
    for method in methods:
        calibration, _ = build_calibration(autoencoder, method, pool, real_dir, plan, samples,
                                           progress=progress, max_images=max_images)
        calibration.data["model_hash"] = model.model_hash
        calibrations.append(calibration)
    out = out or model.calibration_folder() / "calibration.json"
    kept = load_calibrations(out) if out.exists() else {}  # methods not re-calibrated now stay as they were
    save_calibrations(out, list((kept | {c.method: c for c in calibrations}).values()))
    for c in calibrations:
        _print(f"{c.method}: {len(c.own_scores)} own / {len(c.real_scores)} real samples "
               f"({len(set(c.real_conditions))} pixel conditions)")
    _print(f"calibration written to {out} ({(time.monotonic() - started) / 60:.0f} min)")


def cmd_zoo_calibrate(args) -> int:
    from forensics_app.core.methods import all_methods, get_method

    names = _methods(args)
    methods = [get_method(n) for n in names] if names else [m for m in all_methods().values() if m.decisive]
    calibrate_model(_zoo(args), args.id, Path(args.real), methods, args.crops, args.own, args.seed,
                    Path(args.generated) if args.generated else None, args.max_images,
                    Path(args.out) if args.out else None)
    return EXIT_OK


def _methods(args) -> tuple[str, ...]:
    """The method names given with --method (repeatable, comma-separated)."""
    return tuple(m for part in args.method for m in part.split(",") if m)


def _require_models(engine) -> None:
    if not engine.models:
        raise ForensicsError("No model is installed. Install a model pack: forensics-app zoo install FILE.fapack "
                             "(or, with torch, from the model's source: forensics-app zoo install taef2 --mirror DIR)")


def _walk_inputs(paths):
    """The image files under the given paths, the entries refused as images and the ones left out; an error
    when there is nothing to analyse."""
    from forensics_app.core.evidence import iter_image_files
    from forensics_app.core.files import printable
    from forensics_app.core.findings import FailedImage

    walk = iter_image_files(paths)
    refused = [FailedImage(s.path, f"{printable(s.path.name)} {s.reason}.") for s in walk.skipped if s.refused]
    left_out = [(s.path, s.reason) for s in walk.skipped if not s.refused]
    if not walk.files and not refused:
        raise ForensicsError("No image files found in the given paths" + "".join(
            f"; {printable(str(path))} {reason}" for path, reason in left_out) + ".")
    return walk, refused, left_out


# -- analyze -----------------------------------------------------------------------------------
def _check_outputs(args, protected) -> None:
    """--json and --pdf: refused before any work when their folder is missing or they are an input."""
    from forensics_app.core.report.export import check_report_outputs

    check_report_outputs(_path_or_none(args.pdf), _path_or_none(args.json), list(protected),
                         ("--pdf output", "--json output"))


def _path_or_none(text: str | None) -> Path | None:
    return Path(text) if text else None


def cmd_analyze(args) -> int:
    from forensics_app.core.files import printable
    from forensics_app.core.findings import FailedImage
    from forensics_app.core.imageprep import TilingSettings
    from forensics_app.core.pipeline import AnalysisSettings, Engine, analyse_paths
    from forensics_app.core.runtime import RuntimeSettings

    from forensics_app.core.methods import DEFAULT_METHODS

    methods = _methods(args) or DEFAULT_METHODS
    settings = AnalysisSettings(methods=methods, models=tuple(args.model), alpha=args.alpha,
                                tiling=TilingSettings(max_pixels=args.max_pixels,
                                                      cpu_seconds_per_candidate=args.cpu_seconds or None),
                                runtime=RuntimeSettings(provider=args.provider), extractors=tuple(args.fingerprint))
    walk, refused, left_out = _walk_inputs(args.paths)
    _check_outputs(args, [*walk.files, *(r.path for r in refused), *([args.case] if args.case else [])])
    zoo = _zoo(args)
    engine = Engine(zoo, settings)
    _require_models(engine)
    for loaded in engine.models:
        side = max(settings.intake.min_side, loaded.installed.manifest.spatial_factor)
        if args.max_pixels < side * side:
            raise ForensicsError(f"--max-pixels {args.max_pixels} is below the smallest region {loaded.id} can "
                                 f"analyse ({side} x {side} = {side * side} pixels).")
    _print(f"{'file':<36} {'verdict':<15} {'closest model':<14} {'method':<15} {'score':>9} {'p_own':>10} "
           f"{'p_real':>10}")

    for path, reason in left_out:
        _print(f"{printable(path.name)[:35]:<36} SKIPPED: {printable(str(path))} {reason}")

    def show(result) -> None:
        name = printable(result.path.name)[:35]
        if isinstance(result, FailedImage):
            _print(f"{name:<36} ERROR: {result.error}")
            return
        top = result.candidates[0] if result.candidates else None
        if top is None:
            _print(f"{name:<36} {_verdict_word(result.verdict):<15}")
        else:
            _print(f"{name:<36} {_verdict_word(result.verdict):<15} {top.model:<14} {top.method:<15} "
                   f"{top.score:9.4g} {_p_columns(top)}")
        for c in (c for c in result.candidates if c.extractor):  # --fingerprint readings
            _print(f"{'':<36} {'(fingerprint)':<15} {c.model:<14} {c.method:<15} {c.score:9.4g} {_p_columns(c)}")
        # the sentence, so that the closest model of a negative never reads as the generator that made it
        _print(f"{'':<4}{result.verdict.text}")
        if args.maps:
            _save_maps(result, Path(args.maps))

    if args.case:
        from forensics_app.core.case import Case, analyse_into_case

        with Case.open(Path(args.case)) as case:
            _warn_integrity(case)
            if left_out:
                case.add_skipped(left_out)
            batch = analyse_into_case(engine, case, [*refused, *walk.files], on_result=show)
        analysed = len(batch.results) - len(batch.failures)
        _print(f"\ncase {args.case}: {analysed - len(batch.reused)} analysed now (the models ran), "
               f"{len(batch.reused)} reused from earlier analyses in the case (the models did not run again)")
    else:
        batch = analyse_paths(engine, [*refused, *walk.files], on_result=show)
    info = engine.run_info()
    _print(f"\n{len(batch.results) - len(batch.failures)} analysed, {len(batch.failures)} failed, "
           f"{len(left_out)} skipped; "
           f"provider {', '.join(info['providers'])}; false-attribution rate {args.alpha:g}")
    if args.json or args.pdf:
        from forensics_app.core.report import ReportInput

        findings = [r for r in batch.results if not isinstance(r, FailedImage)]
        case_meta = {k: v for k, v in (("case_name", args.case_name), ("examiner", args.examiner)) if v}
        report = ReportInput(case_meta, findings, batch.failures, info, engine.calibrations_in_use(),
                             cancelled=batch.cancelled, skipped=left_out)
        _write_report(report, args, [Path(args.case)] if args.case else [])
    return EXIT_SOME_FAILED if batch.failures else EXIT_OK


def _verdict_word(verdict) -> str:
    """The verdict column: words, not the JSON label (the sentence under the row says what it means)."""
    from forensics_app.core.findings import NOT_ATTRIBUTED

    return "NOT attributed" if verdict.label == NOT_ATTRIBUTED else verdict.label


def _p_columns(candidate) -> str:
    """p_own and p_real as the table prints them (a p-value at its calibration's floor as a bound)."""
    if candidate is None:
        return f"{'-':>10} {'-':>10}"
    return f"{candidate.p_own_text(ascii_only=True):>10} {candidate.p_real_text(ascii_only=True):>10}"


def _save_maps(result, folder: Path) -> None:
    import numpy as np
    from PIL import Image

    from forensics_app.core.colormaps import colourise

    folder.mkdir(parents=True, exist_ok=True)
    for (model, method, name), array in result.maps.items():
        stem = f"{result.path.stem}.{result.sha256[:8]}.{model}.{method}.{name}"
        np.save(folder / f"{stem}.npy", array)
        Image.fromarray(colourise(array)).save(folder / f"{stem}.png")


# -- batch -------------------------------------------------------------------------------------
def cmd_batch(args) -> int:
    """`analyze` for archives, on Ray Data (forensics_app/batch/): resumable, one JSON line per image."""
    import dataclasses

    from forensics_app.batch.folder import BATCH_SCHEMA, BatchFolder, analysis_identity, failure_line
    from forensics_app.core.files import printable
    from forensics_app.core.pipeline import AnalysisSettings, Engine
    from forensics_app.core.runtime import RuntimeSettings

    try:
        from forensics_app.batch import ray_pipeline
    except ImportError as exc:
        raise ForensicsError(f"The batch command needs Ray ({exc}). Install it with: pip install "
                             "'forensics-app[batch]' (scripts/setup.sh does).") from None
    from forensics_app.core.methods import DEFAULT_METHODS

    methods = _methods(args) or DEFAULT_METHODS
    settings = AnalysisSettings(methods=methods, models=tuple(args.model), alpha=args.alpha,
                                runtime=RuntimeSettings(provider=args.provider))
    walk, refused, left_out = _walk_inputs(args.paths)
    if args.case:
        from forensics_app.core.case import is_case_file

        if not is_case_file(Path(args.case)):  # refused now, not after hours of analysis
            raise ForensicsError(f"{printable(args.case)} is not a forensics-app case file. Create one with: "
                                 f"forensics-app case new {printable(args.case)} --name NAME --examiner NAME")
    zoo = _zoo(args)
    # the driver only describes the analysis (models, hashes, calibrations): its sessions never run, so CPU
    engine = Engine(zoo, dataclasses.replace(settings, runtime=RuntimeSettings(provider="cpu")))
    _require_models(engine)
    run_info = engine.run_info()
    run_info["settings"]["provider"] = args.provider
    del run_info["providers"]  # the actors' providers: each reading records its own, the summary lists them
    identity = analysis_identity(engine)
    del engine
    cluster = ray_pipeline.Cluster(address=args.address, actors=args.actors, files_per_block=args.files_per_block)
    with BatchFolder.open(Path(args.out), identity, run_info) as folder:
        if folder.cut_torn_lines:
            _print(f"{printable(args.out)}: cut off {folder.cut_torn_lines} torn line(s) left by an interrupted run "
                   "(those images are analysed again)")
        for path, reason in left_out:
            _print(f"SKIPPED: {printable(str(path))} {reason}")
        for failed in refused:
            _print(f"ERROR: {failed.error}")
        folder.append([], [(None, str(f.path), f.error, failure_line(f, None)) for f in refused])
        _print(f"batch: {len(walk.files)} files into {printable(args.out)} ({folder.findings_count} images already "
               f"there); {len(run_info['models'])} candidates, methods {', '.join(methods)}, "
               f"false-attribution rate {args.alpha:g}")
        started = ray_pipeline.connect(cluster)
        try:
            progress = ray_pipeline.run_batch(walk.files, folder, zoo.home, settings, identity, cluster,
                                              on_progress=_batch_progress_printer())
        finally:
            if started:
                ray_pipeline.ray.shutdown()
        summary = {"schema": f"{BATCH_SCHEMA}/summary",
                   "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "address": args.address or "local", "files": len(walk.files) + len(refused),
                   "analysed_now": progress.analysed, "already_in_folder": progress.known,
                   "same_bytes_again": progress.duplicates, "failed_now": progress.failed + len(refused),
                   "skipped": len(left_out), "seconds": round(progress.seconds, 3),
                   "images_per_second": round(progress.images_per_second, 4),
                   "providers": sorted(progress.providers),
                   "folder": {"images": folder.findings_count, "failures": folder.failures_count,
                              "verdicts": folder.verdict_totals()}}
        folder.write_summary(summary)
    totals = summary["folder"]["verdicts"]
    attributed = ", ".join(f"{model} {n}" for model, n in totals["attributed"].items()) or "none"
    _print(f"\n{progress.analysed} analysed now ({progress.images_per_second:.2f} images/s), {progress.known} "
           f"already in the folder, {progress.duplicates} with the same bytes as another file, "
           f"{summary['failed_now']} failed, {len(left_out)} skipped; providers {', '.join(summary['providers']) or '-'}")
    _print(f"folder {printable(args.out)}: {folder.findings_count} images (attributed: {attributed}; not attributed "
           f"{totals['not_attributed']}; inconclusive {totals['inconclusive']}), {folder.failures_count} failures"
           f"{' (each with its reason in failures.jsonl)' if folder.failures_count else ''}; summary.json written")
    if args.case:
        from forensics_app.batch.folder import merge_into_case
        from forensics_app.core.case import Case

        with Case.open(Path(args.case)) as case:
            _warn_integrity(case)
            if left_out:
                case.add_skipped(left_out)
            stored, current = merge_into_case(Path(args.out), case, run_info,
                                              [(f.path, f.error) for f in refused])
        _print(f"case {printable(args.case)}: {stored} analyses stored, {current} already in the case "
               "(scores and verdicts; batch keeps no per-pixel maps)")
    return EXIT_SOME_FAILED if summary["failed_now"] else EXIT_OK


def _batch_progress_printer():
    """Progress with throughput: one rewritten line on a terminal, a line every 10 s otherwise."""
    interactive = sys.stdout.isatty()
    last = [0.0]

    def show(p) -> None:
        if not interactive and p.done < p.total and p.seconds - last[0] < 10:
            return
        last[0] = p.seconds
        rate = p.images_per_second
        left = (p.total - p.done) / (p.done / p.seconds) if p.done and p.seconds else 0
        line = (f"{p.done}/{p.total} files ({p.done / p.total:.0%}): {p.analysed} analysed, {p.known} already "
                f"there, {p.failed} failed; {rate:.2f} images/s; about {left / 60:.0f} min left")
        if interactive:
            filled = round(20 * p.done / p.total)
            bar = "[" + "#" * filled + "." * (20 - filled) + "] "
            sys.stdout.write("\r" + (bar + line).ljust(120) + ("\n" if p.done == p.total else ""))
            sys.stdout.flush()
        else:
            _print("  " + line)

    return show


# -- gui ---------------------------------------------------------------------------------------
def cmd_gui(args) -> int:
    from forensics_app.gui.app import run

    return run([Path(p) for p in getattr(args, "paths", [])], Path(args.home) if args.home else None)


# -- case ------------------------------------------------------------------------------------
def _warn_integrity(case) -> bool:
    """Print every changed or missing evidence file; True when there was any."""
    from forensics_app.core.files import printable

    problems = [s for s in case.integrity if s.status != "ok"]
    for s in problems:
        print(f"WARNING: evidence {s.status.upper()}: {printable(str(s.path))} no longer has the analysed bytes "
              f"(SHA-256 {s.sha256})", file=sys.stderr, flush=True)
    return bool(problems)


def cmd_case_new(args) -> int:
    from forensics_app.core.case import Case

    with Case.create(Path(args.file), args.name, args.examiner) as case:
        _print(f"case {case.meta['name']!r} (examiner {case.meta['examiner']}) created in {args.file}")
    return EXIT_OK


def cmd_case_show(args) -> int:
    from forensics_app.core.case import Case
    from forensics_app.core.files import printable

    with Case.open(Path(args.file)) as case:
        problems = _warn_integrity(case)
        meta = case.meta
        _print(f"case {meta['name']!r}, examiner {meta['examiner']}, created {meta['created']} (schema {meta['schema']})")
        status = {(str(s.path), s.sha256): s.status for s in case.evidence_status()}
        _print(f"{'file':<32} {'sha256':<12} {'verdict':<15} {'closest model':<20} {'p_own':>10} {'p_real':>10} "
               f"{'evidence':<8} notes")
        for f in case.findings(with_maps=False):
            top = f.candidates[0] if f.candidates else None
            candidate = f"{top.model}/{top.method}" if top else "-"
            _print(f"{printable(f.path.name)[:31]:<32} {f.sha256[:12]:<12} {_verdict_word(f.verdict):<15} "
                   f"{candidate[:19]:<20} {_p_columns(top)} "
                   f"{status[(str(f.path), f.sha256)]:<8} {len(case.notes(f.sha256))}")
            _print(f"{'':<4}{f.verdict.text}")
        for failed in case.failures():
            _print(f"{printable(failed.path.name)[:31]:<32} ERROR: {failed.error}")
        for path, reason in case.skipped():
            _print(f"{printable(path.name)[:31]:<32} SKIPPED: {printable(str(path))} {reason}")
    return EXIT_SOME_FAILED if problems else EXIT_OK


def cmd_case_note(args) -> int:
    from forensics_app.core.case import Case

    with Case.open(Path(args.file)) as case:
        _warn_integrity(case)
        sha256 = case.resolve_sha256(args.sha256)
        case.add_note(sha256, args.text)
    _print(f"note added to {sha256[:12]}")
    return EXIT_OK


# -- report ----------------------------------------------------------------------------------
def _write_report(report, args, protected: list[Path]) -> None:
    from forensics_app.core.files import printable
    from forensics_app.core.report.export import export_report

    for line in export_report(report, protected, _path_or_none(args.pdf), _path_or_none(args.json)):
        _print(printable(line))


def cmd_report_make(args) -> int:
    from forensics_app.core.case import Case, is_case_file
    from forensics_app.core.report import ReportInput, report_input_from_case
    from forensics_app.core.report_json import read_findings_document

    source = Path(args.source)
    if not (args.pdf or args.json):
        raise ForensicsError("Say what to write: --pdf OUT.pdf and/or --json OUT.json.")
    _check_outputs(args, [source])
    overrides = {k: v for k, v in (("case_name", args.case_name), ("examiner", args.examiner)) if v}
    if is_case_file(source):
        with Case.open(source) as case:
            _warn_integrity(case)
            report = report_input_from_case(case, _zoo(args))
        report.case_meta.update(overrides)
    else:
        report = ReportInput.from_document(read_findings_document(source), overrides)
    _write_report(report, args, [source])
    return EXIT_OK


def cmd_report_verify(args) -> int:
    from forensics_app.core.report.verify import verify_document
    from forensics_app.core.report_json import read_findings_document

    doc = read_findings_document(Path(args.findings))
    _print(f"verifying report {doc.get('report_id', '(no id)')}: re-hashing evidence and models, re-running "
           f"{len(doc['images'])} analyses with the recorded settings ...")
    result = verify_document(doc, _zoo(args), rel_tol=args.tolerance)
    for note in result.notes:
        _print(f"note: {note}")
    for difference in result.differences:
        _print(f"DIFFERS: {difference.line()}")
    checked = ", ".join(f"{n} {what}" for what, n in result.checked.items())
    if result.identical:
        tolerance = "exactly" if args.tolerance == 0 else f"within relative tolerance {args.tolerance:g}"
        _print(f"IDENTICAL: checked {checked}; every hash and number matches {tolerance}.")
        return EXIT_OK
    _print(f"{len(result.differences)} difference(s) found (checked {checked}).")
    return EXIT_SOME_FAILED


# -- fingerprint -------------------------------------------------------------------------------
def _extractor_folder(args) -> Path:
    return Path(args.into) if getattr(args, "into", None) else _zoo(args).home / "extractors"


def cmd_fingerprint_train(args) -> int:
    from forensics_app.train.fingerprints import TrainSettings, train_extractor

    if not Path(args.data).is_dir():
        raise ForensicsError(f"{args.data} is not a folder (expected one sub-folder of images per class).")
    manifest = train_extractor(Path(args.data), _extractor_folder(args), args.out,
                               TrainSettings(kind=args.kind, **({"steps": args.steps} if args.steps else {})),
                               Path(args.unknown) if args.unknown else None, log=_print)
    _print(f"wrote {manifest.source}")
    return EXIT_OK


def cmd_fingerprint_eval(args) -> int:
    from forensics_app.core.fingerprint import find_extractor
    from forensics_app.train.fingerprints import evaluate

    extractor = find_extractor(args.name, [_extractor_folder(args)])
    result = evaluate(extractor, Path(args.data))
    _print(f"{extractor.id}: {result['images']} images, classes {', '.join(result['classes'])}")
    for condition, accuracy in result["accuracy"].items():
        _print(f"  {condition:<11} accuracy {accuracy:.3f}")
    return EXIT_OK


# -- parser ------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from forensics_app.core.imageprep import TilingSettings

    parser = argparse.ArgumentParser(prog="forensics-app", description=__doc__)
    parser.add_argument("--version", action="version", version=f"forensics-app {__version__}")
    parser.add_argument("--home", help="application data folder (default: $FORENSICS_APP_HOME or the user data folder)")
    sub = parser.add_subparsers(dest="command")  # no command: the desktop window
    parser.set_defaults(func=cmd_gui)

    g = sub.add_parser("gui", help="open the desktop window (the default)")
    g.add_argument("paths", nargs="*", help="image files or folders to queue")
    g.set_defaults(func=cmd_gui)

    a = sub.add_parser("analyze", help="analyse images against the installed generators")
    a.add_argument("paths", nargs="+", help="image files or folders (walked recursively)")
    a.add_argument("--model", action="append", default=[], help="only this model id (repeatable)")
    a.add_argument("--method", action="append", default=[], help="methods, comma-separated (default: aedr)")
    a.add_argument("--json", help="write the findings as JSON to this file")
    a.add_argument("--pdf", help="write the findings report (PDF) to this file")
    a.add_argument("--case-name", help="case name printed on the report")
    a.add_argument("--examiner", help="examiner printed on the report")
    a.add_argument("--maps", help="write the per-pixel maps (.npy and colourised .png) to this folder")
    a.add_argument("--alpha", type=false_attribution_rate, default=0.01,
                   help="false-attribution rate, 0 < alpha <= 0.5 (default 0.01)")
    a.add_argument("--provider", choices=("auto", "cpu", "cuda"), default="auto")
    a.add_argument("--max-pixels", type=positive_int, default=TilingSettings().max_pixels,
                   help="analyse at most this many pixels (centred); at least the models' smallest region")
    a.add_argument("--cpu-seconds", type=non_negative_float, default=TilingSettings().cpu_seconds_per_candidate,
                   help="on a CPU, a candidate whose check of a large image would take longer (estimated) analyses "
                        "a centred part of it; 0 = no limit (default %(default)g)")
    a.add_argument("--case", help="add the evidence and findings to this case file (reuses its cached results)")
    a.add_argument("--fingerprint", action="append", default=[],
                   help="also read this learned-fingerprint extractor (shown, never votes; repeatable)")
    a.set_defaults(func=cmd_analyze)

    b = sub.add_parser("batch", help="analyse an archive on Ray (local, or a cluster with --address): resumable, "
                                     "one JSON line per image in --out")
    b.add_argument("paths", nargs="+", help="image files or folders (walked recursively)")
    b.add_argument("--out", required=True, help="output folder: findings.jsonl, failures.jsonl, run.json, "
                   "summary.json; a second run into it analyses only what is missing")
    b.add_argument("--address", help="Ray cluster to join (e.g. ray://head:10001 or head:6379; default: a local "
                   "Ray on this machine)")
    b.add_argument("--model", action="append", default=[], help="only this model id (repeatable)")
    b.add_argument("--method", action="append", default=[], help="methods, comma-separated (default: aedr)")
    b.add_argument("--alpha", type=false_attribution_rate, default=0.01,
                   help="false-attribution rate, 0 < alpha <= 0.5 (default 0.01)")
    b.add_argument("--provider", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: one GPU per actor where the cluster has GPUs")
    b.add_argument("--actors", type=positive_int, help="analysing actors, each holding every candidate's models "
                   "(default: one per GPU where the cluster has GPUs, else one per CPU)")
    b.add_argument("--files-per-block", type=positive_int, default=8,
                   help="files per Ray block; a killed run loses at most the blocks in flight (default 8)")
    b.add_argument("--case", help="afterwards, merge the folder's findings into this case file")
    b.set_defaults(func=cmd_batch)

    cs = sub.add_parser("case", help="case files: evidence, analyses and notes in one file")
    cs = cs.add_subparsers(dest="case_command", required=True)
    cn = cs.add_parser("new", help="create an empty case file")
    cn.add_argument("file")
    cn.add_argument("--name", required=True, help="case name or reference")
    cn.add_argument("--examiner", required=True, help="who is responsible for the analysis")
    cn.set_defaults(func=cmd_case_new)
    cw = cs.add_parser("show", help="summary of the case; re-hashes the evidence (exit 3 if any changed or missing)")
    cw.add_argument("file")
    cw.set_defaults(func=cmd_case_show)
    co = cs.add_parser("note", help="add an examiner note to an evidence item")
    co.add_argument("file")
    co.add_argument("sha256", help="the evidence SHA-256 or a unique prefix of it")
    co.add_argument("text")
    co.set_defaults(func=cmd_case_note)

    rp = sub.add_parser("report", help="findings reports: make (PDF/JSON) and verify").add_subparsers(
        dest="report_command", required=True)
    rm = rp.add_parser("make", help="write the report of a case file or of a findings JSON")
    rm.add_argument("source", help="case file, or findings JSON written by 'analyze --json'")
    rm.add_argument("--pdf", help="write the PDF report here")
    rm.add_argument("--json", help="write the findings JSON here")
    rm.add_argument("--case-name", help="case name (overrides the recorded one)")
    rm.add_argument("--examiner", help="examiner (overrides the recorded one)")
    rm.set_defaults(func=cmd_report_make)
    rv = rp.add_parser("verify", help="re-hash evidence and models, re-run the analyses, list every difference "
                                      "(exit 3 when anything differs)")
    rv.add_argument("findings", help="findings JSON")
    rv.add_argument("--tolerance", type=float, default=0.0,
                    help="relative tolerance for numbers (default 0: exact; CPU runs are bit-identical)")
    rv.set_defaults(func=cmd_report_verify)

    z = sub.add_parser("zoo", help="manage the model zoo").add_subparsers(dest="zoo_command", required=True)
    zl = z.add_parser("list", help="known and installed models")
    zl.add_argument("--json", action="store_true", help="one JSON object per entry (sources, hashes, used_by, ...)")
    zl.set_defaults(func=cmd_zoo_list)
    crops_help = (f"crops per real photo (default: 24 with a GPU, {CPU_CALIBRATION_CROPS} on a CPU; fewer crops draw a "
                  "subset of the same samples)")
    i = z.add_parser("install", help="install a model from its source (mirror folder first, else upstream URL; "
                                     "needs torch) or from a model pack file (onnxruntime only)")
    i.add_argument("id", help="model id, 'all', or a model pack file (.fapack) made by 'zoo pack'")
    i.add_argument("--mirror", action="append", default=[], help="mirror folder (repeatable; also $FORENSICS_APP_MIRROR)")
    i.add_argument("--offline", action="store_true", help="never download; mirrors only")
    i.add_argument("--sha256", help="a pack file's expected SHA-256 (as 'zoo pack' printed it): refuse any other file")
    i.add_argument("--real", help=f"folder of real photos to calibrate a model that has no calibration yet "
                   f"(also ${REAL_PHOTOS_ENV}); without it such a model is installed NOT CALIBRATED")
    i.add_argument("--crops", type=positive_int, help=crops_help)
    i.set_defaults(func=cmd_zoo_install)
    pk = z.add_parser("pack", help="write an installed model as one pack file that installs without torch")
    pk.add_argument("id", help="installed model id")
    pk.add_argument("--out", required=True, help="pack file to write (conventionally ID.fapack)")
    pk.set_defaults(func=cmd_zoo_pack)
    v = z.add_parser("verify", help="re-hash installed files")
    v.add_argument("id", nargs="?")
    v.set_defaults(func=cmd_zoo_verify)
    r = z.add_parser("remove", help="uninstall a model")
    r.add_argument("id")
    r.set_defaults(func=cmd_zoo_remove)
    im = z.add_parser("import", help="add a local diffusers autoencoder folder (config.json + safetensors)")
    im.add_argument("folder")
    im.add_argument("--id", required=True)
    im.add_argument("--real", help=f"folder of real photos to calibrate it with (also ${REAL_PHOTOS_ENV})")
    im.add_argument("--crops", type=positive_int, help=crops_help)
    im.set_defaults(func=cmd_zoo_import)
    c = z.add_parser("calibrate", help="build score distributions for a model")
    c.add_argument("id")
    c.add_argument("--real", required=True, help="folder of real photos; its calibration split is used "
                   "(the zoo's shipped calibrations use imagenet1k: the same folder makes them comparable)")
    c.add_argument("--generated", help="folder of this model's own outputs (default: made with its decoder)")
    c.add_argument("--crops", type=positive_int, help=crops_help)
    c.add_argument("--own", type=positive_int, default=300, help="own outputs to make (default 300)")
    c.add_argument("--max-images", type=positive_int)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--method", action="append", default=[],
                   help="only these methods, comma-separated (default: the decisive ones; inversion is ~16x slower)")
    c.add_argument("--out", help="write here instead of the model's install folder")
    c.set_defaults(func=cmd_zoo_calibrate)

    fp = sub.add_parser("fingerprint", help="learned-fingerprint extractors: train and evaluate").add_subparsers(
        dest="fingerprint_command", required=True)
    ft = fp.add_parser("train", help="train an extractor on DATA/<class>/ images (a 'real' class first)")
    ft.add_argument("--data", required=True, help="folder with one sub-folder of images per class")
    ft.add_argument("--out", required=True, help="extractor name (manifest NAME.toml, ONNX weights/NAME.onnx)")
    ft.add_argument("--kind", choices=("repmix", "plain", "manifpt"), default="repmix")
    ft.add_argument("--steps", type=int,
                    help="training steps (default: TrainSettings.steps in forensics_app.train.fingerprints)")
    ft.add_argument("--unknown", help="images of generators left out of training: calibrates the open-set threshold")
    ft.add_argument("--into", help="folder for the manifest (default: HOME/extractors)")
    ft.set_defaults(func=cmd_fingerprint_train)
    fe = fp.add_parser("eval", help="closed-set accuracy on DATA/<class>/, clean and under each perturbation")
    fe.add_argument("name")
    fe.add_argument("--data", required=True)
    fe.add_argument("--into", help="folder searched before the shipped extractors (default: HOME/extractors)")
    fe.set_defaults(func=cmd_fingerprint_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    if hasattr(sys.stdout, "reconfigure"):  # a file name with bytes that are not UTF-8 must not end the run
        sys.stdout.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        # Ctrl+C (and the window's Cancel, which sends SIGINT) must interrupt even when this process was
        # started with SIGINT ignored (inherited from a parent that ignores it, as `cmd &` in a script does)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return args.func(args)
    except ForensicsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as command line tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the final flush at exit cannot fail again
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        missing = (exc.name or "").partition(".")[0] if isinstance(exc, ModuleNotFoundError) else ""
        if missing in TORCH_ONLY:
            print(f"error: this command needs {missing}, which this installation does not include (the desktop "
                  f"bundle analyses with ONNX only). Run it with the development install (bash scripts/setup.sh).",
                  file=sys.stderr)
            return EXIT_USAGE
        traceback.print_exc()
        print("error: an unexpected internal error occurred (details above); please report it.", file=sys.stderr)
        return EXIT_BUG
