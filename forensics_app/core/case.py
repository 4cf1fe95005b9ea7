"""The case file: one SQLite file per case holding the evidence, every analysis, its maps and the notes.

Tables (the schema version is PRAGMA user_version; MIGRATIONS[i] upgrades a version-i file to i + 1,
so files made by older versions open and are upgraded in place):
- meta: key/value: name, examiner, created (UTC), created_with (software version)
- evidence: one row per (path, sha256): size, format, dimensions, facts and provenance metadata (JSON)
- results: the cache of what the models computed, one row per (evidence sha256, model_hash, method,
  method version, parameters incl. tiling): score, components, provider, seconds, and the maps as an
  np.savez_compressed BLOB. Re-analysing the same bytes with the same model and method reuses it.
- run_infos: software versions, settings, models with weight/ONNX hashes (Engine.run_info()), once per content
- analyses: one per analysis of an evidence item: run info, start/finish (UTC), analysed region, verdict
- readings: an analysis's calibrated candidates in rank order (p-values, status, calibration summary),
  each pointing at its cached result
- failures: files that could not be analysed, with the plain-language message
- notes: examiner notes per evidence sha256; append-only, like a paper case file
- integrity_checks: every re-hash of the evidence files when the case is opened: ok / changed / missing
- skipped: folder entries an analysis's walk left out without analysing them, with the reason

Paths are stored exactly: as text when they are valid Unicode, otherwise as their bytes (a BLOB), so a
file name that is not valid UTF-8 is kept as it is on disk.

Maps are stored as float16 (relative error below 0.05 %, far finer than a colour map shows; scores are
computed at full precision before storage) unless a value lies outside float16's range, then float32;
they always come back as float32.

Crash safety: WAL journal with synchronous=FULL, and every analysed item is written in one transaction,
so a killed process loses at most the item in flight. Two processes may analyse into one case: a
reading identical to the latest stored one is not stored again (checked inside the writing transaction).

Nothing is written to a file before its header says it is a case file (SQLite with APPLICATION_ID): any
other database, an empty file, a pipe or a device is refused untouched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import numpy as np

from forensics_app import __version__
from forensics_app.core.calibrate import parameters_for
from forensics_app.core.errors import ForensicsError
from forensics_app.core.evidence import load_evidence, sha256_of_file
from forensics_app.core.files import open_regular_file, printable
from forensics_app.core.findings import CandidateFinding, FailedImage, ImageFindings, Verdict, absolute_path
from forensics_app.core.jobs import NEVER_CANCELLED, CancelToken, ProgressCallback, no_progress
from forensics_app.core.methods.base import MethodResult
from forensics_app.core.pipeline import BatchResult, analyse_paths

log = logging.getLogger(__name__)

APPLICATION_ID = 0x46524E43  # "FRNC" in the SQLite header: tells a case file from any other database

MIGRATIONS = [
    # 0 -> 1
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE evidence (
        id INTEGER PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT NOT NULL, size_bytes INTEGER, format TEXT,
        width INTEGER, height INTEGER, facts_json TEXT NOT NULL, metadata_json TEXT NOT NULL, added TEXT NOT NULL,
        UNIQUE (path, sha256));
    CREATE INDEX evidence_sha256 ON evidence (sha256);
    CREATE TABLE results (
        key TEXT PRIMARY KEY, evidence_sha256 TEXT NOT NULL, model_hash TEXT NOT NULL, method TEXT NOT NULL,
        method_version TEXT NOT NULL, parameters_json TEXT NOT NULL, score REAL NOT NULL,
        components_json TEXT NOT NULL, provider TEXT NOT NULL, seconds REAL NOT NULL, maps BLOB NOT NULL,
        created TEXT NOT NULL);
    CREATE TABLE run_infos (id INTEGER PRIMARY KEY, digest TEXT NOT NULL UNIQUE, json TEXT NOT NULL);
    CREATE TABLE analyses (
        id INTEGER PRIMARY KEY, evidence_id INTEGER NOT NULL REFERENCES evidence (id),
        run_info_id INTEGER NOT NULL REFERENCES run_infos (id), started TEXT NOT NULL, finished TEXT NOT NULL,
        region_json TEXT NOT NULL, verdict_label TEXT NOT NULL, verdict_model TEXT, verdict_json TEXT NOT NULL);
    CREATE INDEX analyses_evidence ON analyses (evidence_id);
    CREATE TABLE readings (
        analysis_id INTEGER NOT NULL REFERENCES analyses (id), rank INTEGER NOT NULL,
        result_key TEXT NOT NULL REFERENCES results (key), model TEXT NOT NULL, model_hash TEXT NOT NULL,
        weights_json TEXT NOT NULL, onnx_json TEXT NOT NULL, method TEXT NOT NULL, method_version TEXT NOT NULL,
        score REAL NOT NULL, p_value REAL, p_real REAL, status TEXT NOT NULL, candidate_json TEXT NOT NULL,
        PRIMARY KEY (analysis_id, rank));
    CREATE TABLE failures (id INTEGER PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT, error TEXT NOT NULL,
                           recorded TEXT NOT NULL);
    CREATE TABLE notes (id INTEGER PRIMARY KEY, sha256 TEXT NOT NULL, text TEXT NOT NULL, author TEXT NOT NULL,
                        created TEXT NOT NULL);
    CREATE INDEX notes_sha256 ON notes (sha256);
    CREATE TABLE integrity_checks (id INTEGER PRIMARY KEY, checked TEXT NOT NULL, path TEXT NOT NULL,
                                   sha256 TEXT NOT NULL, status TEXT NOT NULL);
    """,
    # 1 -> 2: folder entries a walk left out (hidden, duplicates, ...), so the case says what it did not analyse
    """
    CREATE TABLE skipped (id INTEGER PRIMARY KEY, path NOT NULL, reason TEXT NOT NULL, recorded TEXT NOT NULL);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)

OK, CHANGED, MISSING = "ok", "changed", "missing"


class EvidenceStatus(NamedTuple):
    path: Path
    sha256: str
    status: str  # ok | changed (the bytes differ from those analysed) | missing (gone or unreadable)


@dataclass(frozen=True)
class Note:
    text: str
    author: str
    created: str  # UTC, ISO 8601


@dataclass(frozen=True)
class AnalysisRecord:
    """One analysis of one evidence item, for the case's history."""

    path: Path
    sha256: str
    started: str
    finished: str
    verdict: str
    run_info: dict


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def analysis_parameters(method_parameters: dict, run_info: dict, region: dict) -> dict:
    """Everything besides model and method version that changes a method's raw result (the region: the
    same settings analyse other pixels on a CPU than on a GPU)."""
    return {"method": method_parameters, "tiling": run_info["settings"]["tiling"], "region": region}


