"""The desktop window over the real TAEF2: drops, results, cancel, refusals, heat map and histogram.

A calibration is written into a copy of the installed zoo so verdicts are decided; its two
distributions are synthetic (a test fixture, not science): TAEF2's own outputs of 128 px crops score
about 1.3-1.8 with AEDR and real crops 3.4-5.7, so the fixture puts its own scores below 2.2 and
real scores above 2.6. The window must show whatever the engine decided.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, QRectF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QDockWidget

from conftest import real_crop, save_png, taef2_parameters
from forensics_app.core.calibrate import CalibrationPlan, own_output
from forensics_app.core.calibration import Calibration, save_calibrations
from forensics_app.core.colormaps import map_display_range
from forensics_app.core.errors import EvidenceError
from forensics_app.core.evidence import load_evidence
from forensics_app.core.fingerprint import shipped_extractors
from forensics_app.core.findings import CandidateFinding, ImageFindings, Verdict
from forensics_app.core.methods import get_method
from forensics_app.gui.app import configure_pyqtgraph
from forensics_app.gui.display import display_step, prepare_display
from forensics_app.gui.evidence_list import CANCELLED, DONE, QUEUED, REFUSED, RUNNING
from forensics_app.gui.image_view import ImagePanel
from forensics_app.gui.main_window import MainWindow
from forensics_app.gui.preferences import Preferences
from forensics_app.gui.worker import AnalysedImage

WAIT_MS = 60_000  # shared CI machines can be slow; the waits end as soon as the condition holds


@pytest.fixture(scope="module")
def gui_home(installed_zoo, tmp_path_factory) -> Path:
    """A copy of the session's zoo with a synthetic AEDR calibration for TAEF2."""
    home = tmp_path_factory.mktemp("gui-home")
    shutil.copytree(installed_zoo.root, home / "zoo")
    aedr = get_method("aedr")
    calibration = Calibration("taef2", "aedr", aedr.version, taef2_parameters(aedr),
                              own_scores=np.geomspace(1.0, 2.2, 199), real_scores=np.geomspace(2.6, 30.0, 999),
                              data={"description": "synthetic test fixture"})
    save_calibrations(home / "zoo" / "taef2" / "calibration" / "calibration.json", [calibration])
    return home


