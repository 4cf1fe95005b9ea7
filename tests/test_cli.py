"""The command line as a user runs it: exit codes, the table, the JSON, messages without tracebacks."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import real_crop, save_png, taef2_parameters


def run_cli(args, home, **kwargs):
    env = dict(os.environ, FORENSICS_APP_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "forensics_app", *args], capture_output=True, text=True,
                          env=env, timeout=300, **kwargs)


def test_analyze_folder_with_a_bad_file(installed_zoo, tmp_path):
    folder = tmp_path / "evidence"
    folder.mkdir()
    save_png(real_crop(side=96), folder / "photo.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 10)
    out = tmp_path / "findings.json"
    result = run_cli(["analyze", str(folder), "--json", str(out), "--maps", str(tmp_path / "maps")],
                     installed_zoo.home)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "broken.png" in result.stdout and "ERROR" in result.stdout
    doc = json.loads(out.read_text())
    assert doc["schema"] == "forensics-app/findings/1"
    good, bad = sorted(doc["images"], key=lambda d: "error" in d)
    assert set(bad) == {"path", "path_as_given", "error"} and "broken.png is truncated" in bad["error"]
    assert len(good["sha256"]) == 64
    assert good["verdict"]["label"] in {"attributed", "not_attributed", "inconclusive"}
    cand = good["candidates"][0]
    assert {"model", "method", "score", "p_value", "attributed"} <= set(cand)
    assert doc["run"]["models"][0]["weights"]["taef2_encoder.pth"]["sha256"]
    assert doc["run"]["providers"] == ["CPUExecutionProvider"]
    assert any(p.suffix == ".png" for p in (tmp_path / "maps").iterdir())


def test_all_good_inputs_exit_zero(installed_zoo, tmp_path):
    image = save_png(real_crop(side=96), tmp_path / "ok.png")
    assert run_cli(["analyze", str(image)], installed_zoo.home).returncode == 0


@pytest.mark.parametrize("args", [["analyze"], ["no-such-command"], ["analyze", "x.png", "--alpha", "abc"]])
def test_usage_errors_exit_2(args, tmp_path):
    assert run_cli(args, tmp_path).returncode == 2


def test_no_model_installed_is_a_clear_message(tmp_path):
    image = save_png(real_crop(side=96), tmp_path / "ok.png")
    result = run_cli(["analyze", str(image)], tmp_path / "empty-home")
    assert result.returncode == 2
    assert "No model is installed" in result.stderr and "Traceback" not in result.stderr


def test_zoo_list_and_verify(installed_zoo):
    listing = run_cli(["zoo", "list"], installed_zoo.home)
    row = next(line for line in listing.stdout.splitlines() if line.startswith("taef2 "))
    assert "installed, calibrated" in row  # the shipped calibration matches the installed weights
    verify = run_cli(["zoo", "verify", "taef2"], installed_zoo.home)
    assert verify.returncode == 0 and "OK" in verify.stdout


@pytest.mark.parametrize("alpha", ["0", "5", "-1", "nan", "0.51"])
def test_alpha_outside_zero_to_one_half_is_a_usage_error(alpha, tmp_path):
    result = run_cli(["analyze", "x.png", "--alpha", alpha], tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "argument --alpha" in result.stderr and "0 < alpha <= 0.5" in result.stderr


@pytest.mark.parametrize("value", ["0", "-5", "1.5"])
def test_max_pixels_must_be_a_positive_whole_number(value, tmp_path):
    result = run_cli(["analyze", "x.png", "--max-pixels", value], tmp_path)
    assert result.returncode == 2 and "argument --max-pixels" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["-1", "inf", "soon"])
def test_cpu_seconds_must_be_a_number_of_seconds(value, tmp_path):
    result = run_cli(["analyze", "x.png", "--cpu-seconds", value], tmp_path)
    assert result.returncode == 2 and "argument --cpu-seconds" in result.stderr and "Traceback" not in result.stderr


def test_max_pixels_below_the_models_smallest_region_is_refused(installed_zoo, tmp_path):
    image = save_png(real_crop(side=96), tmp_path / "ok.png")
    result = run_cli(["analyze", str(image), "--max-pixels", "100"], installed_zoo.home)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--max-pixels 100 is below the smallest region taef2 can analyse (64 x 64 = 4096 pixels)" in result.stderr


def test_an_unknown_model_id_lists_the_ids_that_exist(installed_zoo, tmp_path):
    image = save_png(real_crop(side=96), tmp_path / "ok.png")
    result = run_cli(["analyze", str(image), "--model", "nope"], installed_zoo.home)
    assert result.returncode == 2 and "zoo install nope" not in result.stderr
    assert "There is no model called 'nope'. Installed: taef2; installable: " in result.stderr
    assert "demo-ae-01" in result.stderr.split("installable:")[1]  # a shipped entry that is not installed here


def test_help_names_every_command_and_no_plans(tmp_path):
    result = run_cli(["--help"], tmp_path)
    assert result.returncode == 0 and "as they land" not in result.stdout
    for command in ("gui", "analyze", "case", "report", "zoo", "fingerprint"):
        assert command in result.stdout


def test_analyze_into_a_case_says_how_many_ran_now_and_how_many_were_reused(installed_zoo, tmp_path):
    first = save_png(real_crop(side=96), tmp_path / "first.png")
    second = save_png(real_crop("lenna.png", side=96), tmp_path / "second.png")
    case = tmp_path / "case.sqlite"
    assert run_cli(["case", "new", str(case), "--name", "C", "--examiner", "E"], installed_zoo.home).returncode == 0
    once = run_cli(["analyze", str(first), "--case", str(case)], installed_zoo.home)
    assert "1 analysed now (the models ran), 0 reused" in once.stdout, once.stdout + once.stderr
    again = run_cli(["analyze", str(first), str(second), "--case", str(case)], installed_zoo.home)
    assert "1 analysed now (the models ran), 1 reused" in again.stdout, again.stdout + again.stderr


@pytest.fixture(scope="module")
def floor_home(installed_zoo, tmp_path_factory):
    """A copy of the session zoo with an AEDR calibration whose 99 real scores all lie far above any image's
    score, so every image's p_real is at the calibration's floor 1/(99+1)."""
    import numpy as np

    from forensics_app.core.calibration import Calibration, save_calibrations
    from forensics_app.core.methods import get_method

    home = tmp_path_factory.mktemp("floor-home")
    shutil.copytree(installed_zoo.root, home / "zoo")
    aedr = get_method("aedr")
    save_calibrations(home / "zoo" / "taef2" / "calibration" / "calibration.json", [Calibration(
        "taef2", "aedr", aedr.version, taef2_parameters(aedr), np.geomspace(0.5, 50.0, 60), np.geomspace(1e3, 1e4, 999),
        {"description": "synthetic test fixture"})])
    return home


def test_a_p_value_at_the_calibration_floor_is_printed_as_a_bound(floor_home, tmp_path):
    image = save_png(real_crop(side=96), tmp_path / "ok.png")
    result = run_cli(["analyze", str(image)], floor_home)
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("ok.png"))
    assert row.split()[-1] == "0.001" and row.split()[-2] == "<="  # p_real: no real sample scored this low
    assert "0.010" not in row


def test_findings_keep_the_absolute_path_so_verify_works_from_another_folder(installed_zoo, tmp_path):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    save_png(real_crop(side=96), work / "photo.png")
    assert run_cli(["analyze", "photo.png", "--json", "findings.json"], installed_zoo.home, cwd=work).returncode == 0
    image = json.loads((work / "findings.json").read_text())["images"][0]
    assert image["path"] == str(work / "photo.png") and image["path_as_given"] == "photo.png"
    verify = run_cli(["report", "verify", str(work / "findings.json")], installed_zoo.home, cwd=elsewhere)
    assert verify.returncode == 0 and "IDENTICAL" in verify.stdout, verify.stdout + verify.stderr


def test_readme_and_demo_say_how_to_run_the_command_and_which_folder_the_demo_used():
    """The demo installs into .venv (not on PATH) and keeps its models in .work/home: both must be said."""
    root = Path(__file__).resolve().parents[1]
    readme, demo = (root / "README.md").read_text(), (root / "scripts" / "demo.sh").read_text()
    demo_home = re.search(r"FORENSICS_APP_HOME=\$\{FORENSICS_APP_HOME:-\$PWD/([^}]+)\}", demo).group(1)
    assert readme.startswith("# ") and "\nbash scripts/demo.sh " in readme  # the first two command lines stay
    assert "\n.venv/bin/python -m pytest -q " in readme
    assert f"FORENSICS_APP_HOME=$PWD/{demo_home} .venv/bin/forensics-app zoo list" in readme
    assert 'echo "application folder used by the demo (models, calibrations): $FORENSICS_APP_HOME"' in demo
    assert '.venv/bin/forensics-app zoo list"' in demo


def test_analyze_prints_the_verdict_sentence_under_each_row(installed_zoo, tmp_path):
    image = save_png(real_crop("baboon.png", side=96), tmp_path / "photo.png")
    out = tmp_path / "findings.json"
    result = run_cli(["analyze", str(image), "--json", str(out)], installed_zoo.home)
    assert result.returncode == 0, result.stderr
    verdict = json.loads(out.read_text())["images"][0]["verdict"]
    lines = result.stdout.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("photo.png"))
    assert lines[row + 1] == "    " + verdict["text"]  # the sentence, not only a label beside a model name
    assert "closest model" in lines[0] and "not_attributed" not in result.stdout
    if verdict["label"] == "not_attributed":
        assert "NOT attributed" in lines[row]


def test_an_install_started_with_interrupts_ignored_can_still_be_interrupted(tmp_path):
    """A process started from one that ignores SIGINT (a script's `cmd &`, Ray, a window's worker) inherits
    the ignore: the installer still stops on SIGINT (Ctrl+C, the zoo manager's Cancel) and leaves nothing."""
    import signal
    import time

    from conftest import MIRROR, require_shared

    require_shared(MIRROR)
    home = tmp_path / "home"
    installer = subprocess.Popen(
        [sys.executable, "-m", "forensics_app", "--home", str(home), "zoo", "install", "taef2", "--mirror", str(MIRROR)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parents[1],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    fetched = home / "zoo" / "taef2" / ".installing" / "weights" / "taef2_decoder.pth"
    deadline = time.monotonic() + 120
    while not fetched.exists() and time.monotonic() < deadline and installer.poll() is None:
        time.sleep(0.001)
    installer.send_signal(signal.SIGSTOP)  # mid-install, before it commits, however fast the export
    assert not (home / "zoo" / "taef2" / "receipt.json").exists()
    installer.send_signal(signal.SIGINT)
    installer.send_signal(signal.SIGCONT)
    _, err = installer.communicate(timeout=120)
    assert installer.returncode == 130 and b"interrupted" in err
    assert not (home / "zoo" / "taef2").exists()
