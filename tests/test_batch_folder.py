"""The batch's output folder without Ray: what a killed run leaves is resumed, anything else is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from forensics_app.batch.folder import BatchFolder
from forensics_app.core.errors import ForensicsError

IDENTITY = {"settings": {"alpha": 0.01}, "models": [{"id": "taef2"}], "methods": [], "calibrations_sha256": "c"}
RUN_INFO = {"models": [{"id": "taef2"}]}
PIPE_FAILURE = (None, "/e/pipe.png", "is a pipe", json.dumps({"path": "/e/pipe.png", "error": "is a pipe"}) + "\n")


def image_line(n: int) -> tuple[str, str, tuple[str, str | None]]:
    sha256 = f"{n:064x}"
    return sha256, json.dumps({"path": f"/e/{n}.png", "sha256": sha256,
                               "verdict": {"label": "not_attributed", "model": None}}) + "\n", ("not_attributed", None)


def test_lines_are_appended_and_known_by_content(tmp_path):
    with BatchFolder.open(tmp_path / "out", IDENTITY, RUN_INFO) as folder:
        assert folder.append([image_line(1), image_line(2), image_line(1)], []) == (2, 0, 1)
        assert folder.append([], [PIPE_FAILURE] * 2) == (0, 1, 0)
    with BatchFolder.open(tmp_path / "out", IDENTITY, RUN_INFO) as folder:
        assert folder.is_known(f"{1:064x}") and not folder.is_known(f"{3:064x}")
        assert list(folder.known_digests()) == sorted(bytes.fromhex(f"{n:064x}") for n in (1, 2))
        assert folder.append([image_line(2)], [PIPE_FAILURE]) == (0, 0, 1)
        assert folder.verdict_totals() == {"attributed": {}, "not_attributed": 2, "inconclusive": 0}


def test_a_torn_tail_is_cut_off(tmp_path):
    with BatchFolder.open(tmp_path, IDENTITY, RUN_INFO) as folder:
        folder.append([image_line(1), image_line(2)], [])
    findings = tmp_path / "findings.jsonl"
    whole = findings.read_bytes()
    findings.write_bytes(whole + image_line(3)[1][:40].encode() + b"\0" * 30)  # a kill, then a power cut's zeros
    with BatchFolder.open(tmp_path, IDENTITY, RUN_INFO) as folder:
        assert folder.cut_torn_lines == 1 and folder.findings_count == 2
    assert findings.read_bytes() == whole


def test_a_bad_line_before_good_ones_is_refused_untouched(tmp_path):
    with BatchFolder.open(tmp_path, IDENTITY, RUN_INFO) as folder:
        folder.append([image_line(1)], [])
    findings = tmp_path / "findings.jsonl"
    edited = b'{"path": "/e/x.png", "sha2\n' + findings.read_bytes()
    findings.write_bytes(edited)
    with pytest.raises(ForensicsError, match="line 2 is preceded by a torn or unreadable line"):
        BatchFolder.open(tmp_path, IDENTITY, RUN_INFO)
    assert findings.read_bytes() == edited


def test_another_analysis_is_refused_naming_what_differs(tmp_path):
    BatchFolder.open(tmp_path, IDENTITY, RUN_INFO).close()
    with pytest.raises(ForensicsError, match=r"different models: --model"):
        BatchFolder.open(tmp_path, {**IDENTITY, "models": [{"id": "demo-ae-01"}], "calibrations_sha256": "d"},
                         RUN_INFO)


def test_findings_without_a_run_record_are_not_resumed(tmp_path):
    (tmp_path / "findings.jsonl").write_text(image_line(1)[1])
    with pytest.raises(ForensicsError, match="has findings but no run.json"):
        BatchFolder.open(tmp_path, IDENTITY, RUN_INFO)


def test_a_second_writer_is_refused_while_the_first_holds_the_folder(tmp_path):
    with BatchFolder.open(tmp_path, IDENTITY, RUN_INFO):
        code = ("import sys; from forensics_app.batch.folder import BatchFolder\n"
                f"BatchFolder.open(sys.argv[1], {IDENTITY!r}, {RUN_INFO!r})\n")
        result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parents[1], timeout=60)
        assert result.returncode != 0 and "Another batch is writing to" in result.stderr
    BatchFolder.open(tmp_path, IDENTITY, RUN_INFO).close()  # free again once the first one closed


def test_the_window_analyze_and_the_folder_never_import_ray():
    code = ("import sys\n"
            "import forensics_app.cli, forensics_app.gui.app, forensics_app.batch.folder, forensics_app.core.pipeline\n"
            "forensics_app.cli.build_parser().parse_args(['batch', 'x', '--out', 'y'])\n"
            "print('ray' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0 and result.stdout == "False\n", result.stderr


def test_without_ray_the_batch_command_says_how_to_install_it(tmp_path):
    code = ("import sys; sys.modules['ray'] = None\n"  # as if Ray were not installed
            "from forensics_app.cli import main\n"
            f"sys.exit(main(['batch', {str(tmp_path)!r}, '--out', {str(tmp_path / 'out')!r}]))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 2 and "pip install 'forensics-app[batch]'" in result.stderr
