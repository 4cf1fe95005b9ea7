"""The decision rule over all candidate generators at once, calibrated on the same real photos.

alpha is the *analysis-wide* false-attribution rate: the chance that a real photo is attributed to
any of the k candidates. Testing each candidate at alpha / k (Bonferroni) guarantees it but wastes
most of it, because candidates' scores are strongly correlated (a smooth photo scores low for every
autoencoder). Instead, as in Westfall and Young's min-p resampling, the rule is calibrated on the
real photos themselves: every real calibration sample was scored by every candidate (the shared
real pool, core/calibrate.py), so for each sample the smallest of its k p-values is known, and the
*critical p-value* c is the largest value with

    (1 + #{real samples whose smallest p-value is <= c}) / (n + 1) <= alpha.

A candidate's reading is consistent when its p_real <= c. For a real photo exchangeable with the
calibration samples, the chance that any candidate's p_real is <= c is then at most alpha (the
conformal argument that makes (1 + count) / (n + 1) p-values exact). c lies between alpha / k and
alpha, and adding a look-alike candidate barely lowers it.

Two guards: the samples used are those whose pixels show the image's condition (core/traces.py), or,
where those are too few for the rate, the samples of every condition (the rule says so); and no
candidate's threshold may rest on the calibration's last few samples: at least ``MIN_TAIL_SAMPLES``
of its real samples must lie at or below it, otherwise the rule cannot attribute at this rate and
says so (abstains) instead of pretending a resolution it does not have. The extreme tails of
different candidates hardly coincide (measured on the zoo: each candidate's lowest real samples are
different photos), so c is close to alpha / k and k candidates need about (4 k + 1) / alpha real samples.
Calibrations that do not share real samples (older files, or models calibrated on other photos) fall
back to alpha / k on each model's own samples, under the same tail guard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from forensics_app.core.calibration import Calibration

MIN_TAIL_SAMPLES = 3  # real samples at or below each candidate's threshold, at least


@dataclass
class FamilyRule:
    """How the per-candidate critical p-value was set for one image and one method."""

    alpha: float  # analysis-wide false-attribution rate
    candidates: list[str]
    condition: str | None  # the pixel condition whose samples were used (None: all samples)
    procedure: str  # "min-p" (joint real samples) or "bonferroni"
    critical_p: float | None  # a reading with p_real <= this is consistent; None: cannot attribute
    n_real: int  # real samples the rule was calibrated on
    tail: int  # each candidate's real samples at or below its threshold
    calibrations: dict[str, Calibration] = field(default_factory=dict, repr=False)  # the samples used, per model
    reason: str = ""

    def to_dict(self) -> dict:
        return {"alpha": self.alpha, "candidates": list(self.candidates), "condition": self.condition,
                "procedure": self.procedure, "critical_p": self.critical_p, "n_real": self.n_real,
                "tail": self.tail, "min_tail_samples": MIN_TAIL_SAMPLES, "reason": self.reason}

    def describe(self) -> str:
        rate = f"{self.alpha:.0%}" if self.alpha >= 0.01 else f"{self.alpha:g}"
        k = len(self.candidates)
        if self.critical_p is None:
            return self.reason
        ids = next((c.real_ids for c in self.calibrations.values() if c.real_ids is not None), None)
        photos = f" of {len({str(i).split('#')[0] for i in ids})} photos" if ids is not None else ""
        samples = (f"{self.n_real} real calibration samples (crops{photos}"
                   + (f"; {self.condition})" if self.condition else ")"))
        note = f"; {self.reason}" if self.reason else ""
        if self.procedure == "min-p" and k == 1:
            return (f"compared with {samples}: a reading counts as consistent when p_real <= {self.critical_p:.2g}, "
                    f"so that a real photo is attributed at most {rate} of the time{note}")
        if self.procedure == "min-p":
            return (f"{k} candidate generators tested together on the same {samples}: a reading counts as consistent "
                    f"when p_real <= {self.critical_p:.2g}, so that a real photo is attributed to any of them at most "
                    f"{rate} of the time{note}")
        return (f"{k} candidate generators with calibrations on different photos: each tested at "
                f"{self.critical_p:.2g} (alpha / k), so that a real photo is attributed to any of them at most {rate} "
                f"of the time")


def p_values(scores: np.ndarray) -> np.ndarray:
    """(n, k) real scores -> each sample's p_real against all n samples of its column: #{<= s} / (n + 1)."""
    n = scores.shape[0]
    ordered = np.sort(scores, axis=0)
    return np.stack([np.searchsorted(ordered[:, j], scores[:, j], side="right") for j in range(scores.shape[1])],
                    axis=1) / (n + 1)


def per_model_tail(critical_p: float, n: int) -> int:
    """How many of a candidate's n real samples score at or below its threshold at this critical p-value."""
    return int(math.floor(critical_p * (n + 1) + 1e-9)) - 1


