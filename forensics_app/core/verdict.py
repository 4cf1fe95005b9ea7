"""From calibrated candidate readings to a ranked list and one verdict per image.

Decision rule (documented in the README and printed in every report):
- alpha is the false-attribution rate of the whole analysis: the chance that a real photo is
  attributed to any of the candidate generators. The family-wise rule turns it into a *critical p-value* c
  for each decisive method, calibrated on the real photos that every candidate scored (min-p
  resampling), between alpha / k and alpha for k candidates; where the samples are too few it abstains.
- A (model, method) reading is *consistent* when p_real <= c (real photos score this low rarely
  enough) and p_own > alpha (the score is not an outlier among the model's own outputs); *rejected*
  when p_own <= alpha and p_real > c; *undecided* otherwise. A rejection by a model scored at its
  stored grid only is not informative when the image's sides are not multiples of the latent grid
  (it was cropped or resized after generation).
- Only decisive methods vote (baselines are shown, never decide). A model is consistent when every
  decisive method that ran says consistent, rejected when every one says rejected; any disagreement
  or missing calibration leaves it undecided, with the reason stated.
- Verdict: exactly one consistent model -> attributed to it. Several -> the test between look-alike
  candidates (on each model's own outputs) singles out the one the image fits where each other's
  outputs would not: it must win its own test against every other consistent candidate, at a level
  shared among those tests, and never on the last of its outputs; if none does -> inconclusive, naming them. None, and
  every model rejected -> not attributed (unless JPEG traces make a negative uninformative ->
  inconclusive; where some rejections were withheld, off the grid or within what downscaled outputs reach,
  inconclusive, naming the models not excluded); otherwise inconclusive. An attribution states how often other candidates' outputs
  reach the same score (the wrong-generator rate). Resampling traces in the pixels withhold both a
  negative and a positive: interpolation smooths pixels as a decoder does, and the wrong-generator rate
  was measured on outputs that were never resized (measured: a 1.5x upscale of one demo AE's output was
  named as another; none of 54 resized outputs was named rightly).
- Look-alike guard: the one consistent model is not named when outputs of another known generator
  (installed or not: the model's calibration holds its scores of every zoo generator's outputs; one it has
  not beaten in its test against it) reach the image's score under it at least LOOK_ALIKE_SHARE
  of the time: the score cannot tell that model from generators like the other, and a generator
  outside the zoo that resembles them both would be attributed to it (measured: outputs of held-out
  autoencoders were attributed to a look-alike 24% of the time without this guard) -> inconclusive.
- Strong JPEG compression (quality about 85 or lower: strong JPEG traces in the pixels, or the file's own
  tables) withholds a positive as well as a negative, before any test between candidates:
  measured on the calibration split's generator outputs, each left out of the calibrations, 10 of the 61
  own outputs saved at quality 70-85 that were attributed were named as the wrong installed generator,
  and a third of the outputs of generators held out of the installed set that were named showed these
  traces -> inconclusive.
- Profile check: the one consistent model is not named when the other candidates score the image unlike
  they score its own outputs (the leave-one-out Mahalanobis distance of their log-scores, at a 10% level
  set on the calibration split, so the model's own outputs fail it at most 10% of the time): the
  tests between two candidates each see one difference of two scores, and a generator outside the zoo
  can win them all (measured: outputs of a held-out demo AE were named as another in 3 of 144 without
  it) -> inconclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from forensics_app.core.family import PAIR_TEST_LEVEL, FamilyRule, PairTest, single_out
from forensics_app.core.findings import (
    ATTRIBUTED, CONSISTENT, INCONCLUSIVE, NOT_ATTRIBUTED, REJECTED, UNCALIBRATED, UNDECIDED, CandidateFinding,
    Verdict)

HEAVY_JPEG_QUALITY = 90  # below this estimated quality, compression erases most autoencoder traces
STRONG_JPEG_QUALITY = 85  # at or below this (the file's tables, or strong traces in the pixels) no name either


def reading_status(p_own: float | None, p_real: float | None, critical_p: float | None, alpha: float) -> str:
    """``critical_p`` bounds attributing a real photo (core/family.py); ``alpha`` rejecting the model's own output."""
    if p_own is None or p_real is None:
        return UNCALIBRATED
    if critical_p is not None and p_real <= critical_p and p_own > alpha:
        return CONSISTENT
    if p_own <= alpha and (critical_p is None or p_real > critical_p):
        return REJECTED
    return UNDECIDED


