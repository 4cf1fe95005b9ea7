"""The case file: storage round trip, result cache, integrity checks on open, notes, schema upgrades, CLI."""

from __future__ import annotations

import logging
import shutil
import sqlite3

import numpy as np
import pytest

from conftest import real_crop, save_png, taef2_parameters
from forensics_app.cli import main
from forensics_app.core import case as case_module
from forensics_app.core.calibration import Calibration
from forensics_app.core.case import Case, analyse_into_case, maps_from_blob, maps_to_blob
from forensics_app.core.errors import ForensicsError
from forensics_app.core.evidence import sha256_of_file
from forensics_app.core.findings import FailedImage
from forensics_app.core.jobs import CancelToken
from forensics_app.core.pipeline import AnalysisSettings, Engine

PHOTOS = ("baboon.png", "barbara.png", "flowers.png")


def calibration(model: str, method, real_centre: float) -> Calibration:
    """A small synthetic calibration so that readings carry real p-values."""
    return Calibration(model, method.name, method.version, taef2_parameters(method),
                       own_scores=np.linspace(0.8, 1.6, 40), real_scores=np.linspace(real_centre - 1, real_centre + 1, 999),
                       data={"description": "synthetic, for tests"})


@pytest.fixture(scope="module")
def engine(installed_zoo):
    engine = Engine(installed_zoo, AnalysisSettings(methods=("aedr", "reconstruction")))
    for loaded in engine.models:
        loaded.calibrations = {m.name: calibration(loaded.id, m, 3.0) for m in engine.methods}
    return engine


@pytest.fixture()
def photos(tmp_path):
    folder = tmp_path / "evidence"
    folder.mkdir()
    return [save_png(real_crop(name, side=96), folder / name) for name in PHOTOS]


class MethodRunCounter:
    """Spy on every method's run() to count model runs."""

    def __init__(self, engine, monkeypatch):
        self.calls: list[str] = []
        for method in engine.methods:
            monkeypatch.setattr(method, "run", self.wrap(method.name, method.run))

    def wrap(self, name, run):
        def counted(*args, **kwargs):
            self.calls.append(name)
            return run(*args, **kwargs)
        return counted


@pytest.fixture(scope="module")
def analysed(tmp_path_factory, engine):
    """A case with three photos analysed once, the findings as computed, and the evidence hashes."""
    folder = tmp_path_factory.mktemp("analysed")
    paths = [save_png(real_crop(name, side=96), folder / name) for name in PHOTOS]
    hashes = {p: sha256_of_file(p) for p in paths}
    with Case.create(folder / "case.sqlite", "Test case", "A. Examiner") as case:
        batch = analyse_into_case(engine, case, paths)
    return folder / "case.sqlite", batch, hashes


def test_create_writes_metadata_schema_and_wal(tmp_path):
    path = tmp_path / "new.case"
    with Case.create(path, "  Harbour fire  ", "J. Doe") as case:
        meta = case.meta
    assert meta["name"] == "Harbour fire" and meta["examiner"] == "J. Doe"
    assert meta["created"].endswith("+00:00") and meta["schema"] == case_module.SCHEMA_VERSION
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == case_module.SCHEMA_VERSION
    with pytest.raises(ForensicsError, match="already exists"):
        Case.create(path, "again", "J. Doe")
    with pytest.raises(ForensicsError, match="name and an examiner"):
        Case.create(tmp_path / "other.case", "x", " ")
    with pytest.raises(ForensicsError, match="does not exist"):
        Case.create(tmp_path / "no" / "such.case", "x", "y")


