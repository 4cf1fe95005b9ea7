"""Provider choice is deliberate and quiet; the core never imports Qt (import-linter contract)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from forensics_app.core.errors import ForensicsError
from forensics_app.core.runtime import CPU, CUDA, cuda_usable, resolve_providers, with_options

ROOT = Path(__file__).resolve().parents[1]


def test_cpu_is_always_available_and_auto_falls_back_to_it():
    assert resolve_providers("cpu") == [CPU]
    assert resolve_providers("auto")[-1] == CPU
    with pytest.raises(ValueError):
        resolve_providers("tpu")


def test_cuda_runs_without_tf32_so_scores_match_the_cpu_calibrations():
    assert with_options([CUDA, CPU])[0][1]["use_tf32"] == "0"
    assert with_options([CPU]) == [CPU]


@pytest.mark.skipif(cuda_usable(), reason="this machine has a working CUDA provider")
def test_cuda_request_without_cuda_is_a_clear_error():
    with pytest.raises(ForensicsError, match="CUDA was requested"):
        resolve_providers("cuda")


def test_cuda_probe_prints_nothing():
    code = "from forensics_app.core.runtime import cuda_usable; cuda_usable()"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""


def test_probing_from_several_threads_at_once_stays_quiet_and_leaves_output_working():
    """The window's worker and thumbnailer may both create the first session at the same moment."""
    code = ("import threading\n"
            "from forensics_app.core.runtime import cuda_usable\n"
            "threads = [threading.Thread(target=cuda_usable) for _ in range(4)]\n"
            "[t.start() for t in threads]; [t.join() for t in threads]\n"
            "print('still printing', flush=True)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == "still printing\n" and result.stderr == ""


def test_core_is_qt_free():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_shared_folder_is_found_beside_the_checkout_never_at_a_machine_path():
    from conftest import SHARED

    from forensics_app.train import SHARED as TRAINING_SHARED

    root = Path(__file__).resolve().parents[1]
    assert TRAINING_SHARED == SHARED == root.parent / "shared"
    named = [str(path.relative_to(root)) for folder in ("forensics_app", "tests", "scripts", "benchmarks")
             for path in sorted((root / folder).rglob("*.py"))
             if path != Path(__file__).resolve() and '"/work/' in path.read_text(encoding="utf-8")]
    assert not named, f"absolute machine paths in {named}"
