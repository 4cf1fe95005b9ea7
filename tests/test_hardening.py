"""Issue #13: nothing outside the application's folders is touched, nothing tampered with is trusted.

One test (or a few) per defect: outputs that would overwrite inputs, non-case files opened as cases,
pipes and devices, entries a folder walk leaves out, file names that are not UTF-8, decoders and memory
of previews and conversions, malformed inputs, two processes on one case.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader

from conftest import real_crop, save_png
from forensics_app.cli import EXIT_BROKEN_PIPE, main
from forensics_app.core import files
from forensics_app.core.calibration import load_calibrations
from forensics_app.core.case import Case, analyse_into_case, is_case_file
from forensics_app.core.errors import ForensicsError
from forensics_app.core.evidence import IntakeLimits, load_evidence, preview_image
from forensics_app.core.imageprep import Region
from forensics_app.core.pipeline import AnalysisSettings, Engine
from forensics_app.core.report.figures import check_evidence
from forensics_app.core.report_json import read_findings_document

TIMEOUT_S = 120  # a command that blocks on a pipe would otherwise hang the suite


def run_cli(args, home, **kwargs):
    env = dict(os.environ, FORENSICS_APP_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "forensics_app", *args], capture_output=True, env=env,
                          timeout=TIMEOUT_S, **kwargs)


def text(result) -> str:
    return (result.stdout + result.stderr).decode("utf-8", "backslashreplace")


@pytest.fixture(scope="module")
def engine(installed_zoo):
    return Engine(installed_zoo, AnalysisSettings(methods=("aedr",)))


@pytest.fixture()
def photo(tmp_path) -> Path:
    return save_png(real_crop("baboon.png", side=64), tmp_path / "photo.png")


@pytest.fixture()
def case_file(tmp_path, engine, photo) -> Path:
    path = tmp_path / "x.case"
    with Case.create(path, "Case", "Examiner") as case:
        analyse_into_case(engine, case, [photo])
    return path


# -- 4: outputs never overwrite inputs, are written whole, and a missing folder is a usage error ------------
def test_outputs_that_are_inputs_are_refused_before_any_work(installed_zoo, tmp_path, photo, case_file):
    before = photo.read_bytes()
    link = tmp_path / "innocent.json"
    link.symlink_to(photo)
    home = str(installed_zoo.home)
    for argv in (["analyze", str(photo), "--json", str(photo)],
                 ["analyze", str(photo), "--pdf", str(link)],
                 ["analyze", str(photo), "--case", str(case_file), "--json", str(case_file)],
                 ["report", "make", str(case_file), "--json", str(case_file)],
                 ["report", "make", str(case_file), "--pdf", str(photo)]):  # evidence named in the case
        assert main(["--home", home, *argv]) == 2, argv
    assert photo.read_bytes() == before
    with Case.open(case_file) as case:  # opening a case logs an integrity check; its findings are intact
        assert [f.path for f in case.findings(with_maps=False)] == [photo]


def test_a_missing_output_folder_is_a_usage_error_before_the_batch(installed_zoo, tmp_path, photo, capsys):
    out = tmp_path / "no-such-folder" / "findings.json"
    assert main(["--home", str(installed_zoo.home), "analyze", str(photo), "--json", str(out)]) == 2
    captured = capsys.readouterr()
    assert "does not exist; create it first" in captured.err and "verdict" not in captured.out  # nothing ran


def test_reports_are_written_atomically(installed_zoo, tmp_path, case_file, monkeypatch):
    from reportlab.platypus import SimpleDocTemplate

    out = tmp_path / "report.pdf"
    out.write_bytes(b"the previous report")

    def fails(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(SimpleDocTemplate, "build", fails)
    assert main(["--home", str(installed_zoo.home), "report", "make", str(case_file), "--pdf", str(out)]) == 1
    assert out.read_bytes() == b"the previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["photo.png", "x.case", "report.pdf"])


def test_an_output_that_is_a_pipe_is_replaced_not_written_into(tmp_path):
    pipe = tmp_path / "out.json"
    os.mkfifo(pipe)
    files.write_atomically(pipe, b"{}")  # opening the pipe for writing would block until a reader came
    assert pipe.is_file() and pipe.read_bytes() == b"{}"


# -- 5: a file that is not a case is never modified ----------------------------------------------------------
def test_opening_a_file_that_is_not_a_case_changes_nothing(tmp_path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    empty = tmp_path / "empty.case"
    empty.write_bytes(b"")
    for path in (other, empty):
        before = path.read_bytes()
        with pytest.raises(ForensicsError, match="not a forensics-app case file; it was not changed"):
            Case.open(path)
        assert path.read_bytes() == before and not is_case_file(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.case", "other.db"]  # no -wal, no -shm


def test_a_case_is_recognised_by_another_process_while_it_is_still_open(tmp_path):
    with Case.create(tmp_path / "open.case", "Case", "Examiner"):
        assert is_case_file(tmp_path / "open.case")


def test_a_new_case_is_never_created_through_a_link(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    link = tmp_path / "new.case"
    link.symlink_to(tmp_path / "elsewhere" / "target.case")  # a broken link into another folder
    with pytest.raises(ForensicsError, match="already exists"):
        Case.create(link, "Case", "Examiner")
    assert list((tmp_path / "elsewhere").iterdir()) == []


# -- 6: pipes and devices never hang a command ------------------------------------------------------------
def test_pipes_and_devices_are_refused_by_every_command(installed_zoo, tmp_path, photo, case_file):
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    for argv in (["case", "show", str(pipe)], ["analyze", str(photo), "--case", str(pipe)],
                 ["report", "make", str(pipe), "--json", str(tmp_path / "o.json")], ["report", "verify", str(pipe)],
                 ["report", "make", "/dev/zero", "--json", str(tmp_path / "o.json")]):
        result = run_cli(argv, installed_zoo.home)
        assert result.returncode == 2 and b"Traceback" not in result.stderr, argv
    os.replace(pipe, photo)  # the evidence in the case is now a pipe
    result = run_cli(["case", "show", str(case_file)], installed_zoo.home)
    assert result.returncode == 3 and "evidence MISSING" in text(result)


def test_the_generic_file_reader_refuses_pipes_devices_and_oversized_files(tmp_path):
    pipe = tmp_path / "config.json"
    os.mkfifo(pipe)
    for path in (pipe, Path("/dev/zero"), tmp_path):
        with pytest.raises(ForensicsError, match="is not a regular file"):
            files.read_regular_file(path, 1000, "config file")
        with pytest.raises(files.NotARegularFile):
            with files.open_regular_file(path):
                pass
    big = tmp_path / "big.json"
    big.write_bytes(b"0" * 1001)
    with pytest.raises(ForensicsError, match="larger than 1,000 bytes"):
        files.read_regular_file(big, 1000, "config file")
    assert files.read_regular_file(big, 1001) == b"0" * 1001


# -- 7: every entry a folder walk leaves out is reported, in the output, the JSON and the case -----------
@pytest.fixture()
def awkward_folder(tmp_path, photo) -> Path:
    folder = tmp_path / "evidence"
    (folder / "sub").mkdir(parents=True)
    save_png(real_crop("lenna.png", side=64), folder / "ok.png")
    os.mkfifo(folder / "pipe.png")
    (folder / "broken.png").symlink_to(folder / "nowhere.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    (folder / "sub" / "up").symlink_to(folder)
    save_png(real_crop("lenna.png", side=64), folder / ".hidden.png")
    return folder


def test_a_folder_walk_reports_every_entry_it_leaves_out(installed_zoo, tmp_path, awkward_folder):
    case_path = tmp_path / "walk.case"
    Case.create(case_path, "Walk", "Examiner").close()
    out, pdf = tmp_path / "walk.json", tmp_path / "walk.pdf"
    result = run_cli(["analyze", str(awkward_folder), "--case", str(case_path), "--json", str(out), "--pdf", str(pdf)],
                     installed_zoo.home)
    output = text(result)
    assert result.returncode == 3 and "Traceback" not in output
    assert "1 analysed, 3 failed, 2 skipped" in output
    for line in ("pipe.png is not a regular file", "broken.png is a broken link", "loop.png is a link loop"):
        assert line in output
    assert "is a hidden file" in output and "already searched" in output
    doc = json.loads(out.read_text())
    errors = {Path(i["path"]).name for i in doc["images"] if "error" in i}
    assert errors == {"pipe.png", "broken.png", "loop.png"}
    assert {Path(s["path"]).name for s in doc["skipped"]} == {".hidden.png", "up"}
    report_text = "".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "Folder entries left out" in report_text and ".hidden.png" in report_text
    with Case.open(case_path) as case:
        assert {f.path.name for f in case.failures()} == errors
        assert {p.name for p, _ in case.skipped()} == {".hidden.png", "up"}


# -- 8: file names that are not UTF-8, or hold a newline -------------------------------------------------
def test_names_that_are_not_utf8_are_kept_exactly_and_printed_escaped(installed_zoo, tmp_path):
    folder = tmp_path / "names"
    folder.mkdir()
    raw = os.fsencode(folder) + b"/caf\xe9\nphoto.png"  # Latin-1 e-acute: not valid UTF-8; and a newline
    save_png(real_crop("bridge.png", side=64), Path(os.fsdecode(raw)))
    case_path = tmp_path / "names.case"
    Case.create(case_path, "Names", "Examiner").close()
    out, pdf = tmp_path / "names.json", tmp_path / "names.pdf"
    result = run_cli(["analyze", str(folder), "--case", str(case_path), "--json", str(out), "--pdf", str(pdf)],
                     installed_zoo.home)
    assert result.returncode == 0, text(result)
    assert b"caf\\xe9\\nphoto.png" in result.stdout  # escaped, on one line
    assert not any(line.startswith(b"photo.png") for line in result.stdout.splitlines())
    with Case.open(case_path) as case:
        assert [os.fsencode(f.path) for f in case.findings(with_maps=False)] == [raw]
    assert [os.fsencode(i["path"]) for i in json.loads(out.read_text())["images"]] == [raw]
    assert "caf\\xe9\\nphoto.png" in "".join(page.extract_text() for page in PdfReader(pdf).pages)
    shown = run_cli(["case", "show", str(case_path)], installed_zoo.home)
    assert shown.returncode == 0 and b"caf\\xe9\\nphoto.png" in shown.stdout


def test_printable_escapes_control_characters_and_undecodable_bytes_only():
    assert files.printable(os.fsdecode(b"a\nb\xff\x1b.png")) == "a\\nb\\xff\\x1b.png"
    assert files.printable("сканы фото.png") == "сканы фото.png"


# -- 9: only the pinned decoders, and no whole-image float copies ----------------------------------------
def test_report_thumbnails_never_reach_other_decoders(tmp_path, monkeypatch, photo):
    from PIL import EpsImagePlugin

    def ghostscript(*args, **kwargs):
        raise AssertionError("Ghostscript was started for a file named in a findings JSON")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", ghostscript)
    eps = tmp_path / "evidence.png"  # the name says PNG, the content is PostScript
    Image.fromarray(real_crop(side=64)).save(tmp_path / "drawing.eps")
    eps.write_bytes((tmp_path / "drawing.eps").read_bytes())
    check = check_evidence(eps, files_sha256(eps))
    assert check.sha256_now == files_sha256(eps) and check.thumbnail is None
    assert check_evidence(photo, files_sha256(photo)).thumbnail is not None  # a real PNG still gets one


def files_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_previews_respect_the_intake_size_limit(photo):
    data = photo.read_bytes()
    assert preview_image(data, 32).size == (32, 32)
    assert preview_image(data, 32, IntakeLimits(max_pixels=64 * 64 - 1)) is None  # refused from the header


def test_float_pixels_are_made_from_the_region_only(tmp_path):
    evidence = load_evidence(save_png(np.full((1024, 1024, 3), 7, np.uint8), tmp_path / "flat.png"))
    region = Region(x=256, y=128, width=64, height=128)
    tracemalloc.start()
    part = evidence.rgb01(region)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert np.array_equal(part, evidence.rgb01()[128:256, 256:320])
    assert peak < 2 * part.nbytes  # the whole image as float32 would be 12 MiB


# -- 10: malformed inputs get a message, never a traceback -------------------------------------------------
@pytest.mark.parametrize("edit", [
    lambda d: d.update(images={}),
    lambda d: d.update(run=[]),
    lambda d: d["images"][0].update(verdict=5),
    lambda d: d["images"][0]["candidates"][0].update(score="low"),
    lambda d: d["images"][0]["facts"].update(width="wide"),
    lambda d: d["images"][0].update(run_index=9),
    lambda d: d.update(calibrations=[{"model": "taef2"}]),
])
def test_findings_files_of_the_wrong_shape_are_refused_plainly(installed_zoo, tmp_path, photo, edit):
    good = tmp_path / "good.json"
    assert main(["--home", str(installed_zoo.home), "analyze", str(photo), "--json", str(good)]) == 0
    doc = json.loads(good.read_text())
    edit(doc)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(ForensicsError, match="is not a valid findings file"):
        read_findings_document(bad)
    for argv in (["report", "make", str(bad), "--json", str(tmp_path / "o.json")], ["report", "verify", str(bad)]):
        assert main(["--home", str(installed_zoo.home), *argv]) == 2


def test_a_reader_that_goes_away_ends_the_command_quietly(installed_zoo, case_file):
    env = dict(os.environ, FORENSICS_APP_HOME=str(installed_zoo.home))
    process = subprocess.Popen([sys.executable, "-m", "forensics_app", "case", "show", str(case_file)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    process.stdout.close()  # like `| head` exiting before the first line is written
    stderr = process.stderr.read()
    assert process.wait(timeout=TIMEOUT_S) == EXIT_BROKEN_PIPE
    assert b"Traceback" not in stderr and b"Exception ignored" not in stderr


def test_settings_and_calibration_files_of_the_wrong_shape(tmp_path):
    from PySide6.QtCore import QSettings

    from forensics_app.gui.preferences import Preferences

    ini = tmp_path / "gui.ini"
    ini.write_text("[analysis]\nalpha=abc\nmax_megapixels=-5\nprovider=quantum\nmethods=aedr, inversion\n")
    loaded = Preferences.load(QSettings(str(ini), QSettings.IniFormat), tmp_path)
    default = Preferences(home=tmp_path)
    assert (loaded.alpha, loaded.max_megapixels, loaded.provider) == (default.alpha, default.max_megapixels,
                                                                       default.provider)
    assert loaded.methods == ("aedr", "inversion")
    for content in ("[]", '{"methods": []}', '{"methods": {"aedr": {"model": "m", "method": "aedr", '
                                             '"method_version": "1", "own_scores": "x", "real_scores": []}}}'):
        path = tmp_path / "calibration.json"
        path.write_text(content)
        with pytest.raises(ForensicsError, match="is unreadable"):
            load_calibrations(path)


# -- 12: two processes on one case -----------------------------------------------------------------------
class FinishedSecond:
    """The engine of a process that computed its analysis while another process analysed the same file
    into the same case and stored it first (the other process is run to completion in between)."""

    def __init__(self, engine, other_case: Case):
        self.engine, self.other_case, self.settings = engine, other_case, engine.settings

    def run_info(self) -> dict:
        return self.engine.run_info()

    def analyse_evidence(self, evidence, progress, cancel, stored_result):
        findings = self.engine.analyse_evidence(evidence, progress, cancel, stored_result)
        analyse_into_case(self.engine, self.other_case, [evidence.path])
        return findings


def test_two_processes_analysing_one_file_into_one_case_store_it_once(engine, tmp_path, photo):
    path = tmp_path / "shared.case"
    Case.create(path, "Shared", "Examiner").close()
    with Case.open(path) as first, Case.open(path) as second:  # two connections, as two processes have
        analyse_into_case(FinishedSecond(engine, second), first, [photo])
        assert len(first.history()) == 1