def test_open_refuses_missing_foreign_and_newer_files(tmp_path):
    with pytest.raises(ForensicsError, match="No case file"):
        Case.open(tmp_path / "absent.case")
    (tmp_path / "text.case").write_text("not a database at all, just some words " * 50)
    with pytest.raises(ForensicsError):
        Case.open(tmp_path / "text.case")
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)")
    with pytest.raises(ForensicsError, match="not a forensics-app case file"):
        Case.open(tmp_path / "other.db")
    Case.create(tmp_path / "newer.case", "n", "e").close()
    conn = sqlite3.connect(tmp_path / "newer.case")
    conn.execute(f"PRAGMA user_version = {case_module.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(ForensicsError, match="newer version"):
        Case.open(tmp_path / "newer.case")


def test_open_upgrades_an_older_file_through_the_migrations(tmp_path, monkeypatch):
    Case.create(tmp_path / "old.case", "Old", "E").close()
    upgrade = "ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;"
    monkeypatch.setattr(case_module, "MIGRATIONS", case_module.MIGRATIONS + [upgrade])
    monkeypatch.setattr(case_module, "SCHEMA_VERSION", len(case_module.MIGRATIONS))
    with Case.open(tmp_path / "old.case") as case:
        assert case.meta["schema"] == case_module.SCHEMA_VERSION
        assert case.meta["name"] == "Old"
    columns = [row[1] for row in sqlite3.connect(tmp_path / "old.case").execute("PRAGMA table_info(notes)")]
    assert "pinned" in columns


def test_findings_come_back_exactly_as_analysed(analysed, engine):
    path, batch, hashes = analysed
    with Case.open(path) as case:
        stored = case.findings()
        assert case.run_info() == [engine.run_info()]
        assert [s.status for s in case.evidence_status()] == ["ok"] * len(PHOTOS)
    assert len(stored) == len(batch.results) == len(PHOTOS)
    for original, back in zip(batch.results, stored):
        assert back.path == original.path.absolute() and back.sha256 == original.sha256
        assert back.verdict == original.verdict
        assert back.candidates == original.candidates  # ranked order, scores, p-values, calibration summaries
        assert any(c.p_value is not None for c in back.candidates)
        assert back.facts == original.facts and back.region == original.region
        assert back.metadata == original.metadata
        assert set(back.maps) == set(original.maps) and back.maps
        for key, array in original.maps.items():
            assert back.maps[key].dtype == np.float32
            np.testing.assert_allclose(back.maps[key], array, rtol=1e-3, atol=1e-6)  # stored as float16
    assert all(sha256_of_file(p) == h for p, h in hashes.items())  # evidence never written


def test_reanalysing_runs_no_model_and_stores_nothing_new(analysed, engine, monkeypatch, tmp_path):
    path, batch, hashes = analysed
    copy = shutil.copy(path, tmp_path / "copy.case")
    spy = MethodRunCounter(engine, monkeypatch)
    with Case.open(copy) as case:
        before = len(case.history())
        again = analyse_into_case(engine, case, list(hashes))
        assert spy.calls == []
        assert again.reused == list(hashes)
        assert len(case.history()) == before
        assert [f.verdict for f in case.findings()] == [f.verdict for f in batch.results]


def test_new_calibration_rederives_readings_without_running_a_model(analysed, engine, monkeypatch, tmp_path):
    path, batch, hashes = analysed
    copy = shutil.copy(path, tmp_path / "copy.case")
    spy = MethodRunCounter(engine, monkeypatch)
    loaded = engine.models[0]
    monkeypatch.setattr(loaded, "calibrations", {m.name: calibration(loaded.id, m, 10.0) for m in engine.methods})
    with Case.open(copy) as case:
        analyse_into_case(engine, case, list(hashes))
        assert spy.calls == []
        assert len(case.history()) == 2 * len(PHOTOS)
        latest = case.findings()
    for old, new in zip(batch.results, latest):
        assert {(c.model, c.method): c.score for c in new.candidates} == {
            (c.model, c.method): c.score for c in old.candidates}  # the cached scores
        assert {(c.method, c.p_real) for c in new.candidates} != {(c.method, c.p_real) for c in old.candidates}


def test_only_the_missing_method_runs_when_a_method_is_added(installed_zoo, photos, monkeypatch, tmp_path):
    aedr_only = Engine(installed_zoo, AnalysisSettings(methods=("aedr",)))
    both = Engine(installed_zoo, AnalysisSettings(methods=("aedr", "reconstruction")))
    with Case.create(tmp_path / "c.case", "c", "e") as case:
        analyse_into_case(aedr_only, case, photos[:1])
        spy = MethodRunCounter(both, monkeypatch)
        batch = analyse_into_case(both, case, photos[:1])
        assert spy.calls == ["reconstruction"]
        assert batch.reused == []
        assert {c.method for c in case.findings()[0].candidates} == {"aedr", "reconstruction"}
        assert len(case.run_info()) == 1 and case.run_info()[0]["settings"]["methods"] == ["aedr", "reconstruction"]


def test_open_rechecks_evidence_and_flags_changed_and_missing_files(engine, photos, tmp_path, caplog):
    with Case.create(tmp_path / "c.case", "c", "e") as case:
        analyse_into_case(engine, case, photos)
    changed, missing = photos[0], photos[1]
    changed.write_bytes(changed.read_bytes() + b"tampered")
    missing.unlink()
    with caplog.at_level(logging.WARNING, logger="forensics_app.core.case"), Case.open(tmp_path / "c.case") as case:
        statuses = case.evidence_status()
        assert case.integrity == statuses
        assert [s.status for s in statuses] == ["changed", "missing", "ok"]
        assert [s.path for s in statuses] == [p.absolute() for p in photos]
        assert len(case.findings()) == 3  # the analyses stay readable
    assert "CHANGED" in caplog.text and "MISSING" in caplog.text
    log = sqlite3.connect(tmp_path / "c.case").execute("SELECT status FROM integrity_checks ORDER BY id").fetchall()
    assert [s for (s,) in log] == ["changed", "missing", "ok"]


def test_failures_are_recorded_and_cleared_by_a_later_success(engine, photos, tmp_path):
    broken = tmp_path / "evidence" / "broken.png"
    broken.write_bytes(b"not an image")
    with Case.create(tmp_path / "c.case", "c", "e") as case:
        batch = analyse_into_case(engine, case, [broken, photos[0]])
        assert isinstance(batch.results[0], FailedImage)
        assert [f.path for f in case.failures()] == [broken.absolute()]
        shutil.copy(photos[0], broken)
        analyse_into_case(engine, case, [broken])
        assert case.failures() == []


def test_cancelling_keeps_the_items_already_written(engine, photos, tmp_path):
    cancel = CancelToken()
    with Case.create(tmp_path / "c.case", "c", "e") as case:
        batch = analyse_into_case(engine, case, photos, cancel=cancel, on_result=lambda result: cancel.cancel())
        assert batch.cancelled
        assert [f.path for f in case.findings()] == [photos[0].absolute()]


def test_notes_per_evidence_item(analysed, tmp_path):
    path, batch, hashes = analysed
    copy = shutil.copy(path, tmp_path / "copy.case")
    sha = batch.results[0].sha256
    with Case.open(copy) as case:
        case.add_note(sha, "Received by email from the source on 3 March.")
        case.add_note(sha, "Second look.", author="B. Reviewer")
        notes = case.notes(sha)
        assert [(n.text, n.author) for n in notes] == [("Received by email from the source on 3 March.", "A. Examiner"),
                                                       ("Second look.", "B. Reviewer")]
        assert case.notes(batch.results[1].sha256) == []
        assert case.resolve_sha256(sha[:10].upper()) == sha
        with pytest.raises(ForensicsError, match="No evidence"):
            case.add_note("0" * 64, "text")
        with pytest.raises(ForensicsError, match="No evidence"):
            case.resolve_sha256("zz")


def test_maps_blob_keeps_values_outside_float16_range():
    maps = {"small": np.array([[0.5, 1e-3]], np.float32), "large": np.array([[1e6, 1.0]], np.float32)}
    back = maps_from_blob(maps_to_blob(maps))
    assert all(a.dtype == np.float32 for a in back.values())
    np.testing.assert_allclose(back["small"], maps["small"], rtol=1e-3)
    np.testing.assert_array_equal(back["large"], maps["large"])


def test_cli_case_new_analyze_show_note(installed_zoo, photos, tmp_path, capsys):
    case_file = str(tmp_path / "cli.case")
    hashes = {p: sha256_of_file(p) for p in photos}
    home = ["--home", str(installed_zoo.home)]
    assert main(["case", "new", case_file, "--name", "Harbour fire", "--examiner", "J. Doe"]) == 0
    assert main(home + ["analyze", str(photos[0].parent), "--case", case_file]) == 0
    assert "0 reused" in capsys.readouterr().out
    assert main(home + ["analyze", str(photos[0].parent), "--case", case_file]) == 0
    assert f"{len(photos)} reused" in capsys.readouterr().out
    sha = hashes[photos[0]]
    assert main(["case", "note", case_file, sha[:8], "Provided by the claimant."]) == 0
    assert main(["case", "show", case_file]) == 0
    out = capsys.readouterr().out
    assert "Harbour fire" in out and "J. Doe" in out
    rows = {line.split()[0]: line.replace("NOT attributed", "not-attributed").split()
            for line in out.splitlines() if line.split() and line.split()[0] in PHOTOS}
    assert set(rows) == set(PHOTOS)
    for p in photos:
        row = rows[p.name]
        assert row[1] == hashes[p][:12] and row[3] == "taef2/aedr" and row[-2] == "ok"
    assert rows[photos[0].name][-1] == "1"  # one note
    assert all(sha256_of_file(p) == h for p, h in hashes.items())
    photos[1].unlink()
    assert main(["case", "show", case_file]) == 3
    captured = capsys.readouterr()
    assert "WARNING: evidence MISSING" in captured.err and " missing " in captured.out
    assert main(["case", "note", case_file, "ffffffffff", "x"]) == 2
