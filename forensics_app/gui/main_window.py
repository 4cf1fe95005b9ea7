"""The main window: evidence list, image view with heat map, findings, histogram, provenance, log."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QSettings, QSize, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QDockWidget, QFileDialog, QHeaderView, QLabel, QMainWindow, \
    QPlainTextEdit, QProgressBar, QSplitter, QTableView, QTabWidget, QWidget

from forensics_app import __version__
from forensics_app.core.evidence import iter_image_files
from forensics_app.core.files import printable
from forensics_app.core.zoo.store import Zoo
from forensics_app.gui.evidence_list import CANCELLED, DONE, QUEUED, REFUSED, RUNNING, THUMBNAIL_SIDE, \
    EvidenceListModel, StatusDelegate, ThumbnailLoader
from forensics_app.gui.findings_view import FindingsPanel
from forensics_app.gui.histogram import ScoreHistogram
from forensics_app.gui.image_view import EMPTY_MESSAGE, ImagePanel
from forensics_app.gui.preferences import Preferences
from forensics_app.gui.provenance_view import ProvenancePanel
from forensics_app.gui.settings_dialog import SettingsDialog
from forensics_app.gui.worker import AnalysedImage, AnalysisWorker
from forensics_app.gui.zoo_dialog import ZooDialog

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp *.gif *.heic *.heif *.avif);;All files (*)"


class MainWindow(QMainWindow):
    def __init__(self, preferences: Preferences, store: QSettings, parent=None):
        super().__init__(parent)
        self.preferences = preferences
        self.store = store
        self.setWindowTitle(f"Forensics App {__version__} - which generator made this image?")
        self.setAcceptDrops(True)
        self.resize(1400, 900)

        self.evidence = EvidenceListModel(self)
        self.thumbnails = ThumbnailLoader(self.evidence, self)
        self.worker = AnalysisWorker(preferences, self)

        self.image_panel = ImagePanel()
        self.findings_panel = FindingsPanel()
        self.histogram = ScoreHistogram()
        self.provenance = ProvenancePanel()
        self.log_view = QPlainTextEdit(readOnly=True)
        self.log_view.setMaximumBlockCount(5000)
        self.evidence_view = self._evidence_view()
        self.setCentralWidget(self.image_panel)
        findings_split = QSplitter(Qt.Vertical)
        findings_split.addWidget(self.findings_panel)
        findings_split.addWidget(self.histogram)
        bottom_tabs = QTabWidget()
        bottom_tabs.addTab(self.provenance, "Provenance claims")
        bottom_tabs.addTab(self.log_view, "Log")
        self.bottom_tabs = bottom_tabs
        docks = [self._dock("Evidence", self.evidence_view, Qt.LeftDockWidgetArea),
                 self._dock("Findings", findings_split, Qt.RightDockWidgetArea),
                 self._dock("Provenance and log", bottom_tabs, Qt.BottomDockWidgetArea)]
        self.evidence_view.setMinimumWidth(320)
        findings_split.setMinimumWidth(560)
        findings_split.setSizes([280, 360])
        self.resizeDocks(docks[2:], [150], Qt.Vertical)

        self.overall = QProgressBar(maximumWidth=220, textVisible=True)
        self.counts = QLabel()
        self.statusBar().addWidget(self.counts, 1)
        self.statusBar().addPermanentWidget(self.overall)
        self._actions()
        self._connect_worker()
        self.evidence_view.selectionModel().currentRowChanged.connect(lambda *_: self._show_selected())
        self.findings_panel.candidate_selected.connect(self.histogram.select_candidate)
        for child in self.findChildren(QWidget):  # drops land on the window wherever they are made
            child.setAcceptDrops(False)
        self._restore_layout()
        self._update_counts()
        self.log(f"Application folder: {preferences.home}")
        self.worker.start()

    # -- construction ----------------------------------------------------------------------------
    def _evidence_view(self) -> QTableView:
        view = QTableView()
        view.setModel(self.evidence)
        view.setItemDelegateForColumn(EvidenceListModel.STATUS, StatusDelegate(view))
        view.setSelectionBehavior(QAbstractItemView.SelectRows)
        view.setSelectionMode(QAbstractItemView.SingleSelection)
        view.setIconSize(QSize(THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        view.verticalHeader().setVisible(False)
        view.verticalHeader().setDefaultSectionSize(THUMBNAIL_SIDE + 4)
        view.horizontalHeader().setSectionResizeMode(0, QHeaderView.Interactive)
        view.horizontalHeader().setStretchLastSection(True)
        view.setColumnWidth(0, 140)
        view.setWordWrap(False)
        return view

    def _dock(self, title: str, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.replace(" ", "_"))  # saveState() needs stable names
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _actions(self) -> None:
        def action(menu, text, slot, shortcut=None, tip=""):
            act = QAction(text, self)
            if shortcut is not None:
                act.setShortcut(QKeySequence(shortcut))
            act.setStatusTip(tip)
            act.triggered.connect(slot)
            menu.addAction(act)
            return act

        file_menu = self.menuBar().addMenu("&File")
        action(file_menu, "&Open images...", self.open_files, QKeySequence.Open, "Queue image files for analysis")
        action(file_menu, "Open &folder...", self.open_folder, "Ctrl+Shift+O", "Queue every image in a folder")
        action(file_menu, "&Clear list", self.clear_list, "Ctrl+Shift+Del", "Cancel and remove every item")
        file_menu.addSeparator()
        action(file_menu, "&Quit", self.close, QKeySequence.Quit)
        analysis_menu = self.menuBar().addMenu("&Analysis")
        self.cancel_action = action(analysis_menu, "&Cancel", self.cancel, "Esc",
                                    "Stop the running analysis and skip the queued files; finished results stay")
        models_menu = self.menuBar().addMenu("&Models")
        action(models_menu, "&Zoo manager...", self.open_zoo_manager, "Ctrl+Shift+M",
               "Installed models: install from a mirror folder, verify hashes")
        action(models_menu, "&Settings...", self.open_settings, QKeySequence.Preferences)
        view_menu = self.menuBar().addMenu("&View")
        for dock in self.findChildren(QDockWidget):
            view_menu.addAction(dock.toggleViewAction())

    def _connect_worker(self) -> None:
        w = self.worker
        w.item_started.connect(lambda i: self._set(i, status=RUNNING, fraction=0.0, message="loading"))
        w.item_progress.connect(lambda i, f, m: self._set(i, fraction=f, message=m))
        w.item_done.connect(self._item_done)
        w.item_failed.connect(self._item_failed)
        w.item_cancelled.connect(lambda i: self._set(i, status=CANCELLED, message=""))
        w.log.connect(self.log)

    def _restore_layout(self) -> None:
        geometry, state = self.store.value("window/geometry"), self.store.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)

    # -- queueing ----------------------------------------------------------------------------------
    def add_paths(self, paths: list[Path]) -> None:
        """Files as given, folders walked by the core's folder walk; every entry it leaves out is said."""
        walk = iter_image_files(paths)
        items = self.evidence.add(walk.files)
        for item in items:
            self.worker.submit(item.item_id, item.path)
        self.thumbnails.request(items)
        if items:
            self.log(f"Queued {len(items)} file(s).")
        refused = [entry for entry in walk.skipped if entry.refused]
        for item, entry in zip(self.evidence.add([entry.path for entry in refused]), refused):
            self._item_failed(item.item_id, f"{printable(entry.path.name)} {entry.reason}.")
        for entry in walk.skipped:
            if not entry.refused:
                self.log(f"Skipped {printable(str(entry.path))}: it {entry.reason}.")
        self._update_counts()

    def open_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", "", IMAGE_FILTER)
        self.add_paths([Path(f) for f in files])

    def open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            self.add_paths([Path(folder)])

    def cancel(self) -> None:
        if self.evidence.count(QUEUED) or self.evidence.count(RUNNING):
            selected = self.evidence.item(self._selected_id()) if self._selected_id() is not None else None
            was_queued = selected is not None and selected.status == QUEUED
            self.worker.cancel()
            self.evidence.cancel_queued()
            self._update_counts()
            if was_queued:  # re-render only when the shown item changed state
                self._show_selected()
            self.log("Cancelled: the running analysis stops, queued files are skipped; finished results stay.")

    def clear_list(self) -> None:
        self.worker.cancel()  # skipped items need no status: the list is emptied
        self.evidence.clear()
        self._show_selected()
        self._update_counts()

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    # -- results -----------------------------------------------------------------------------------
    def _set(self, item_id: int, **changes) -> None:
        self.evidence.update(item_id, **changes)
        self._update_counts()
        if self._selected_id() == item_id and "status" in changes:
            self._show_selected()

    def _item_done(self, item_id: int, result: AnalysedImage) -> None:
        self._set(item_id, status=DONE, fraction=1.0, message="", result=result)
        self.log(f"{result.findings.path.name}: {result.findings.verdict.text}")
        if self._selected_id() is None:  # show the first result without a click
            self.select_item(item_id)

    def _item_failed(self, item_id: int, reason: str) -> None:
        item = self.evidence.item(item_id)
        self._set(item_id, status=REFUSED, message=reason)
        if item is not None:
            self.log(f"{item.path.name} refused: {reason}")

    def select_item(self, item_id: int) -> None:
        for row, item in enumerate(self.evidence.items):
            if item.item_id == item_id:
                self.evidence_view.selectRow(row)
                return

    def _selected_id(self) -> int | None:
        index = self.evidence_view.selectionModel().currentIndex()
        return self.evidence.items[index.row()].item_id if index.isValid() else None

    def _show_selected(self) -> None:
        item_id = self._selected_id()
        item = self.evidence.item(item_id) if item_id is not None else None
        if item is not None and item.status == DONE:
            result = item.result
            self.image_panel.show_result(result)
            self.findings_panel.show_findings(result.findings)
            self.histogram.show_result(result)
            self.provenance.show_metadata(result.findings.metadata)
            return
        if item is None:
            self.image_panel.clear(EMPTY_MESSAGE)
            self.findings_panel.clear("No image selected.")
        elif item.status == REFUSED:
            self.image_panel.clear(f"{item.path.name} was refused (the reason is under Findings)")
            self.findings_panel.clear(f"Refused: {item.message}", problem=True)
        else:
            self.image_panel.clear(f"{item.path.name}: {item.status}")
            self.findings_panel.clear(f"{item.path.name}: {item.status_text()}")
        self.histogram.clear()
        self.provenance.show_metadata({})

    def _update_counts(self) -> None:
        counts = {s: self.evidence.count(s) for s in (QUEUED, RUNNING, DONE, REFUSED, CANCELLED)}
        self.counts.setText(", ".join(f"{n} {s}" for s, n in counts.items() if n) or "Drop images to analyse them")
        total = len(self.evidence.items)
        finished = counts[DONE] + counts[REFUSED] + counts[CANCELLED]
        self.overall.setMaximum(max(total, 1))
        self.overall.setValue(finished)
        self.overall.setFormat(f"{finished}/{total}")
        self.cancel_action.setEnabled(bool(counts[QUEUED] or counts[RUNNING]))

    def log(self, message: str) -> None:
        self.log_view.appendPlainText(f"{datetime.now():%H:%M:%S}  {message}")

    # -- dialogs -----------------------------------------------------------------------------------
    def open_zoo_manager(self) -> ZooDialog:
        dialog = ZooDialog(Zoo(self.preferences.home), self)
        dialog.zoo_changed.connect(lambda: self.worker.configure(self.preferences))
        dialog.open()
        return dialog

    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.preferences, self)
        dialog.accepted.connect(lambda: self.apply_preferences(dialog.preferences()))
        dialog.open()
        return dialog

    def apply_preferences(self, preferences: Preferences) -> None:
        self.preferences = preferences
        preferences.save(self.store)
        self.worker.configure(preferences)
        self.log(f"Settings changed: {preferences}")

    def closeEvent(self, event) -> None:
        self.store.setValue("window/geometry", self.saveGeometry())
        self.store.setValue("window/state", self.saveState())
        self.store.sync()
        self.thumbnails.shutdown()
        self.worker.stop()
        super().closeEvent(event)