@dataclass
class DecisionContext:
    """What the verdict is decided with besides the readings: the rules, the tests between candidates, notes."""

    rules: dict[str, FamilyRule] = field(default_factory=dict)  # method -> its family-wise rule
    pair_tests: list[PairTest] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


_STATUS_ORDER = {CONSISTENT: 0, UNDECIDED: 1, UNCALIBRATED: 2, REJECTED: 3}


def rank(candidates: list[CandidateFinding]) -> list[CandidateFinding]:
    """Decisive readings first; within them consistent first, then by evidence against 'real photo'."""
    return sorted(candidates, key=lambda c: (not c.decisive, _STATUS_ORDER[c.status],
                                             c.p_real if c.p_real is not None else 2.0,
                                             -(c.p_value or 0.0), c.model, c.method))


def withheld_rejection(reading: CandidateFinding, alpha: float) -> bool:
    """An undecided reading whose p-values reject the model: core/pipeline.py withheld the rejection (an image off
    the model's grid, or within what its downscaled outputs reach) and says why in a note."""
    critical = ((reading.calibration or {}).get("rule") or {}).get("critical_p")
    return reading.status == UNDECIDED and reading_status(reading.p_value, reading.p_real, critical, alpha) == REJECTED


def rejection_withheld(readings: list[CandidateFinding], alpha: float) -> bool:
    """Every decisive reading of one model would reject it but for a withheld rejection."""
    decisive = [r for r in readings if r.decisive]
    return bool(decisive) and all(withheld_rejection(r, alpha) for r in decisive)


def model_status(readings: list[CandidateFinding], alpha: float) -> tuple[str, str]:
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
    if rejection_withheld(readings, alpha):
        return UNDECIDED, ("the score is unlike the model's own outputs as they were made, but that does not exclude "
                           "the model here (the reason follows)")
    return UNDECIDED, "the score lies between the model's own outputs and real photos"


LOOK_ALIKE_SHARE = 0.05  # other generators' outputs reaching the image's score this often: no attribution


def smoother_than_own_outputs(readings: list[CandidateFinding], fine_detail: float | None) -> dict | None:
    """The highest own-output fine-detail floor among these readings' calibrations that the image falls below."""
    if fine_detail is None:
        return None
    floors = [f for r in readings if (f := ((r.calibration or {}).get("data") or {}).get("own_fine_detail"))]
    below = [f for f in floors if fine_detail < f["floor"]]
    return max(below, key=lambda f: f["floor"]) if below else None


