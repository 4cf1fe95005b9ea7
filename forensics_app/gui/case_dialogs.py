"""Dialogs of a case: a new case file (name, examiner, where), and exporting its report (PDF and JSON)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, \
    QLineEdit, QPushButton, QWidget

CASE_FILTER = "Case files (*.case);;All files (*)"


def _path_row(edit: QLineEdit, browse) -> QWidget:
    button = QPushButton("Browse...")
    button.clicked.connect(browse)
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(edit, 1)
    row.addWidget(button)
    widget = QWidget()
    widget.setLayout(row)
    return widget


class NewCaseDialog(QDialog):
    """Name, examiner and file of a new case; OK only when all three are given."""

    def __init__(self, folder: Path, parent=None):
        super().__init__(parent)
        self.setWindowTitle("New case")
        self.setMinimumWidth(560)
        self.name = QLineEdit()
        self.name.setPlaceholderText("e.g. Harbour fire, 2024-03")
        self.examiner = QLineEdit()
        self.examiner.setPlaceholderText("who is responsible for the analysis")
        self.file = QLineEdit()
        self.file.setPlaceholderText(str(folder / "investigation.case"))
        form = QFormLayout(self)
        form.addRow(QLabel("A case file keeps the evidence list, every analysis with its maps, and your notes. "
                           "Items already in the list are analysed again into it."))
        form.addRow("Case name:", self.name)
        form.addRow("Examiner:", self.examiner)
        form.addRow("Case file:", _path_row(self.file, self._browse))
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        for edit in (self.name, self.examiner, self.file):
            edit.textChanged.connect(self._update_ok)
        self._update_ok()

    def _browse(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Case file", self.file.text() or self.file.placeholderText(),
                                              CASE_FILTER)
        if name:
            self.file.setText(name if Path(name).suffix else name + ".case")

    def _update_ok(self) -> None:
        self.buttons.button(QDialogButtonBox.Ok).setEnabled(
            all(edit.text().strip() for edit in (self.name, self.examiner, self.file)))

    def path(self) -> Path:
        return Path(self.file.text().strip())


class ExportDialog(QDialog):
    """Where to write the report and what the cover says: case name and examiner (the case's by default)."""

    def __init__(self, case_name: str, examiner: str, case_path: Path, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export report")
        self.setMinimumWidth(640)  # whole paths stay readable
        self.case_name = QLineEdit(case_name)
        self.examiner = QLineEdit(examiner)
        stem = case_path.with_suffix("")
        self.pdf = QLineEdit(str(stem) + "-report.pdf")
        self.write_json = QCheckBox("Also the findings JSON (for 'report verify' and other tools):")
        self.write_json.setChecked(True)
        self.json = QLineEdit(str(stem) + "-findings.json")
        self.write_json.toggled.connect(self.json.setEnabled)
        form = QFormLayout(self)
        form.addRow("Case name:", self.case_name)
        form.addRow("Examiner:", self.examiner)
        form.addRow("PDF report:", _path_row(self.pdf, lambda: self._browse(self.pdf, "PDF (*.pdf)")))
        form.addRow(self.write_json)
        form.addRow("Findings JSON:", _path_row(self.json, lambda: self._browse(self.json, "JSON (*.json)")))
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self, edit: QLineEdit, file_filter: str) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Write to", edit.text(), file_filter)
        if name:
            edit.setText(name)

    def outputs(self) -> tuple[Path | None, Path | None]:
        pdf = Path(self.pdf.text().strip()) if self.pdf.text().strip() else None
        json_out = Path(self.json.text().strip()) if self.write_json.isChecked() and self.json.text().strip() else None
        return pdf, json_out
