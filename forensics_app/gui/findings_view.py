"""The verdict in words, its reasons, and the ranked candidates of the selected image.

The panel shrinks to a laptop's dock: the verdict and its reasons scroll, the table scrolls sideways,
and every p-value carries its plain reading on a second line (the full sentence in its tooltip).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QFrame, QHeaderView, QLabel, QScrollArea, QSplitter, QTableWidget, QTableWidgetItem, \
    QVBoxLayout, QWidget

from forensics_app.core.findings import ImageFindings
from forensics_app.gui.evidence_list import BADGE_COLOURS
from forensics_app.gui.tables import read_only_table

COLUMNS = ("Generator", "Score", "p_own", "p_real", "Status")


class FindingsPanel(QWidget):
    candidate_selected = Signal(int)  # index into findings.candidates (ranked order)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.headline = QLabel()  # the verdict in a few words on its badge colour
        self.headline.setWordWrap(True)
        self.headline.setTextInteractionFlags(Qt.TextSelectableByMouse)
        font = self.headline.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.headline.setFont(font)
        self.verdict = QLabel()  # the verdict's sentence
        self.verdict.setWordWrap(True)
        self.verdict.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.reasons = QLabel()
        self.reasons.setWordWrap(True)
        self.reasons.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.table = read_only_table(COLUMNS)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Interactive)
        self.table.setColumnWidth(0, 115)  # long generator names wrap instead of pushing the numbers away
        self.table.setHorizontalScrollMode(QTableWidget.ScrollPerPixel)
        header_tips = ("Candidate generator (its autoencoder) and the method that read it",
                       "Method score: LOW = consistent with the generator",
                       "P(score at least this high | the generator's own outputs)",
                       "P(score at most this low | real photos)",
                       "Reading at the chosen false-attribution rate (its tooltip: how often outputs of the other "
                       "candidates reach this generator's threshold)")
        for column, tip in enumerate(header_tips):
            self.table.horizontalHeaderItem(column).setToolTip(tip)
        words = QWidget()
        words_layout = QVBoxLayout(words)
        words_layout.setContentsMargins(0, 0, 4, 0)
        for label in (self.headline, self.verdict, self.reasons):
            words_layout.addWidget(label)
        words_layout.addStretch(1)
        scroll = QScrollArea()  # long reasons scroll instead of pushing the table off a small screen
        scroll.setWidget(words)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        split = QSplitter(Qt.Vertical)
        split.setChildrenCollapsible(False)
        split.addWidget(scroll)
        split.addWidget(self.table)
        split.setSizes([150, 150])
        scroll.setMinimumHeight(60)
        self.table.setMinimumHeight(60)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.clear("No image selected.")

    def clear(self, message: str, problem: bool = False) -> None:
        self.headline.setText("")
        self.headline.setVisible(False)
        self.verdict.setText(message)
        self.verdict.setStyleSheet("color: #c5221f;" if problem else "")
        self.reasons.setText("")
        self.table.setRowCount(0)

    def show_findings(self, findings: ImageFindings, evidence_note: str = "") -> None:
        self.headline.setText(findings.headline()[:1].upper() + findings.headline()[1:])
        self.headline.setStyleSheet(f"background: {BADGE_COLOURS[findings.verdict.label]}; color: #111111; "
                                    "padding: 3px 6px; border-radius: 3px; font-weight: bold;")
        self.headline.setVisible(True)
        self.verdict.setText(findings.verdict.text)
        self.verdict.setStyleSheet("")
        reasons = [*findings.verdict.reasons, *([evidence_note] if evidence_note else [])]
        self.reasons.setText("\n".join(f"- {reason}" for reason in reasons))
        self.table.setRowCount(len(findings.candidates))
        for row, c in enumerate(findings.candidates):
            wrong = c.wrong_generator_text() if c.decisive else ""  # in the tooltip: the table fits a laptop
            cells = (f"{c.model_name}\n{c.method}", f"{c.score:.4g}", c.p_own_cell(),
                     c.p_real_cell(), c.status)
            threshold = f"threshold {c.threshold:.4g}" if c.threshold is not None else "no threshold"
            tips = (f"{c.model}: {c.method_title}" + ("" if c.decisive else " (shown for comparison, never votes)"),
                    "", c.p_own_sentence(), c.p_real_sentence(),
                    threshold + (f"; outputs of the other candidates reach it: {wrong}" if wrong else ""))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(tips[column])
                if not c.decisive:  # baselines are shown for comparison, greyed: they never vote
                    item.setForeground(QColor("#80868b"))
                    font = item.font()
                    font.setItalic(True)
                    item.setFont(font)
                if column in (1, 2, 3):
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
