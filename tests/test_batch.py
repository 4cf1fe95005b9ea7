"""`forensics-app batch` on a local Ray: the verdicts and scores of `analyze`, resumed by content, never twice.

Ray is started once for the module (2 CPUs, as on CI); every batch below joins it, in this process through
the command's main() or from a subprocess through --address.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import real_crop, save_png

ray = pytest.importorskip("ray", reason="the batch command needs the 'batch' extra (scripts/setup.sh installs it)")

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
IMAGES = 24


@pytest.fixture(scope="module")
def ray_address():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def evidence(tmp_path_factory, taef2):
    """24 small images (real crops, TAEF2 outputs, JPEGs, a size off the latent grid), one more copy of
    the same bytes, and two files the intake refuses."""
    folder = tmp_path_factory.mktemp("evidence")
    names = ["baboon.png", "barbara.png", "bridge.png", "coastguard.png", "lenna.png", "pepper.png"]
    for i, name in enumerate(names):
        photo = real_crop(name, side=64, y=16 * i, x=8 * i)
        save_png(photo, folder / f"real-{i}.png")
        Image.fromarray(photo).save(folder / f"real-{i}.jpg", quality=80)
        made = (np.clip(taef2.reconstruct(photo.astype(np.float32) / 255), 0, 1) * 255).round().astype(np.uint8)
        save_png(made, folder / f"taef2-{i}.png")
        save_png(real_crop(name, side=72, y=4 * i, x=70)[:, :68], folder / f"off-grid-{i}.png")  # 72 x 68
    assert len(list(folder.iterdir())) == IMAGES
    sub = folder / "again"
    sub.mkdir()
    shutil.copyfile(folder / "real-0.png", sub / "same-bytes.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 10)
    (folder / "notes.jpg").write_text("not an image")
    return folder


def batch(home: Path, *args: str) -> int:
    from forensics_app.cli import main

    return main(["--home", str(home), "batch", *args])


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def reading(image: dict) -> dict:
    """An image object less the time each method took (the only thing two runs may differ in)."""
    return {**image, "candidates": [{k: v for k, v in c.items() if k != "seconds"} for c in image["candidates"]]}


@pytest.fixture(scope="module")
def first_run(ray_address, installed_zoo, evidence, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch") / "out"
    code = batch(installed_zoo.home, str(evidence), "--out", str(out), "--files-per-block", "3")
    return code, out


def test_batch_gives_the_verdicts_and_scores_of_analyze(first_run, installed_zoo, evidence):
    from forensics_app.core.evidence import iter_image_files
    from forensics_app.core.findings import FailedImage
    from forensics_app.core.pipeline import AnalysisSettings, Engine, analyse_paths

    code, out = first_run
    assert code == 3  # two files refused
    analysed = analyse_paths(Engine(installed_zoo, AnalysisSettings()), iter_image_files([evidence]).files)
    expected = {r.to_dict()["path"]: reading(r.to_dict()) for r in analysed.results if not isinstance(r, FailedImage)}
    found = lines(out / "findings.jsonl")
    assert len(expected) == IMAGES + 1
    assert len(found) == len({i["sha256"] for i in found}) == IMAGES  # the copy of real-0.png: one line for both
    for image in found:
        assert reading(image) == expected[image["path"]]
    labels = {image["verdict"]["label"] for image in found}
    assert "attributed" in labels and "not_attributed" in labels  # the set exercises both outcomes
    failures = {Path(f["path"]).name: f for f in lines(out / "failures.jsonl")}
    refused = {r.path.name: r.error for r in analysed.failures}
    assert {name: f["error"] for name, f in failures.items()} == refused
    assert all(len(f["sha256"]) == 64 for f in failures.values())
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["analysed_now"], summary["same_bytes_again"], summary["failed_now"]) == (IMAGES, 1, 2)
    assert summary["folder"]["images"] == IMAGES and summary["providers"] == ["CPUExecutionProvider"]


def test_a_second_run_adds_nothing(first_run, installed_zoo, evidence):
    code, out = first_run
    before = {name: (out / name).read_bytes() for name in ("findings.jsonl", "failures.jsonl")}
    assert batch(installed_zoo.home, str(evidence), "--out", str(out)) == 0  # the refusals are answered too
    assert {name: (out / name).read_bytes() for name in before} == before
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["analysed_now"], summary["already_in_folder"], summary["failed_now"]) == (0, IMAGES + 3, 0)


def test_a_torn_last_line_is_cut_and_its_image_analysed_again(first_run, installed_zoo, evidence, tmp_path, capsys):
    _, done = first_run
    out = tmp_path / "out"
    shutil.copytree(done, out)
    complete = (done / "findings.jsonl").read_text().splitlines(keepends=True)
    (out / "findings.jsonl").write_text("".join(complete[:10]) + complete[10][:500])  # killed mid-write
    assert batch(installed_zoo.home, str(evidence), "--out", str(out)) == 0
    assert "cut off 1 torn line" in capsys.readouterr().out
    found = lines(out / "findings.jsonl")
    assert sorted(i["sha256"] for i in found) == sorted(json.loads(line)["sha256"] for line in complete)
    assert json.loads((out / "summary.json").read_text())["analysed_now"] == IMAGES - 10


def test_a_killed_run_resumes_without_duplicates(ray_address, installed_zoo, evidence, tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, FORENSICS_APP_HOME=str(installed_zoo.home), PYTHONPATH=str(ROOT))
    run = subprocess.Popen([sys.executable, "-m", "forensics_app", "batch", str(evidence), "--out", str(out),
                            "--address", ray_address, "--files-per-block", "1"], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not lines(out / "findings.jsonl") and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
    written = len(lines(out / "findings.jsonl"))
    assert 0 < written < IMAGES, "the run was to be killed after its first image and before its last"
    refusals_left = len(lines(out / "failures.jsonl")) < 2  # the refused files, unless answered before the kill
    assert batch(installed_zoo.home, str(evidence), "--out", str(out)) == (3 if refusals_left else 0)
    shas = [i["sha256"] for i in lines(out / "findings.jsonl")]
    assert len(shas) == len(set(shas)) == IMAGES
    assert json.loads((out / "summary.json").read_text())["analysed_now"] == IMAGES - written


def test_case_merges_the_folder_once(first_run, installed_zoo, evidence, tmp_path):
    from forensics_app.core.case import Case, analyse_into_case
    from forensics_app.core.pipeline import AnalysisSettings, Engine

    _, done = first_run
    out = tmp_path / "out"
    shutil.copytree(done, out)
    case_file = tmp_path / "archive.case"
    Case.create(case_file, "Leaked archive", "E. Xaminer").close()
    for _ in range(2):
        assert batch(installed_zoo.home, str(evidence), "--out", str(out), "--case", str(case_file)) == 0
    expected = {i["sha256"]: i for i in lines(out / "findings.jsonl")}
    with Case.open(case_file) as case:
        findings = case.findings(with_maps=False)
        assert len(case.history()) == IMAGES  # the second merge stored nothing again
        assert {f.sha256: f.verdict.to_dict() for f in findings} == {s: i["verdict"] for s, i in expected.items()}
        assert not any(f.maps for f in case.findings())  # the folder keeps the maps' SHA-256 only
        # analysing a merged file into the case computes its maps (a result stored without them is not reused)
        again = analyse_into_case(Engine(installed_zoo, AnalysisSettings()), case, [evidence / "taef2-0.png"])
        assert again.reused == [] and len(case.history()) == IMAGES  # the same findings: not stored twice
        (with_maps,) = [f for f in case.findings() if f.path.name == "taef2-0.png"]
        assert set(with_maps.map_sha256()) == set(expected[with_maps.sha256]["map_sha256"])  # stored as float16
        assert all(array.size for array in with_maps.maps.values())


def test_another_analysis_into_the_same_folder_is_refused(first_run, installed_zoo, evidence, capsys):
    _, out = first_run
    assert batch(installed_zoo.home, str(evidence), "--out", str(out), "--alpha", "0.05") == 2
    assert "holds findings of another analysis (different settings: --method or --alpha)" in capsys.readouterr().err


def test_an_actor_whose_zoo_differs_from_the_drivers_refuses_to_start(ray_address, installed_zoo, evidence, tmp_path):
    """On a cluster each node reads its own zoo folder; one with other models or calibrations must not
    write findings into the folder (here the driver's identity is the one changed)."""
    from forensics_app.batch import ray_pipeline
    from forensics_app.batch.folder import BatchFolder, analysis_identity
    from forensics_app.core.errors import ForensicsError
    from forensics_app.core.pipeline import AnalysisSettings, Engine

    identity = {**analysis_identity(Engine(installed_zoo, AnalysisSettings())), "calibrations_sha256": "0" * 64}
    with BatchFolder.open(tmp_path / "out", identity, {}) as folder:
        with pytest.raises(ForensicsError, match="differ from those of the machine that started the batch"):
            ray_pipeline.run_batch([evidence / "real-0.png"], folder, installed_zoo.home, AnalysisSettings(), identity)
    assert not (tmp_path / "out" / "findings.jsonl").exists()
