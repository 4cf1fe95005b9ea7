"""Findings: what the analysis concluded, as plain data for the views, the case file and the report."""

from __future__ import annotations

import hashlib
import math
import os
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
    region: dict = field(default_factory=dict)  # the pixels this reading analysed (x, y, width, height)

    @property
    def attributed(self) -> bool:
        return self.status == CONSISTENT

    @property
    def extractor(self) -> str | None:
        """The learned-fingerprint extractor that made this reading; None for a method's reading."""
        return self.parameters.get("extractor")

    def p_own_text(self, ascii_only: bool = False) -> str:
        return p_value_text(self.p_value, (self.calibration or {}).get("n_own"), ascii_only=ascii_only)

    def p_real_text(self, ascii_only: bool = False) -> str:
        return p_value_text(self.p_real, (self.calibration or {}).get("n_real"), ascii_only=ascii_only)

    def p_own_cell(self) -> str:
        """p_own with its plain reading under it ("0.82" / "fits its outputs"), as tables show it."""
        return _under(self.p_own_text(), self.p_own_reading())

    def p_real_cell(self) -> str:
        return _under(self.p_real_text(), self.p_real_reading())

    def p_own_reading(self) -> str:
        """p_own in two or three plain words, judged as the decision rule judged it ("" without a rule)."""
        alpha = ((self.calibration or {}).get("rule") or {}).get("alpha")
        if self.p_value is None or alpha is None:
            return ""
        return "fits its outputs" if self.p_value > alpha else "rare for its outputs"

    def p_real_reading(self) -> str:
        """p_real in plain words: rare for real photos only below the rule's critical p-value."""
        rule = (self.calibration or {}).get("rule") or {}
        if self.p_real is None or "critical_p" not in rule:
            return ""
        if rule["critical_p"] is None:  # the rule abstained: too few real samples for this many candidates
            return "too few photos to judge"
        return "rare for real photos" if self.p_real <= rule["critical_p"] else "fits real photos"

    def p_own_sentence(self) -> str:
        """What p_own says, as a sentence for a reader who does not know p-values."""
        if self.p_value is None:
            return "No p_own: the model has no valid calibration for this method."
        n = (self.calibration or {}).get("n_own")
        return (f"p_own {self.p_own_text()}: {_share(self.p_value, n)} of {self.model_name}'s own outputs in the "
                f"calibration score this high or higher" + (f" ({self.p_own_reading()})." if self.p_own_reading()
                                                             else "."))

    def p_real_sentence(self) -> str:
        if self.p_real is None:
            return "No p_real: the model has no valid calibration for this method."
        n = (self.calibration or {}).get("n_real")
        return (f"p_real {self.p_real_text()}: {_share(self.p_real, n)} of the real photos in the calibration "
                f"score this low or lower" + (f" ({self.p_real_reading()})." if self.p_real_reading() else "."))

    def region_text(self) -> str:
        """The analysed pixels, e.g. "512×384 at x 256, y 128" ("–" where none were recorded)."""
        r = self.region
        return f"{r['width']}×{r['height']} at x {r['x']}, y {r['y']}" if r else "–"

    def wrong_generator_text(self) -> str:
        """How often other candidates' outputs reach this reading's threshold, e.g. "0.7% of 1200"."""
        wrong = (self.calibration or {}).get("wrong_generator") or {}
        return f"{wrong['rate']:.1%} of {wrong['n']}" if wrong else "not measured"

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items()}
        d["attributed"] = self.attributed
        return d


_AT_MOST = "≤\u00a0"  # a no-break space: "≤" never ends a line apart from its number


def p_value_text(p: float | None, samples: int | None, digits: int = 3, ascii_only: bool = False) -> str:
    """A p-value as printed everywhere. ``samples``: the size of the calibration set it was computed from.

    (1 + count) / (n + 1) is never below 1/(n+1): a p-value at that floor only says that no calibration
    sample was as extreme, so it is printed as the bound "≤ 1/(n+1)" (rounded up, so the bound stays true),
    never as a measurement.
    """
    if p is None:
        return "-" if ascii_only else "–"
    if _at_floor(p, samples):
        return ("<= " if ascii_only else _AT_MOST) + f"{_round_up(1.0 / (samples + 1), digits):.{digits}g}"
    return f"{p:.{digits}g}"