@pytest.fixture(scope="module")
def images(taef2, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("gui-images")
    own = own_output(taef2, real_crop("zebra.png"), False, CalibrationPlan(), np.random.default_rng(0))
    paths = {"own": save_png(own, folder / "taef2_output.png"),
             "real": save_png(real_crop("baboon.png"), folder / "baboon_crop.png")}
    for i, name in enumerate(("lenna.png", "pepper.png", "monarch.png", "flowers.png")):
        paths[f"batch{i}"] = save_png(real_crop(name, y=64, x=64), folder / f"batch{i}_{name}")
    (folder / "empty.png").write_bytes(b"")
    paths["empty"] = folder / "empty.png"
    (folder / "notes.png").write_text("these are notes, not an image\n")
    paths["text"] = folder / "notes.png"
    return paths


def open_window(qtbot, home: Path, tmp_path: Path) -> MainWindow:
    configure_pyqtgraph()
    window = MainWindow(Preferences(home=home), QSettings(str(tmp_path / "gui.ini"), QSettings.IniFormat))
    qtbot.addWidget(window)
    window.show()
    return window


@pytest.fixture
def window(qtbot, gui_home, tmp_path):
    win = open_window(qtbot, gui_home, tmp_path)
    yield win
    win.close()  # stops the worker thread


def drop(window: MainWindow, paths: list[Path]) -> None:
    """Drag real file URLs onto the middle of the image view, as a file manager does."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    target = window.image_panel.canvas.viewport()
    at = QPointF(target.rect().center())
    for event in (QDragEnterEvent(at.toPoint(), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier),
                  QDropEvent(at, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)):
        QApplication.sendEvent(target, event)
        assert event.isAccepted()


def statuses(window: MainWindow) -> list[str]:
    return [item.status for item in window.evidence.items]


def wait_finished(qtbot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: not (window.evidence.count(QUEUED) or window.evidence.count(RUNNING)), timeout=WAIT_MS)


def top_name(item) -> str:
    return item.result.findings.candidates[0].model_name


def select(window: MainWindow, path: Path):
    item = next(i for i in window.evidence.items if i.path == path)
    window.select_item(item.item_id)
    return item


def test_dropped_files_are_analysed_and_the_table_and_verdict_show_the_findings(qtbot, window, images):
    progress = []
    window.worker.item_progress.connect(lambda item_id, fraction, message: progress.append(message))
    drop(window, [images["own"], images["real"]])
    assert statuses(window)[0] in (QUEUED, RUNNING) and len(statuses(window)) == 2
    wait_finished(qtbot, window)
    assert statuses(window) == [DONE, DONE]
    assert any(message.startswith("TAEF2") for message in progress)  # progress names the model being run
    qtbot.waitUntil(lambda: all(item.thumbnail is not None for item in window.evidence.items), timeout=WAIT_MS)

    own = select(window, images["own"])
    findings = own.result.findings
    assert own.status_text() == "attributed to TAEF2 (FLUX.2 tiny autoencoder)" == f"attributed to {top_name(own)}"
    assert findings.verdict.text.startswith("Consistent with TAEF2")
    assert window.findings_panel.verdict.text() == findings.verdict.text
    top = findings.candidates[0]
    # every real calibration sample scores higher than the generator's own output: p_real is at its floor
    # 1/(999+1), a bound rather than a measurement; one candidate: no other generator's outputs to measure
    assert window.findings_panel.cell_texts()[0] == [f"{top.model_name}\naedr", f"{top.score:.4g}",
                                                     f"{top.p_value:.3g}\nfits its outputs",
                                                     "≤\xa00.001\nrare for real photos", "consistent"]
    assert window.findings_panel.table.item(0, 3).toolTip() == top.p_real_sentence()
    assert "reach it: not measured" in window.findings_panel.table.item(0, 4).toolTip()
    assert window.findings_panel.headline.text() == "Attributed to TAEF2 (FLUX.2 tiny autoencoder)"

    real = select(window, images["real"])
    assert real.result.findings.verdict.label == "not_attributed"
    assert window.findings_panel.verdict.text() == real.result.findings.verdict.text
    assert window.findings_panel.cell_texts()[0][-1] == "rejected"


def test_histogram_marks_the_image_score_on_the_candidate_calibration(qtbot, window, images):
    drop(window, [images["own"]])
    wait_finished(qtbot, window)
    item = select(window, images["own"])
    candidate = item.result.findings.candidates[0]
    calibration = candidate.calibration  # drawn from what the finding carries, never looked up again
    histogram = window.histogram
    assert histogram.marked_score == pytest.approx(candidate.score, rel=1e-12)
    x, counts = histogram.own_curve.getOriginalDataset()
    assert list(counts) == calibration["histogram"]["own"] and sum(counts) == calibration["n_own"] == 199
    assert 10 ** histogram.threshold_line.value() == pytest.approx(candidate.threshold)


def test_heat_map_overlay_follows_the_chosen_map_opacity_and_side_by_side(qtbot, window, images):
    drop(window, [images["own"]])
    wait_finished(qtbot, window)
    display = select(window, images["own"]).result.display
    panel = window.image_panel
    keys = [panel.map_choice.itemData(i) for i in range(panel.map_choice.count())]
    assert keys == [("taef2", "aedr", "first_reconstruction_error"), ("taef2", "aedr", "second_reconstruction_error")]
    panel.map_choice.setCurrentIndex(1)
    assert display.step == 1
    np.testing.assert_array_equal(panel.overlay_item.image, display.maps[keys[1]])
    assert panel.colour_bar.levels() == pytest.approx(display.map_ranges[keys[1]])
    panel.opacity.setValue(25)
    assert panel.overlay_item.opacity() == pytest.approx(0.25)
    panel.side_by_side.setChecked(True)
    assert panel.reconstruction_item.image.shape == (128, 128, 3)
    assert not panel.overlay_item.isVisible()


def test_cancel_mid_batch_stops_within_a_second_and_keeps_finished_results(qtbot, window, images):
    batch = [images[f"batch{i}"] for i in range(4)]
    drop(window, batch)
    qtbot.waitUntil(lambda: statuses(window)[:2] == [DONE, RUNNING], timeout=WAIT_MS)
    started = time.perf_counter()
    qtbot.keyClick(window.evidence_view, Qt.Key_Escape)  # the Cancel shortcut
    wait_finished(qtbot, window)
    assert time.perf_counter() - started < 1.0
    assert statuses(window) == [DONE, CANCELLED, CANCELLED, CANCELLED]
    assert select(window, batch[0]).result.findings.verdict.text == window.findings_panel.verdict.text()

    drop(window, [images["real"]])  # a new drop after a cancel runs normally
    wait_finished(qtbot, window)
    assert statuses(window)[-1] == DONE


def test_files_that_are_not_images_are_refused_with_their_reason(qtbot, window, images):
    drop(window, [images["empty"], images["text"]])
    wait_finished(qtbot, window)
    assert statuses(window) == [REFUSED, REFUSED]
    for path in (images["empty"], images["text"]):
        with pytest.raises(EvidenceError) as refused:
            load_evidence(path)
        item = select(window, path)
        assert item.message == str(refused.value)
        assert str(refused.value) in window.findings_panel.verdict.text()


def test_dropping_a_folder_of_500_files_queues_every_image_in_it(qtbot, window, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(500):
        (folder / f"{i:03d}.jpg").write_bytes(b"")
    (folder / "readme.txt").write_text("not an image name")
    drop(window, [folder])
    assert len(window.evidence.items) == 500
    wait_finished(qtbot, window)
    assert window.evidence.count(REFUSED) == 500
    assert window.overall.text() == "500/500"


def test_without_an_installed_model_each_file_says_how_to_install_one(qtbot, tmp_path, images):
    window = open_window(qtbot, tmp_path / "empty-home", tmp_path)
    drop(window, [images["real"]])
    wait_finished(qtbot, window)
    assert "No model is installed" in window.evidence.items[0].message
    window.close()


def test_preferences_are_stored_and_become_analysis_settings(qtbot, window, tmp_path):
    dialog = window.open_settings()
    dialog.alpha.setValue(0.05)
    dialog.provider.setCurrentText("cpu")
    dialog.max_megapixels.setValue(4.0)
    dialog.cpu_seconds.setValue(0)
    dialog.accept()
    stored = Preferences.load(window.store)
    assert (stored.alpha, stored.provider, stored.max_megapixels, stored.cpu_seconds) == (0.05, "cpu", 4.0, 0)
    settings = stored.analysis_settings()
    assert (settings.alpha, settings.runtime.provider, settings.tiling.max_pixels) == (0.05, "cpu", 4_000_000)
    assert settings.tiling.cpu_seconds_per_candidate is None  # 0 s: "no limit"
    dialog = window.open_settings()
    dialog.cpu_seconds.setValue(45)
    dialog.accept()
    assert Preferences.load(window.store).analysis_settings().tiling.cpu_seconds_per_candidate == 45
    assert settings.keep_reconstructions


@pytest.mark.skipif(not shipped_extractors(), reason="no extractor shipped in model_zoo")
def test_learned_fingerprints_chosen_in_settings_join_the_ranking_without_voting(qtbot, window, images):
    dialog = window.open_settings()
    name = sorted(dialog.extractors)[0]
    dialog.extractors[name].setChecked(True)
    dialog.accept()
    assert Preferences.load(window.store).extractors == (name,)
    drop(window, [images["own"]])
    wait_finished(qtbot, window)
    item = select(window, images["own"])
    candidates = item.result.findings.candidates
    [fingerprint] = [c for c in candidates if c.method_version == name]
    assert not fingerprint.decisive and item.status_text() == f"attributed to {top_name(item)}"  # never votes
    window.histogram.select_candidate(candidates.index(fingerprint))
    assert name in window.histogram.note.text() and window.histogram.marked_score is None
    assert window.histogram.plot.isHidden()
    window.histogram.select_candidate(0)
    assert not window.histogram.plot.isHidden()


def test_candidate_generators_can_be_narrowed_in_settings(qtbot, window):
    dialog = window.open_settings()
    assert list(dialog.models) == ["taef2"] and dialog.models["taef2"].isChecked()
    dialog.accept()
    assert Preferences.load(window.store).models == ()  # all installed: models installed later join too
    Preferences(home=window.preferences.home, models=("taef2",)).save(window.store)
    assert Preferences.load(window.store).analysis_settings().models == ("taef2",)
    dialog = window.open_settings()
    dialog.models["taef2"].setChecked(False)
    assert dialog.preferences().models == ()  # none chosen means all, as for methods
    dialog.reject()


def test_application_folder_comes_from_home_option_then_environment_then_settings(monkeypatch, tmp_path):
    store = QSettings(str(tmp_path / "gui.ini"), QSettings.IniFormat)
    Preferences(home=tmp_path / "stored").save(store)
    monkeypatch.delenv("FORENSICS_APP_HOME", raising=False)
    assert Preferences.load(store).home == tmp_path / "stored"
    monkeypatch.setenv("FORENSICS_APP_HOME", str(tmp_path / "env"))
    assert Preferences.load(store).home == tmp_path / "env"
    assert Preferences.load(store, tmp_path / "option").home == tmp_path / "option"


def test_window_layout_is_remembered(qtbot, gui_home, tmp_path):
    first = open_window(qtbot, gui_home, tmp_path)
    first.findChild(QDockWidget, "Provenance_and_log").hide()
    first.close()
    second = open_window(qtbot, gui_home, tmp_path)
    assert second.findChild(QDockWidget, "Provenance_and_log").isHidden()
    assert second.findChild(QDockWidget, "Evidence").isVisible()
    assert second.store.value("window/geometry") is not None
    second.close()


def select_zoo_row(dialog, model_id: str) -> list[str]:
    ids = [dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())]
    dialog.table.selectRow(ids.index(model_id))
    return [dialog.table.item(ids.index(model_id), c).text() for c in range(3)]


def test_zoo_manager_lists_installed_models_and_verifies_hashes(qtbot, window):
    dialog = window.open_zoo_manager()
    row = select_zoo_row(dialog, "taef2")
    assert row[0] == "taef2" and row[2] == "yes"
    dialog.verify_selected()
    qtbot.waitUntil(lambda: "OK (weights and ONNX files match" in dialog.output.toPlainText(), timeout=WAIT_MS)
    dialog.reject()


def test_zoo_manager_reports_a_failed_install(qtbot, tmp_path):
    window = open_window(qtbot, tmp_path / "home", tmp_path)
    dialog = window.open_zoo_manager()
    select_zoo_row(dialog, "taef2")  # its weights are not shipped: an empty mirror cannot provide them
    (tmp_path / "empty-mirror").mkdir()
    dialog.install_selected(tmp_path / "empty-mirror")
    qtbot.waitUntil(lambda: "Failed:" in dialog.output.toPlainText(), timeout=WAIT_MS)
    assert "was not found in" in dialog.output.toPlainText()  # the installer's own reason, from its process
    assert dialog.install_mirror_button.isEnabled() and not dialog.cancel_button.isEnabled()
    assert not (tmp_path / "home" / "zoo" / "taef2").exists()  # nothing half-installed
    dialog.reject()
    window.close()


def test_cli_without_a_command_or_with_gui_opens_the_window(monkeypatch, tmp_path):
    from forensics_app import cli
    from forensics_app.gui import app

    calls = []
    monkeypatch.setattr(app, "run", lambda paths, home: calls.append((paths, home)) or 0)
    assert cli.main([]) == 0
    assert cli.main(["--home", str(tmp_path), "gui", "a.png", "folder"]) == 0
    assert calls == [([], None), ([Path("a.png"), Path("folder")], tmp_path)]


def test_large_images_are_shown_downsampled_at_their_stored_pixel_coordinates(qtbot):
    configure_pyqtgraph()
    rgb8 = np.random.default_rng(0).integers(0, 256, (300, 5000, 3), dtype=np.uint8)
    region = {"x": 4, "y": 6, "width": 4992, "height": 288}
    key = ("taef2", "aedr", "first_reconstruction_error")
    error_map = np.random.default_rng(1).random((288, 4992), dtype=np.float32)
    findings = ImageFindings(Path("wide.png"), "0" * 64, {"file_name": "wide.png", "width": 5000, "height": 300,
                                                          "format": "PNG"}, region,
                             Verdict("inconclusive", None, "Inconclusive."), [], maps={key: error_map},
                             reconstructions={"taef2": np.zeros((288, 4992, 3), np.float32)})
    display = prepare_display(rgb8, findings)
    assert display.step == display_step(300, 5000) == 3
    panel = ImagePanel()
    qtbot.addWidget(panel)
    panel.show_result(AnalysedImage(findings, display, {"taef2": "units"}))
    assert panel.image_item.image.shape == (100, 1667, 3)
    placed = lambda item: item.mapRectToParent(item.boundingRect())  # noqa: E731
    assert placed(panel.image_item) == QRectF(0, 0, 5000, 300)
    assert placed(panel.overlay_item) == QRectF(4, 6, 4992, 288)
    np.testing.assert_array_equal(panel.overlay_item.image, error_map[::3, ::3])
    assert panel.colour_bar.levels() == pytest.approx(map_display_range(error_map))


def test_a_candidate_that_analysed_part_of_the_image_has_its_map_placed_there(qtbot):
    """The CPU time policy narrows a costly candidate's region: its map covers that region only."""
    configure_pyqtgraph()
    rgb8 = np.zeros((600, 800, 3), np.uint8)
    key = ("big-vae", "aedr", "first_reconstruction_error")
    part = {"x": 240, "y": 176, "width": 320, "height": 248}
    candidate = CandidateFinding("big-vae", "Big VAE", "aedr", "AEDR", "2", True, 3.0, {}, 0.5, 0.5, None,
                                 "undecided", "CPU", {}, 30.0, None, region=part)
    findings = ImageFindings(Path("photo.png"), "0" * 64, {"file_name": "photo.png", "width": 800, "height": 600,
                                                           "format": "PNG"},
                             {"x": 0, "y": 0, "width": 800, "height": 600},  # another candidate saw it all
                             Verdict("inconclusive", None, "Inconclusive."), [candidate],
                             maps={key: np.ones((248, 320), np.float32)})
    panel = ImagePanel()
    qtbot.addWidget(panel)
    panel.show_result(AnalysedImage(findings, prepare_display(rgb8, findings), {"big-vae": "units"}))
    placed = panel.overlay_item.mapRectToParent(panel.overlay_item.boundingRect())
    assert placed == QRectF(240, 176, 320, 248)


def test_the_top_ranked_candidates_map_is_shown_first(qtbot):
    configure_pyqtgraph()
    rgb8 = np.zeros((64, 64, 3), np.uint8)
    maps = {(model, "aedr", "first_reconstruction_error"): np.full((64, 64), i, np.float32)
            for i, model in enumerate(("a-model", "b-model"))}
    candidates = [CandidateFinding(model, model, "aedr", "AEDR", "1", True, 1.0, {}, 0.5, p_real, 1.0, status,
                                   "CPU", {}, 0.0, None)
                  for model, p_real, status in (("b-model", 0.001, "consistent"), ("a-model", 0.5, "rejected"))]
    findings = ImageFindings(Path("x.png"), "0" * 64, {"file_name": "x.png", "width": 64, "height": 64,
                                                      "format": "PNG"}, {"x": 0, "y": 0, "width": 64, "height": 64},
                             Verdict("attributed", "b-model", "Consistent with b-model."), candidates, maps=maps)
    panel = ImagePanel()
    qtbot.addWidget(panel)
    panel.show_result(AnalysedImage(findings, prepare_display(rgb8, findings), {}))
    assert panel.map_choice.currentData() == ("b-model", "aedr", "first_reconstruction_error")
    assert panel.map_choice.count() == 2


def test_a_dropped_folder_is_walked_by_the_core_walker_and_every_entry_left_out_is_shown(qtbot, window, images,
                                                                                          tmp_path):
    folder = tmp_path / "awkward"
    folder.mkdir()
    (folder / "photo.png").write_bytes(images["real"].read_bytes())
    (folder / ".hidden.png").write_bytes(images["real"].read_bytes())
    (folder / "same.png").symlink_to(folder / "photo.png")  # the same file twice: analysed once
    (folder / "loop").symlink_to(folder)  # a folder link back to itself
    (folder / "broken.png").symlink_to(folder / "nowhere.png")
    os.mkfifo(folder / "pipe.png")  # Qt's reader would have waited on it forever for a thumbnail
    drop(window, [folder])
    wait_finished(qtbot, window)
    by_name = {item.path.name: item for item in window.evidence.items}
    assert set(by_name) == {"photo.png", "broken.png", "pipe.png"}
    assert by_name["photo.png"].status == DONE
    assert by_name["pipe.png"].message == "pipe.png is not a regular file (it is a device, pipe or socket)."
    assert by_name["broken.png"].status == REFUSED
    log = window.log_view.toPlainText()
    assert "Skipped" in log and ".hidden.png" in log and "same.png" in log and "already searched" in log
    assert "skipped (hidden, or reached twice): see the Log tab" in window.statusBar().currentMessage()
