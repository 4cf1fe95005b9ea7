"""The examiner's notes on the selected item, kept in the case file (append-only, like a paper case file)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from forensics_app.core.case import Note


class NotesPanel(QWidget):
    note_written = Signal(str)  # the text of a new note for the selected item

    def __init__(self, parent=None):
        super().__init__(parent)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.history = QPlainTextEdit(readOnly=True)
        self.editor = QPlainTextEdit()
        self.editor.setPlaceholderText("A note on this item: where it came from, what you checked...")
        self.editor.setMaximumHeight(70)
        self.add_button = QPushButton("Add note")
        self.add_button.setToolTip("Notes are stored in the case file with your name and the time; they cannot "
                                   "be edited afterwards, only added to")
        self.add_button.clicked.connect(self._add)
        row = QHBoxLayout()
        row.addWidget(self.editor, 1)
        row.addWidget(self.add_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.hint)
        layout.addWidget(self.history, 1)
        layout.addLayout(row)
        self.show_notes(None, "Select an analysed item.")

    def show_notes(self, notes: list[Note] | None, hint: str = "") -> None:
        """``notes`` of the selected item, or None when notes cannot be written (``hint`` says why)."""
        self.hint.setText(hint)
        self.hint.setVisible(bool(hint))
        self.history.setPlainText("\n".join(f"{n.created}  {n.author}: {n.text}" for n in notes or []))
        for widget in (self.editor, self.add_button):
            widget.setEnabled(notes is not None)

    def _add(self) -> None:
        text = self.editor.toPlainText().strip()
        if text:
            self.note_written.emit(text)
            self.editor.clear()
