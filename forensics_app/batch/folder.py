"""The output folder of a batch: append-only JSON lines that a killed run leaves usable.

    DIR/run.json        what decides the findings (settings, models, methods, calibrations) and the run
                        info of the first run; a later run with another analysis is refused
    DIR/findings.jsonl  one line per analysed image: the image object of `analyze --json`
                        (docs/findings-schema.md, "images" items)
    DIR/failures.jsonl  one line per file that could not be analysed: path, error, sha256 when read
    DIR/summary.json    counts and throughput of the last run, verdicts of the whole folder

Resuming is by content: an image whose SHA-256 already has a line (a finding, or a refusal of those
bytes) is not analysed again. Lines are appended a block at a time and fsync'ed, so a killed run loses
at most the blocks in flight; the last line may be torn by the kill and is cut off on the next open
(its image is analysed again). A torn or unreadable line followed by good lines is not a kill's
trace: the folder is refused rather than guessed at.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from forensics_app.core.errors import ForensicsError
from forensics_app.core.files import printable, write_atomically

BATCH_SCHEMA = "forensics-app/batch/1"
FINDINGS, FAILURES, RUN, SUMMARY, LOCK = "findings.jsonl", "failures.jsonl", "run.json", "summary.json", ".lock"


def analysis_identity(engine) -> dict:
    """Everything that decides an image's findings: the settings (less the execution provider, which does
    not change a CPU result and is recorded per reading), the models' weight and ONNX hashes, the methods
    with versions and parameters, and the SHA-256 of the calibrations in use. Findings of two runs with
    the same identity can share one folder."""
    info = engine.run_info()
    settings = {k: v for k, v in info["settings"].items() if k not in ("provider", "models")}
    models = [{k: m[k] for k in ("id", "model_hash", "weights", "onnx")} for m in info["models"]]
    calibrations = json.dumps([c.to_dict() for _, c in sorted(engine.calibrations_in_use().items())],
                              sort_keys=True).encode("utf-8")
    return json.loads(json.dumps({"settings": settings, "models": models, "methods": info["methods"],
                                  "calibrations_sha256": hashlib.sha256(calibrations).hexdigest()}))


def finding_line(findings) -> str:
    """One findings.jsonl line: the image object of the findings schema, on one line, ASCII."""
    return json.dumps(findings.to_dict()) + "\n"


def failure_line(failed, sha256: str | None) -> str:
    return json.dumps({**failed.to_dict(), **({"sha256": sha256} if sha256 else {})}) + "\n"


class BatchFolder:
    """An open output folder, locked against a second batch writing to it at the same time."""

    def __init__(self, root: Path, lock_fd: int, run: dict):
        self.root = root
        self._lock_fd = lock_fd
        self.run = run  # run.json: {"schema", "identity", "run_info"}
        self._known: set[bytes] = set()  # SHA-256 digests with a finding or a refusal of those bytes
        self._unread_failures: set[tuple[str, str]] = set()  # (path, error) of files that could not be read
        self.verdicts: Counter = Counter()  # (label, model) over every finding in the folder
        self.findings_count = 0
        self.failures_count = 0
        self.cut_torn_lines = 0  # lines cut off at open (a killed run's torn last line)

    @classmethod
    def open(cls, root: str | Path, identity: dict, run_info: dict) -> BatchFolder:
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise ForensicsError(f"--out {printable(str(root))} is a file; give a folder (it is created if missing).")
        root.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(root / LOCK, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise ForensicsError(f"Another batch is writing to {printable(str(root))}; wait for it to finish or "
                                 "give another --out.") from None
        try:
            folder = cls(root, lock_fd, _run_record(root, identity, run_info))
            folder._load()
        except BaseException:
            os.close(lock_fd)
            raise
        return folder

    def close(self) -> None:
        os.close(self._lock_fd)  # releases the lock

    def __enter__(self) -> BatchFolder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading ------------------------------------------------------------------------------------
    def _load(self) -> None:
        def finding(d: dict, where: str) -> None:
            self._known.add(_digest(d.get("sha256"), where))
            verdict = d.get("verdict") or {}
            self.verdicts[(verdict.get("label"), verdict.get("model"))] += 1
            self.findings_count += 1

        def failure(d: dict, where: str) -> None:
            self.failures_count += 1
            if d.get("sha256"):
                self._known.add(_digest(d["sha256"], where))
            else:
                self._unread_failures.add((d.get("path"), d.get("error")))

        self.cut_torn_lines = (_read_lines(self.root / FINDINGS, finding)
                               + _read_lines(self.root / FAILURES, failure))

    def known_digests(self) -> np.ndarray:
        """The SHA-256 digests already answered, sorted, as one (N,) array of 32-byte strings: what the
        intake tasks look files up in (np.searchsorted), shared with them through Ray's object store."""
        return np.array(sorted(self._known), dtype="S32")

    def is_known(self, sha256: str) -> bool:
        return bytes.fromhex(sha256) in self._known

    # -- writing ------------------------------------------------------------------------------------
    def append(self, findings: Iterable[tuple[str, str, tuple[str | None, str | None]]],
               failures: Iterable[tuple[str | None, str, str, str]]) -> tuple[int, int, int]:
        """Append one block: findings as (sha256, line, (verdict label, model)), failures as
        (sha256 or None, path, error, line). Content already answered (the same bytes met twice in one
        run) and a failure already recorded are left out. Each file is written with one call and
        fsync'ed before this returns. Returns (findings written, failures written, duplicates left out)."""
        finding_lines, failure_lines, duplicates = [], [], 0
        for sha256, line, verdict in findings:
            digest = bytes.fromhex(sha256)
            if digest in self._known:
                duplicates += 1
                continue
            self._known.add(digest)
            self.verdicts[verdict] += 1
            self.findings_count += 1
            finding_lines.append(line)
        for sha256, path, error, line in failures:
            if sha256:
                digest = bytes.fromhex(sha256)
                if digest in self._known:
                    duplicates += 1
                    continue
                self._known.add(digest)
            elif (path, error) in self._unread_failures:
                continue
            else:
                self._unread_failures.add((path, error))
            failure_lines.append(line)
        self.failures_count += len(failure_lines)
        _append(self.root / FINDINGS, finding_lines)
        _append(self.root / FAILURES, failure_lines)
        return len(finding_lines), len(failure_lines), duplicates

    def write_summary(self, summary: dict) -> None:
        write_atomically(self.root / SUMMARY, (json.dumps(summary, indent=2) + "\n").encode("utf-8"))

    def verdict_totals(self) -> dict:
        """{"attributed": {model: n}, "not_attributed": n, "inconclusive": n} over the whole folder."""
        totals: dict = {"attributed": {}, "not_attributed": 0, "inconclusive": 0}
        for (label, model), n in sorted(self.verdicts.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))):
            if label == "attributed":
                totals["attributed"][model] = totals["attributed"].get(model, 0) + n
            else:
                totals[label] = totals.get(label, 0) + n
        return totals


