"""Progress and cancellation as plain objects, so the CLI, the GUI worker and tests share them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from forensics_app.core.errors import Cancelled


@dataclass(frozen=True)
class Progress:
    fraction: float  # 0..1 of the whole job
    message: str


ProgressCallback = Callable[[Progress], None]


def no_progress(_: Progress) -> None:
    pass


class CancelToken:
    """Set from any thread; checked between steps, and it stops onnxruntime calls already running."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._running: set = set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        self._event.set()
        with self._lock:
            for run_options in self._running:
                run_options.terminate = True

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()

    def track(self, run_options) -> None:
        """Let cancel() terminate an onnxruntime run started with these RunOptions."""
        with self._lock:
            self._running.add(run_options)
            if self._event.is_set():
                run_options.terminate = True

    def untrack(self, run_options) -> None:
        with self._lock:
            self._running.discard(run_options)


NEVER_CANCELLED = CancelToken()
