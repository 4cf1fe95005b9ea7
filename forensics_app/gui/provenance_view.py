"""Provenance claims (embedded metadata, Content Credentials) shown as a tree, always with the caveat."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

CLAIMS_NOTE = ("Metadata and Content Credentials are claims written by software: they can be stripped or forged, "
               "and their absence proves nothing. They never change the verdict.")


class ProvenancePanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        note = QLabel(CLAIMS_NOTE)
        note.setWordWrap(True)
        note.setStyleSheet("color: #b06000;")
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(("Claim", "Value"))
        self.tree.setColumnWidth(0, 200)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.tree, 1)

    def show_metadata(self, metadata: dict) -> None:
        self.tree.clear()
        if not metadata:
            QTreeWidgetItem(self.tree, ["(no provenance information was read)"]).setFirstColumnSpanned(True)
        for key, value in metadata.items():
            self._add(self.tree.invisibleRootItem(), str(key), value)
        self.tree.expandToDepth(0)

    def _add(self, parent, key: str, value) -> None:
        if isinstance(value, dict):
            node = QTreeWidgetItem(parent, [key, "" if value else "(none)"])
            for k, v in value.items():
                self._add(node, str(k), v)
        elif isinstance(value, (list, tuple)) and len(value) > 1:
            node = QTreeWidgetItem(parent, [key, f"{len(value)} entries"])
            for i, v in enumerate(value):
                self._add(node, str(i + 1), v)
        elif isinstance(value, (list, tuple)):
            node = QTreeWidgetItem(parent, [key, "; ".join(map(str, value)) if value else "(none)"])
            node.setToolTip(1, "\n".join(map(str, value)))
        else:
            node = QTreeWidgetItem(parent, [key, "" if value is None else str(value)])
            node.setToolTip(1, node.text(1))