def iter_findings(root: str | Path) -> Iterator[dict]:
    """The findings of a folder, one image object at a time (never all in memory)."""
    yield from _iter_valid_lines(Path(root) / FINDINGS)


def merge_into_case(root: str | Path, case, run_info: dict, new_failures: Iterable[tuple[Path, str]] = (),
                    on_item: Callable[[], None] = lambda: None) -> tuple[int, int]:
    """Store every finding of the folder in the case (those the case already holds unchanged are not
    stored again, so merging twice adds nothing) and this run's failures. The case keeps no per-pixel
    maps for them: the folder records only the maps' SHA-256. Returns (stored, already in the case)."""
    from forensics_app.core.report_json import results_from_document

    stored = current = 0
    for image in iter_findings(root):
        (findings,), _ = results_from_document({"images": [image]})
        if case.add_findings(findings, run_info, unless_current=True):
            stored += 1
        else:
            current += 1
        on_item()
    for path, error in new_failures:
        case.add_failure(path, error)
    return stored, current


# -- helpers ---------------------------------------------------------------------------------------
def _run_record(root: Path, identity: dict, run_info: dict) -> dict:
    """run.json of the folder: written by the first run; a later run must analyse the same way."""
    path = root / RUN
    if path.exists():
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ForensicsError(f"{printable(str(path))} cannot be read ({exc}); it is not a batch folder this "
                                 "version can resume.") from None
        if not isinstance(record, dict) or record.get("schema") != BATCH_SCHEMA:
            raise ForensicsError(f"{printable(str(path))} is not a batch record of schema {BATCH_SCHEMA}.")
        if record.get("identity") != identity:
            differs = [k for k in identity if record.get("identity", {}).get(k) != identity[k]]
            if "models" in differs:  # other models have other calibrations: that says nothing more
                differs = [k for k in differs if k != "calibrations_sha256"]
            raise ForensicsError(
                f"{printable(str(root))} holds findings of another analysis (different {', '.join(differs)}: "
                f"{_difference_hint(differs)}); its images would not be comparable. Give another --out, or run "
                "with the settings recorded in its run.json.")
        return record
    if (root / FINDINGS).exists() or (root / FAILURES).exists():
        raise ForensicsError(f"{printable(str(root))} has findings but no {RUN}: it cannot tell how they were made, "
                             "so it is not resumed. Give another --out.")
    record = {"schema": BATCH_SCHEMA, "identity": identity, "run_info": run_info}
    write_atomically(path, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
    return record


def _difference_hint(differs: list[str]) -> str:
    hints = {"settings": "--method or --alpha", "models": "--model, or models installed or replaced",
             "methods": "method versions or parameters", "calibrations_sha256": "the models were recalibrated"}
    return "; ".join(hints[k] for k in differs if k in hints) or "unknown"


def _digest(sha256, where: str) -> bytes:
    try:
        digest = bytes.fromhex(sha256)
    except (TypeError, ValueError):
        digest = b""
    if len(digest) != 32:
        raise ForensicsError(f"{where} has no valid sha256; the folder was edited. Give another --out.")
    return digest


def _read_lines(path: Path, on_line: Callable[[dict, str], None]) -> int:
    """Call on_line for every complete line; cut off a torn tail (a killed run's last, partial write).
    Returns how many lines were cut off."""
    if not path.exists():
        return 0
    bad_at = None  # byte offset of the first line that is not a complete JSON object
    bad_lines = 0
    offset = 0
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            value = _parse(raw)
            if value is None:
                bad_at = offset if bad_at is None else bad_at
                bad_lines += 1
            elif bad_at is not None:
                raise ForensicsError(f"{printable(str(path))} line {number} is preceded by a torn or "
                                     "unreadable line: the file was edited, not left by a killed run. Give "
                                     "another --out.")
            else:
                on_line(value, f"{printable(str(path))} line {number}")
            offset += len(raw)
    if bad_at is not None:
        with open(path, "rb+") as fh:
            fh.truncate(bad_at)
            os.fsync(fh.fileno())
    return bad_lines


def _iter_valid_lines(path: Path) -> Iterator[dict]:
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for raw in fh:
            value = _parse(raw)
            if value is not None:
                yield value


def _parse(raw: bytes) -> dict | None:
    if not raw.endswith(b"\n"):
        return None
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _append(path: Path, lines: list[str]) -> None:
    if not lines:
        return
    with open(path, "ab") as fh:
        fh.write("".join(lines).encode("ascii"))
        fh.flush()
        os.fsync(fh.fileno())
