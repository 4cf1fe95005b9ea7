"""Learned-fingerprint extractors (kind = "extractor"): an ONNX patch classifier over {real, generators}.

An image is cut into a grid of 64x64 patches (never resized: resampling destroys the traces); the
mean of the patches' log-probabilities gives the class probabilities. A generator is *named* only
when it is the most probable class and its probability reaches the open-set threshold stored in the
manifest (calibrated so that generators the extractor was never trained on are named rarely);
otherwise the reading says "unknown or real".
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forensics_app.core.errors import ZooError
from forensics_app.core.findings import REJECTED, UNDECIDED, CandidateFinding
from forensics_app.core.runtime import SessionCache, default_session_cache, session_provider
from forensics_app.core.verdict import reading_status
from forensics_app.core.zoo.manifest import Manifest, read_manifest, shipped_manifests

PATCH = 64
EXTRACTOR_ROLE = "extractor"
MAX_PATCHES = 36  # per image: enough to average over content, bounded cost on large photos
UNKNOWN = "unknown"
MODEL_NAMES = {UNKNOWN: "no known generator (open-set rule)", "real": "real photo"}


def patch_grid(rgb01: np.ndarray, max_patches: int = MAX_PATCHES) -> np.ndarray:
    """Non-overlapping PATCH x PATCH patches on a centred grid, as (N, 3, PATCH, PATCH) float32."""
    h, w = rgb01.shape[:2]
    if min(h, w) < PATCH:
        raise ValueError(f"the image is {w}x{h} pixels; fingerprints need at least {PATCH} on each side")
    rows, cols = h // PATCH, w // PATCH
    while rows * cols > max_patches:  # keep the centre of large images
        rows, cols = (rows - 1, cols) if rows >= cols else (rows, cols - 1)
    top, left = (h - rows * PATCH) // 2, (w - cols * PATCH) // 2
    patches = [rgb01[top + r * PATCH:top + (r + 1) * PATCH, left + c * PATCH:left + (c + 1) * PATCH]
               for r in range(rows) for c in range(cols)]
    return np.ascontiguousarray(np.stack(patches).transpose(0, 3, 1, 2), dtype=np.float32)


@dataclass(frozen=True)
class FingerprintReading:
    classes: tuple[str, ...]  # "real" first, then the known generators
    probabilities: tuple[float, ...]
    predicted: str  # most probable class
    named: str | None  # the generator named, or None (predicted real, or below the open-set threshold)
    generator_probability: float  # highest probability among the generators
    threshold: float  # open-set threshold from the manifest
    patches: int

    def to_dict(self) -> dict:
        return {**self.__dict__, "classes": list(self.classes), "probabilities": list(self.probabilities)}


class Extractor:
    def __init__(self, manifest: Manifest, onnx_path: Path, sessions: SessionCache | None = None):
        self.manifest = manifest
        classes, calibration = manifest.extra.get("classes"), manifest.extra.get("calibration", {})
        threshold = calibration.get("threshold", 1.0) if isinstance(calibration, dict) else None
        if (not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)
                or not isinstance(threshold, (int, float)) or isinstance(threshold, bool)):
            raise ZooError(f"The extractor manifest {manifest.id} is malformed: it needs 'classes' (a list of names) "
                           "and a [calibration] table whose 'threshold' is a number.")
        self.classes: tuple[str, ...] = tuple(classes)
        self.calibration: dict = calibration
        self.threshold = float(threshold)
        self._session = (sessions or default_session_cache()).get(onnx_path)

    @property
    def kind(self) -> str:
        return self.manifest.architecture.get("kind", "fingerprint")

    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def provider(self) -> str:
        return session_provider(self._session)

    def mean_log_probs(self, rgb01: np.ndarray) -> np.ndarray:
        return self._patch_log_probs(patch_grid(rgb01)).mean(axis=0)

    def _patch_log_probs(self, patches: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._session.get_inputs()[0].name: patches})[0]

    def read(self, rgb01: np.ndarray) -> FingerprintReading:
        patches = patch_grid(rgb01)
        log_probs = self._patch_log_probs(patches).mean(axis=0)
        probs = np.exp(log_probs - log_probs.max())
        probs = probs / probs.sum()
        best = int(probs.argmax())
        generator_probability = float(probs[1:].max())
        named = self.classes[best] if best > 0 and generator_probability >= self.threshold else None
        return FingerprintReading(self.classes, tuple(float(p) for p in probs), self.classes[best], named,
                                  generator_probability, self.threshold, len(patches))


def _fraction_below(quantiles: list[float], score: float) -> float:
    """Share of a calibration distribution (stored as evenly spaced quantiles) at or below ``score``."""
    levels = np.linspace(0, 1, len(quantiles))
    return float(np.interp(score, quantiles, levels, left=0.0, right=1.0))


def candidate_finding(extractor: Extractor, rgb01: np.ndarray, alpha: float) -> CandidateFinding:
    """The extractor's reading as a non-decisive candidate (it is shown and ranked, never votes).

    score = 1 - highest generator probability (LOW = a known generator fits). p_value: share of known
    generators' held-back outputs scoring at least this high; p_real: share of held-back real photos
    scoring at most this low. Status: the usual reading of those two when a generator is named;
    'rejected' when the most probable class is 'real'; 'undecided' when the open-set rule withholds
    the name (an unknown generator, or too little evidence).
    """
    started = time.perf_counter()
    reading = extractor.read(rgb01)
    score = 1.0 - reading.generator_probability
    own, real = extractor.calibration.get("own_score_quantiles"), extractor.calibration.get("real_score_quantiles")
    p_own = 1.0 - _fraction_below(own, score - 1e-9) if own else None
    p_real = _fraction_below(real, score) if real else None
    if reading.named is not None:
        status, model = reading_status(p_own, p_real, alpha, alpha), reading.named
    else:
        status = REJECTED if reading.predicted == "real" else UNDECIDED
        model = reading.predicted if reading.predicted == "real" else UNKNOWN
    return CandidateFinding(
        model=model, model_name=MODEL_NAMES.get(model, model), method=extractor.kind,
        method_title=f"Learned fingerprint ({extractor.kind})", method_version=extractor.id,
        decisive=False, score=score,
        components={f"p({c})": round(p, 6) for c, p in zip(reading.classes, reading.probabilities)},
        p_value=p_own, p_real=p_real, threshold=1.0 - extractor.threshold, status=status,
        provider=extractor.provider,
        parameters={"extractor": extractor.id, "patches": reading.patches, "open_set_threshold": extractor.threshold,
                    "predicted": reading.predicted},
        seconds=time.perf_counter() - started,
        calibration={k: v for k, v in extractor.calibration.items() if not k.endswith("_quantiles")},
        region={"x": 0, "y": 0, "width": int(rgb01.shape[1]), "height": int(rgb01.shape[0])})


def load_extractor(manifest: Manifest, sessions: SessionCache | None = None) -> Extractor:
    """The extractor whose ONNX ships beside its manifest (``weights/``), after checking its SHA-256."""
    if manifest.kind != "extractor" or manifest.source is None:
        raise ZooError(f"{manifest.id} is not an extractor manifest read from a file.")
    weight = next(w for w in manifest.weights if w.role == EXTRACTOR_ROLE)
    path = manifest.source.parent / "weights" / weight.file
    if not path.exists():
        raise ZooError(f"The extractor {manifest.id} has no ONNX file at {path}.")
    if hashlib.sha256(path.read_bytes()).hexdigest() != weight.sha256:
        raise ZooError(f"{path.name} does not match the SHA-256 in {manifest.id}'s manifest; refusing to use it.")
    return Extractor(manifest, path, sessions)


def shipped_extractors() -> dict[str, Manifest]:
    return {i: m for i, m in shipped_manifests().items() if m.kind == "extractor"}


def find_extractor(name: str, folders: list[Path] = (), sessions: SessionCache | None = None) -> Extractor:
    """The extractor NAME from the first folder holding NAME.toml, else from the shipped manifests."""
    for folder in folders:
        path = Path(folder) / f"{name}.toml"
        if path.exists():
            return load_extractor(read_manifest(path), sessions)
    shipped = shipped_extractors()
    if name not in shipped:
        raise ZooError(f"No extractor called {name!r}. Shipped: {', '.join(sorted(shipped)) or 'none'}.")
    return load_extractor(shipped[name], sessions)
