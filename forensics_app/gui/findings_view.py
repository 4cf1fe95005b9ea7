"""The verdict in words, its reasons, and the ranked candidates of the selected image."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHeaderView, QLabel, QTableWidgetItem, QVBoxLayout, QWidget

from forensics_app.core.findings import ImageFindings
from forensics_app.gui.tables import read_only_table

COLUMNS = ("Generator", "Method", "Score", "p_own", "p_real", "Wrong gen.", "Status")


class FindingsPanel(QWidget):
    candidate_selected = Signal(int)  # index into findings.candidates (ranked order)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.verdict = QLabel()
        self.verdict.setWordWrap(True)
        self.verdict.setTextInteractionFlags(Qt.TextSelectableByMouse)
        font = self.verdict.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.verdict.setFont(font)
        self.reasons = QLabel()
        self.reasons.setWordWrap(True)
        self.reasons.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.table = read_only_table(COLUMNS)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Interactive)
        self.table.setColumnWidth(0, 150)  # long generator names wrap instead of pushing the numbers away
        header_tips = ("Candidate generator (its autoencoder)", "Attribution method",
                       "Method score: LOW = consistent with the generator",
                       "P(score at least this high | the generator's own outputs)",
                       "P(score at most this low | real photos)",
                       "How often outputs of the other candidate generators reach this generator's threshold "
                       "(measured on outputs that did not set it)",
                       "Reading at the chosen false-attribution rate")
        for column, tip in enumerate(header_tips):
            self.table.horizontalHeaderItem(column).setToolTip(tip)
        layout = QVBoxLayout(self)
        layout.addWidget(self.verdict)
        layout.addWidget(self.reasons)
        layout.addWidget(self.table, 1)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.clear("No image selected.")

    def clear(self, message: str, problem: bool = False) -> None:
        self.verdict.setText(message)
        self.verdict.setStyleSheet("color: #c5221f;" if problem else "")
        self.reasons.setText("")
        self.table.setRowCount(0)

    def show_findings(self, findings: ImageFindings) -> None:
        self.verdict.setText(findings.verdict.text)
        self.verdict.setStyleSheet("")
        self.reasons.setText("\n".join(f"- {reason}" for reason in findings.verdict.reasons))
        self.table.setRowCount(len(findings.candidates))
        for row, c in enumerate(findings.candidates):
            cells = (c.model_name, c.method, f"{c.score:.4g}", c.p_own_text(), c.p_real_text(),
                     c.wrong_generator_text() if c.decisive else "", c.status)
            tips = (c.model, c.method_title + ("" if c.decisive else ": shown for comparison, never votes"),
                    "", "", "", "", f"threshold {c.threshold:.4g}" if c.threshold is not None else "no threshold")
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(tips[column])
                if not c.decisive:  # baselines are shown for comparison, greyed: they never vote
                    item.setForeground(QColor("#80868b"))
                    font = item.font()
                    font.setItalic(True)
                    item.setFont(font)
                if column in (2, 3, 4, 5):
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.table.setItem(row, column, item)
        self.table.resizeRowsToContents()
        if findings.candidates:
            self.table.selectRow(0)

    def cell_texts(self) -> list[list[str]]:
        """What the table shows, row by row (for tests and copying)."""
        return [[self.table.item(r, c).text() for c in range(self.table.columnCount())]
                for r in range(self.table.rowCount())]

    def _selection_changed(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.candidate_selected.emit(rows[0].row())
