"""Findings: what the analysis concluded, as plain data for the views, the case file and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FINDINGS_SCHEMA = "forensics-app/findings/1"

ATTRIBUTED, NOT_ATTRIBUTED, INCONCLUSIVE = "attributed", "not_attributed", "inconclusive"
# per candidate and method
CONSISTENT, REJECTED, UNDECIDED, UNCALIBRATED = "consistent", "rejected", "undecided", "uncalibrated"


@dataclass
class CandidateFinding:
    """One (model, method) pair for one image, with its calibrated reading."""

    model: str
    model_name: str
    method: str
    method_title: str
    method_version: str
    decisive: bool
    score: float
    components: dict[str, float]
    p_value: float | None  # p_own: P(score at least this high | the model's own outputs)
    p_real: float | None  # P(score at most this low | real photos)
    threshold: float | None  # largest score attributed at the run's false-attribution rate
    status: str  # consistent | rejected | undecided | uncalibrated
    provider: str
    parameters: dict
    seconds: float
    calibration: dict | None  # summary: sizes, data description, measured error rates

    @property
    def attributed(self) -> bool:
        return self.status == CONSISTENT

    @property
    def extractor(self) -> str | None:
        """The learned-fingerprint extractor that made this reading; None for a method's reading."""
        return self.parameters.get("extractor")

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items()}
        d["attributed"] = self.attributed
        return d


@dataclass
class Verdict:
    label: str  # attributed | not_attributed | inconclusive
    model: str | None
    text: str  # one plain-language sentence
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class ImageFindings:
    path: Path
    sha256: str
    facts: dict  # size, format, dimensions, mode, JPEG quality, intake notes
    region: dict  # the analysed pixel region (x, y, width, height)
    verdict: Verdict
    candidates: list[CandidateFinding]  # ranked, most consistent first
    metadata: dict = field(default_factory=dict)  # provenance claims
    maps: dict[tuple[str, str, str], np.ndarray] = field(default_factory=dict, repr=False)  # (model, method, map)
    reconstructions: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # model -> R(x), for views

    def to_dict(self) -> dict:
        return {"path": str(self.path), "sha256": self.sha256, "facts": self.facts, "region": self.region,
                "verdict": self.verdict.to_dict(), "candidates": [c.to_dict() for c in self.candidates],
                "metadata": self.metadata,
                "maps": sorted(f"{m}/{meth}/{name}" for m, meth, name in self.maps)}


@dataclass
class FailedImage:
    path: Path
    error: str  # plain-language message

    def to_dict(self) -> dict:
        return {"path": str(self.path), "error": self.error}
