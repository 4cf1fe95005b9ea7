"""Zoo manager: known and installed models, install from a mirror folder, verify hashes, remove."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout, QHeaderView, QMessageBox,
                               QPlainTextEdit, QPushButton, QTableWidgetItem, QVBoxLayout)

from forensics_app.core.pipeline import load_model_calibrations
from forensics_app.core.zoo.store import Zoo
from forensics_app.gui.tables import read_only_table
from forensics_app.gui.tasks import BackgroundTask

COLUMNS = ("Id", "Name", "Installed", "Calibration", "Licence", "Used by")


class ZooDialog(QDialog):
    zoo_changed = Signal()  # a model was installed or removed: the engine must reload

    def __init__(self, zoo: Zoo, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Model zoo - {zoo.root}")
        self.resize(1100, 480)
        self.zoo = zoo
        self.task: BackgroundTask | None = None
        self.table = read_only_table(COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.Stretch)  # "used by" wraps
        self.output = QPlainTextEdit(readOnly=True)
        self.output.setMaximumBlockCount(2000)
        self.install_button = QPushButton("Install from mirror folder...")
        self.verify_button = QPushButton("Verify hashes")
        self.remove_button = QPushButton("Remove")
        buttons = QHBoxLayout()
        for button in (self.install_button, self.verify_button, self.remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        close = QDialogButtonBox(QDialogButtonBox.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 2)
        layout.addLayout(buttons)
        layout.addWidget(self.output, 1)
        layout.addWidget(close)
        self.install_button.clicked.connect(self._choose_mirror_and_install)
        self.verify_button.clicked.connect(self.verify_selected)
        self.remove_button.clicked.connect(self._remove_selected)
        self.refresh()

    def refresh(self) -> None:
        manifests = self.zoo.manifests()
        installed = set(self.zoo.installed_ids())
        rows = [(i, m) for i, m in sorted(manifests.items()) if m.kind == "autoencoder"]
        self.table.setRowCount(len(rows))
        for row, (model_id, m) in enumerate(rows):
            name = m.display_name + (" [demonstration]" if m.demonstration else "")
            calibration = self._calibration_source(model_id) if model_id in installed else ""
            cells = (model_id, name, "yes" if model_id in installed else "no", calibration, m.licence,
                     "; ".join(m.used_by))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(row, column, item)
        self.table.resizeRowsToContents()
        if rows and not self.table.selectionModel().selectedRows():
            self.table.selectRow(0)

    def _calibration_source(self, model_id: str) -> str:
        model = self.zoo.installed(model_id)
        source = load_model_calibrations(model)[1]
        return "made on this machine" if source == str(model.calibration_folder() / "calibration.json") else source

    def selected_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.table.item(rows[0].row(), 0).text() if rows else None

    # -- actions -----------------------------------------------------------------------------------
    def _choose_mirror_and_install(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Mirror folder holding the model's weight files")
        if folder:
            self.install_selected(Path(folder))

    def install_selected(self, mirror: Path) -> None:
        model_id = self.selected_id()
        if model_id:
            self._start(f"Installing {model_id} from {mirror}",
                        lambda log: self._install(model_id, mirror, log), changes_zoo=True)

    def _install(self, model_id: str, mirror: Path, log) -> str:
        self.zoo.install(model_id, mirrors=[mirror], allow_download=False, log=log)
        return f"{model_id} installed; calibrate it (forensics-app zoo calibrate) unless a calibration ships with it."

    def verify_selected(self) -> None:
        model_id = self.selected_id()
        if model_id:
            self._start(f"Verifying {model_id}", lambda log: self._verify(model_id))

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

    def _start(self, title: str, work, changes_zoo: bool = False) -> None:
        self.output.appendPlainText(title + "...")
        self._set_busy(True)
        self.task = BackgroundTask(work, self)
        self.task.log.connect(self.output.appendPlainText)
        self.task.succeeded.connect(lambda message: self.output.appendPlainText(str(message)))
        self.task.failed.connect(lambda message: self.output.appendPlainText(f"Failed: {message}"))
        self.task.finished.connect(lambda: self._task_finished(changes_zoo))
        self.task.start()

    def _task_finished(self, changes_zoo: bool) -> None:
        self._set_busy(False)
        self.refresh()
        if changes_zoo:
            self.zoo_changed.emit()

    def _set_busy(self, busy: bool) -> None:
        for button in (self.install_button, self.verify_button, self.remove_button):
            button.setEnabled(not busy)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.table.resizeRowsToContents()  # the wrapped column has its real width only now

    def done(self, result: int) -> None:
        if self.task is not None:
            self.task.wait()  # installs are short (seconds); never leave a thread behind
        super().done(result)
