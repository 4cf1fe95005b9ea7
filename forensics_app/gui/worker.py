"""The analysis worker: a QThread that adapts the Qt-free engine to signals.

Items are queued with the cancel token current at submission; ``cancel()`` cancels that token (which
also terminates onnxruntime calls already running) and starts a fresh one, so everything queued
before the cancel is skipped, finished results stay, and files added afterwards run normally.
The Engine is created in this thread, once per preference change, never per image.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QThread, Signal

from forensics_app.core.errors import Cancelled, ForensicsError
from forensics_app.core.evidence import load_evidence
from forensics_app.core.findings import ImageFindings
from forensics_app.core.jobs import CancelToken, Progress
from forensics_app.core.pipeline import Engine
from forensics_app.core.zoo.store import Zoo
from forensics_app.gui.display import DisplayImages, prepare_display
from forensics_app.gui.preferences import Preferences

PROGRESS_INTERVAL_S = 0.05  # at most ~20 progress updates a second reach the GUI thread


@dataclass
class AnalysedImage:
    """One finished analysis with what the views need beside the findings.

    ``findings.maps`` and ``findings.reconstructions`` are emptied once ``display`` holds their
    display-level copies (names of the maps stay in ``display.maps``).
    """

    findings: ImageFindings
    display: DisplayImages
    map_units: dict[str, str]  # model -> unit of its per-pixel maps, for the colour bar legend


class AnalysisWorker(QThread):
    item_started = Signal(int)
    item_progress = Signal(int, float, str)  # item id, fraction of this image, what runs now (model: method)
    item_done = Signal(int, object)  # AnalysedImage
    item_failed = Signal(int, str)  # plain-language reason (a ForensicsError message)
    item_cancelled = Signal(int)  # the running item stopped; queued ones are skipped without a signal
    idle = Signal()  # the queue ran empty
    engine_ready = Signal()  # models loaded (at start and after each settings change)
    log = Signal(str)

    def __init__(self, preferences: Preferences, parent=None):
        super().__init__(parent)
        self._queue: queue.Queue = queue.Queue()
        self._token = CancelToken()
        self._lock = threading.Lock()
        self._preferences = preferences
        self._generation = 0  # bumped by configure(); the engine is rebuilt when it changes
        self._engine: Engine | None = None
        self._engine_generation = -1

    # -- called from the GUI thread --------------------------------------------------------------
    def submit(self, item_id: int, path: Path) -> None:
        self._queue.put((item_id, path, self._token))

    def cancel(self) -> None:
        with self._lock:
            token, self._token = self._token, CancelToken()
        token.cancel()

    def configure(self, preferences: Preferences) -> None:
        """New preferences (or a changed zoo): the engine is rebuilt before the next image."""
        with self._lock:
            self._preferences = preferences
            self._generation += 1

    def stop(self) -> None:
        self.cancel()
        self._queue.put(None)
        self.wait()

    # -- the worker thread -----------------------------------------------------------------------
    def run(self) -> None:
        try:  # load the models before the first drop: the first image starts at once
            self._current_engine()
        except ForensicsError as exc:
            self.log.emit(str(exc))
        except Exception:  # a bug; each queued image will report it again
            self.log.emit(traceback.format_exc())
        while True:
            job = self._queue.get()
            if job is None:
                return
            self._analyse(*job)
            if self._queue.empty():
                self.idle.emit()

    def _analyse(self, item_id: int, path: Path, cancel: CancelToken) -> None:
        if cancel.cancelled:  # queued before a cancel: the window has already marked it
            return
        self.item_started.emit(item_id)
        last_emit = [0.0]

        def progress(p: Progress) -> None:
            now = time.monotonic()
            if now - last_emit[0] >= PROGRESS_INTERVAL_S:
                last_emit[0] = now
                self.item_progress.emit(item_id, p.fraction, p.message)

        try:
            engine = self._current_engine()
            evidence = load_evidence(path, engine.settings.intake)
            findings = engine.analyse_evidence(evidence, progress, cancel)
            display = prepare_display(evidence.rgb, findings)
            # the window keeps display-level copies only: full maps and R(x) of a big batch would not fit
            findings.maps.clear()
            findings.reconstructions.clear()
            result = AnalysedImage(findings, display, _map_units(engine))
        except Cancelled:
            self.item_cancelled.emit(item_id)
        except ForensicsError as exc:
            self.item_failed.emit(item_id, str(exc))
        except Exception as exc:  # a bug: keep the window alive, say so, keep the traceback in the log
            self.log.emit(traceback.format_exc())
            self.item_failed.emit(item_id, f"Internal error ({type(exc).__name__}: {exc}); details in the log.")
        else:
            self.item_done.emit(item_id, result)

    def _current_engine(self) -> Engine:
        with self._lock:
            preferences, generation = self._preferences, self._generation
        if self._engine is None or self._engine_generation != generation:
            self._engine = None  # a failed build must not leave the old engine in use
            engine = Engine(Zoo(preferences.home), preferences.analysis_settings())
            if not engine.models:
                raise ForensicsError(f"No model is installed in {preferences.home}; "
                                     "install one with Models > Zoo manager.")
            self._engine, self._engine_generation = engine, generation
            self.engine_ready.emit()
            self.log.emit(f"Models loaded: {', '.join(m.id for m in engine.models)} "
                          f"({', '.join(engine.run_info()['providers'])}); "
                          f"false-attribution rate {engine.settings.alpha:g}.")
        return self._engine


def _map_units(engine: Engine) -> dict[str, str]:
    units = {}
    for model in engine.models:
        lo, hi = model.installed.manifest.pixel_range
        units[model.id] = f"mean |difference| (pixels {lo:g}..{hi:g})"
    return units