def critical_p_value(real_scores: np.ndarray, alpha: float) -> tuple[float | None, int]:
    """The min-p critical value for an (n, k) matrix of real scores, and each candidate's tail under it;
    (None, tail) when a candidate's threshold would rest on fewer than MIN_TAIL_SAMPLES real samples."""
    n = real_scores.shape[0]
    smallest = np.sort(p_values(real_scores).min(axis=1))
    allowed = int(math.floor(alpha * (n + 1) + 1e-9)) - 1  # (1 + count) / (n + 1) <= alpha
    if allowed < 0:
        return None, 0
    # the largest c on the p-value grid with count(smallest <= c) <= allowed
    c = smallest[allowed] - 0.5 / (n + 1) if allowed < n else 1.0
    c = math.floor(c * (n + 1) + 1e-9) / (n + 1)
    tail = max(per_model_tail(c, n), 0)
    return (c if tail >= MIN_TAIL_SAMPLES else None), tail


def family_rule(calibrations: dict[str, Calibration], alpha: float, condition: str | None) -> FamilyRule:
    """The critical p-value for these candidates' calibrations (one method), on the samples of the image's
    condition; where those are too few for the rate, on the samples of every condition (and it says so)."""
    rule = _rule_on(calibrations, alpha, condition)
    if rule.critical_p is None and condition is not None:
        pooled = _rule_on(calibrations, alpha, None)
        if pooled.critical_p is not None:
            pooled.reason = (f"the real samples of this image's condition ({condition}: {rule.n_real}) are too few for "
                             f"this rate; the samples of every condition were used")
            return pooled
    return rule


def _rule_on(calibrations: dict[str, Calibration], alpha: float, condition: str | None) -> FamilyRule:
    models = sorted(calibrations)
    k = len(models)
    if any(c.real_conditions is None or c.own_conditions is None for c in calibrations.values()):
        condition = None  # a calibration that recorded no conditions can only be used whole
    by_condition = {m: c.for_condition(condition) for m, c in calibrations.items()}
    have_ids = all(c.real_ids is not None for c in by_condition.values())
    shared = None
    if have_ids:
        shared_set = set.intersection(*(set(c.real_ids.tolist()) for c in by_condition.values()))
        shared = np.array(sorted(shared_set)) if shared_set else None
    if shared is not None:
        used = {m: c.restricted_to(shared) for m, c in by_condition.items()}
        matrix = np.stack([used[m].real_scores for m in models], axis=1)
        critical, tail = critical_p_value(matrix, alpha)
        rule = FamilyRule(alpha, models, condition, "min-p", critical, len(shared), tail, used)
    else:
        used = by_condition
        per_model = alpha / max(1, k)
        n = min(len(c.real_scores) for c in used.values()) if used else 0
        tail = max(per_model_tail(per_model, n), 0)
        rule = FamilyRule(alpha, models, condition, "bonferroni", per_model if tail >= MIN_TAIL_SAMPLES else None,
                          n, tail, used)
    if rule.critical_p is None:
        # the extreme tails of different candidates hardly coincide, so c is near alpha / k, and the grid costs one
        # sample more: about ((MIN_TAIL_SAMPLES + 1) k + 1) / alpha real samples (measured on independent
        # scores at alpha 1%: 499 for one candidate, 900 for two, 3,700 for nine)
        needed = math.ceil(((MIN_TAIL_SAMPLES + 1) * k + 1) / alpha) - 1
        rule.reason = (f"too few real calibration samples ({condition or 'all conditions'}: {rule.n_real}) to "
                       f"attribute at {alpha:g} among {k} candidate{'s' if k > 1 else ''}: each threshold would rest "
                       f"on fewer than {MIN_TAIL_SAMPLES} real samples (about {needed} are needed; ask about fewer "
                       f"candidates or accept a higher rate)")
    return rule


PAIR_TEST_LEVEL = 0.05  # the test between look-alike candidates (a wrong generator, not a real photo)
MIN_PAIR_SAMPLES = 50


def _of_condition(scores: np.ndarray, conditions: np.ndarray | None, condition: str | None) -> np.ndarray:
    """The scores of samples that show this condition, when there are enough of them; else all."""
    return scores[_condition_mask(conditions, len(scores), condition)]


def wrong_generator_rates(model: str, threshold: float | None, calibrations: dict[str, Calibration],
                          condition: str | None) -> dict:
    """P(a reading of ``model`` is consistent | the image was made by another candidate), per other candidate.

    Read from ``model``'s scores of the other candidates' own outputs (core/calibrate.py ``cross``); these
    outputs never set the threshold, so the rate is measured out of sample.
    """
    if threshold is None:
        return {}
    own = calibrations[model]
    per_generator, total, hits = {}, 0, 0
    for other, calibration in sorted(calibrations.items()):
        if other == model or other not in own.cross:
            continue
        scores = _of_condition(own.cross[other], cross_conditions(own, other, calibrations), condition)
        reached = int(np.sum(scores <= threshold))
        per_generator[other] = {"rate": reached / len(scores), "n": len(scores)}
        total, hits = total + len(scores), hits + reached
    return {"rate": hits / total, "n": total, "per_generator": per_generator} if total else {}


