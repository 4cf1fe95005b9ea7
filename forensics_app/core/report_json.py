"""Findings as JSON (versioned schema, documented in docs/findings-schema.md).

Schema "forensics-app/findings/1" only ever gains optional keys; readers ignore keys they do not know.
The report identifier is derived from the content (everything except the creation time and the identifier
itself; the per-pixel maps enter through their SHA-256), so the same findings always carry the same
identifier and an edited file does not.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

from forensics_app.core.calibration import Calibration
from forensics_app.core.errors import ForensicsError
from forensics_app.core.files import printable, read_regular_file
from forensics_app.core.findings import FINDINGS_SCHEMA, CandidateFinding, FailedImage, ImageFindings, Verdict

_NOT_CONTENT = ("created", "report_id", "content_sha256")


def content_sha256(doc: dict) -> str:
    content = {k: v for k, v in doc.items() if k not in _NOT_CONTENT}
    # the maps' names repeat the keys of "map_sha256", which is content (older files hold only the names)
    content["images"] = [{k: v for k, v in image.items() if k != "maps"} for image in doc.get("images", [])]
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def report_id_of(content_hash: str) -> str:
    """Short, readable identifier: the first 16 hex digits of the content hash, in groups of four."""
    head = content_hash[:16].upper()
    return "-".join(head[i:i + 4] for i in range(0, 16, 4))


def item_key(result: ImageFindings | FailedImage) -> tuple[str, str]:
    return str(result.path), getattr(result, "sha256", "")


def findings_document(results: list[ImageFindings | FailedImage], run_info: dict, *,
                      calibrations: dict[tuple[str, str], Calibration] | None = None,
                      case: dict | None = None, cancelled: bool = False,
                      item_runs: dict[tuple[str, str], dict] | None = None,
                      notes: dict[str, list[dict]] | None = None,
                      skipped: list[tuple[Path, str]] | None = None) -> dict:
    """``item_runs``: the run info of items analysed in another run than ``run_info`` (a case file
    collects analyses made at different times); they are listed once in "runs" and referenced by index."""
    runs = [run_info]
    images = []
    for result in results:
        image = result.to_dict()
        run = (item_runs or {}).get(item_key(result))
        if run is not None and run != run_info:
            if run not in runs:
                runs.append(run)
            image["run_index"] = runs.index(run)
        images.append(image)
    doc = {
        "schema": FINDINGS_SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run": run_info,
        "cancelled": cancelled,
        "images": images,
        "case": dict(case or {}),
        "calibrations": [c.to_dict() for _, c in sorted((calibrations or {}).items())],
    }
    if len(runs) > 1:
        doc["runs"] = runs
    if notes:
        doc["notes"] = notes
    if skipped:
        doc["skipped"] = [{"path": str(path), "reason": reason} for path, reason in skipped]
    doc["content_sha256"] = content_sha256(doc)
    doc["report_id"] = report_id_of(doc["content_sha256"])
    return doc


MAX_FINDINGS_BYTES = 256 * 1024 * 1024


def read_findings_document(path: Path) -> dict:
    """A findings file, read only if it is a regular file and accepted only if its shape is the schema's:
    every field the report and the verifier use has the documented type (a hand-edited or hostile file
    gets a plain refusal naming the first wrong field, never a crash)."""
    data = read_regular_file(path, MAX_FINDINGS_BYTES, "findings file")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ForensicsError(f"The findings file {printable(str(path))} cannot be read "
                             f"({type(exc).__name__}: {exc}).") from None
    if not isinstance(doc, dict) or doc.get("schema") != FINDINGS_SCHEMA:
        found = doc.get("schema") if isinstance(doc, dict) else None
        raise ForensicsError(f"{printable(str(path))} is not a findings file of schema {FINDINGS_SCHEMA} "
                             f"(found {found!r}).")
    try:
        _check_shape(doc)
    except _WrongShape as exc:
        raise ForensicsError(f"{printable(str(path))} is not a valid findings file: {exc}.") from None
    return doc


class _WrongShape(ValueError):
    pass


_NUMBER = (int, float)
_OPTIONAL_NUMBER = (int, float, type(None))
_OPTIONAL_TEXT = (str, type(None))
_CANDIDATE = {"model": str, "model_name": str, "method": str, "method_title": str, "method_version": str,
              "decisive": bool, "score": _NUMBER, "components": dict, "p_value": _OPTIONAL_NUMBER,
              "p_real": _OPTIONAL_NUMBER, "threshold": _OPTIONAL_NUMBER, "status": str, "provider": str,
              "parameters": dict, "seconds": _NUMBER, "calibration": (dict, type(None))}
_CALIBRATION_SUMMARY = {"n_own": int, "n_real": int, "threshold": _OPTIONAL_NUMBER, "alpha": _OPTIONAL_NUMBER,
                        "false_attribution_real": _OPTIONAL_NUMBER, "true_attribution_own": _OPTIONAL_NUMBER,
                        "data": dict, "created": str}
_VERDICT = {"label": str, "model": _OPTIONAL_TEXT, "text": str, "reasons": list}
_FACTS = {"file_name": str, "size_bytes": int, "format": _OPTIONAL_TEXT, "width": int, "height": int,
          "mode": _OPTIONAL_TEXT, "jpeg_quality": (int, type(None)), "notes": list}
_RUN = {"settings": dict, "models": list}
_SETTINGS = {"methods": list, "alpha": _NUMBER, "tiling": dict}
_CALIBRATION = {"model": str, "method": str, "method_version": str, "own_scores": list, "real_scores": list}


def _fields(value, spec: dict, where: str, required: bool = True) -> None:
    """`value` is an object whose fields in `spec` have those types (all present when `required`)."""
    _of_type(value, dict, where)
    for key, types in spec.items():
        if key in value:
            _of_type(value[key], types, f"{where}.{key}")
        elif required:
            raise _WrongShape(f"{where} has no {key!r}")


def _of_type(value, types, where: str) -> None:
    types = types if isinstance(types, tuple) else (types,)
    numeric = all(t in (int, float) for t in types if t is not type(None))
    if not isinstance(value, types) or (numeric and isinstance(value, bool)):
        names = " or ".join("null" if t is type(None) else {"dict": "an object", "list": "a list", "str": "text",
                                                            "int": "an integer", "float": "a number",
                                                            "bool": "true or false"}[t.__name__]
                         for t in types if not (t is int and float in types))
        raise _WrongShape(f"{where} should be {names}, not {type(value).__name__}")


def _list_of(value, where: str, check) -> None:
    _of_type(value, list, where)
    for i, item in enumerate(value):
        check(item, f"{where}[{i}]")


def _check_shape(doc: dict) -> None:
    def run(value, where):
        _fields(value, _RUN, where)
        _fields(value["settings"], _SETTINGS, f"{where}.settings")
        _list_of(value["settings"]["methods"], f"{where}.settings.methods", lambda v, w: _of_type(v, str, w))
        _list_of(value["models"], f"{where}.models", lambda v, w: _fields(v, {"id": str}, w))

    def candidate(value, where):
        _fields(value, _CANDIDATE, where)
        _fields(value, {"region": dict}, where, required=False)  # files written before per-candidate regions
        for key, number in value.get("region", {}).items():
            _of_type(number, int, f"{where}.region.{key}")
        if value["calibration"] is not None:
            _fields(value["calibration"], _CALIBRATION_SUMMARY, f"{where}.calibration", required=False)

    runs = doc.get("runs", [doc.get("run")])
    run(doc.get("run"), "run")
    _list_of(runs, "runs", run)

    def image(value, where):
        _fields(value, {"path": str}, where)
        if "error" in value:
            _of_type(value["error"], str, f"{where}.error")
            return
        _fields(value, {"sha256": str, "facts": dict, "region": dict, "verdict": dict, "candidates": list}, where)
        _fields(value, {"metadata": dict, "run_index": int}, where, required=False)
        if "run_index" in value and not 0 <= value["run_index"] < len(runs):
            raise _WrongShape(f"{where}.run_index {value['run_index']} names no run")
        _fields(value["facts"], _FACTS, f"{where}.facts", required=False)
        _list_of(value["facts"].get("notes", []), f"{where}.facts.notes", lambda v, w: _of_type(v, str, w))
        for key, number in value["region"].items():
            _of_type(number, int, f"{where}.region.{key}")
        _fields(value["verdict"], _VERDICT, f"{where}.verdict")
        _list_of(value["verdict"]["reasons"], f"{where}.verdict.reasons", lambda v, w: _of_type(v, str, w))
        _list_of(value["candidates"], f"{where}.candidates", candidate)

    _list_of(doc.get("images"), "images", image)
    _fields(doc, {"case": dict, "cancelled": bool, "calibrations": list, "notes": dict, "skipped": list},
            "the file", required=False)
    def calibration(value, where):
        _fields(value, _CALIBRATION, where)
        for key in ("own_scores", "real_scores"):
            _list_of(value[key], f"{where}.{key}", lambda v, w: _of_type(v, _NUMBER, w))

    _list_of(doc.get("calibrations", []), "calibrations", calibration)
    for sha256, notes in doc.get("notes", {}).items():
        _list_of(notes, f"notes.{sha256}", lambda v, w: _fields(v, {"text": str, "author": str, "created": str}, w,
                                                                 required=False))
    _list_of(doc.get("skipped", []), "skipped", lambda v, w: _fields(v, {"path": str, "reason": str}, w))


def _candidate_from_dict(d: dict) -> CandidateFinding:
    names = CandidateFinding.__dataclass_fields__
    return CandidateFinding(**{k: v for k, v in d.items() if k in names})


def results_from_document(doc: dict) -> tuple[list[ImageFindings], list[FailedImage]]:
    """Findings and failures back as dataclasses (per-pixel maps are not stored in JSON)."""
    findings, failures = [], []
    for d in doc["images"]:
        if "error" in d:
            failures.append(FailedImage(Path(d["path"]), d["error"], d.get("path_as_given")))
            continue
        findings.append(ImageFindings(
            path=Path(d["path"]), sha256=d["sha256"], facts=d["facts"], region=d["region"],
            verdict=Verdict(**{k: v for k, v in d["verdict"].items() if k in Verdict.__dataclass_fields__}),
            candidates=[_candidate_from_dict(c) for c in d["candidates"]],
            metadata=d.get("metadata", {}), path_as_given=d.get("path_as_given"),
            recorded_map_sha256=d.get("map_sha256", {})))
    return findings, failures


def item_runs_from_document(doc: dict) -> dict[tuple[str, str], dict]:
    """Run info of the items that name their own run ("run_index" into "runs")."""
    runs = doc.get("runs", [doc["run"]])
    return {(d["path"], d.get("sha256", "")): runs[d["run_index"]] for d in doc["images"] if "run_index" in d}


def calibrations_from_document(doc: dict) -> dict[tuple[str, str], Calibration]:
    return {(d["model"], d["method"]): Calibration.from_dict(d) for d in doc.get("calibrations", [])}
