"""The packaging helpers that run without a bundle: the findings comparison and the desktop entry installer."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def findings(score: float = 1.25, label: str = "attributed") -> dict:
    reading = {"model": "taef2", "method": "aedr", "score": score, "p_value": 0.5, "p_real": 0.001,
               "threshold": 2.0, "status": "consistent", "attributed": label == "attributed"}
    return {"schema": "forensics-app/findings/1",
            "run": {"models": [{"id": "taef2", "onnx": {"decoder.onnx": {"sha256": "ab" * 32}}}]},
            "images": [{"path": "/x/a.png", "sha256": "cd" * 32, "verdict": {"label": label, "model": "taef2", "text": "t"},
                        "candidates": [reading]},
                       {"path": "/x/broken.png", "error": "truncated"}]}


def compare(tmp_path: Path, first: dict, second: dict, *options: str) -> subprocess.CompletedProcess:
    (tmp_path / "a.json").write_text(json.dumps(first))
    (tmp_path / "b.json").write_text(json.dumps(second))
    return subprocess.run([sys.executable, str(ROOT / "packaging" / "compare_findings.py"), str(tmp_path / "a.json"),
                           str(tmp_path / "b.json"), *options], capture_output=True, text=True, timeout=60)


def test_equal_findings_compare_equal(tmp_path):
    result = compare(tmp_path, findings(), findings())
    assert result.returncode == 0 and "SAME: 1 images" in result.stdout


def test_a_score_in_the_last_bit_or_another_verdict_differs(tmp_path):
    nudged = findings(score=1.25 + 2.2e-16)
    result = compare(tmp_path, findings(), nudged)
    assert result.returncode == 3 and "taef2/aedr score 1.25 vs 1.2500000000000002" in result.stdout
    assert compare(tmp_path, findings(), nudged, "--tolerance", "1e-12").returncode == 0
    result = compare(tmp_path, findings(), findings(label="inconclusive"))
    assert result.returncode == 3 and "verdict label 'attributed' vs 'inconclusive'" in result.stdout


def test_other_onnx_files_or_another_image_differ(tmp_path):
    other = copy.deepcopy(findings())
    other["run"]["models"][0]["onnx"]["decoder.onnx"]["sha256"] = "ef" * 32
    assert "the models' ONNX files differ" in compare(tmp_path, findings(), other).stdout
    other = copy.deepcopy(findings())
    other["images"][0]["sha256"] = "01" * 32
    assert "analysed in only one of the files" in compare(tmp_path, findings(), other).stdout


def test_a_file_that_is_not_findings_is_a_usage_error(tmp_path):
    result = compare(tmp_path, findings(), {"schema": "something else"})
    assert result.returncode == 2 and "is not a findings file" in result.stderr


def test_the_desktop_entry_starts_the_unpacked_bundle_where_it_lies(tmp_path):
    bundle = tmp_path / "unpacked here" / "forensics-app"
    bundle.mkdir(parents=True)
    for path in (ROOT / "packaging" / "forensics-app.desktop", ROOT / "resources" / "forensics-app.png",
                 ROOT / "resources" / "forensics-app.svg", ROOT / "packaging" / "install-desktop-entry.sh"):
        shutil.copy(path, bundle)
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"))
    result = subprocess.run(["sh", str(bundle / "install-desktop-entry.sh")], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    entry = (tmp_path / "data" / "applications" / "forensics-app.desktop").read_text()
    assert f'Exec="{bundle}/forensics-app" gui %F' in entry and f"TryExec={bundle}/forensics-app" in entry
    assert (tmp_path / "data" / "icons" / "hicolor" / "256x256" / "apps" / "forensics-app.png").is_file()
