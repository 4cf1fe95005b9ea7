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
                      notes: dict[str, list[dict]] | None = None) -> dict:
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
    doc["content_sha256"] = content_sha256(doc)
    doc["report_id"] = report_id_of(doc["content_sha256"])
    return doc


def read_findings_document(path: Path) -> dict:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ForensicsError(f"The findings file {path} cannot be read ({type(exc).__name__}: {exc}).") from None
    if not isinstance(doc, dict) or doc.get("schema") != FINDINGS_SCHEMA:
        found = doc.get("schema") if isinstance(doc, dict) else None
        raise ForensicsError(f"{path} is not a findings file of schema {FINDINGS_SCHEMA} (found {found!r}).")
    return doc


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
            verdict=Verdict(**d["verdict"]), candidates=[_candidate_from_dict(c) for c in d["candidates"]],
            metadata=d.get("metadata", {}), path_as_given=d.get("path_as_given"),
            recorded_map_sha256=d.get("map_sha256", {})))
    return findings, failures


def item_runs_from_document(doc: dict) -> dict[tuple[str, str], dict]:
    """Run info of the items that name their own run ("run_index" into "runs")."""
    runs = doc.get("runs", [doc["run"]])
    return {(d["path"], d.get("sha256", "")): runs[d["run_index"]] for d in doc["images"] if "run_index" in d}


def calibrations_from_document(doc: dict) -> dict[tuple[str, str], Calibration]:
    return {(d["model"], d["method"]): Calibration.from_dict(d) for d in doc.get("calibrations", [])}
