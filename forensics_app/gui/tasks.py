"""A one-off background task (zoo install, verify) with its log lines delivered as signals."""

from __future__ import annotations

import traceback
from collections.abc import Callable

from PySide6.QtCore import QThread, Signal

from forensics_app.core.errors import ForensicsError


class BackgroundTask(QThread):
    log = Signal(str)
    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, work: Callable[[Callable[[str], None]], object], parent=None):
        """``work(log)`` runs in the thread; its return value is delivered by ``succeeded``."""
        super().__init__(parent)
        self._work = work

    def run(self) -> None:
        try:
            result = self._work(self.log.emit)
        except ForensicsError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:
            self.log.emit(traceback.format_exc())
            self.failed.emit(f"Internal error ({type(exc).__name__}: {exc}).")
        else:
            self.succeeded.emit(result)