def _under(text: str, reading: str) -> str:
    return f"{text}\n{reading}" if reading else text


def _at_floor(p: float, samples: int | None) -> bool:
    """Whether p is the smallest value (1 + 0) / (n + 1) that n calibration samples can give."""
    return bool(samples) and p <= (1.0 / (samples + 1)) * (1 + 1e-9)


def _share(p: float, samples: int | None) -> str:
    """A p-value as a share of samples: "about 4 in 100", or at the floor "none of 999"."""
    if _at_floor(p, samples):
        return f"none of {samples}"
    if p >= 0.01:
        return f"about {round(p * 100)} in 100"
    return f"about {p * 1000:.2g} in 1,000"


def _round_up(value: float, digits: int) -> float:
    scale = 10.0 ** (digits - 1 - math.floor(math.log10(value)))
    return math.ceil(value * scale * (1 - 1e-12)) / scale


# what each verdict means, in words that cannot be misread: "not attributed" is not a clean bill of health
VERDICT_HEADLINES = {ATTRIBUTED: "attributed",
                     NOT_ATTRIBUTED: "not attributed: no installed generator fits (not proof of a photograph)",
                     INCONCLUSIVE: "inconclusive"}


@dataclass
class Verdict:
    label: str  # attributed | not_attributed | inconclusive
    model: str | None
    text: str  # one plain-language sentence
    reasons: list[str] = field(default_factory=list)

    def headline(self, model_name: str | None = None) -> str:
        """The verdict in a few plain words, e.g. "attributed to TAEF2" or the not-attributed caveat."""
        if self.label == ATTRIBUTED:
            return f"attributed to {model_name or self.model}"
        return VERDICT_HEADLINES.get(self.label, self.label)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def absolute_path(path: Path | str) -> Path:
    """Absolute without resolving symbolic links: the path the examiner gave, usable from any folder."""
    return Path(os.path.abspath(path))


@dataclass
class ImageFindings:
    path: Path  # absolute (see absolute_path), so findings can be checked from any folder
    sha256: str
    facts: dict  # size, format, dimensions, mode, JPEG quality, intake notes
    region: dict  # the pixels any reading analysed (x, y, width, height); each candidate's own is in it
    verdict: Verdict
    candidates: list[CandidateFinding]  # ranked, most consistent first
    metadata: dict = field(default_factory=dict)  # provenance claims
    maps: dict[tuple[str, str, str], np.ndarray] = field(default_factory=dict, repr=False)  # (model, method, map)
    reconstructions: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # model -> R(x), for views
    path_as_given: str | None = None  # as typed or dropped (relative to the folder it was given in), when known
    recorded_map_sha256: dict[str, str] = field(default_factory=dict)  # read from a findings file without the arrays

    def headline(self) -> str:
        """The verdict in a few plain words, naming an attributed model by its display name."""
        names = {c.model: c.model_name for c in self.candidates}
        return self.verdict.headline(names.get(self.verdict.model))

    def map_sha256(self) -> dict[str, str]:
        """"model/method/map" -> SHA-256 of each per-pixel map: of the arrays held, else as recorded."""
        if self.maps:
            return {f"{m}/{meth}/{name}": array_sha256(array) for (m, meth, name), array in sorted(self.maps.items())}
        return dict(self.recorded_map_sha256)

    def to_dict(self) -> dict:
        hashes = self.map_sha256()
        return {**_paths(self), "sha256": self.sha256, "facts": self.facts, "region": self.region,
                "verdict": self.verdict.to_dict(), "candidates": [c.to_dict() for c in self.candidates],
                "metadata": self.metadata, "maps": sorted(hashes), **({"map_sha256": hashes} if hashes else {})}


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 of a map's shape and its values as little-endian float32 (the precision maps are computed in)."""
    values = np.ascontiguousarray(array, dtype="<f4")
    return hashlib.sha256(repr(values.shape).encode("ascii") + values.tobytes()).hexdigest()


@dataclass
class FailedImage:
    path: Path  # absolute, as in ImageFindings
    error: str  # plain-language message
    path_as_given: str | None = None

    def to_dict(self) -> dict:
        return {**_paths(self), "error": self.error}


def _paths(item: ImageFindings | FailedImage) -> dict:
    return {"path": str(item.path), **({"path_as_given": item.path_as_given} if item.path_as_given else {})}
