"""The analysis worker: a QThread that adapts the Qt-free engine to signals.

Items are queued with the cancel token current at submission; ``cancel()`` cancels that token (which
also terminates onnxruntime calls already running) and starts a fresh one, so everything queued
before the cancel is skipped, finished results stay, and files added afterwards run normally.
The Engine is created in this thread, once per preference change, never per image.

With a case open, each analysis is stored in the case file as soon as it finishes (results the case
already holds are reused), and items of an opened case are read back here, one at a time, with their
maps. A case is closed through the queue, after the item in flight: never under the worker's feet.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QThread, Signal

from forensics_app.core.case import Case, analyse_evidence_into_case
from forensics_app.core.errors import Cancelled, ForensicsError
from forensics_app.core.evidence import load_evidence
from forensics_app.core.findings import ImageFindings, absolute_path
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
    pixel_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # model -> its pixel range
    in_case: bool = False  # stored in the open case file (notes can be added to it)
    evidence_note: str = ""  # when the evidence is not shown as analysed (a stored item whose file changed)


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
        self._run_info: dict = {}  # of the current engine, as stored with each analysis in a case

    # -- called from the GUI thread --------------------------------------------------------------
    def submit(self, item_id: int, path: Path, case: Case | None = None) -> None:
        """Analyse a file; with ``case``, store the analysis in it as soon as it is done."""
        self._queue.put((self._analyse, item_id, path, self._token, case))

    def submit_stored(self, item_id: int, findings: ImageFindings, case: Case) -> None:
        """Show an analysis stored in ``case`` (read with its maps here, not on the GUI thread)."""
        self._queue.put((self._load_stored, item_id, findings, self._token, case))

    def close_case(self, case: Case) -> None:
        """Close ``case`` once the item in flight is done with it (the window cancels its queued items first)."""
        self._queue.put((lambda *_: case.close(), None, None, CancelToken(), None))

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
            work, item_id, subject, cancel, case = job
            if not cancel.cancelled:  # queued before a cancel: the window has already marked it
                work(item_id, subject, cancel, case)
            if self._queue.empty():
                self.idle.emit()

    def _analyse(self, item_id: int, path: Path, cancel: CancelToken, case: Case | None) -> None:
        self.item_started.emit(item_id)
        last_emit = [0.0]

        def progress(p: Progress) -> None:
            now = time.monotonic()
            if now - last_emit[0] >= PROGRESS_INTERVAL_S:
                last_emit[0] = now
                self.item_progress.emit(item_id, p.fraction, p.message)

        try:
            result = self._analysed(path, progress, cancel, case)
        except Cancelled:
            self.item_cancelled.emit(item_id)
        except ForensicsError as exc:
            self.item_failed.emit(item_id, str(exc))
        except Exception as exc:  # a bug: keep the window alive, say so, keep the traceback in the log
            self.log.emit(traceback.format_exc())
            self.item_failed.emit(item_id, f"Internal error ({type(exc).__name__}: {exc}); details in the log.")
        else:
            self.item_done.emit(item_id, result)

    def _analysed(self, path: Path, progress, cancel: CancelToken, case: Case | None) -> AnalysedImage:
        engine = self._current_engine()  # no model installed is the window's problem, not the file's
        path = absolute_path(path)
        try:
            evidence = load_evidence(path, engine.settings.intake)
            if case is None:
                return self._result(engine.analyse_evidence(evidence, progress, cancel), evidence.rgb, engine.zoo,
                                    in_case=False)
            findings, reused = analyse_evidence_into_case(engine, case, evidence, self._run_info, progress, cancel)
        except ForensicsError as exc:
            if case is not None and not isinstance(exc, Cancelled):  # a refusal is recorded, as the CLI does
                case.add_failure(path, str(exc))
            raise
        self.log.emit(f"{path.name}: stored in the case"
                      + (" (its results were already in the case: no model ran)" if reused else "") + ".")
        return self._result(findings, evidence.rgb, engine.zoo, in_case=True)

    def _load_stored(self, item_id: int, stored: ImageFindings, cancel: CancelToken, case: Case) -> None:
        """An item of an opened case: its stored analysis with maps, over the evidence pixels when they are
        still the analysed bytes; otherwise the findings alone, saying why the image is not shown."""
        self.item_started.emit(item_id)
        try:
            [findings] = case.findings(with_maps=True, only=(stored.path, stored.sha256))
            rgb, note = None, ""
            try:
                evidence = load_evidence(findings.path)
                if evidence.sha256 == findings.sha256:
                    rgb = evidence.rgb
                else:
                    note = "the evidence file has changed since it was analysed: it is not shown"
            except ForensicsError as exc:
                note = f"the evidence file cannot be read now ({exc}): it is not shown"
            result = self._result(findings, rgb, Zoo(self._preferences.home), in_case=True, note=note)
        except Exception as exc:  # a damaged case: keep the window alive and say so
            self.log.emit(traceback.format_exc())
            self.item_failed.emit(item_id, f"Could not read this item from the case ({type(exc).__name__}: {exc}).")
        else:
            self.item_done.emit(item_id, result)

    @staticmethod
    def _result(findings: ImageFindings, rgb, zoo: Zoo, in_case: bool, note: str = "") -> AnalysedImage:
        display = prepare_display(rgb, findings)
        # the window keeps display-level copies only: full maps and R(x) of a big batch would not fit
        findings.maps.clear()
        findings.reconstructions.clear()
        ranges = _pixel_ranges(zoo, {c.model for c in findings.candidates})
        units = {model: f"mean |difference| (pixels {lo:g}..{hi:g})" for model, (lo, hi) in ranges.items()}
        return AnalysedImage(findings, display, units, ranges, in_case, note)

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
            self._run_info = engine.run_info()
            self.engine_ready.emit()
            self.log.emit(f"Models loaded: {', '.join(m.id for m in engine.models)} "
                          f"({', '.join(self._run_info['providers'])}); "
                          f"false-attribution rate {engine.settings.alpha:g}.")
        return self._engine


def _pixel_ranges(zoo: Zoo, models: set[str]) -> dict[str, tuple[float, float]]:
    """Each model's pixel range from its manifest (a stored item may name a model no longer installed)."""
    manifests = zoo.manifests()
    return {model: tuple(manifests[model].pixel_range) for model in models if model in manifests}
