"""Calibration: a method's score distributions under "made by this model" and under "real photo".

Scores are oriented LOW = consistent with the model. From the two empirical distributions:
- p_own(s)  = P(S >= s | the model's own outputs): small means "unlike this model's outputs";
- p_real(s) = P(S <= s | real photos): small means "unlike a real photo".
Both use the (1 + count) / (n + 1) form, which is exact for exchangeable samples and never returns 0,
so a p-value can never claim more certainty than the calibration set size supports.

Lossy compression shifts scores (JPEG smooths fine detail), so every sample records the condition
its pixels show (core/traces.py: JPEG quantisation traces, whatever the container), and an image is
compared with the samples of its own condition. Real samples carry ids in a real pool shared by every
model (core/calibrate.py), so the decision rule can use the scores of all candidates on the same
photos (core/family.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from forensics_app.core.errors import ForensicsError

CALIBRATION_SCHEMA = 2


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
    own_conditions: np.ndarray | None = None  # per sample: what its pixels show (core/traces.py)
    real_conditions: np.ndarray | None = None
    real_ids: np.ndarray | None = None  # per real sample: its id in the shared real pool (core/calibrate.py)
    cross: dict[str, np.ndarray] = field(default_factory=dict)  # other model -> this model's scores of its outputs
    # other model -> the pixel conditions of those outputs (so that a model not installed can be weighed as a look-alike)
    cross_conditions: dict[str, np.ndarray] = field(default_factory=dict)

    def for_condition(self, condition: str | None) -> Calibration:
        """The samples whose pixels show this condition (all samples when none were recorded)."""
        if condition is None or self.own_conditions is None or self.real_conditions is None:
            return self
        own, real = self.own_conditions == condition, self.real_conditions == condition
        return replace(self, own_scores=self.own_scores[own], real_scores=self.real_scores[real],
                       data=dict(self.data, condition=condition), own_conditions=self.own_conditions[own],
                       real_conditions=self.real_conditions[real],
                       real_ids=None if self.real_ids is None else self.real_ids[real])

    def restricted_to(self, ids: np.ndarray) -> Calibration:
        """Only the real samples with these ids, in that order (the samples shared by every candidate)."""
        index = {sample_id: i for i, sample_id in enumerate(self.real_ids)}
        rows = np.array([index[i] for i in ids], dtype=int)
        return replace(self, real_scores=self.real_scores[rows], real_ids=np.asarray(ids),
                       real_conditions=None if self.real_conditions is None else self.real_conditions[rows])

    def p_own(self, score: float) -> float:
        return float((1 + np.sum(self.own_scores >= score)) / (len(self.own_scores) + 1))

    def p_real(self, score: float) -> float:
        return float((1 + np.sum(self.real_scores <= score)) / (len(self.real_scores) + 1))

    def threshold(self, critical_p: float | None) -> float | None:
        """Largest score whose p_real is at most ``critical_p`` (None: no score reaches it with these samples)."""
        if critical_p is None:
            return None
        k = int(np.floor(critical_p * (len(self.real_scores) + 1) + 1e-9)) - 1  # p_real(s) <= c <=> #{real <= s} <= k
        if k < 0:
            return None
        ordered = np.sort(self.real_scores)
        return float(np.nextafter(ordered[k], -np.inf)) if k < len(ordered) else float(ordered[-1])

    def histogram(self, bins: int = 40) -> dict:
        """Counts over shared log-spaced bins, for the GUI and the report."""
        both = np.concatenate([self.own_scores, self.real_scores])
        positive = both[both > 0]
        lo, hi = (positive.min(), positive.max()) if len(positive) else (1e-6, 1.0)
        edges = np.geomspace(lo * 0.9, hi * 1.1, bins + 1)
        return {"edges": edges.tolist(), "own": np.histogram(self.own_scores, edges)[0].tolist(),
                "real": np.histogram(self.real_scores, edges)[0].tolist(), "log_x": True}

    def to_dict(self) -> dict:
        optional = {"own_conditions": self.own_conditions, "real_conditions": self.real_conditions,
                    "real_ids": self.real_ids}
        return {"model": self.model, "method": self.method, "method_version": self.method_version,
                "parameters": self.parameters, "own_scores": self.own_scores.tolist(),
                "real_scores": self.real_scores.tolist(), "data": self.data, "created": self.created,
                **{k: v.tolist() for k, v in optional.items() if v is not None},
                "cross": {m: v.tolist() for m, v in sorted(self.cross.items())},
                "cross_conditions": {m: v.tolist() for m, v in sorted(self.cross_conditions.items())}}

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        labels = {k: np.asarray(d[k], dtype=str) for k in ("own_conditions", "real_conditions", "real_ids") if k in d}
        return cls(d["model"], d["method"], d["method_version"], d.get("parameters", {}),
                   np.asarray(d["own_scores"], dtype=np.float64), np.asarray(d["real_scores"], dtype=np.float64),
                   d.get("data", {}), d.get("created", ""), **labels,
                   cross={m: np.asarray(v, dtype=np.float64) for m, v in d.get("cross", {}).items()},
                   cross_conditions={m: np.asarray(v, dtype=str) for m, v in d.get("cross_conditions", {}).items()})


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


def calibration_for(method, method_parameters: dict | None,
                    available: dict[str, Calibration]) -> Calibration | None:
    """The stored calibration that matches this method's version and parameters, or None (stale/missing, or no
    parameters: a run no calibration describes)."""
    cal = available.get(method.name)
    if cal is None or method_parameters is None or cal.method_version != method.version:
        return None
    if any(cal.parameters.get(k) != v for k, v in method_parameters.items()):
        return None
    return cal


HELD_OUT_RATES_FILE = "held_out_error_rates.json"


def held_out_error_rates() -> dict | None:
    """The error rates benchmarks/zoo_attribution.py measured on the test split for the shipped zoo, if recorded."""
    from forensics_app.core.zoo.manifest import shipped_manifest_dir

    path = shipped_manifest_dir() / HELD_OUT_RATES_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, json.JSONDecodeError) as exc:
        raise ForensicsError(f"{path} is unreadable ({type(exc).__name__}: {exc}).") from None
