"""The main window: evidence list, image view with heat map, findings, histogram, provenance, notes, log.

A whole investigation happens here: open or create a case file (every analysis is stored in it as it
finishes), read the findings, add notes, export the report (PDF and JSON) and verify it. Opening a case,
exporting and verifying run as background tasks with their progress in the status bar; the window
never waits for them. The layout fits a 1280 x 720 screen: docks and splitters shrink, long text elides.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QSettings, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QDockWidget, QFileDialog, QHeaderView, QLabel, QMainWindow, \
    QMessageBox, QPlainTextEdit, QProgressBar, QPushButton, QSizePolicy, QSplitter, QTableView, QTabWidget, QWidget

from forensics_app import __version__
from forensics_app.core.case import Case
from forensics_app.core.errors import ForensicsError
from forensics_app.core.evidence import iter_image_files
from forensics_app.core.files import printable
from forensics_app.core.jobs import Progress
from forensics_app.core.zoo.store import Zoo
from forensics_app.gui.case_dialogs import CASE_FILTER, ExportDialog, NewCaseDialog
from forensics_app.gui.evidence_list import CANCELLED, DONE, QUEUED, REFUSED, RUNNING, THUMBNAIL_SIDE, \
    EvidenceListModel, StatusDelegate, ThumbnailLoader
from forensics_app.gui.findings_view import FindingsPanel
from forensics_app.gui.histogram import ScoreHistogram
from forensics_app.gui.image_view import EMPTY_MESSAGE, ImagePanel
from forensics_app.gui.notes_view import NotesPanel
from forensics_app.gui.preferences import Preferences
from forensics_app.gui.provenance_view import ProvenancePanel
from forensics_app.gui.settings_dialog import SettingsDialog
from forensics_app.gui.tasks import BackgroundTask
from forensics_app.gui.worker import AnalysedImage, AnalysisWorker
from forensics_app.gui.zoo_dialog import ZooDialog

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp *.gif *.heic *.heif *.avif);;All files (*)"
FIRST_MODEL = "taef2"  # offered at the first start: small, real weights, calibration shipped


class MainWindow(QMainWindow):
    def __init__(self, preferences: Preferences, store: QSettings, parent=None):
        super().__init__(parent)
        self.preferences = preferences
        self.store = store
        self.case: Case | None = None
        self.task: BackgroundTask | None = None  # open case / export / verify: one at a time
        self.zoo_dialog: ZooDialog | None = None  # kept: an install goes on while the manager is closed
        self.first_model_offer: QMessageBox | None = None
        self.setAcceptDrops(True)
        self._update_title()

        self.evidence = EvidenceListModel(self)
        self.thumbnails = ThumbnailLoader(self.evidence, self)
        self.worker = AnalysisWorker(preferences, self)

        self.image_panel = ImagePanel()
        self.image_panel.set_colour_scale(preferences.colour_scale)
        self.findings_panel = FindingsPanel()
        self.histogram = ScoreHistogram()
        self.provenance = ProvenancePanel()
        self.notes = NotesPanel()
        self.log_view = QPlainTextEdit(readOnly=True)
        self.log_view.setMaximumBlockCount(5000)
        self.evidence_view = self._evidence_view()
        self.setCentralWidget(self.image_panel)
        findings_split = QSplitter(Qt.Vertical)
        findings_split.setChildrenCollapsible(False)
        findings_split.addWidget(self.findings_panel)
        findings_split.addWidget(self.histogram)
        bottom_tabs = QTabWidget()
        bottom_tabs.addTab(self.provenance, "Provenance claims")
        bottom_tabs.addTab(self.notes, "Notes")
        bottom_tabs.addTab(self.log_view, "Log")
        self.bottom_tabs = bottom_tabs
        docks = [self._dock("Evidence", self.evidence_view, Qt.LeftDockWidgetArea),
                 self._dock("Findings", findings_split, Qt.RightDockWidgetArea),
                 self._dock("Provenance, notes and log", bottom_tabs, Qt.BottomDockWidgetArea, "Provenance_and_log")]
        # small minimums: on a 1280 x 720 laptop everything fits, and each dock can still be widened
        self.evidence_view.setMinimumWidth(170)
        findings_split.setMinimumWidth(280)
        self.image_panel.setMinimumSize(260, 200)
        bottom_tabs.setMinimumHeight(90)
        findings_split.setSizes([300, 260])
        self.resizeDocks(docks[:2], [210, 550], Qt.Horizontal)
        self.resizeDocks(docks[2:], [150], Qt.Vertical)

        self.overall = QProgressBar(maximumWidth=160, textVisible=True)
        self.counts = QLabel()
        self.counts.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)  # elided by the bar, never widening it
        self.task_label = QLabel()
        self.task_label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.task_progress = QProgressBar(maximumWidth=160, textVisible=True)
        self.task_cancel = QPushButton("Cancel")
        self.task_cancel.clicked.connect(self.cancel_task)
        self.statusBar().addWidget(self.counts, 2)
        self.statusBar().addWidget(self.task_label, 3)
        for widget in (self.task_progress, self.task_cancel, self.overall):
            self.statusBar().addPermanentWidget(widget)
        self._show_task(None)
        self._actions()
        self._connect_worker()
        self.evidence_view.selectionModel().currentRowChanged.connect(lambda *_: self._show_selected())
        self.findings_panel.candidate_selected.connect(self.histogram.select_candidate)
        self.image_panel.fixed_scale_toggled.connect(self._fixed_scale_toggled)
        self.notes.note_written.connect(self.add_note)
        for child in self.findChildren(QWidget):  # drops land on the window wherever they are made
            child.setAcceptDrops(False)
        self._fit_to_screen()
        self._restore_layout()
        self._update_counts()
        self.log(f"Application folder: {preferences.home}")
        self.worker.start()
        if not Zoo(preferences.home).installed_ids():
            QTimer.singleShot(0, self.offer_first_model)

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
        view.setColumnWidth(0, 100)
        view.setWordWrap(False)
        view.setTextElideMode(Qt.ElideRight)
        return view

    def _dock(self, title: str, widget, area, name: str | None = None) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name or title.replace(" ", "_"))  # saveState() needs stable names
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _fit_to_screen(self) -> None:
        """At most 1400 x 900, and never larger than the screen's free area (a 1366 x 768 laptop)."""
        screen = self.screen().availableGeometry() if self.screen() else None
        width, height = 1400, 900
        if screen is not None:
            width, height = min(width, screen.width()), min(height, screen.height())
        self.resize(width, height)

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
        action(file_menu, "&New case...", self.new_case, QKeySequence.New,
               "Create a case file: every analysis, its maps and your notes are stored in it")
        action(file_menu, "Open &case...", self.open_case, "Ctrl+Shift+C", "Open a case file and show what it holds")
        self.close_case_action = action(file_menu, "Close case", self.close_case, None, "Close the case file")
        file_menu.addSeparator()
        action(file_menu, "&Open images...", self.open_files, QKeySequence.Open, "Queue image files for analysis")
        action(file_menu, "Open &folder...", self.open_folder, "Ctrl+Shift+O", "Queue every image in a folder")
        action(file_menu, "C&lear list", self.clear_list, "Ctrl+Shift+Del", "Cancel and remove every item")
        file_menu.addSeparator()
        self.export_action = action(file_menu, "&Export report...", self.export_report, "Ctrl+E",
                                    "Write the case's findings report: PDF and JSON")
        file_menu.addSeparator()
        action(file_menu, "&Quit", self.close, QKeySequence.Quit)
        analysis_menu = self.menuBar().addMenu("&Analysis")
        self.cancel_action = action(analysis_menu, "&Cancel", self.cancel, "Esc",
                                    "Stop the running analysis and skip the queued files; finished results stay")
        analysis_menu.addSeparator()
        self.verify_case_action = action(analysis_menu, "&Verify case", self.verify_case, None,
                                         "Re-hash the evidence and models and re-run every analysis of the case")
        action(analysis_menu, "Verify a findings &file...", self.verify_findings_file, None,
               "Re-hash and re-run what a findings JSON records, and list every difference")
        models_menu = self.menuBar().addMenu("&Models")
        action(models_menu, "&Zoo manager...", self.open_zoo_manager, "Ctrl+Shift+M",
               "Installed models: install from a mirror folder or online, verify hashes")
        action(models_menu, "&Settings...", self.open_settings, QKeySequence.Preferences)
        view_menu = self.menuBar().addMenu("&View")
        for dock in self.findChildren(QDockWidget):
            view_menu.addAction(dock.toggleViewAction())
        self._update_case_actions()

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
        """Files as given, folders walked by the core's folder walk (the command line's); every entry it
        leaves out is said, in the log, the status bar and the case."""
        walk = iter_image_files(paths)
        items = self.evidence.add(walk.files)
        for item in items:
            self.worker.submit(item.item_id, item.path, self.case)
        self.thumbnails.request(items)
        if items:
            self.log(f"Queued {len(items)} file(s)" + (" into the case." if self.case else "."))
        refused = [entry for entry in walk.skipped if entry.refused]
        for item, entry in zip(self.evidence.add([entry.path for entry in refused]), refused):
            self._item_failed(item.item_id, f"{printable(entry.path.name)} {entry.reason}.")
        left_out = [entry for entry in walk.skipped if not entry.refused]
        for entry in left_out:
            self.log(f"Skipped {printable(str(entry.path))}: it {entry.reason}.")
        if left_out:
            self.statusBar().showMessage(f"{len(left_out)} folder entr{'y' if len(left_out) == 1 else 'ies'} "
                                         "skipped (hidden, or reached twice): see the Log tab.", 15_000)
            if self.case is not None:
                self.case.add_skipped([(entry.path, entry.reason) for entry in left_out])
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

    # -- cases -------------------------------------------------------------------------------------
    def new_case(self) -> NewCaseDialog:
        dialog = NewCaseDialog(Path.home(), self)
        dialog.accepted.connect(lambda: self.create_case(dialog.path(), dialog.name.text(), dialog.examiner.text()))
        dialog.open()
        return dialog

    def create_case(self, path: Path, name: str, examiner: str) -> bool:
        """Create the case file and analyse every item of the list into it (the case then holds their maps)."""
        if self._busy_with_task():
            return False
        try:
            case = Case.create(path, name, examiner)
        except ForensicsError as exc:
            self._problem("New case", str(exc))
            return False
        self._set_case(case)
        self.worker.cancel()  # what was queued without the case runs again, into it
        for item in self.evidence.items:
            self.evidence.update(item.item_id, status=QUEUED, result=None, message="", fraction=0.0)
            self.worker.submit(item.item_id, item.path, case)
        again = len(self.evidence.items)
        self.log(f"Case {case.meta['name']!r} created in {path}" + (
            f"; the {again} item(s) in the list are analysed again into it." if again else "."))
        self._show_selected()
        self._update_counts()
        return True

    def open_case(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open case", str(Path.home()), CASE_FILTER)
        if name:
            self.load_case(Path(name))

    def load_case(self, path: Path) -> None:
        """Open the case off the GUI thread (the evidence is re-hashed on opening), then show its items."""
        def work(task: BackgroundTask):
            task.report(Progress(0.0, f"opening {path.name} and re-hashing its evidence"))
            case = Case.open(path)
            try:
                return case, case.findings(with_maps=False), case.failures(), case.skipped()
            except BaseException:
                case.close()
                raise

        self._start_task(BackgroundTask(f"Opening case {path.name}", work, self), self._case_loaded)

    def _case_loaded(self, loaded) -> None:
        case, findings, failures, skipped = loaded
        self.clear_list()
        self._set_case(case)
        stored = self.evidence.add([f.path for f in findings])
        for item, f in zip(stored, findings):
            self.worker.submit_stored(item.item_id, f, case)
        self.thumbnails.request(stored)
        for item, failed in zip(self.evidence.add([f.path for f in failures]), failures):
            self._item_failed(item.item_id, failed.error)
        problems = [s for s in case.integrity if s.status != "ok"]
        self.log(f"Case {case.meta['name']!r} (examiner {case.meta['examiner']}) opened: {len(findings)} analysed "
                 f"item(s), {len(failures)} refused, {len(skipped)} folder entries skipped.")
        for status in problems:
            self.log(f"WARNING: evidence {status.status.upper()}: {printable(str(status.path))} no longer has the "
                     f"analysed bytes (SHA-256 {status.sha256}).")
        if problems:
            self._problem("Evidence changed", f"{len(problems)} evidence file(s) changed or went missing since they "
                          "were analysed; they are listed in the Log tab and marked in the list.")
        self._update_counts()

    def close_case(self) -> None:
        if self.case is not None and not self._busy_with_task():
            self.clear_list()
            self.log(f"Case {self.case.meta['name']!r} closed.")
            self._set_case(None)

    def _busy_with_task(self) -> bool:
        """One background task at a time; an export or verification reads the open case, which stays open."""
        if self.task is None:
            return False
        self._problem("Busy", f"{self.task.title} is still running; wait for it or cancel it.")
        return True

    def _set_case(self, case: Case | None) -> None:
        if self.case is not None:
            self.worker.close_case(self.case)  # after the item in flight: it may still be writing
        self.case = case
        self._update_title()
        self._update_case_actions()

    def _update_title(self) -> None:
        case = f"{self.case.meta['name']} ({self.case.path.name}) - " if self.case is not None else ""
        self.setWindowTitle(f"{case}Forensics App {__version__} - which generator made this image?")

    def _update_case_actions(self) -> None:
        if hasattr(self, "close_case_action"):
            for act in (self.close_case_action, self.verify_case_action):
                act.setEnabled(self.case is not None)

    def add_note(self, text: str) -> None:
        item = self.evidence.item(self._selected_id()) if self._selected_id() is not None else None
        if self.case is None or item is None or item.status != DONE:
            return
        try:
            self.case.add_note(item.result.findings.sha256, text)
        except ForensicsError as exc:
            self._problem("Note not added", str(exc))
        self._show_notes(item)

    def _show_notes(self, item) -> None:
        if item is None or item.status != DONE:
            self.notes.show_notes(None, "Select an analysed item to read or add notes.")
        elif self.case is None:
            self.notes.show_notes(None, "Notes are kept in a case file: File > New case (or Open case).")
        elif not item.result.in_case:
            self.notes.show_notes(None, "This item is not in the case yet.")
        else:
            self.notes.show_notes(self.case.notes(item.result.findings.sha256),
                                  f"Notes on this item in case {self.case.meta['name']!r}:")

    # -- report and verification ------------------------------------------------------------------
    def export_report(self) -> ExportDialog | None:
        if self.case is None:
            self._problem("Export report", "The report is made from a case file, with every analysis, its maps and "
                          "your notes. Create one with File > New case (the items in the list are analysed into "
                          "it), then export.")
            return None
        meta = self.case.meta
        dialog = ExportDialog(meta["name"], meta["examiner"], self.case.path, self)
        dialog.accepted.connect(lambda: self.write_report(*dialog.outputs(), dialog.case_name.text(),
                                                          dialog.examiner.text()))
        dialog.open()
        return dialog

    def write_report(self, pdf: Path | None, json_out: Path | None, case_name: str = "", examiner: str = "") -> None:
        from forensics_app.core.report.export import case_report, export_report

        case, zoo = self.case, Zoo(self.preferences.home)
        waiting = self.evidence.count(QUEUED) + self.evidence.count(RUNNING)
        if waiting:
            self.log(f"{waiting} item(s) are still being analysed: the report covers what the case holds now.")

        def work(task: BackgroundTask):
            task.report(Progress(0.0, "reading the case"))
            report = case_report(case, zoo, case_name, examiner)
            return "; ".join(export_report(report, [case.path], pdf, json_out, task.report))

        self._start_task(BackgroundTask("Exporting the report", work, self), self._report_written)

    def _report_written(self, message: str) -> None:
        self.log(message)
        self.statusBar().showMessage(message, 15_000)

    def verify_case(self) -> None:
        """Re-hash the evidence and the models, and re-run every analysis the case holds (like report verify)."""
        if self.case is None:
            return
        from forensics_app.core.report.export import case_report

        case, zoo = self.case, Zoo(self.preferences.home)
        self._start_verification(f"Verifying case {case.meta['name']!r}",
                                 lambda: case_report(case, zoo).document(), zoo)

    def verify_findings_file(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Verify a findings file", str(Path.home()),
                                              "Findings (*.json);;All files (*)")
        if name:
            from forensics_app.core.report_json import read_findings_document

            self._start_verification(f"Verifying {Path(name).name}", lambda: read_findings_document(Path(name)),
                                     Zoo(self.preferences.home))

    def _start_verification(self, title: str, document, zoo: Zoo) -> None:
        from forensics_app.core.report.verify import verify_document

        def work(task: BackgroundTask):
            task.report(Progress(0.0, "reading the findings"))
            return verify_document(document(), zoo, progress=task.report, cancel=task.cancel_token)

        self._start_task(BackgroundTask(title, work, self), self._verified)

    def _verified(self, result) -> None:
        checked = ", ".join(f"{n} {what}" for what, n in result.checked.items())
        for note in result.notes:
            self.log(f"Verify note: {note}")
        for difference in result.differences:
            self.log(f"DIFFERS: {difference.line()}")
        if result.identical:
            message = f"IDENTICAL: checked {checked}; every hash and number matches exactly."
        else:
            message = f"{len(result.differences)} difference(s) found (checked {checked}); each is in the Log tab."
        self.log(message)
        box = QMessageBox(QMessageBox.Information if result.identical else QMessageBox.Warning, "Verification",
                          message, QMessageBox.Ok, self)
        box.open()
        self.verification_box = box

    def _start_task(self, task: BackgroundTask, on_success) -> bool:
        if self._busy_with_task():
            return False
        self.task = task
        self.log(task.title + "...")
        task.log.connect(self.log)
        task.progress.connect(lambda fraction, message: self._show_task(task.title, fraction, message))
        task.succeeded.connect(on_success)
        task.failed.connect(lambda message: self._task_failed(task.title, message))
        task.finished.connect(self._task_finished)
        self._show_task(task.title, 0.0, "")
        task.start()
        return True

    def _task_failed(self, title: str, message: str) -> None:
        self.log(f"{title}: {message}")
        if message != "cancelled":
            self._problem(title, message)

    def _task_finished(self) -> None:
        self.task = None
        self._show_task(None)

    def cancel_task(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _show_task(self, title: str | None, fraction: float = 0.0, message: str = "") -> None:
        for widget in (self.task_label, self.task_progress, self.task_cancel):
            widget.setVisible(title is not None)
        if title is not None:
            self.task_label.setText(f"{title}: {message}" if message else title)
            self.task_label.setToolTip(self.task_label.text())
            self.task_progress.setValue(round(fraction * 100))

    def _problem(self, title: str, message: str) -> None:
        """Say it without blocking: a window-modal box, opened, not exec'd."""
        self.log(f"{title}: {message}")
        box = QMessageBox(QMessageBox.Warning, title, message, QMessageBox.Ok, self)
        box.open()
        self.problem_box = box

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
        self._show_notes(item)
        if item is not None and item.status == DONE:
            result = item.result
            self.image_panel.show_result(result)
            self.findings_panel.show_findings(result.findings, result.evidence_note)
            self.histogram.show_result(result)
            self.provenance.show_metadata(result.findings.metadata)
            return
        if item is None:
            self.image_panel.clear(EMPTY_MESSAGE)
            self.findings_panel.clear("No image selected.")
            self.histogram.clear()
        elif item.status == REFUSED:
            self.image_panel.clear(f"{item.path.name} was refused (the reason is under Findings)")
            self.findings_panel.clear(f"Refused: {item.message}", problem=True)
            self.histogram.clear("Nothing to show: the file was not analysed.")
        else:
            self.image_panel.clear(f"{item.path.name}: {item.status}")
            self.findings_panel.clear(f"{item.path.name}: {item.status_text()}")
            self.histogram.clear("The calibration is shown once the analysis is done.")
        self.provenance.show_metadata({})

    def _update_counts(self) -> None:
        counts = {s: self.evidence.count(s) for s in (QUEUED, RUNNING, DONE, REFUSED, CANCELLED)}
        text = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "Drop images to analyse them"
        self.counts.setText(text)
        self.counts.setToolTip(text)
        total = len(self.evidence.items)
        finished = counts[DONE] + counts[REFUSED] + counts[CANCELLED]
        self.overall.setMaximum(max(total, 1))
        self.overall.setValue(finished)
        self.overall.setFormat(f"{finished}/{total}")
        self.cancel_action.setEnabled(bool(counts[QUEUED] or counts[RUNNING]))

    def log(self, message: str) -> None:
        self.log_view.appendPlainText(f"{datetime.now():%H:%M:%S}  {message}")

    # -- models and settings ----------------------------------------------------------------------
    def open_zoo_manager(self) -> ZooDialog:
        """The one zoo manager of this window (an install it started goes on while it is closed)."""
        if self.zoo_dialog is None or self.zoo_dialog.zoo.home != self.preferences.home:
            if self.zoo_dialog is not None and self.zoo_dialog.install_running():
                self._problem("Zoo manager", "An install into the previous application folder is still running.")
                return self.zoo_dialog
            self.zoo_dialog = ZooDialog(Zoo(self.preferences.home), self)
            self.zoo_dialog.zoo_changed.connect(lambda: self.worker.configure(self.preferences))
            self.zoo_dialog.install_finished.connect(self._model_installed)
        else:  # a new dialog has just read the zoo
            self.zoo_dialog.refresh()
        self.zoo_dialog.open()
        return self.zoo_dialog

    def _model_installed(self, model_id: str, installed: bool) -> None:
        self.log(f"{model_id} installed: analyses now use it." if installed else f"{model_id} was not installed.")

    def offer_first_model(self) -> QMessageBox:
        """No model installed: offer TAEF2, from a mirror folder or online (never blocking: the box is opened)."""
        box = QMessageBox(QMessageBox.Question, "No generator model installed",
                          f"No generator model is installed in {self.preferences.home}, so nothing can be analysed "
                          "yet. Install TAEF2 (the FLUX.2 tiny autoencoder, about 10 MB, calibration included) now?",
                          QMessageBox.NoButton, self)
        self.offer_mirror = box.addButton("From a mirror folder...", QMessageBox.AcceptRole)
        self.offer_online = box.addButton("Online", QMessageBox.AcceptRole)
        box.addButton("Not now", QMessageBox.RejectRole)
        box.buttonClicked.connect(self._first_model_choice)
        box.open()
        self.first_model_offer = box
        return box

    def _first_model_choice(self, button) -> None:
        if button is self.offer_mirror:
            folder = QFileDialog.getExistingDirectory(self, "Mirror folder holding TAEF2's weight files")
            if folder:
                self.open_zoo_manager().install(FIRST_MODEL, Path(folder))
        elif button is self.offer_online:
            self.open_zoo_manager().install(FIRST_MODEL, None)

    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.preferences, self)
        dialog.accepted.connect(lambda: self.apply_preferences(dialog.preferences()))
        dialog.open()
        return dialog

    def apply_preferences(self, preferences: Preferences) -> None:
        analysis = lambda p: (p.home, p.analysis_settings())
        if analysis(preferences) != analysis(self.preferences):  # view-only settings need no new engine
            self.worker.configure(preferences)
        self.preferences = preferences
        preferences.save(self.store)
        self.image_panel.set_colour_scale(preferences.colour_scale)
        self.log(f"Settings changed: {preferences}")

    def _fixed_scale_toggled(self, fixed: bool) -> None:
        from dataclasses import replace

        self.apply_preferences(replace(self.preferences, fixed_map_scale=fixed))

    def closeEvent(self, event) -> None:
        self.store.setValue("window/geometry", self.saveGeometry())
        self.store.setValue("window/state", self.saveState())
        self.store.sync()
        self.thumbnails.shutdown()
        if self.case is not None:
            self.worker.close_case(self.case)
        self.worker.stop()
        if self.task is not None:  # verification stops at the next item; an export finishes its file
            self.task.cancel()
            self.task.wait()
        if self.zoo_dialog is not None:
            self.zoo_dialog.shutdown()
        super().closeEvent(event)