def look_alikes(model: str, score: float, calibrations: dict[str, Calibration], condition: str | None) -> dict:
    """Per other known generator: the share of its outputs that score at least as low as this image under ``model``.

    Known: every generator whose outputs ``model`` scored (its calibration's cross scores), installed or not;
    a generator the user did not install still makes outputs that this score cannot tell from the model's."""
    own = calibrations[model]
    out = {}
    for other, scores in sorted(own.cross.items()):
        if other != model:
            out[other] = float(np.mean(_of_condition(scores, cross_conditions(own, other, calibrations), condition)
                                       <= score))
    return out


def cross_conditions(own: Calibration, other: str, calibrations: dict[str, Calibration]) -> np.ndarray | None:
    """The pixel conditions of ``other``'s outputs that ``own`` scored: recorded with its scores, else (older
    files) ``other``'s own conditions when it is installed; None: unknown."""
    if other in own.cross_conditions:
        return own.cross_conditions[other]
    return calibrations[other].own_conditions if other in calibrations else None


_EPS = 1e-12  # scores are positive ratios; an exactly-zero one is read as this


def log_scores(scores) -> np.ndarray:
    return np.log(np.maximum(np.asarray(scores, dtype=np.float64), _EPS))


def spans_tail(level: float, n: int) -> bool:
    """The level spans at least MIN_TAIL_SAMPLES steps of a p-value over n samples (1/(n + 1) each), so a
    decision at it never rests on the one or two most extreme of them."""
    return level * (n + 1) >= MIN_TAIL_SAMPLES - 1e-9


@dataclass
class PairTest:
    """Between two consistent candidates: does the image fit one's outputs and not the other's?"""

    first: str
    second: str
    p_not_first: float | None  # small: the image is unlike first's outputs, relative to second
    p_not_second: float | None
    n: int

    def winner(self, level: float = PAIR_TEST_LEVEL) -> str | None:
        """The candidate the image fits when the other's outputs would reach it at most ``level`` of the time;
        None when the outputs are too few for the level (the decision would rest on the last of them)."""
        if self.p_not_first is None or self.p_not_second is None or not self.can_decide(level):
            return None
        if self.p_not_second <= level < self.p_not_first:
            return self.first
        if self.p_not_first <= level < self.p_not_second:
            return self.second
        return None

    def can_decide(self, level: float) -> bool:
        return spans_tail(level, self.n)


@dataclass
class SingledOut:
    """The one of several consistent candidates that won its test against each of the others."""

    model: str | None
    level: float  # each test's level: PAIR_TEST_LEVEL shared among the tests the winner had to win
    won: list[PairTest]  # the winner's tests (empty when none won them all)
    too_few: int = 0  # fewest outputs a test had, when some test had too few for the level (0: none)

    def needed(self) -> int:
        """Outputs of each candidate a test needs at this level."""
        return math.ceil(MIN_TAIL_SAMPLES / self.level - 1 - 1e-9)


def single_out(consistent: list[str], tests: list[PairTest]) -> SingledOut:
    """A candidate is singled out only by winning its *own* test against every other consistent candidate.

    If the image was made by one of them, Y, naming another X needs X to win the test against Y, which
    happens at most ``level`` of the time for each X; with the level shared among the m - 1 tests
    (Bonferroni) naming a wrong one of them stays below PAIR_TEST_LEVEL. A chain of wins (X beats Y, Y
    beats Z) says nothing about X against Z, so it singles out no one. Several decisive methods: a method's
    test decides a pair when no other method's test favours the other candidate.
    """
    level = PAIR_TEST_LEVEL / max(1, len(consistent) - 1)
    among = [t for t in tests if {t.first, t.second} <= set(consistent) and t.n]
    too_few = min((t.n for t in among if not t.can_decide(level)), default=0)
    for model in consistent:
        won = []
        for other in (o for o in consistent if o != model):
            decided = [(t, t.winner(level)) for t in among if {t.first, t.second} == {model, other}]
            if {w for _, w in decided} - {None} != {model}:
                break
            won += [t for t, w in decided if w == model]
        else:
            return SingledOut(model, level, won, too_few)
    return SingledOut(None, level, [], too_few)


