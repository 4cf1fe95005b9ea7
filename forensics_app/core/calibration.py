"""Calibration: a method's score distributions under "made by this model" and under "real photo".

Scores are oriented LOW = consistent with the model. From the two empirical distributions:
- p_own(s)  = P(S >= s | the model's own outputs): small means "unlike this model's outputs";
- p_real(s) = P(S <= s | real photos): small means "unlike a real photo".
Both use the (1 + count) / (n + 1) form, which is exact for exchangeable samples and never returns 0,
so a p-value can never claim more certainty than the calibration set size supports.

Lossy re-compression shifts scores (JPEG smooths fine detail), so every sample records whether it
was lossily compressed, and an image is compared with the samples of its own condition: a PNG with
lossless samples, a JPEG with JPEG samples. Pooling both would widen the "own outputs"
distribution and let other generators' lossless images pass as consistent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from forensics_app.core.errors import ForensicsError

CALIBRATION_SCHEMA = 1


@dataclass
class Calibration:
    model: str
    method: str
    method_version: str
    parameters: dict  # the method's parameters when calibrated (a different score form is stale)
    own_scores: np.ndarray
    real_scores: np.ndarray
    data: dict  # what the samples are: folders, counts, crops, seed, split
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    own_lossy: np.ndarray | None = None  # per own sample: True when it was lossily re-compressed
    real_lossy: np.ndarray | None = None

    def for_condition(self, lossy: bool) -> Calibration:
        """The samples whose compression matches the image's (all samples when none were recorded)."""
        if self.own_lossy is None or self.real_lossy is None:
            return self
        own, real = self.own_lossy == lossy, self.real_lossy == lossy
        data = dict(self.data, condition="lossy (JPEG-like)" if lossy else "lossless")
        return Calibration(self.model, self.method, self.method_version, self.parameters, self.own_scores[own],
                           self.real_scores[real], data, self.created)

    def p_own(self, score: float) -> float:
        return float((1 + np.sum(self.own_scores >= score)) / (len(self.own_scores) + 1))

    def p_real(self, score: float) -> float:
        return float((1 + np.sum(self.real_scores <= score)) / (len(self.real_scores) + 1))

    def smallest_p_real(self) -> float:
        return 1.0 / (len(self.real_scores) + 1)

    def can_decide(self, alpha: float, own_alpha: float | None = None) -> bool:
        """Enough samples for both tests: some score has p_real <= alpha, and some p_own <= own_alpha."""
        own_alpha = alpha if own_alpha is None else own_alpha
        return self.smallest_p_real() <= alpha and 1.0 / (len(self.own_scores) + 1) <= own_alpha

    def threshold(self, alpha: float) -> float | None:
        """Largest score still attributed at false-attribution rate alpha (None: the set is too small)."""
        k = int(np.floor(alpha * (len(self.real_scores) + 1))) - 1  # p_real(s) <= alpha  <=>  #{real <= s} <= k
        if k < 0:
            return None
        ordered = np.sort(self.real_scores)
        return float(np.nextafter(ordered[k], -np.inf)) if k < len(ordered) else float(ordered[-1])

    def error_rates(self, alpha: float) -> dict:
        """Rates measured on the calibration samples themselves at this alpha."""
        t = self.threshold(alpha)
        if t is None:
            return {"false_attribution_real": None, "true_attribution_own": None}
        return {"false_attribution_real": float(np.mean(self.real_scores <= t)),
                "true_attribution_own": float(np.mean(self.own_scores <= t))}

    def histogram(self, bins: int = 40) -> dict:
        """Counts over shared log-spaced bins, for the GUI and the report."""
        both = np.concatenate([self.own_scores, self.real_scores])
        positive = both[both > 0]
        lo, hi = (positive.min(), positive.max()) if len(positive) else (1e-6, 1.0)
        edges = np.geomspace(lo * 0.9, hi * 1.1, bins + 1)
        return {"edges": edges.tolist(), "own": np.histogram(self.own_scores, edges)[0].tolist(),
                "real": np.histogram(self.real_scores, edges)[0].tolist(), "log_x": True}

    def summary(self, alpha: float) -> dict:
        return {"n_own": int(len(self.own_scores)), "n_real": int(len(self.real_scores)),
                "threshold": self.threshold(alpha), "alpha": alpha, "data": self.data, "created": self.created,
                **self.error_rates(alpha)}

    def to_dict(self) -> dict:
        return {"model": self.model, "method": self.method, "method_version": self.method_version,
                "parameters": self.parameters, "own_scores": self.own_scores.tolist(),
                "real_scores": self.real_scores.tolist(), "data": self.data, "created": self.created,
                **({"own_lossy": self.own_lossy.tolist(), "real_lossy": self.real_lossy.tolist()}
                   if self.own_lossy is not None and self.real_lossy is not None else {})}

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        masks = {k: np.asarray(d[k], dtype=bool) for k in ("own_lossy", "real_lossy") if k in d}
        return cls(d["model"], d["method"], d["method_version"], d.get("parameters", {}),
                   np.asarray(d["own_scores"], dtype=np.float64), np.asarray(d["real_scores"], dtype=np.float64),
                   d.get("data", {}), d.get("created", ""), **masks)


LOSSY_FORMATS = {"JPEG", "MPO", "WEBP", "HEIF", "AVIF"}  # WebP may be lossless; treated as lossy (conservative)


def is_lossy(image_format: str) -> bool:
    return image_format.upper() in LOSSY_FORMATS


def for_image(cal: Calibration, image_format: str, alpha: float, own_alpha: float | None = None) -> Calibration:
    """The samples of the image's compression condition when both tests can decide with them, else all samples."""
    same_condition = cal.for_condition(is_lossy(image_format))
    return same_condition if same_condition.can_decide(alpha, own_alpha) else cal


def save_calibrations(path: Path, calibrations: list[Calibration]) -> None:
    doc = {"schema": CALIBRATION_SCHEMA, "methods": {c.method: c.to_dict() for c in calibrations}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    tmp.replace(path)


def load_calibrations(path: Path) -> dict[str, Calibration]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return {name: Calibration.from_dict(d) for name, d in doc["methods"].items()}
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:  # any shape
        raise ForensicsError(f"Calibration file {path} is unreadable ({type(exc).__name__}: {exc}).") from None


def weights_sha256(manifest) -> dict[str, str]:
    """The weight files a calibration is made with (recorded in its data): it is void for other weights."""
    return {w.file: w.sha256 for w in manifest.weights}


def calibration_for(method, method_parameters: dict, available: dict[str, Calibration]) -> Calibration | None:
    """The stored calibration that matches this method's version and parameters, or None (stale/missing)."""
    cal = available.get(method.name)
    if cal is None or cal.method_version != method.version:
        return None
    if any(cal.parameters.get(k) != v for k, v in method_parameters.items()):
        return None
    return cal