def decide(candidates: list[CandidateFinding], alpha: float, display_names: dict[str, str],
           jpeg_quality: int | None = None, jpeg_traces: bool = False,
           context: DecisionContext | None = None, resampled: bool = False,
           fine_detail: float | None = None) -> Verdict:
    """``jpeg_quality``: estimated from a JPEG file's tables; ``jpeg_traces``: strong JPEG traces seen in the pixels;
    ``resampled``: resampling (interpolation) traces seen in the pixels; ``fine_detail``: the finest scale's share
    of the image's detail (core/traces.py; None: not measured)."""
    context = context or DecisionContext()
    heavy_jpeg = jpeg_traces or (jpeg_quality is not None and jpeg_quality < HEAVY_JPEG_QUALITY)
    name = lambda m: display_names.get(m, m)
    rate = f"{alpha:.0%}" if alpha >= 0.01 else f"{alpha:g}"
    if not candidates:
        return Verdict(INCONCLUSIVE, None, "Inconclusive: no candidate generator was analysed.",
                       ["no model from the zoo is installed or selected"])
    by_model: dict[str, list[CandidateFinding]] = {}
    for c in candidates:
        by_model.setdefault(c.model, []).append(c)
    statuses = {m: model_status(rs, alpha) for m, rs in by_model.items()}
    consistent = sorted(m for m, (s, _) in statuses.items() if s == CONSISTENT)
    reasons = [f"{name(m)}: {why}" for m, (s, why) in sorted(statuses.items()) if why]
    several = len(context.rules) > 1
    reasons += [(f"{method}: " if several else "") + rule.describe() for method, rule in sorted(context.rules.items())]
    reasons += context.notes
    if jpeg_quality is not None or heavy_jpeg:
        quality = f" (estimated quality {jpeg_quality})" if jpeg_quality is not None else " (seen in the pixels)"
        reasons.append(f"JPEG compression{quality} weakens autoencoder traces"
                       + ("; a negative result is not informative" if heavy_jpeg else ""))
    if resampled:
        reasons.append("the pixels show resampling traces (a periodic interpolation pattern): the image was resized "
                       "or rotated after it was made, which moves a decoder's traces off its grid: a negative result "
                       "is not informative, and a positive one is not measured")

    strong_jpeg = jpeg_traces or (jpeg_quality is not None and jpeg_quality <= STRONG_JPEG_QUALITY)
    if strong_jpeg and consistent:
        names = ", ".join(name(m) for m in consistent)
        seen = "strong JPEG traces in its pixels" if jpeg_traces else f"JPEG quality {jpeg_quality} by its file's tables"
        reasons.append(f"JPEG compression at quality about {STRONG_JPEG_QUALITY} or lower: at that compression the "
                       f"tests between generators and the look-alike checks, measured on the calibration outputs, "
                       f"failed too often for a generator to be named")
        return Verdict(INCONCLUSIVE, None, f"Inconclusive: consistent with {names}, but the image was compressed "
                       f"heavily ({seen}), which leaves too little of a decoder's traces to tell generators apart: "
                       f"no generator is named.", reasons)
    beaten: set[str] = set()  # candidates the singled-out one has beaten in a test between them
    if len(consistent) > 1:
        singled = single_out(consistent, context.pair_tests)
        shared = f", {PAIR_TEST_LEVEL:g} shared among the {len(consistent) - 1} tests it had to win" \
            if len(consistent) > 2 else ""
        for t in singled.won:
            (loser,) = {t.first, t.second} - {singled.model}
            beaten.add(loser)
            reasons.append(f"{name(singled.model)} and {name(loser)} were both consistent; the test between them on "
                           f"their own outputs favours {name(singled.model)} (p = "
                           f"{min(t.p_not_first, t.p_not_second):.2g} that {name(loser)} made it; level "
                           f"{singled.level:.2g}{shared})")
        if singled.model is not None:
            consistent = [singled.model]
        else:
            if singled.too_few:
                reasons.append(f"the tests between the {len(consistent)} consistent candidates, each at "
                               f"{singled.level:.2g}, need about {singled.needed()} outputs of each generator; some "
                               f"had {singled.too_few}, too few to decide at that level")
            names = ", ".join(name(m) for m in consistent)
            return Verdict(INCONCLUSIVE, None, f"Inconclusive: consistent with several candidates ({names}); no one "
                           f"of them wins its test against each of the others (they may share an autoencoder).",
                           reasons)
    if len(consistent) == 1:
        model = consistent[0]
        decisive = [r for r in by_model[model] if r.decisive]
        voted = sorted({r.method for r in decisive})
        for r in decisive:
            wrong = (r.calibration or {}).get("wrong_generator") or {}
            if wrong:
                reasons.append(f"{r.method}: outputs of the other candidates reach this model's threshold "
                               f"{wrong['rate']:.1%} of the time ({wrong['n']} outputs)")
        if resampled:
            return Verdict(INCONCLUSIVE, None, f"Inconclusive: consistent with {name(model)}, but the image was resized "
                           f"after it was made (resampling traces in its pixels). Interpolation smooths pixels as a "
                           f"decoder does, and no calibration measured how often other generators' resized outputs "
                           f"reach this score, so no generator is named.", reasons)
        smoother = smoother_than_own_outputs(decisive, fine_detail)
        if smoother:
            reasons.append(f"fine detail {fine_detail:.3g}: below {smoother['floor']:.3g}, which "
                           f"{1 - smoother['quantile']:.0%} of {name(model)}'s {smoother['n']} own calibration outputs "
                           f"exceed")
            return Verdict(INCONCLUSIVE, None, f"Inconclusive: consistent with {name(model)}, but the image holds less "
                           f"fine detail than {1 - smoother['quantile']:.0%} of its own outputs: it was blurred or "
                           f"smoothed after it was made, or made by something that smooths as a decoder does (an "
                           f"out-of-focus or blurred photo). This method reads smoothness as a decoder's trace, so no "
                           f"generator is named.", reasons)
        similar = {m: share for r in decisive for m, share in ((r.calibration or {}).get("look_alikes") or {}).items()
                   if share >= LOOK_ALIKE_SHARE and m not in beaten}
        if similar:
            listed = ", ".join(f"{name(m)} {share:.0%}" for m, share in sorted(similar.items()))
            reasons.append(f"outputs of other generators score this low under {name(model)} too ({listed} of their "
                           f"calibration outputs)")
            return Verdict(INCONCLUSIVE, None, f"Inconclusive: consistent with {name(model)}, but look-alike generators' "
                           f"outputs score the same ({listed}): this score cannot tell {name(model)} from them or from "
                           f"a generator outside the zoo that resembles them. The deep check (the inversion method) may.", reasons)
        unlike = [fit for r in decisive if (fit := (r.calibration or {}).get("profile")) and fit["unlike"]]
        if unlike:
            fit = unlike[0]
            reasons.append(f"profile check: the other {len(fit['candidates'])} candidates' scores of the image lie "
                           f"further from the centre of their scores of {name(model)}'s own outputs than "
                           f"{1 - fit['p']:.1%} of those outputs do "
                           f"(p = {fit['p']:.3g}, {fit['n']} outputs; level {fit['level']:.0%})")
            return Verdict(INCONCLUSIVE, None, f"Inconclusive: consistent with {name(model)}, but the other candidates "
                           f"score it unlike {name(model)}'s own outputs: it may come from a generator outside the zoo "
                           f"that resembles {name(model)}.", reasons)
        if len(voted) == 1:
            reasons.append(f"only one decisive method ({voted[0]}) supports this: outputs of other autoencoders with "
                           f"smooth content can score like this model's own; confirm with the deep check (the inversion "
                           f"method: Settings > Methods in the window, --method aedr,inversion on the command line)")
        return Verdict(ATTRIBUTED, model, f"Consistent with {name(model)} at a {rate} false-attribution rate.",
                       reasons)
    withheld = sorted(m for m in statuses if rejection_withheld(by_model[m], alpha))
    if all(s == REJECTED or m in withheld for m, (s, _) in statuses.items()):
        if heavy_jpeg:
            return Verdict(INCONCLUSIVE, None, "Inconclusive: no installed generator fits, but heavy JPEG "
                           "compression could hide one.", reasons)
        if resampled:
            return Verdict(INCONCLUSIVE, None, "Inconclusive: no installed generator fits, but the image was resized "
                           "(resampling traces in its pixels), which could hide one.", reasons)
        if withheld:
            names = ", ".join(name(m) for m in withheld)
            return Verdict(INCONCLUSIVE, None, f"Inconclusive: no installed generator fits the image as its outputs are "
                           f"made, but that does not exclude {names}: the image may have been cropped or downscaled "
                           f"after it was made (the reasons follow).", reasons)
        names = ", ".join(name(m) for m in sorted(statuses))
        return Verdict(NOT_ATTRIBUTED, None, f"Not attributed: none of the installed generators ({names}) fits. This "
                       "does not mean the image is a photograph: generators outside the zoo cannot be excluded, nor an "
                       "installed generator's output that was downscaled or edited after generation.",
                       reasons)
    return Verdict(INCONCLUSIVE, None, "Inconclusive: the evidence does not decide between the installed "
                   "generators and a real photo.", reasons)