def result_key(evidence_sha256: str, model_hash: str, method: str, method_version: str, parameters: dict) -> str:
    """The cache key of one (evidence, model, method, parameters) result."""
    return hashlib.sha256(canonical_json([evidence_sha256, model_hash, method, method_version, parameters])
                          .encode("utf-8")).hexdigest()


_FLOAT16_MAX = float(np.finfo(np.float16).max)


def maps_to_blob(maps: dict[str, np.ndarray]) -> bytes:
    stored = {}
    for name, array in maps.items():
        finite = array[np.isfinite(array)]
        fits = finite.size == 0 or float(np.abs(finite).max()) <= _FLOAT16_MAX
        stored[name] = array.astype(np.float16 if fits else np.float32)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **stored)
    return buffer.getvalue()


# A result stored without its maps (`batch --case` merges findings, which keep only the maps' SHA-256):
# never reused, so the next analysis of the file computes the maps and stores them in its place.
NO_MAPS = maps_to_blob({})


def maps_from_blob(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return {name: npz[name].astype(np.float32) for name in npz.files}


_SQLITE_MAGIC = b"SQLite format 3\x00"


def is_case_file(path: Path) -> bool:
    """True when `path` is a regular file whose SQLite header carries the case application id; reads
    100 bytes and writes nothing (a pipe or device is never read)."""
    try:
        with open_regular_file(path) as fh:
            header = fh.read(100)
    except OSError:
        return False
    application_id = int.from_bytes(header[68:72], "big")  # where SQLite keeps PRAGMA application_id
    return len(header) == 100 and header[:16] == _SQLITE_MAGIC and application_id == APPLICATION_ID


def _path_value(path: Path) -> str | bytes:
    """A path as stored: absolute, as text when it is valid Unicode, else its exact bytes (see the module doc)."""
    text = str(absolute_path(path))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text)
    return text


