"""Re-check a findings file the way an opposing expert would: re-hash the evidence and the installed
model files, re-run every analysis with the recorded settings, and list every difference.

Scores are compared exactly by default: on CPU the engine is deterministic (same inputs, same
onnxruntime build -> the same float bits; tests/test_report.py checks it), and JSON floats round-trip
exactly. Runs on a GPU, or on another CPU/onnxruntime build, can differ in the last bits; for those a
relative tolerance may be given, and every value that is equal only within it is listed as a note.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from forensics_app.core.errors import ForensicsError
from forensics_app.core.evidence import sha256_of_file
from forensics_app.core.findings import FailedImage
from forensics_app.core.imageprep import TilingSettings
from forensics_app.core.jobs import NEVER_CANCELLED, CancelToken, Progress, ProgressCallback, no_progress
from forensics_app.core.report_json import calibrations_from_document, content_sha256, item_runs_from_document
from forensics_app.core.runtime import CPU, CUDA, RuntimeSettings



@dataclass
class Difference:
    item: str  # the evidence file, model or file the difference is about
    what: str
    recorded: str
    now: str

    def line(self) -> str:
        return f"{self.item}: {self.what}: recorded {self.recorded}, now {self.now}"


@dataclass
class Verification:
    differences: list[Difference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # checked facts and differences that do not change results
    checked: dict[str, int] = field(default_factory=lambda: {"evidence files": 0, "model files": 0, "readings": 0})

    @property
    def identical(self) -> bool:
        return not self.differences

    def differ(self, item: str, what: str, recorded, now) -> None:
        self.differences.append(Difference(item, what, _show(recorded), _show(now)))


def _show(value) -> str:
    return repr(value)  # a float's repr round-trips exactly: the two numbers shown are the two compared


# a run recorded before the CPU time policy existed analysed without it
_BEFORE_CPU_POLICY = {"cpu_seconds_per_candidate": None}


def settings_of(run: dict):
    """AnalysisSettings as recorded: the same methods, models, alpha, tiling and execution provider."""
    from forensics_app.core.pipeline import AnalysisSettings

    recorded = run["settings"]
    providers = set(run.get("providers", []))
    provider = "cpu" if providers == {CPU} else "cuda" if providers == {CUDA} else recorded.get("provider", "auto")
    return AnalysisSettings(methods=tuple(recorded["methods"]), models=tuple(m["id"] for m in run["models"]),
                            alpha=recorded["alpha"], tiling=TilingSettings(**(_BEFORE_CPU_POLICY | recorded["tiling"])),
                            runtime=RuntimeSettings(provider=provider),
                            extractors=tuple(recorded.get("extractors", [])))


def _equal(a, b, rel_tol: float) -> tuple[bool, bool]:
    """(equal, only within the tolerance)."""
    if a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)):
        return True, False
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and rel_tol > 0:
        return math.isclose(a, b, rel_tol=rel_tol), True
    return False, False


def verify_document(doc: dict, zoo, rel_tol: float = 0.0, progress: ProgressCallback = no_progress,
                    cancel: CancelToken = NEVER_CANCELLED) -> Verification:
    result = Verification()
    _check_content_hash(doc, result)
    runs = [doc["run"], *[r for r in doc.get("runs", [])[1:]]]
    for run in runs:
        _check_models(run, zoo, result)
    _check_software(runs, result)
    item_runs = item_runs_from_document(doc)
    images = doc["images"]
    engines: dict[str, object] = {}  # one engine per distinct run
    for index, image in enumerate(images):
        cancel.raise_if_cancelled()
        progress(Progress(index / max(1, len(images)), Path(image["path"]).name))
        run = item_runs.get((image["path"], image.get("sha256", "")), doc["run"])
        _check_image(image, run, engines, zoo, rel_tol, result, cancel)
    _check_calibrations(doc, [_engine_for(run, engines, zoo, result) for run in runs], result)
    progress(Progress(1.0, "done"))
    return result


def _check_content_hash(doc: dict, result: Verification) -> None:
    if "content_sha256" not in doc:
        result.notes.append("The findings file carries no content hash (written before reports existed).")
    elif content_sha256(doc) != doc["content_sha256"]:
        result.differ("findings file", "content SHA-256 (the file was edited after it was written)",
                      doc["content_sha256"], content_sha256(doc))


def _check_models(run: dict, zoo, result: Verification) -> None:
    from forensics_app.core.errors import ZooError

    for model in run.get("models", []):
        try:
            installed = zoo.installed(model["id"])
        except ZooError as exc:
            result.differ(f"model {model['id']}", "installation", "installed", f"not available ({exc})")
            continue
        files = [(f"weights {name}", installed.folder / "weights" / name, entry["sha256"])
                 for name, entry in model.get("weights", {}).items()]
        files += [(f"ONNX {name}", installed.folder / name, entry["sha256"]) for name, entry in model.get("onnx", {}).items()]
        # a model installed from a pack has no weight files: the hashes its manifest records (part of its
        # model hash, checked against the ONNX files' when it is loaded) stand in for them
        manifest_hashes = {w.file: w.sha256 for w in installed.manifest.weights} if installed.from_pack else {}
        for label, path, recorded in files:
            result.checked["model files"] += 1
            try:
                now = sha256_of_file(path)
            except OSError:
                now = manifest_hashes.get(path.name, "missing") if label.startswith("weights ") else "missing"
                if now != "missing":
                    result.notes.append(f"{model['id']}: {path.name} is not installed (model pack); its SHA-256 was "
                                        f"compared with the installed manifest's.")
            if now != recorded:
                result.differ(f"model {model['id']}", f"{label} SHA-256", recorded, now)


def _check_software(runs: list[dict], result: Verification) -> None:
    import platform
    import sys

    import numpy
    import onnxruntime

    from forensics_app import __version__

    now = {"forensics_app": __version__, "python": sys.version.split()[0], "numpy": numpy.__version__,
           "onnxruntime": onnxruntime.__version__, "platform": platform.platform()}
    for run in runs:
        for name, recorded in run.get("software", {}).items():
            if now.get(name) != recorded:
                result.notes.append(f"software {name}: recorded {recorded}, now {now.get(name)} (differences in "
                                    "results, if any, are listed separately)")


def _engine_for(run: dict, engines: dict[str, object], zoo, result: Verification):
    from forensics_app.core.pipeline import Engine

    key = json.dumps(run, sort_keys=True)
    if key not in engines:
        try:
            engines[key] = Engine(zoo, settings_of(run))
        except (ForensicsError, KeyError, TypeError, ValueError) as exc:
            result.differ("analysis", "re-run with the recorded settings", "possible", f"impossible ({exc})")
            engines[key] = None
        else:
            _check_run(run, engines[key], result)
    return engines[key]


def _check_image(image: dict, run: dict, engines: dict, zoo, rel_tol: float, result: Verification,
                 cancel: CancelToken) -> None:
    path = Path(image["path"])
    name = str(path)
    if "sha256" in image:
        result.checked["evidence files"] += 1
        try:
            now = sha256_of_file(path)
        except OSError:
            result.differ(name, "evidence file", f"SHA-256 {image['sha256']}", "missing or unreadable")
            return
        if now != image["sha256"]:
            result.differ(name, "evidence SHA-256 (the file changed)", image["sha256"], now)
    engine = _engine_for(run, engines, zoo, result)
    if engine is None:
        return
    from forensics_app.core.pipeline import analyse_paths

    redone = analyse_paths(engine, [path], cancel=cancel).results
    if not redone:
        return
    again = redone[0]
    if isinstance(again, FailedImage) or "error" in image:
        recorded = image.get("error", "analysed")
        now = again.error if isinstance(again, FailedImage) else "analysed"
        if recorded != now:
            result.differ(name, "outcome", recorded, now)
        return
    fresh = again.to_dict()
    for key in sorted((set(fresh) | set(image)) - _NOT_RECOMPUTED):  # facts, region, verdict, provenance claims, ...
        _compare(result, name, key, image.get(key, _ABSENT), fresh.get(key, _ABSENT), rel_tol)
    recorded = {(c["model"], c["method"]): c for c in image["candidates"]}
    now = {(c["model"], c["method"]): c for c in fresh["candidates"]}
    for pair in sorted(set(recorded) | set(now)):
        label = f"{pair[0]}/{pair[1]}"
        if pair not in now or pair not in recorded:
            result.differ(name, f"reading {label}", "present" if pair in recorded else "absent",
                          "present" if pair in now else "absent")
            continue
        result.checked["readings"] += 1
        a, b = recorded[pair], now[pair]
        for key in sorted((set(a) | set(b)) - {"seconds", "provider"}):  # every field: names, calibration summary...
            _compare(result, name, f"{label} {key}", a.get(key, _ABSENT), b.get(key, _ABSENT), rel_tol)
        if a.get("provider") != b["provider"]:
            result.notes.append(f"{name}: {label} ran on {b['provider']} now, {a.get('provider')} then")
    if [c["model"] + c["method"] for c in image["candidates"]] != [c["model"] + c["method"] for c in fresh["candidates"]]:
        result.differ(name, "candidate ranking", [c["model"] for c in image["candidates"]],
                      [c["model"] for c in fresh["candidates"]])


_ABSENT = "(absent)"
# not compared field by field: the readings are matched by (model, method) below, and which maps the
# producing run held in memory is no finding (JSON keeps no arrays); run_index only points at the run;
# the maps' hashes change when a case file stores the maps (as float16); path_as_given is how the
# examiner typed the path, which no re-run can reproduce
_NOT_RECOMPUTED = {"candidates", "maps", "run_index", "map_sha256", "path_as_given"}


def _compare(result: Verification, item: str, what: str, recorded, now, rel_tol: float) -> None:
    """Every difference between two JSON values, down to single fields; numbers within the tolerance are notes."""
    if isinstance(recorded, dict) and isinstance(now, dict):
        for key in sorted(set(recorded) | set(now), key=str):
            _compare(result, item, f"{what} {key}", recorded.get(key, _ABSENT), now.get(key, _ABSENT), rel_tol)
    elif isinstance(recorded, list) and isinstance(now, list) and len(recorded) == len(now):
        for index, (a, b) in enumerate(zip(recorded, now)):
            _compare(result, item, f"{what}[{index}]", a, b, rel_tol)
    else:
        same, within = _equal(recorded, now, rel_tol)
        if not same:
            result.differ(item, what, recorded, now)
        elif within:
            result.notes.append(f"{item}: {what} equal within relative tolerance {rel_tol:g} ({recorded!r} vs {now!r})")


def _check_run(run: dict, engine, result: Verification) -> None:
    """What the run says about the models, methods and settings against what they are now (names,
    demonstration flags, calibration sources, method versions and parameters, ...)."""
    now = engine.run_info()
    for key in ("models", "methods", "extractors"):
        _compare(result, "run", key, run.get(key, _ABSENT), now.get(key, _ABSENT), 0.0)
    # the provider is the re-run's own choice, and the model ids are the "models" compared above
    chosen_again = ("provider", "models")
    _compare(result, "run", "settings", {k: v for k, v in run["settings"].items() if k not in chosen_again},
             {k: v for k, v in now["settings"].items() if k not in chosen_again}, 0.0)


def _check_calibrations(doc: dict, engines: list, result: Verification) -> None:
    """Recorded calibrations against the ones installed now (a changed calibration changes p-values); checked
    for every run, also when its evidence files are missing."""
    recorded = calibrations_from_document(doc)
    if not recorded:
        return
    installed = {}
    for engine in engines:
        if engine is not None:
            installed.update(engine.calibrations_in_use())
    for pair, cal in sorted(recorded.items()):
        now = installed.get(pair)
        if now is None:
            result.differ(f"calibration {pair[0]}/{pair[1]}", "installed", f"created {cal.created}", "not installed")
        elif now.to_dict() != cal.to_dict():
            result.differ(f"calibration {pair[0]}/{pair[1]}", "score samples", f"created {cal.created}",
                          f"created {now.created}")
