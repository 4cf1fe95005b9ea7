"""A whole investigation in the window (pytest-qt): case files, notes, report export and verification on
background threads, plain verdict words, a fixed colour scale, a laptop-sized layout, the zoo manager's
installs as a process that is never waited for, the first-start offer, and the Qt system-library check."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QFileDialog, QLabel, QPushButton

from conftest import MIRROR, require_shared
from forensics_app.core.case import Case
from forensics_app.core.findings import NOT_ATTRIBUTED
from forensics_app.core.zoo.store import Zoo
from forensics_app.gui import platform_check
from forensics_app.gui.evidence_list import BADGE_COLOURS, DONE, REFUSED
from forensics_app.gui.preferences import Preferences
import test_gui
from test_gui import WAIT_MS, drop, open_window, select, wait_finished

gui_home, images = test_gui.gui_home, test_gui.images  # the same fixtures: a calibrated TAEF2, test images


@pytest.fixture
def evidence(images, tmp_path) -> dict[str, Path]:
    """Copies of the test images: verification must be able to change one without touching the others."""
    folder = tmp_path / "evidence"
    folder.mkdir()
    return {key: Path(shutil.copy(images[key], folder / images[key].name)) for key in ("own", "real", "empty")}


@pytest.fixture
def window(qtbot, gui_home, tmp_path):
    win = open_window(qtbot, gui_home, tmp_path)
    yield win
    win.close()


def wait_task(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.task is None, timeout=WAIT_MS)


def case_with_items(qtbot, window, evidence, tmp_path) -> Path:
    drop(window, [evidence["own"], evidence["real"]])
    wait_finished(qtbot, window)
    path = tmp_path / "harbour.case"
    assert window.create_case(path, "Harbour fire", "J. Doe")
    wait_finished(qtbot, window)  # the items already listed are analysed again, into the case
    return path


def test_a_new_case_stores_every_analysis_and_the_notes_and_opens_again(qtbot, window, evidence, gui_home,
                                                                       tmp_path):
    path = case_with_items(qtbot, window, evidence, tmp_path)
    assert "Harbour fire" in window.windowTitle()
    drop(window, [evidence["empty"]])  # refused files are recorded in the case too
    wait_finished(qtbot, window)
    with Case.open(path) as case:
        stored = {f.path.name: f for f in case.findings(with_maps=False)}
        assert set(stored) == {evidence["own"].name, evidence["real"].name}
        assert [f.path.name for f in case.failures()] == [evidence["empty"].name]

    own = select(window, evidence["own"])
    assert own.result.in_case
    window.notes.editor.setPlainText("Sent by the claimant on 3 March.")
    qtbot.mouseClick(window.notes.add_button, Qt.LeftButton)
    assert "J. Doe: Sent by the claimant on 3 March." in window.notes.history.toPlainText()
    window.close_case()
    assert window.case is None and not window.evidence.items

    window.load_case(path)  # off the GUI thread; then each item is read back with its maps
    wait_task(qtbot, window)
    qtbot.waitUntil(lambda: sorted(i.status for i in window.evidence.items) == [DONE, DONE, REFUSED],
                    timeout=WAIT_MS)
    reopened = select(window, evidence["own"])
    assert reopened.result.findings.verdict == stored[evidence["own"].name].verdict
    assert window.image_panel.map_choice.count() == 2  # the stored maps, read from the case
    assert "Sent by the claimant" in window.notes.history.toPlainText() and window.notes.add_button.isEnabled()


def test_without_a_case_notes_and_export_say_how_to_get_one(qtbot, window, evidence):
    drop(window, [evidence["own"]])
    wait_finished(qtbot, window)
    select(window, evidence["own"])
    assert not window.notes.add_button.isEnabled() and "File > New case" in window.notes.hint.text()
    assert window.export_report() is None
    assert "File > New case" in window.problem_box.text()


def test_export_writes_pdf_and_json_on_a_worker_thread_with_progress(qtbot, window, evidence, tmp_path):
    from pypdf import PdfReader

    case_with_items(qtbot, window, evidence, tmp_path)
    dialog = window.export_report()
    assert (dialog.case_name.text(), dialog.examiner.text()) == ("Harbour fire", "J. Doe")
    dialog.case_name.setText("Harbour fire, second look")
    pdf, json_out = tmp_path / "out.pdf", tmp_path / "out.json"
    dialog.pdf.setText(str(pdf))
    dialog.json.setText(str(json_out))
    threads, messages = set(), []

    def progress(fraction, message):  # called in the emitting thread: where the work runs
        threads.add(threading.get_ident())
        messages.append(message)

    dialog.accept()
    window.task.progress.connect(progress, Qt.DirectConnection)
    wait_task(qtbot, window)
    assert threading.get_ident() not in threads  # never on the GUI thread
    assert "drawing item 2 of 2" in messages or "laying out the pages" in messages
    doc = json.loads(json_out.read_text())
    assert doc["case"]["case_name"] == "Harbour fire, second look" and doc["case"]["examiner"] == "J. Doe"
    text = " ".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "Harbour fire, second look" in text and "J. Doe" in text and doc["report_id"] in text
    assert "written to" in window.log_view.toPlainText()


def test_verify_re_runs_the_case_and_lists_a_changed_evidence_file(qtbot, window, evidence, tmp_path):
    case_with_items(qtbot, window, evidence, tmp_path)
    window.verify_case()
    wait_task(qtbot, window)
    assert "IDENTICAL" in window.verification_box.text()
    evidence["real"].write_bytes(evidence["own"].read_bytes())  # the file changed after the analysis
    window.verify_case()
    wait_task(qtbot, window)
    assert "difference(s) found" in window.verification_box.text()
    assert "DIFFERS" in window.log_view.toPlainText() and evidence["real"].name in window.log_view.toPlainText()


def test_a_negative_never_reads_as_a_clean_bill_and_a_refusal_shows_no_empty_axes(qtbot, window, evidence):
    drop(window, [evidence["real"], evidence["empty"]])
    wait_finished(qtbot, window)
    real = select(window, evidence["real"])
    assert real.result.findings.verdict.label == NOT_ATTRIBUTED
    assert real.status_text() == "not attributed: no installed generator fits (not proof of a photograph)"
    assert BADGE_COLOURS[NOT_ATTRIBUTED] != "#5b8def"  # not the calm blue it shared with an all-clear
    assert "not proof of a photograph" in window.findings_panel.headline.text()
    assert "does not mean the image is a photograph" in window.findings_panel.verdict.text()
    select(window, evidence["empty"])
    assert window.histogram.plot.isHidden() and "not analysed" in window.histogram.note.text()


def test_a_fixed_colour_scale_is_the_same_for_every_image_and_is_remembered(qtbot, window, evidence):
    drop(window, [evidence["own"], evidence["real"]])
    wait_finished(qtbot, window)
    panel = window.image_panel
    per_image = []
    for key in ("own", "real"):
        select(window, evidence[key])
        per_image.append(tuple(panel.colour_bar.levels()))
    assert per_image[0] != per_image[1]  # per image: each map from 0 to its own 99.5th percentile
    panel.same_scale.setChecked(True)
    stored = Preferences.load(window.store)
    assert stored.fixed_map_scale and stored.colour_scale == stored.map_scale_top
    fixed = []
    for key in ("own", "real"):
        item = select(window, evidence[key])
        lo, hi = item.result.pixel_ranges["taef2"]
        fixed.append(tuple(panel.colour_bar.levels()))
        assert fixed[-1] == pytest.approx((0.0, stored.map_scale_top * (hi - lo)))
    assert fixed[0] == fixed[1]
    assert "fixed scale" in panel.title.text


def test_the_window_fits_a_1280_by_720_screen_with_nothing_clipped(qtbot, window, evidence):
    drop(window, [evidence["own"]])
    wait_finished(qtbot, window)
    select(window, evidence["own"])
    assert window.minimumSizeHint().width() <= 1280 and window.minimumSizeHint().height() <= 720
    for size in ((1280, 720), (1366, 768)):
        window.resize(*size)
        qtbot.waitUntil(lambda: (window.width(), window.height()) == size, timeout=WAIT_MS)
        for widget in [w for kind in (QCheckBox, QLabel, QPushButton) for w in window.image_panel.findChildren(kind)]:
            if widget.isVisible():  # toolbar labels at their full width: nothing reads "side by si..."
                assert widget.width() >= widget.sizeHint().width(), widget.text()
        assert window.findings_panel.table.isVisible() and window.findings_panel.table.height() >= 60
        assert window.histogram.plot.isVisible() and window.histogram.plot.height() >= 120
        assert window.evidence_view.isVisible() and window.image_panel.canvas.width() >= 260
    # the colour bar's unit is in the title line, not an axis label that ran into the tick labels
    assert not window.image_panel.colour_bar.axis.label.isVisible()
    assert "mean |difference|" in window.image_panel.title.text


def test_closing_the_zoo_manager_during_an_install_does_not_wait_and_cancel_cleans_up(qtbot, tmp_path):
    require_shared(MIRROR)
    window = open_window(qtbot, tmp_path / "home", tmp_path)
    dialog = window.open_zoo_manager()
    dialog.install("taef2", MIRROR)
    # held mid-install (weights fetched, the export under way), however fast this machine exports the model:
    # the files in the staging folder say where the installer is; its output may reach the window later
    # (polled in a tight loop, not through Qt's event loop, which a loaded machine can hold up for seconds)
    fetched = tmp_path / "home" / "zoo" / "taef2" / ".installing" / "weights" / "taef2_decoder.pth"
    deadline = time.monotonic() + WAIT_MS / 1000
    while not fetched.exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    installer = dialog.process.processId()
    os.kill(installer, signal.SIGSTOP)
    assert not (tmp_path / "home" / "zoo" / "taef2" / "receipt.json").exists()  # stopped before it committed
    qtbot.waitUntil(lambda: "SHA-256 verified" in dialog.output.toPlainText(), timeout=WAIT_MS)
    dialog.reject()  # closing returns while the installer process runs on
    assert not dialog.isVisible() and dialog.install_running()
    assert window.open_zoo_manager() is dialog and dialog.cancel_button.isEnabled()  # reopened: still there
    assert 0 < dialog.progress.value() < 100
    dialog.cancel_install()
    os.kill(installer, signal.SIGCONT)  # it resumes with the interrupt pending
    qtbot.waitUntil(lambda: not dialog.install_running(), timeout=WAIT_MS)
    assert "cancelled; nothing was left behind" in dialog.output.toPlainText()
    assert not (tmp_path / "home" / "zoo" / "taef2").exists()
    window.close()


def test_the_first_start_offers_taef2_and_installs_it_from_a_mirror_folder(qtbot, tmp_path, monkeypatch, images):
    require_shared(MIRROR)
    home = tmp_path / "home"
    window = open_window(qtbot, home, tmp_path)
    qtbot.waitUntil(lambda: window.first_model_offer is not None, timeout=WAIT_MS)
    assert "No generator model is installed" in window.first_model_offer.text()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(MIRROR))
    window.offer_mirror.click()
    dialog = window.zoo_dialog
    qtbot.waitUntil(lambda: not dialog.install_running(), timeout=180_000)
    assert "taef2 is installed." in dialog.output.toPlainText(), dialog.output.toPlainText()
    assert Zoo(home).installed_ids() == ["taef2"]
    drop(window, [images["real"]])  # the worker picked up the new model
    wait_finished(qtbot, window)
    assert window.evidence.items[0].status == DONE
    window.close()


def test_a_window_with_models_makes_no_first_start_offer(qtbot, window):
    qtbot.wait(50)
    assert window.first_model_offer is None


def fake_loader(missing: set[str]):
    return lambda library: Path(library).name if Path(library).name in missing else None


def test_missing_qt_system_libraries_are_named_with_their_packages():
    environ = {"DISPLAY": ":0"}
    problem = platform_check.platform_problem("linux", environ, fake_loader({"libxcb-cursor.so.0"}),
                                              plugin=Path("/nowhere/libqxcb.so"))
    assert "libxcb-cursor.so.0" in problem and "apt-get install libxcb-cursor0" in problem
    assert platform_check.platform_problem("linux", environ, fake_loader(set()), Path("/x/libqxcb.so")) is None
    assert platform_check.platform_problem("darwin", {}, fake_loader({"libxcb-cursor.so.0"})) is None
    assert platform_check.platform_problem("linux", {"QT_QPA_PLATFORM": "offscreen"}, fake_loader({"libGL.so.1"})) \
        is None
    assert platform_check.platform_problem("linux", {"WAYLAND_DISPLAY": "wayland-0"}, fake_loader({"libGL.so.1"})) \
        is None
    assert "$DISPLAY is not set" in platform_check.platform_problem("linux", {}, fake_loader(set()))
    # a library the table does not know: loading the plugin itself names it
    plugin = Path("/qt/libqxcb.so")
    assert platform_check.missing_qt_libraries(
        lambda library: "libxcb-new.so.9" if library == str(plugin) else None, plugin) == ["libxcb-new.so.9"]


def test_the_gui_command_stops_with_that_message_before_qt_starts(monkeypatch, tmp_path, capsys):
    from PySide6.QtWidgets import QApplication

    from forensics_app import cli

    monkeypatch.setattr(QApplication, "instance", staticmethod(lambda: None))
    monkeypatch.setattr(platform_check, "platform_problem", lambda: "Qt needs libxcb-cursor.so.0 (libxcb-cursor0).")
    assert cli.main(["--home", str(tmp_path), "gui"]) == cli.EXIT_USAGE
    assert "error: Qt needs libxcb-cursor.so.0 (libxcb-cursor0)." in capsys.readouterr().err


def test_folder_entries_the_walk_leaves_out_are_recorded_in_the_case(qtbot, window, evidence, tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    shutil.copy(evidence["real"], folder / "photo.png")
    shutil.copy(evidence["real"], folder / ".hidden.png")
    path = tmp_path / "walk.case"
    assert window.create_case(path, "Walk", "J. Doe")
    drop(window, [folder])
    wait_finished(qtbot, window)
    with Case.open(path) as case:
        assert [(p.name, reason) for p, reason in case.skipped()] == [
            (".hidden.png", "is a hidden file (its name starts with '.'): not analysed")]
