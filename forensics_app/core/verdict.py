"""From calibrated candidate readings to a ranked list and one verdict per image.

Decision rule (documented in the README and printed in every report):
- alpha is the false-attribution rate of the whole analysis. With k candidate generators, each one is
  tested at alpha / k (Bonferroni), so a real photo is attributed to *any* of them at most alpha of the
  time.
- A (model, method) reading is *consistent* when p_real <= alpha / k (a real photo would score this low
  at most alpha / k of the time) and p_own > alpha (the score is not an outlier among the model's own
  outputs); *rejected* when p_own <= alpha and p_real > alpha / k; *undecided* otherwise (the score fits
  both, or neither). A calibration with fewer than k / alpha - 1 real samples cannot attribute at all,
  and the verdict says so.
- Only decisive methods vote (baselines are shown, never decide). A model is consistent when every
  decisive method that ran says consistent, rejected when every one says rejected; any disagreement
  or missing calibration leaves it undecided, with the reason stated.
- Verdict: exactly one consistent model -> attributed to it (with a caveat in the reasons when only
  one decisive method ran); several -> inconclusive (they may share an autoencoder); none, and every
  model rejected -> not attributed (unless heavy JPEG compression makes a negative uninformative ->
  inconclusive); otherwise inconclusive.
"""

from __future__ import annotations

import math

from forensics_app.core.findings import (
    ATTRIBUTED, CONSISTENT, INCONCLUSIVE, NOT_ATTRIBUTED, REJECTED, UNCALIBRATED, UNDECIDED, CandidateFinding,
    Verdict)

HEAVY_JPEG_QUALITY = 90  # below this estimated quality, compression erases most autoencoder traces


def per_model_alpha(alpha: float, candidates: int) -> float:
    """The false-attribution rate each of ``candidates`` generators is tested at (Bonferroni)."""
    return alpha / max(1, candidates)


def reading_status(p_own: float | None, p_real: float | None, alpha: float, own_alpha: float | None = None) -> str:
    """``alpha`` bounds attributing a real photo; ``own_alpha`` (default alpha) rejecting the model's own output."""
    own_alpha = alpha if own_alpha is None else own_alpha
    if p_own is None or p_real is None:
        return UNCALIBRATED
    if p_real <= alpha and p_own > own_alpha:
        return CONSISTENT
    if p_own <= own_alpha and p_real > alpha:
        return REJECTED
    return UNDECIDED


_STATUS_ORDER = {CONSISTENT: 0, UNDECIDED: 1, UNCALIBRATED: 2, REJECTED: 3}


def rank(candidates: list[CandidateFinding]) -> list[CandidateFinding]:
    """Decisive readings first; within them consistent first, then by evidence against 'real photo'."""
    return sorted(candidates, key=lambda c: (not c.decisive, _STATUS_ORDER[c.status],
                                             c.p_real if c.p_real is not None else 2.0,
                                             -(c.p_value or 0.0), c.model, c.method))


def model_status(readings: list[CandidateFinding]) -> tuple[str, str]:
    """Combine one model's decisive readings; returns (status, reason when not unanimous)."""
    decisive = [r for r in readings if r.decisive]
    if not decisive:
        return UNDECIDED, "no decisive method ran"
    statuses = {r.status for r in decisive}
    if statuses == {CONSISTENT}:
        return CONSISTENT, ""
    if statuses == {REJECTED}:
        return REJECTED, ""
    if UNCALIBRATED in statuses:
        missing = ", ".join(r.method for r in decisive if r.status == UNCALIBRATED)
        return UNDECIDED, f"no valid calibration for {missing}"
    if len(statuses) > 1:
        said = "; ".join(f"{r.method}: {r.status}" for r in decisive)
        return UNDECIDED, f"the methods disagree ({said})"
    return UNDECIDED, "the score lies between the model's own outputs and real photos"


def decide(candidates: list[CandidateFinding], alpha: float, display_names: dict[str, str],
           jpeg_quality: int | None = None) -> Verdict:
    rate = f"{alpha:.0%}" if alpha >= 0.01 else f"{alpha:g}"
    if not candidates:
        return Verdict(INCONCLUSIVE, None, "Inconclusive: no candidate generator was analysed.",
                       ["no model from the zoo is installed or selected"])
    by_model: dict[str, list[CandidateFinding]] = {}
    for c in candidates:
        by_model.setdefault(c.model, []).append(c)
    statuses = {m: model_status(rs) for m, rs in by_model.items()}
    consistent = sorted(m for m, (s, _) in statuses.items() if s == CONSISTENT)
    reasons = [f"{display_names.get(m, m)}: {why}" for m, (s, why) in sorted(statuses.items()) if why]
    per_model = per_model_alpha(alpha, len(by_model))
    if len(by_model) > 1:
        reasons.append(f"{len(by_model)} candidate generators: each was tested at a false-attribution rate of "
                       f"{per_model:.2g}, so that a real photo is attributed to any of them at most {rate} of the time")
    too_small = sorted({(c.model, c.method, c.calibration.get("n_real")) for c in candidates
                        if c.decisive and c.calibration is not None and c.threshold is None})
    if too_small:
        listed = ", ".join(f"{display_names.get(m, m)} / {method} ({n} real samples)" for m, method, n in too_small)
        reasons.append(f"too few calibration samples to attribute at {per_model:.2g}: {listed}; at least "
                       f"{math.ceil(1 / per_model) - 1} are needed (zoo calibrate --crops N, or fewer candidates)")
    heavy_jpeg = jpeg_quality is not None and jpeg_quality < HEAVY_JPEG_QUALITY
    if jpeg_quality is not None:
        reasons.append(f"JPEG compression (estimated quality {jpeg_quality}) weakens autoencoder traces"
                       + ("; a negative result is not informative" if heavy_jpeg else ""))

    if len(consistent) == 1:
        model = consistent[0]
        voted = sorted({r.method for r in by_model[model] if r.decisive})
        if len(voted) == 1:
            reasons.append(f"only one decisive method ({voted[0]}) supports this: outputs of other autoencoders with "
                           f"smooth content can score like this model's own (benchmarks/inversion.py); confirm with a "
                           f"second method (the deep check, inversion)")
        return Verdict(ATTRIBUTED, model, f"Consistent with {display_names.get(model, model)} at a {rate} "
                       f"false-attribution rate.", reasons)
    if len(consistent) > 1:
        names = ", ".join(display_names.get(m, m) for m in consistent)
        return Verdict(INCONCLUSIVE, None, f"Inconclusive: consistent with several candidates ({names}); they "
                       f"may share an autoencoder.", reasons)
    if all(s == REJECTED for s, _ in statuses.values()):
        if heavy_jpeg:
            return Verdict(INCONCLUSIVE, None, "Inconclusive: no installed generator fits, but heavy JPEG "
                           "compression could hide one.", reasons)
        names = ", ".join(display_names.get(m, m) for m in sorted(statuses))
        return Verdict(NOT_ATTRIBUTED, None, f"Not consistent with any installed generator ({names}). "
                       f"Generators outside the zoo cannot be excluded.", reasons)
    return Verdict(INCONCLUSIVE, None, "Inconclusive: the evidence does not decide between the installed "
                   "generators and a real photo.", reasons)
