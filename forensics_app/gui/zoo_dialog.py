"""Zoo manager: known and installed models; install from a mirror folder or online, verify hashes, remove.

An install runs as a separate process (``forensics-app zoo install``): the window never waits for it,
closing the manager leaves it running (reopen the manager to follow it), and Cancel interrupts it the way
Ctrl+C does, so the installer removes its staging folder and leaves nothing half-installed.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from PySide6.QtCore import QProcess, QProcessEnvironment, Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QMessageBox,
                               QPlainTextEdit, QProgressBar, QPushButton, QTableWidgetItem, QVBoxLayout)

from forensics_app.core.pipeline import load_model_calibrations
from forensics_app.core.zoo.store import Zoo
from forensics_app.gui.tables import read_only_table
from forensics_app.gui.tasks import BackgroundTask

COLUMNS = ("Id", "Name", "Installed", "Calibration", "Licence", "Used by")


def install_command(home: Path, model_id: str, mirror: Path | None) -> list[str]:
    """The command line that installs one model: from ``mirror`` only, or (None) online, mirrors first."""
    program = [sys.executable] if getattr(sys, "frozen", False) else [sys.executable, "-m", "forensics_app"]
    source = ["--mirror", str(mirror), "--offline"] if mirror is not None else []
    return [*program, "--home", str(home), "zoo", "install", model_id, *source]


class ZooDialog(QDialog):
    zoo_changed = Signal()  # a model was installed or removed: the engine must reload
    install_finished = Signal(str, bool)  # model id, whether it is installed now

    def __init__(self, zoo: Zoo, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Model zoo - {zoo.root}")
        self.resize(1000, 460)
        self.zoo = zoo
        self.task: BackgroundTask | None = None
        self.process: QProcess | None = None
        self.installing: str | None = None
        self._steps = (0, 1)  # install steps seen, expected (weights verified, two ONNX exports, installed)
        self._partial = ""  # output not yet ended by a newline (download progress bars redraw with \r)
        self.table = read_only_table(COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.Stretch)  # "used by" wraps
        self.output = QPlainTextEdit(readOnly=True)
        self.output.setMaximumBlockCount(2000)
        self.install_mirror_button = QPushButton("Install from mirror folder...")
        self.install_mirror_button.setToolTip("Copy the selected model's files from a folder (no network)")
        self.install_online_button = QPushButton("Install online")
        self.install_online_button.setToolTip("Download the selected model's files from their source "
                                              "(mirror folders in $FORENSICS_APP_MIRROR are tried first)")
        self.cancel_button = QPushButton("Cancel install")
        self.verify_button = QPushButton("Verify hashes")
        self.remove_button = QPushButton("Remove")
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setVisible(False)
        self.activity = QLabel()
        buttons = QHBoxLayout()
        for button in (self.install_mirror_button, self.install_online_button, self.cancel_button,
                       self.verify_button, self.remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        close = QDialogButtonBox(QDialogButtonBox.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 2)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.activity)
        layout.addWidget(self.output, 1)
        layout.addWidget(close)
        self.install_mirror_button.clicked.connect(self._choose_mirror_and_install)
        self.install_online_button.clicked.connect(lambda: self.install_selected(None))
        self.cancel_button.clicked.connect(self.cancel_install)
        self.verify_button.clicked.connect(self.verify_selected)
        self.remove_button.clicked.connect(self._remove_selected)
        self._set_busy(False)
        self.refresh()

    def refresh(self) -> None:
        manifests = self.zoo.manifests()
        installed = set(self.zoo.installed_ids())
        rows = [(i, m) for i, m in sorted(manifests.items()) if m.kind == "autoencoder"]
        selected = self.selected_id()
        self.table.setRowCount(len(rows))
        for row, (model_id, m) in enumerate(rows):
            name = m.display_name + (" [demonstration]" if m.demonstration else "")
            calibration = self._calibration_source(model_id) if model_id in installed else ""
            status = "installing..." if model_id == self.installing else "yes" if model_id in installed else "no"
            cells = (model_id, name, status, calibration, m.licence, "; ".join(m.used_by))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(row, column, item)
        self.table.resizeRowsToContents()
        if rows:
            self.select(selected if selected in manifests else rows[0][0])

    def _calibration_source(self, model_id: str) -> str:
        model = self.zoo.installed(model_id)
        source = load_model_calibrations(model)[1]
        return "made on this machine" if source == str(model.calibration_folder() / "calibration.json") else source

    def select(self, model_id: str) -> None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).text() == model_id:
                self.table.selectRow(row)

    def selected_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.table.item(rows[0].row(), 0).text() if rows else None

    # -- installing: a separate process -------------------------------------------------------------
    def _choose_mirror_and_install(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Mirror folder holding the model's weight files")
        if folder:
            self.install_selected(Path(folder))

    def install_selected(self, mirror: Path | None) -> None:
        """Install the selected model from ``mirror`` (a folder), or online when it is None."""
        model_id = self.selected_id()
        if model_id:
            self.install(model_id, mirror)

    def install(self, model_id: str, mirror: Path | None) -> None:
        if self.install_running():
            self.output.appendPlainText(f"{self.installing} is still being installed; wait or cancel it first.")
            return
        self.installing = model_id
        weights = len(self.zoo.manifest(model_id).weights)
        self._steps, self._partial = (0, weights + 3), ""
        source = f"from {mirror}" if mirror is not None else "online"
        self.output.appendPlainText(f"Installing {model_id} {source}...")
        self.process = QProcess(self)
        environment = QProcessEnvironment.systemEnvironment()
        environment.insert("PYTHONUNBUFFERED", "1")  # lines arrive as they are printed
        self.process.setProcessEnvironment(environment)
        self.process.setProcessChannelMode(QProcess.MergedChannels)
        self.process.readyReadStandardOutput.connect(self._read_output)
        self.process.finished.connect(self._install_done)
        self.process.errorOccurred.connect(self._install_error)
        program, *arguments = install_command(self.zoo.home, model_id, mirror)
        self._set_busy(True)
        self.refresh()
        self.process.start(program, arguments)

    def install_running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.NotRunning

    def cancel_install(self) -> None:
        """Interrupt the installer as Ctrl+C does (it cleans up its staging folder); returns at once."""
        if not self.install_running():
            return
        self.output.appendPlainText("Cancelling the install...")
        if hasattr(signal, "SIGINT") and sys.platform != "win32":
            os.kill(self.process.processId(), signal.SIGINT)
        else:  # Windows has no Ctrl+C for a child without a console; the staging folder goes at the next install
            self.process.kill()

    def _read_output(self) -> None:
        text = self._partial + bytes(self.process.readAllStandardOutput()).decode("utf-8", "backslashreplace")
        *lines, self._partial = text.replace("\r", "\n").split("\n")
        done, expected = self._steps
        for line in filter(None, (line.rstrip() for line in lines)):
            self.output.appendPlainText(line)
            if "SHA-256" in line or "exported to ONNX" in line or " installed in " in line:
                done += 1
        self._steps = (done, expected)
        self.progress.setValue(round(100 * min(done, expected) / expected))
        self.activity.setText(self._partial.strip()[:200])  # a download's progress bar, as it redraws

    def _install_done(self, exit_code: int, _status) -> None:
        model_id, self.installing = self.installing, None
        installed = model_id in self.zoo.installed_ids()
        if installed:
            self.output.appendPlainText(f"{model_id} is installed.")
        elif exit_code == 130:
            self.output.appendPlainText(f"Install of {model_id} cancelled; nothing was left behind.")
        else:
            self.output.appendPlainText(f"Failed: {model_id} was not installed (see the lines above).")
        self.activity.setText("")
        self._set_busy(False)
        self.refresh()
        self.zoo_changed.emit()
        self.install_finished.emit(model_id, installed)

    def _install_error(self, error) -> None:
        if error == QProcess.FailedToStart:
            self.output.appendPlainText(f"Failed: the installer could not be started ({self.process.errorString()}).")
            self._install_done(-1, None)

    # -- verify and remove -----------------------------------------------------------------------
    def verify_selected(self) -> None:
        model_id = self.selected_id()
        if model_id:
            self.output.appendPlainText(f"Verifying {model_id}...")
            self.task = BackgroundTask(f"Verifying {model_id}", lambda task: self._verify(model_id), self)
            self.task.succeeded.connect(lambda message: self.output.appendPlainText(str(message)))
            self.task.failed.connect(lambda message: self.output.appendPlainText(f"Failed: {message}"))
            self.task.finished.connect(lambda: self.verify_button.setEnabled(True))
            self.verify_button.setEnabled(False)
            self.task.start()

    def _verify(self, model_id: str) -> str:
        problems = self.zoo.verify(model_id)
        return (f"{model_id}: OK (weights and ONNX files match their SHA-256)" if not problems
                else f"{model_id}: FAILED: " + "; ".join(problems))

    def _remove_selected(self) -> None:
        model_id = self.selected_id()
        if model_id and model_id in self.zoo.installed_ids() and QMessageBox.question(
                self, "Remove model", f"Remove {model_id} and its calibration from {self.zoo.root}?") \
                == QMessageBox.Yes:
            self.zoo.remove(model_id)
            self.output.appendPlainText(f"{model_id} removed.")
            self.refresh()
            self.zoo_changed.emit()

    def _set_busy(self, installing: bool) -> None:
        for button in (self.install_mirror_button, self.install_online_button, self.remove_button):
            button.setEnabled(not installing)
        self.cancel_button.setEnabled(installing)
        self.progress.setVisible(installing)
        if installing:
            self.progress.setValue(0)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.table.resizeRowsToContents()  # the wrapped column has its real width only now

    def shutdown(self) -> None:
        """At quit: interrupt a running install and let it clean up (bounded: a few seconds at most)."""
        if self.install_running():
            self.cancel_install()
            if not self.process.waitForFinished(5000):
                self.process.kill()
                self.process.waitForFinished(1000)
        if self.task is not None:
            self.task.wait()  # a hash check of the installed files: seconds
