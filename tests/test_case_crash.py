"""Killing `forensics-app analyze --case` mid-batch loses at most the item in flight; a re-run resumes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import real_crop, save_png
from forensics_app.core.case import Case
from forensics_app.core.evidence import sha256_of_file

PHOTOS = ("baboon.png", "barbara.png", "bridge.png", "coastguard.png", "face.png", "flowers.png")
REPO = Path(__file__).resolve().parents[1]


def stored_analyses(case_file: Path) -> int | None:
    """Analyses committed so far, read the way another program would: a read-only connection."""
    try:
        conn = sqlite3.connect(f"file:{case_file}?mode=ro", uri=True, timeout=1.0)
        try:
            return conn.execute("SELECT COUNT(*) FROM analyses").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:  # the writer holds a lock for an instant
        return None


def test_killed_batch_keeps_finished_items_and_a_rerun_resumes(installed_zoo, tmp_path):
    folder = tmp_path / "evidence"
    folder.mkdir()
    photos = [save_png(real_crop(name, side=128), folder / name) for name in PHOTOS]
    hashes = {p: sha256_of_file(p) for p in photos}
    case_file = tmp_path / "crash.case"
    Case.create(case_file, "Crash", "E").close()
    env = {**os.environ, "FORENSICS_APP_HOME": str(installed_zoo.home)}
    command = [sys.executable, "-m", "forensics_app", "analyze", str(folder), "--case", str(case_file)]

    batch = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    try:
        while (stored_analyses(case_file) or 0) < 2:
            assert batch.poll() is None, "the batch ended before it could be killed:\n" + batch.stdout.read().decode()
            assert time.monotonic() < deadline, "no analysis reached the case file in time"
            time.sleep(0.01)
        batch.send_signal(signal.SIGKILL)
    finally:
        batch.kill()
        batch.wait(timeout=30)
        batch.stdout.close()
    assert batch.returncode == -signal.SIGKILL

    with Case.open(case_file) as case:
        done = len(case.findings())
        assert case.history() and len(case.history()) == done
        assert [s.status for s in case.evidence_status()] == ["ok"] * done
    assert 2 <= done < len(photos), "the kill should land mid-batch"
    assert sqlite3.connect(case_file).execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    rerun = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"{done} reused from earlier analyses" in rerun.stdout  # only the missing items were analysed
    with Case.open(case_file) as case:
        findings = case.findings()
        assert sorted(f.path.name for f in findings) == sorted(PHOTOS)
        assert len(case.history()) == len(photos)  # nothing was analysed twice
    assert all(sha256_of_file(p) == h for p, h in hashes.items())