def _path_of(value: str | bytes) -> Path:
    return Path(os.fsdecode(value) if isinstance(value, bytes) else value)


def _connect(path: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.DatabaseError as exc:
        raise ForensicsError(f"{path} is not a readable case file ({exc}).") from None
    return conn


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise ForensicsError(f"{path} was written by a newer version of forensics-app (case schema {version}; "
                             f"this version reads up to {SCHEMA_VERSION}). Please update forensics-app.")
    for target in range(version + 1, SCHEMA_VERSION + 1):
        # executescript runs the whole upgrade as one transaction: a crash leaves the old version intact
        conn.executescript(f"BEGIN IMMEDIATE;\n{MIGRATIONS[target - 1]}\nPRAGMA user_version = {target};\nCOMMIT;")


class Case:
    """An open case file. Use Case.create or Case.open; close() it or use it as a context manager."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self._conn = conn
        self._lock = threading.RLock()
        self.integrity: list[EvidenceStatus] = []  # result of the re-hash on open

    # -- opening ----------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, name: str, examiner: str) -> Case:
        path = Path(path)
        if not name.strip() or not examiner.strip():
            raise ForensicsError("A case needs a name and an examiner.")
        if os.path.lexists(path):  # a broken link too: SQLite would create the file wherever it points
            raise ForensicsError(f"{printable(str(path))} already exists; open it instead, or choose another "
                                 "file name.")
        if not path.parent.is_dir():
            raise ForensicsError(f"The folder {path.parent} does not exist.")
        conn = _connect(path)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        _migrate(conn, path)
        case = cls(path, conn)
        with case._transaction():
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                             [("name", name.strip()), ("examiner", examiner.strip()),
                              ("created", datetime.now(timezone.utc).isoformat(timespec="seconds")),
                              ("created_with", f"forensics-app {__version__}")])
        # into the main file now: until then the header that identifies a case is only in the WAL, and
        # another process opening the case meanwhile would take it for a foreign file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return case

    @classmethod
    def open(cls, path: str | Path) -> Case:
        """Open (and upgrade) a case file, then re-hash every evidence file: see ``integrity``."""
        path = Path(path)
        if not os.path.lexists(path):
            raise ForensicsError(f"No case file at {printable(str(path))}. Create one with: forensics-app case new "
                                 f"{printable(str(path))} --name NAME --examiner NAME")
        if not is_case_file(path):  # before connecting: SQLite would switch any database to WAL
            raise ForensicsError(f"{printable(str(path))} is not a forensics-app case file; it was not changed.")
        conn = _connect(path)
        case = cls(path, conn)
        try:
            _migrate(conn, path)
            case.check_evidence()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise ForensicsError(f"{path} cannot be opened as a case file ({exc}).") from None
        except BaseException:
            conn.close()
            raise
        return case

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Case:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # -- metadata and integrity -------------------------------------------------------------------
    @property
    def meta(self) -> dict:
        values = {row["key"]: row["value"] for row in self._query("SELECT key, value FROM meta")}
        return {"name": values.get("name", ""), "examiner": values.get("examiner", ""),
                "created": values.get("created", ""), "created_with": values.get("created_with", ""),
                "schema": self._query("PRAGMA user_version")[0][0]}

    def check_evidence(self) -> list[EvidenceStatus]:
        """Re-hash every evidence file and record the outcome; changed or missing files are logged loudly."""
        statuses = []
        for row in self._query("SELECT path, sha256 FROM evidence ORDER BY id"):
            path = _path_of(row["path"])
            try:
                status = OK if sha256_of_file(path) == row["sha256"] else CHANGED
            except OSError:  # gone, or no longer readable: either way the analysed bytes cannot be shown
                status = MISSING
            statuses.append(EvidenceStatus(path, row["sha256"], status))
            if status != OK:
                log.warning("EVIDENCE %s: %s no longer has SHA-256 %s", status.upper(), path, row["sha256"])
        checked = utc_now()
        with self._transaction() as conn:
            conn.executemany("INSERT INTO integrity_checks (checked, path, sha256, status) VALUES (?, ?, ?, ?)",
                             [(checked, _path_value(s.path), s.sha256, s.status) for s in statuses])
        self.integrity = statuses
        return statuses

    def evidence_status(self) -> list[EvidenceStatus]:
        """Every evidence item with its status from the last check (on open); items added since are ok."""
        checked = {(s.path, s.sha256): s.status for s in self.integrity}
        return [EvidenceStatus(_path_of(row["path"]), row["sha256"],
                               checked.get((_path_of(row["path"]), row["sha256"]), OK))
                for row in self._query("SELECT path, sha256 FROM evidence ORDER BY id")]

    def resolve_sha256(self, prefix: str) -> str:
        """The one evidence SHA-256 that starts with ``prefix`` (as typed on the command line)."""
        prefix = prefix.strip().lower()
        found = sorted({row["sha256"] for row in self._query("SELECT sha256 FROM evidence")
                        if row["sha256"].startswith(prefix)}) if prefix else []
        if len(found) != 1:
            raise ForensicsError(f"No evidence in this case has a SHA-256 starting with {prefix!r}." if not found
                                 else f"{prefix!r} matches {len(found)} evidence items; type more characters.")
        return found[0]

    # -- writing analyses -------------------------------------------------------------------------
    def add_findings(self, findings: ImageFindings, run_info: dict, started: str | None = None,
                     finished: str | None = None, *, unless_current: bool = False) -> bool:
        """Store one analysed item (evidence, cached results with maps, calibrated readings, verdict) atomically.

        ``unless_current``: store no new analysis when the latest stored one of this file already says
        exactly this (the cached results are still kept). It is decided inside the writing transaction,
        so two processes analysing the same file into one case store it once. Returns whether an
        analysis was stored."""
        finished = finished or utc_now()
        started = started or finished
        models = {m["id"]: m for m in run_info["models"]}
        # a learned fingerprint's reading names a class, not a zoo model: its identity is the extractor's ONNX
        for e in run_info.get("extractors", []):
            models[("extractor", e["id"])] = {"model_hash": e["onnx_sha256"], "weights": {},
                                              "onnx": {e["id"]: {"sha256": e["onnx_sha256"]}}}
        identity = lambda c: models[("extractor", c.extractor) if c.extractor else c.model]  # noqa: E731
        info_json = canonical_json(run_info)
        facts = findings.facts
        path = _path_value(findings.path)
        with self._transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO evidence (path, sha256, size_bytes, format, width, height, "
                         "facts_json, metadata_json, added) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (path, findings.sha256, facts.get("size_bytes"), facts.get("format"),
                          facts.get("width"), facts.get("height"), json.dumps(facts), json.dumps(findings.metadata),
                          finished))
            keys = []
            for c in findings.candidates:
                model = identity(c)
                keys.append(result_key(findings.sha256, model["model_hash"], c.method, c.method_version,
                                       analysis_parameters(c.parameters, run_info, c.region)))
                maps = {name: array for (m, meth, name), array in findings.maps.items()
                        if (m, meth) == (c.model, c.method)}
                conn.execute(
                    "INSERT INTO results (key, evidence_sha256, model_hash, method, method_version, "
                    "parameters_json, score, components_json, provider, seconds, maps, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET maps = excluded.maps WHERE results.maps = ?",
                    (keys[-1], findings.sha256, model["model_hash"], c.method, c.method_version,
                     canonical_json(analysis_parameters(c.parameters, run_info, c.region)), c.score, json.dumps(c.components),
                     c.provider, c.seconds, maps_to_blob(maps), finished, NO_MAPS))
            if unless_current and self.is_current(findings):
                return False
            evidence_id = conn.execute("SELECT id FROM evidence WHERE path = ? AND sha256 = ?",
                                       (path, findings.sha256)).fetchone()[0]
            digest = hashlib.sha256(info_json.encode("utf-8")).hexdigest()
            conn.execute("INSERT OR IGNORE INTO run_infos (digest, json) VALUES (?, ?)", (digest, info_json))
            run_info_id = conn.execute("SELECT id FROM run_infos WHERE digest = ?", (digest,)).fetchone()[0]
            analysis_id = conn.execute(
                "INSERT INTO analyses (evidence_id, run_info_id, started, finished, region_json, verdict_label, "
                "verdict_model, verdict_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (evidence_id, run_info_id, started, finished, json.dumps(findings.region), findings.verdict.label,
                 findings.verdict.model, json.dumps(dataclasses.asdict(findings.verdict)))).lastrowid
            for rank, (c, key) in enumerate(zip(findings.candidates, keys)):
                model = identity(c)
                conn.execute(
                    "INSERT INTO readings (analysis_id, rank, result_key, model, model_hash, weights_json, onnx_json, "
                    "method, method_version, score, p_value, p_real, status, candidate_json) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (analysis_id, rank, key, c.model, model["model_hash"], json.dumps(model["weights"]),
                     json.dumps(model["onnx"]), c.method, c.method_version, c.score, c.p_value, c.p_real, c.status,
                     json.dumps(dataclasses.asdict(c))))
        return True

    def add_failure(self, path: str | Path, error: str) -> None:
        try:
            sha256 = sha256_of_file(path)
        except OSError:
            sha256 = None
        with self._transaction() as conn:
            conn.execute("INSERT INTO failures (path, sha256, error, recorded) VALUES (?, ?, ?, ?)",
                         (_path_value(path), sha256, error, utc_now()))

    def add_skipped(self, entries: Iterable[tuple[Path, str]]) -> None:
        """Record folder entries a walk left out, each (path, reason), in one transaction."""
        recorded = utc_now()
        with self._transaction() as conn:
            conn.executemany("INSERT INTO skipped (path, reason, recorded) VALUES (?, ?, ?)",
                             [(_path_value(path), reason, recorded) for path, reason in entries])

    def skipped(self) -> list[tuple[Path, str]]:
        """Every (path, reason) ever recorded as left out by a walk, once each, first recorded first."""
        rows = self._query("SELECT path, reason FROM skipped GROUP BY path, reason ORDER BY MIN(id)")
        return [(_path_of(row["path"]), row["reason"]) for row in rows]

    def cached_result(self, key: str) -> MethodResult | None:
        rows = self._query("SELECT * FROM results WHERE key = ? AND maps != ?", (key, NO_MAPS))
        if not rows:
            return None
        row = rows[0]
        parameters = json.loads(row["parameters_json"])
        return MethodResult(row["method"], row["method_version"], "", row["score"], json.loads(row["components_json"]),
                            maps_from_blob(row["maps"]), provider=row["provider"], parameters=parameters["method"],
                            seconds=row["seconds"], region=parameters["region"])

    # -- reading ----------------------------------------------------------------------------------
    def _latest_analyses(self, only: tuple[Path, str] | None = None) -> list[sqlite3.Row]:
        where, parameters = ("AND e.path = ? AND e.sha256 = ? ", (_path_value(only[0]), only[1])) if only else ("", ())
        return self._query(
            "SELECT a.*, e.path, e.sha256, e.facts_json, e.metadata_json FROM analyses a "
            "JOIN evidence e ON e.id = a.evidence_id "
            f"WHERE a.id = (SELECT MAX(id) FROM analyses WHERE evidence_id = e.id) {where}ORDER BY e.id", parameters)

    def _readings(self, analysis_id: int) -> list[sqlite3.Row]:
        return self._query("SELECT candidate_json, result_key FROM readings WHERE analysis_id = ? ORDER BY rank",
                           (analysis_id,))

    def findings(self, with_maps: bool = True, only: tuple[Path, str] | None = None) -> list[ImageFindings]:
        """The latest analysis of every evidence item, as it was stored (verdict, ranked candidates, maps);
        ``only``: of the one item with this (path, sha256), so a big case's maps are read one item at a time."""
        out = []
        for row in self._latest_analyses(only):
            candidates, maps = [], {}
            for reading in self._readings(row["id"]):
                candidate = CandidateFinding(**json.loads(reading["candidate_json"]))
                candidates.append(candidate)
                if with_maps:
                    blob = self._query("SELECT maps FROM results WHERE key = ?", (reading["result_key"],))[0][0]
                    for name, array in maps_from_blob(blob).items():
                        maps[(candidate.model, candidate.method, name)] = array
            out.append(ImageFindings(path=_path_of(row["path"]), sha256=row["sha256"],
                                     facts=json.loads(row["facts_json"]),
                                     region=json.loads(row["region_json"]),
                                     verdict=Verdict(**json.loads(row["verdict_json"])), candidates=candidates,
                                     metadata=json.loads(row["metadata_json"]), maps=maps))
        return out

    def failures(self) -> list[FailedImage]:
        """Files whose latest attempt failed (a later successful analysis of the same path clears it)."""
        out = []
        for row in self._query("SELECT f.path, f.error, f.recorded FROM failures f "
                               "WHERE f.id = (SELECT MAX(id) FROM failures WHERE path = f.path) ORDER BY f.id"):
            later = self._query("SELECT 1 FROM analyses a JOIN evidence e ON e.id = a.evidence_id "
                                "WHERE e.path = ? AND a.finished > ?", (row["path"], row["recorded"]))
            if not later:
                out.append(FailedImage(_path_of(row["path"]), row["error"]))
        return out

    def run_info(self) -> list[dict]:
        """Software versions, settings and models (with weight/ONNX hashes) of the latest analyses,
        one dict per distinct run (as Engine.run_info() returned it), oldest first."""
        ids = sorted({row["run_info_id"] for row in self._latest_analyses()})
        return [json.loads(self._query("SELECT json FROM run_infos WHERE id = ?", (i,))[0][0]) for i in ids]

    def history(self) -> list[AnalysisRecord]:
        """Every analysis ever stored in this case, oldest first."""
        return [AnalysisRecord(_path_of(row["path"]), row["sha256"], row["started"], row["finished"],
                               row["verdict_label"], json.loads(row["json"]))
                for row in self._query("SELECT a.started, a.finished, a.verdict_label, e.path, e.sha256, r.json "
                                       "FROM analyses a JOIN evidence e ON e.id = a.evidence_id "
                                       "JOIN run_infos r ON r.id = a.run_info_id ORDER BY a.id")]

    def is_current(self, findings: ImageFindings) -> bool:
        """True when the latest stored analysis of this file says exactly the same (nothing new to store)."""
        rows = self._query("SELECT a.id, a.verdict_json, a.region_json FROM analyses a "
                           "JOIN evidence e ON e.id = a.evidence_id WHERE e.path = ? AND e.sha256 = ? "
                           "ORDER BY a.id DESC LIMIT 1", (_path_value(findings.path), findings.sha256))
        if not rows:
            return False
        def reading(candidate: dict) -> dict:  # how long a method took is no part of what it found
            return {k: v for k, v in candidate.items() if k != "seconds"}

        stored = [reading(json.loads(r["candidate_json"])) for r in self._readings(rows[0]["id"])]
        return (json.loads(rows[0]["verdict_json"]) == dataclasses.asdict(findings.verdict)
                and json.loads(rows[0]["region_json"]) == findings.region
                and stored == [reading(json.loads(json.dumps(dataclasses.asdict(c)))) for c in findings.candidates])

    # -- notes ------------------------------------------------------------------------------------
    def add_note(self, sha256: str, text: str, author: str | None = None) -> None:
        if not self._query("SELECT 1 FROM evidence WHERE sha256 = ?", (sha256,)):
            raise ForensicsError(f"No evidence in this case has SHA-256 {sha256}.")
        if not text.strip():
            raise ForensicsError("A note needs some text.")
        with self._transaction() as conn:
            conn.execute("INSERT INTO notes (sha256, text, author, created) VALUES (?, ?, ?, ?)",
                         (sha256, text.strip(), author or self.meta["examiner"],
                          datetime.now(timezone.utc).isoformat(timespec="seconds")))

    def notes(self, sha256: str) -> list[Note]:
        return [Note(row["text"], row["author"], row["created"])
                for row in self._query("SELECT text, author, created FROM notes WHERE sha256 = ? ORDER BY id",
                                       (sha256,))]


# -- analysing into a case ------------------------------------------------------------------------
@dataclass
class CaseBatchResult(BatchResult):
    reused: list[Path] = field(default_factory=list)  # answered from the case's cached results: no model ran


class _CaseCachedEngine:
    """Engine.analyse_file that reuses results cached in the case, noting whether any method had to run."""

    def __init__(self, engine, case: Case, run_info: dict):
        self.engine, self.case, self.run_info = engine, case, run_info
        self.ran_method = False
        self.started = ""

    def analyse_file(self, path: Path, progress: ProgressCallback, cancel: CancelToken) -> ImageFindings:
        self.ran_method, self.started = False, utc_now()
        evidence = load_evidence(path, self.engine.settings.intake)
        return self.engine.analyse_evidence(evidence, progress, cancel, self.stored_result)

    def stored_result(self, sha256: str, loaded, method, region: dict) -> MethodResult | None:
        key = result_key(sha256, loaded.installed.model_hash, method.name, method.version,
                         analysis_parameters(parameters_for(method, loaded.installed.manifest), self.run_info, region))
        result = self.case.cached_result(key)
        if result is None:
            self.ran_method = True
            return None
        return dataclasses.replace(result, model=loaded.id)


def analyse_evidence_into_case(engine, case: Case, evidence, run_info: dict, progress: ProgressCallback = no_progress,
                               cancel: CancelToken = NEVER_CANCELLED) -> tuple[ImageFindings, bool]:
    """One loaded evidence item analysed into the case and stored at once (the window loads the pixels
    itself, to show them). Returns the findings and whether every result came from the case (no model ran).
    ``run_info``: the engine's, worked out once per engine rather than per item."""
    cached_engine = _CaseCachedEngine(engine, case, run_info)
    cached_engine.started = utc_now()
    findings = engine.analyse_evidence(evidence, progress, cancel, cached_engine.stored_result)
    case.add_findings(findings, run_info, started=cached_engine.started, unless_current=True)
    return findings, not cached_engine.ran_method


def analyse_into_case(engine, case: Case, paths: Iterable[Path], progress: ProgressCallback = no_progress,
                      cancel: CancelToken = NEVER_CANCELLED,
                      on_result: Callable[[ImageFindings | FailedImage], None] = lambda r: None) -> CaseBatchResult:
    """Analyse files into the case, each written in its own transaction as soon as it is done.

    Results already in the case are reused (no model runs); readings and verdicts are re-derived from the
    current calibrations and stored again only if they differ from the latest stored analysis.
    """
    run_info = engine.run_info()
    cached_engine = _CaseCachedEngine(engine, case, run_info)
    reused: list[Path] = []

    def record(result: ImageFindings | FailedImage) -> None:
        if isinstance(result, FailedImage):
            case.add_failure(result.path, result.error)
        else:
            case.add_findings(result, run_info, started=cached_engine.started, unless_current=True)
            if not cached_engine.ran_method:
                reused.append(result.path)
        on_result(result)

    batch = analyse_paths(cached_engine, paths, progress, cancel, on_result=record)
    return CaseBatchResult(batch.results, batch.cancelled, reused)