def pair_test(first: str, second: str, scores: dict[str, float], calibrations: dict[str, Calibration],
              condition: str | None) -> PairTest:
    """d = log(score under first) - log(score under second), compared with d on each model's own outputs.

    The first model's outputs have low d (they fit it better than the second model); an image whose d
    is higher than almost all of them is unlike the first model's outputs, and vice versa.
    """
    a, b = calibrations[first], calibrations[second]
    if second not in a.cross or first not in b.cross:
        return PairTest(first, second, None, None, 0)
    d_image = float(log_scores(scores[first]) - log_scores(scores[second]))
    m_a, m_b = len(b.cross[first]), len(a.cross[second])
    keep_a = _condition_mask(a.own_conditions, m_a, condition)
    keep_b = _condition_mask(b.own_conditions, m_b, condition)
    d_first = log_scores(a.own_scores[:m_a][keep_a]) - log_scores(b.cross[first][keep_a])
    d_second = log_scores(a.cross[second][keep_b]) - log_scores(b.own_scores[:m_b][keep_b])
    p_not_first = float((1 + np.sum(d_first >= d_image)) / (len(d_first) + 1))
    p_not_second = float((1 + np.sum(d_second <= d_image)) / (len(d_second) + 1))
    return PairTest(first, second, p_not_first, p_not_second, min(len(d_first), len(d_second)))


def _condition_mask(conditions: np.ndarray | None, m: int, condition: str | None) -> np.ndarray:
    if conditions is None or condition is None:
        return np.ones(m, dtype=bool)
    mask = conditions[:m] == condition
    return mask if mask.sum() >= MIN_PAIR_SAMPLES else np.ones(m, dtype=bool)


# Set on the calibration split (benchmarks/calibration_outputs.py; no test-split image): with strong JPEG
# traces withholding names, outputs of generators held out of the installed set were named 59 of 2,700 times
# at 5% and 45 (1.7%, under the 2% target) at 10%, for 38 of the 2,700 own outputs (1.4%) no longer named;
# the model's own outputs fail it at most this often, by construction.
PROFILE_LEVEL = 0.10


@dataclass
class ProfileFit:
    """Whether the other candidates score the image as they score one model's own outputs."""

    model: str
    p: float  # share of the model's outputs whose profile is at least as far from their centre
    n: int  # outputs compared
    candidates: list[str]  # the other candidates, whose scores make up the profile

    def can_decide(self, level: float = PROFILE_LEVEL) -> bool:
        return spans_tail(level, self.n)

    def unlike(self, level: float = PROFILE_LEVEL) -> bool:
        """The image's profile is further out than all but ``level`` of the model's own outputs'."""
        return self.can_decide(level) and self.p <= level

    def to_dict(self) -> dict:
        return {"model": self.model, "p": self.p, "n": self.n, "candidates": list(self.candidates),
                "level": PROFILE_LEVEL, "unlike": bool(self.unlike())}


def profile_fit(model: str, scores: dict[str, float], calibrations: dict[str, Calibration],
                condition: str | None) -> ProfileFit | None:
    """The image's log-scores under the other candidates, against theirs of ``model``'s own outputs.

    Each candidate scored the model's first own outputs (``cross``), so each output has a profile: how
    the other candidates score it. A generator outside the zoo can beat every other candidate in the
    tests between two (each looks at one difference of two scores) and still have a profile unlike the
    model's outputs; the Mahalanobis distance to their centre sees it. The model's own score is left
    out: p_own judges it, one-sided, since fitting the model better than its outputs do is no sign of
    another generator. The outputs' distances are leave-one-out (each output measured against the
    others, as the image is), so the p-value (1 + #{outputs at least as far}) / (n + 1) is exact for the
    model's own outputs, which fail the check at most ``level`` of the time. None when no other
    candidate scored its outputs.
    """
    own = calibrations[model]
    others = [m for m in sorted(scores) if m != model and m in calibrations and model in calibrations[m].cross]
    if not others:
        return None
    m = min(len(own.own_scores), *(len(calibrations[o].cross[model]) for o in others))
    keep = _condition_mask(own.own_conditions, m, condition)
    outputs = log_scores(np.column_stack([calibrations[o].cross[model][:m] for o in others]))[keep]
    n, dims = outputs.shape
    if n < dims + 3:
        return None
    centre = outputs.mean(axis=0)
    inverse = np.linalg.pinv(np.atleast_2d(np.cov(outputs, rowvar=False)))
    spread = outputs - centre
    d = np.einsum("ij,jk,ik->i", spread, inverse, spread)
    # each output against the others: the same distance without it (Sherman-Morrison on the covariance)
    c = n / (n - 1) ** 2
    loo = (n / (n - 1)) ** 2 * (n - 2) / (n - 1) * d / np.maximum(1 - c * d, _EPS)
    image = log_scores(np.array([scores[o] for o in others])) - centre
    distance = float(image @ inverse @ image)
    return ProfileFit(model, float((1 + np.sum(loo >= distance)) / (n + 1)), int(n), others)
