"""The evidence list: one row per dropped file with its thumbnail and its status.

Status per item: queued -> running (with progress) -> done (verdict badge) | refused (reason) | cancelled.
Thumbnails are decoded in a background pool (one thread: analysis gets the cores) and arrive by signal.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPixmap
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionProgressBar

from forensics_app.core.errors import EvidenceError
from forensics_app.core.evidence import preview_image, read_evidence_bytes
from forensics_app.core.findings import ATTRIBUTED, INCONCLUSIVE, NOT_ATTRIBUTED
from forensics_app.gui.worker import AnalysedImage

QUEUED, RUNNING, DONE, REFUSED, CANCELLED = "queued", "running", "done", "refused", "cancelled"
THUMBNAIL_SIDE = 48
PROGRESS_ROLE = Qt.UserRole + 1  # fraction done while running, else None

# verdict badge colours: attributed stands out, a refusal reads as a problem; "not attributed" is a muted
# grey-violet, never the calm blue of an all-clear: it does not say the image is a photograph
BADGE_COLOURS = {ATTRIBUTED: "#f5a524", NOT_ATTRIBUTED: "#c3b8d8", INCONCLUSIVE: "#9aa0a6", REFUSED: "#e5484d",
                 CANCELLED: "#6e6e6e"}


@dataclass
class EvidenceItem:
    item_id: int
    path: Path
    status: str = QUEUED
    fraction: float = 0.0
    message: str = ""  # what runs now, or why it was refused
    result: AnalysedImage | None = None
    thumbnail: QPixmap | None = None

    def status_text(self) -> str:
        if self.status == RUNNING:
            return f"running {self.fraction:.0%}" + (f" - {self.message}" if self.message else "")
        if self.status == DONE:
            warning = " (evidence not shown)" if self.result.evidence_note else ""
            return self.result.findings.headline() + warning
        if self.status == REFUSED:
            return f"refused: {self.message}"
        return self.status

    def badge_colour(self) -> str | None:
        if self.status == DONE:
            return BADGE_COLOURS[self.result.findings.verdict.label]
        return BADGE_COLOURS.get(self.status)


class EvidenceListModel(QAbstractTableModel):
    FILE, STATUS = range(2)
    HEADERS = ("File", "Status")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.items: list[EvidenceItem] = []
        self._rows: dict[int, int] = {}  # item id -> row
        self._counts: Counter = Counter()  # status -> items; kept current so the status bar costs O(1)
        self._next_id = 0

    def add(self, paths: list[Path]) -> list[EvidenceItem]:
        new = []
        for path in paths:
            new.append(EvidenceItem(self._next_id, path))
            self._next_id += 1
        if new:  # one insert for the whole drop: 500 files cost one view update
            first = len(self.items)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            for offset, item in enumerate(new):
                self._rows[item.item_id] = first + offset
            self.items.extend(new)
            self._counts[QUEUED] += len(new)
            self.endInsertRows()
        return new

    def clear(self) -> None:
        self.beginResetModel()
        self.items, self._rows, self._counts = [], {}, Counter()
        self.endResetModel()

    def item(self, item_id: int) -> EvidenceItem | None:
        row = self._rows.get(item_id)
        return None if row is None else self.items[row]

    def update(self, item_id: int, **changes) -> None:
        """Change an item's fields; ids from before a clear() are ignored."""
        row = self._rows.get(item_id)
        if row is None:
            return
        item = self.items[row]
        if "status" in changes:
            self._counts[item.status] -= 1
            self._counts[changes["status"]] += 1
        for name, value in changes.items():
            setattr(item, name, value)
        self.dataChanged.emit(self.index(row, 0), self.index(row, self.columnCount() - 1))

    def cancel_queued(self) -> None:
        """Every queued item becomes cancelled in one view update (500 rows, one repaint)."""
        for item in self.items:
            if item.status == QUEUED:
                item.status = CANCELLED
        self._counts[CANCELLED] += self._counts.pop(QUEUED, 0)
        if self.items:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.items) - 1, self.columnCount() - 1))

    def count(self, status: str) -> int:
        return self._counts[status]

    # -- Qt model interface ------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.items)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if orientation == Qt.Horizontal and role == Qt.DisplayRole:
            return self.HEADERS[section]
        return None

    def data(self, index, role=Qt.DisplayRole):
        if not index.isValid():
            return None
        item = self.items[index.row()]
        column = index.column()
        if role == Qt.DisplayRole:
            return item.path.name if column == self.FILE else item.status_text()
        if role == Qt.ToolTipRole:
            if column == self.FILE:
                return str(item.path)
            if item.status == DONE:  # the whole sentence: the cell shows as much of the headline as fits
                return "\n".join(filter(None, (item.result.findings.verdict.text, item.result.evidence_note)))
            return item.status_text()
        if role == PROGRESS_ROLE and column == self.STATUS and item.status == RUNNING:
            return item.fraction
        if role == Qt.DecorationRole and column == self.FILE:
            return item.thumbnail
        if role == Qt.BackgroundRole and column == self.STATUS and item.badge_colour():
            return QBrush(QColor(item.badge_colour()))
        if role == Qt.ForegroundRole and column == self.STATUS and item.badge_colour():
            return QBrush(QColor("#111111"))
        return None


class StatusDelegate(QStyledItemDelegate):
    """Draws a progress bar in the status cell of running items."""

    def paint(self, painter, option, index) -> None:
        fraction = index.data(PROGRESS_ROLE)
        if fraction is None:
            super().paint(painter, option, index)
            return
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(2, 6, -2, -6)
        bar.state = option.state | QStyle.State_Horizontal
        bar.minimum, bar.maximum, bar.progress = 0, 1000, round(fraction * 1000)
        bar.text = option.fontMetrics.elidedText(index.data(Qt.DisplayRole), Qt.ElideRight, bar.rect.width() - 8)
        bar.textVisible = True
        bar.textAlignment = Qt.AlignLeft | Qt.AlignVCenter
        QApplication.style().drawControl(QStyle.CE_ProgressBar, bar, painter)


class _ThumbnailJob(QRunnable):
    def __init__(self, item_id: int, path: Path, ready: Signal):
        super().__init__()
        self.item_id, self.path, self.ready = item_id, path, ready

    def run(self) -> None:
        # decoded as the intake decodes evidence (pinned decoders, size limits, regular files only):
        # Qt's own readers would pick any plugin, and would wait forever on a pipe
        try:
            preview = preview_image(read_evidence_bytes(self.path), THUMBNAIL_SIDE)
        except EvidenceError:
            preview = None
        if preview is not None:  # unreadable files: the row simply has no thumbnail
            image = QImage(preview.tobytes(), preview.width, preview.height, 3 * preview.width, QImage.Format_RGB888)
            self.ready.emit(self.item_id, image.copy())  # copy: the QImage must own its pixels


class ThumbnailLoader(QObject):
    """Decodes small previews off the GUI thread; QImage crosses threads, QPixmap is made here."""

    ready = Signal(int, QImage)

    def __init__(self, model: EvidenceListModel, parent=None):
        super().__init__(parent)
        self.model = model
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.ready.connect(self._store)

    def request(self, items: list[EvidenceItem]) -> None:
        for item in items:
            self.pool.start(_ThumbnailJob(item.item_id, item.path, self.ready))

    def _store(self, item_id: int, image: QImage) -> None:
        self.model.update(item_id, thumbnail=QPixmap.fromImage(image))

    def shutdown(self) -> None:
        self.pool.clear()
        self.pool.waitForDone()
