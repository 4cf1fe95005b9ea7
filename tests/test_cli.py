"""The command line as a user runs it: exit codes, the table, the JSON, messages without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import real_crop, save_png


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
    assert set(bad) == {"path", "error"} and "broken.png is truncated" in bad["error"]
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
