"""A one-off background task (open a case, export a report, verify) with its log lines and progress
delivered as signals: the GUI thread never does the work, and never waits for it."""

from __future__ import annotations

import traceback
from collections.abc import Callable

from PySide6.QtCore import QThread, Signal

from forensics_app.core.errors import Cancelled, ForensicsError
from forensics_app.core.jobs import CancelToken, Progress


class BackgroundTask(QThread):
    log = Signal(str)
    progress = Signal(float, str)  # fraction done, what runs now
    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, title: str, work: Callable[[BackgroundTask], object], parent=None):
        """``work(task)`` runs in the thread: it may call ``task.log.emit(text)``, ``task.report(progress)``
        and watch ``task.cancel_token``; its return value is delivered by ``succeeded``."""
        super().__init__(parent)
        self.title = title
        self.cancel_token = CancelToken()
        self._work = work

    def report(self, progress: Progress) -> None:
        self.progress.emit(progress.fraction, progress.message)

    def cancel(self) -> None:
        self.cancel_token.cancel()

    def run(self) -> None:
        try:
            result = self._work(self)
        except Cancelled:
            self.failed.emit("cancelled")
        except ForensicsError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:
            self.log.emit(traceback.format_exc())
            self.failed.emit(f"Internal error ({type(exc).__name__}: {exc}).")
        else:
            self.succeeded.emit(result)
