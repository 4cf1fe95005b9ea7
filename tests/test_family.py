"""The family-wise decision rule over several candidates, the wrong-generator rate and the test between look-alikes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import real_crop
from forensics_app.core.calibration import Calibration
from forensics_app.core.family import (MIN_TAIL_SAMPLES, PairTest, critical_p_value, family_rule, look_alikes, pair_test,
                                       p_values, profile_fit, single_out, wrong_generator_rates)
from forensics_app.core.findings import CONSISTENT, REJECTED, CandidateFinding
from forensics_app.core.verdict import DecisionContext, decide


def correlated_real_scores(n: int, k: int, correlation: float, rng) -> np.ndarray:
    """Real photos' scores under k candidates: a shared 'smoothness' part plus each model's own part."""
    shared = rng.normal(size=(n, 1))
    return np.exp(0.3 * (np.sqrt(correlation) * shared + np.sqrt(1 - correlation) * rng.normal(size=(n, k))) + 1.0)


def test_p_values_of_calibration_samples_count_themselves():
    scores = np.array([[1.0], [2.0], [3.0]])
    assert p_values(scores)[:, 0].tolist() == [0.25, 0.5, 0.75]


@pytest.mark.parametrize("correlation", [0.0, 0.6, 0.95])
def test_a_real_photo_is_attributed_to_any_candidate_at_most_alpha_of_the_time(correlation):
    rng = np.random.default_rng(0)
    k, alpha = 9, 0.01
    calibration = correlated_real_scores(6000, k, correlation, rng)
    c, tail = critical_p_value(calibration, alpha)
    assert 0.5 * alpha / k <= c <= alpha and tail >= MIN_TAIL_SAMPLES  # about alpha / k when independent
    fresh = correlated_real_scores(40000, k, correlation, rng)  # photos that never calibrated
    p_fresh = np.stack([(1 + np.searchsorted(np.sort(calibration[:, j]), fresh[:, j], side="right")) / 6001
                        for j in range(k)], axis=1)
    rate = np.mean(p_fresh.min(axis=1) <= c)
    assert rate <= alpha + 3 * np.sqrt(alpha / 40000) + 0.002  # the calibration's own wobble


def test_correlated_candidates_keep_power_that_bonferroni_would_waste():
    rng = np.random.default_rng(1)
    independent, _ = critical_p_value(correlated_real_scores(6000, 9, 0.0, rng), 0.01)
    correlated, _ = critical_p_value(correlated_real_scores(6000, 9, 0.95, rng), 0.01)
    assert correlated > 2 * independent and correlated > 0.01 / 9


def test_the_rule_abstains_rather_than_sit_on_the_calibrations_last_samples():
    rng = np.random.default_rng(2)
    critical, tail = critical_p_value(correlated_real_scores(300, 3, 0.5, rng), 0.01)
    assert critical is None and tail < MIN_TAIL_SAMPLES  # each threshold would sit on its last samples
    calibrations = {m: Calibration(m, "aedr", "2", {}, rng.normal(1, 0.1, 300), rng.normal(3, 0.3, 300), {},
                                   real_ids=np.array([f"r{i}" for i in range(300)])) for m in ("a", "b")}
    rule = family_rule(calibrations, 0.01, None)
    assert rule.critical_p is None and "too few real calibration samples" in rule.reason
    assert rule.procedure == "min-p" and f"fewer than {MIN_TAIL_SAMPLES} real samples" in rule.reason


def test_the_rule_says_how_many_real_samples_it_would_need_and_that_many_suffice():
    rng = np.random.default_rng(3)

    def rule_on(n: int):
        calibration = Calibration("a", "inversion", "1", {}, rng.normal(1, 0.1, 100), rng.normal(3, 0.3, n), {},
                                  real_ids=np.array([f"r{i}" for i in range(n)]))
        return family_rule({"a": calibration}, 0.01, None)

    short = rule_on(498)
    assert short.critical_p is None and "about 499 are needed" in short.reason
    assert rule_on(499).critical_p is not None


def shared_pool_calibrations(rng, n_real=1500, n_own=300, conditions=None):
    """Two look-alike candidates: a's outputs fit a best, b's fit b best; both far from real photos."""
    ids = np.array([f"photo{i}" for i in range(n_real)])
    real = correlated_real_scores(n_real, 2, 0.8, rng) + 2.0
    own_a, own_b = rng.normal(1.0, 0.05, n_own), rng.normal(1.0, 0.05, n_own)
    a = Calibration("a", "aedr", "2", {}, own_a, real[:, 0], {}, real_ids=ids, real_conditions=conditions,
                    own_conditions=None if conditions is None else conditions[:n_own],
                    cross={"b": own_b[:150] * 1.4})  # a's scores of b's outputs: higher than b's own
    b = Calibration("b", "aedr", "2", {}, own_b, real[:, 1], {}, real_ids=ids, real_conditions=conditions,
                    own_conditions=None if conditions is None else conditions[:n_own],
                    cross={"a": own_a[:150] * 1.4})
    return {"a": a, "b": b}


def test_the_rule_joins_candidates_on_shared_real_samples_and_falls_back_to_bonferroni():
    rng = np.random.default_rng(3)
    calibrations = shared_pool_calibrations(rng)
    rule = family_rule(calibrations, 0.01, None)
    assert rule.procedure == "min-p" and rule.n_real == 1500 and 0.005 <= rule.critical_p <= 0.01
    for c in calibrations.values():
        c.real_ids = None
    rule = family_rule(calibrations, 0.01, None)
    assert rule.procedure == "bonferroni" and rule.critical_p == 0.005


def test_the_rule_uses_the_samples_of_the_images_pixel_condition():
    rng = np.random.default_rng(4)
    conditions = np.where(np.arange(1500) % 3 == 0, "jpeg", "clean")
    rule = family_rule(shared_pool_calibrations(rng, conditions=conditions), 0.01, "clean")
    assert rule.n_real == 1000 and rule.condition == "clean" and not rule.reason
    thin = family_rule(shared_pool_calibrations(rng, conditions=conditions), 0.01, "jpeg")  # 500: too few at 1%
    assert thin.condition is None and thin.n_real == 1500 and "every condition were used" in thin.reason


def test_wrong_generator_rate_is_read_from_other_candidates_outputs():
    rng = np.random.default_rng(5)
    calibrations = shared_pool_calibrations(rng)
    rates = wrong_generator_rates("a", 1.2, calibrations, None)
    assert rates["n"] == 150 and rates["per_generator"]["b"]["rate"] == pytest.approx(np.mean(calibrations["a"].cross["b"] <= 1.2))
    assert wrong_generator_rates("a", None, calibrations, None) == {}


def test_look_alikes_include_generators_that_are_not_installed_in_their_outputs_condition(tmp_path):
    """A model's calibration holds its scores of other generators' outputs, with their pixel conditions: a
    generator the user did not install is still weighed as a look-alike, on the outputs of the image's condition."""
    from forensics_app.core.calibration import load_calibrations, save_calibrations

    jpeg, clean = "JPEG traces (quality about 85 or lower)", "no strong JPEG traces"
    scores = np.concatenate([np.full(60, 1.0), np.full(60, 5.0)])  # the clean outputs score low, the JPEG'd high
    a = Calibration("a", "aedr", "2", {}, np.ones(10), np.ones(10), {}, cross={"z": scores},
                    cross_conditions={"z": np.array([clean] * 60 + [jpeg] * 60)})
    save_calibrations(tmp_path / "a.json", [a])
    a = load_calibrations(tmp_path / "a.json")["aedr"]  # the conditions travel with the file
    assert look_alikes("a", 2.0, {"a": a}, clean) == {"z": 1.0}  # z is not installed, yet weighed
    assert look_alikes("a", 2.0, {"a": a}, jpeg) == {"z": 0.0}
    a.cross_conditions = {}  # an older file: the conditions are unknown, so every output counts
    assert look_alikes("a", 2.0, {"a": a}, clean) == {"z": 0.5}


def test_the_test_between_look_alikes_names_the_generator_whose_outputs_fit():
    rng = np.random.default_rng(6)
    calibrations = shared_pool_calibrations(rng)
    made_by_a = pair_test("a", "b", {"a": 1.0, "b": 1.4}, calibrations, None)
    assert made_by_a.winner() == "a" and made_by_a.p_not_second <= 0.05 < made_by_a.p_not_first
    assert pair_test("a", "b", {"a": 1.4, "b": 1.0}, calibrations, None).winner() == "b"
    assert pair_test("a", "b", {"a": 1.2, "b": 1.2}, calibrations, None).winner() is None


def reading(model, status, score=1.0):
    return CandidateFinding(model, model.upper(), "aedr", "aedr", "2", True, score, {}, 0.5, 0.001, 1.0, status,
                            "CPU", {}, 0.0, None)


def test_the_verdict_resolves_several_consistent_candidates_with_the_pair_test():
    rng = np.random.default_rng(7)
    calibrations = shared_pool_calibrations(rng)
    names = {"a": "Model A", "b": "Model B"}
    test = pair_test("a", "b", {"a": 1.0, "b": 1.4}, calibrations, None)
    v = decide([reading("a", CONSISTENT, 1.0), reading("b", CONSISTENT, 1.4)], 0.01, names,
               context=DecisionContext(pair_tests=[test]))
    assert (v.label, v.model) == ("attributed", "a")
    assert any("both consistent" in r and "favours Model A" in r for r in v.reasons)
    undecided = pair_test("a", "b", {"a": 1.2, "b": 1.2}, calibrations, None)
    v = decide([reading("a", CONSISTENT), reading("b", CONSISTENT)], 0.01, names,
               context=DecisionContext(pair_tests=[undecided]))
    assert v.label == "inconclusive" and "Model A, Model B" in v.text


def profile_calibrations(rng, n_own=300):
    """a's outputs scored by b and c: their scores rise and fall together (both read the same smoothness
    of a's outputs)."""
    shared = rng.normal(0.0, 0.3, n_own)
    own_a = np.exp(rng.normal(0.0, 0.1, n_own))
    by_b, by_c = np.exp(1.0 + shared + rng.normal(0, 0.05, n_own)), np.exp(1.0 + shared + rng.normal(0, 0.05, n_own))
    empty = np.array([])
    return {"a": Calibration("a", "aedr", "2", {}, own_a, empty, {}),
            "b": Calibration("b", "aedr", "2", {}, empty, empty, {}, cross={"a": by_b}),
            "c": Calibration("c", "aedr", "2", {}, empty, empty, {}, cross={"a": by_c})}


def test_the_profile_check_holds_a_models_own_outputs_at_its_level_and_sees_an_outsider():
    rng = np.random.default_rng(12)
    calibrations = profile_calibrations(rng)
    fresh = profile_calibrations(rng)  # more outputs of a, never seen by the check
    fits = [profile_fit("a", {"a": fresh["a"].own_scores[i], "b": fresh["b"].cross["a"][i],
                              "c": fresh["c"].cross["a"][i]}, calibrations, None) for i in range(300)]
    assert fits[0].candidates == ["b", "c"] and fits[0].n == 300
    assert 0.06 <= np.mean([f.unlike() for f in fits]) <= 0.14  # PROFILE_LEVEL = 10%, by construction
    # each score alone is typical of a's outputs, but b and c disagree as they never do on a's outputs
    outsider = profile_fit("a", {"a": 1.0, "b": np.exp(1.4), "c": np.exp(0.6)}, calibrations, None)
    assert outsider.unlike() and outsider.to_dict()["unlike"] and outsider.p < 0.01
    assert not profile_fit("a", {"a": 1e-6, "b": np.exp(1.0), "c": np.exp(1.0)}, calibrations, None).unlike()
    assert profile_fit("a", {"a": 1.0}, calibrations, None) is None  # a candidate alone: p_own says it all


def test_an_image_unlike_the_named_models_outputs_is_not_attributed():
    names = {"a": "Model A", "b": "Model B"}

    def consistent_a(unlike):
        a = reading("a", CONSISTENT)
        a.calibration = {"profile": {"model": "a", "p": 0.004 if unlike else 0.4, "n": 300, "candidates": ["b"],
                                     "level": 0.1, "unlike": unlike}}
        return [a, reading("b", REJECTED)]

    v = decide(consistent_a(True), 0.01, names)
    assert v.label == "inconclusive" and "generator outside the zoo" in v.text
    assert any("profile check" in r and "p = 0.004, 300 outputs" in r for r in v.reasons)
    assert decide(consistent_a(False), 0.01, names).label == "attributed"


def test_a_candidate_is_singled_out_only_by_its_own_wins_against_each_other_at_a_shared_level():
    a_beats_b = PairTest("a", "b", 0.5, 0.02, 300)  # b's outputs reach the image 2% of the time
    b_beats_c = PairTest("b", "c", 0.6, 0.01, 300)
    undecided_a_c = PairTest("a", "c", 0.3, 0.2, 300)
    assert single_out(["a", "b"], [a_beats_b]).model == "a"
    # a beat b and b beat c, but nothing says the image is unlike c's outputs relative to a
    assert single_out(["a", "b", "c"], [a_beats_b, b_beats_c, undecided_a_c]).model is None
    a_beats_c = PairTest("a", "c", 0.4, 0.04, 300)
    # two tests to win: each at 0.05 / 2, and a's test against c (p = 0.04) does not reach it
    assert single_out(["a", "b", "c"], [a_beats_b, b_beats_c, a_beats_c]).model is None
    clear = single_out(["a", "b", "c"], [a_beats_b, b_beats_c, PairTest("a", "c", 0.4, 0.02, 300)])
    assert clear.model == "a" and clear.level == pytest.approx(0.025) and len(clear.won) == 2
    names = {m: m.upper() for m in "abc"}
    v = decide([reading(m, CONSISTENT) for m in "abc"], 0.01, names,
               context=DecisionContext(pair_tests=[a_beats_b, b_beats_c, a_beats_c]))
    assert v.label == "inconclusive" and "A, B, C" in v.text
    v = decide([reading(m, CONSISTENT) for m in "abc"], 0.01, names,
               context=DecisionContext(pair_tests=[a_beats_b, b_beats_c, PairTest("a", "c", 0.4, 0.02, 300)]))
    assert (v.label, v.model) == ("attributed", "a")
    assert any("favours A" in r and "level 0.025, 0.05 shared among the 2 tests" in r for r in v.reasons)


def test_a_test_between_candidates_never_decides_on_the_last_of_their_outputs():
    # 0.05 over 60 outputs leaves 3 of them under the level; 0.025 would leave 1 (p = 1/61 is all it can say)
    assert PairTest("a", "b", 0.5, 1 / 61, 60).winner(0.05) == "a"
    assert PairTest("a", "b", 0.5, 1 / 61, 60).winner(0.025) is None
    assert PairTest("a", "b", 0.5, 1 / 301, 300).winner(0.025) == "a"
    tests = [PairTest("a", "b", 0.5, 1 / 61, 60), PairTest("a", "c", 0.5, 1 / 61, 60), PairTest("b", "c", 0.3, 0.3, 60)]
    singled = single_out(["a", "b", "c"], tests)
    assert singled.model is None and singled.too_few == 60 and singled.needed() == 119
    v = decide([reading(m, CONSISTENT) for m in "abc"], 0.01, {m: m.upper() for m in "abc"},
               context=DecisionContext(pair_tests=tests))
    assert v.label == "inconclusive" and any("need about 119 outputs" in r for r in v.reasons)


def test_resampling_traces_withhold_both_a_negative_and_an_attribution():
    v = decide([reading("a", REJECTED)], 0.01, {"a": "Model A"}, resampled=True)
    assert v.label == "inconclusive" and "resized" in v.text
    assert any("resampling traces" in r for r in v.reasons)
    assert decide([reading("a", REJECTED)], 0.01, {"a": "Model A"}).label == "not_attributed"
    withheld = decide([reading("a", CONSISTENT)], 0.01, {"a": "Model A"}, resampled=True)
    assert withheld.label == "inconclusive" and withheld.model is None and "Model A" in withheld.text
    assert "resized" in withheld.text and any("resampling traces" in r for r in withheld.reasons)
    assert decide([reading("a", CONSISTENT)], 0.01, {"a": "Model A"}).label == "attributed"


def test_an_image_smoother_than_the_models_own_outputs_is_not_attributed_to_it():
    """Blurred photos sit nearest an autoencoder's outputs: a name needs at least the fine detail that 99% of the
    model's own outputs have."""
    named = reading("a", CONSISTENT)
    named.calibration = {"data": {"own_fine_detail": {"quantile": 0.01, "floor": 0.25, "n": 300}}}
    v = decide([named], 0.01, {"a": "Model A"}, fine_detail=0.1)
    assert v.label == "inconclusive" and v.model is None and "Model A" in v.text and "blurred" in v.text
    assert any("fine detail 0.1: below 0.25" in r and "99% of Model A's 300 own" in r for r in v.reasons)
    assert decide([named], 0.01, {"a": "Model A"}, fine_detail=0.3).label == "attributed"
    assert decide([named], 0.01, {"a": "Model A"}).label == "attributed"  # not measured
    assert decide([reading("a", CONSISTENT)], 0.01, {"a": "Model A"}, fine_detail=0.01).label == "attributed"  # no floor


def test_notes_from_the_analysis_reach_the_verdict():
    v = decide([reading("a", REJECTED)], 0.01, {"a": "Model A"}, context=DecisionContext(notes=["cropped: x"]))
    assert "cropped: x" in v.reasons


def test_calibrations_without_conditions_are_used_whole_and_say_no_condition():
    rng = np.random.default_rng(8)
    calibrations = shared_pool_calibrations(rng)  # no conditions recorded
    rule = family_rule(calibrations, 0.01, "clean")
    assert rule.condition is None and rule.n_real == 1500
    assert "clean" not in rule.describe() and "1500 real calibration samples" in rule.describe()


def test_only_decisive_methods_rules_reach_the_verdict(installed_zoo):
    from forensics_app.core.evidence import evidence_from_bytes
    from forensics_app.core.pipeline import AnalysisSettings, Engine

    buffer = io.BytesIO()
    Image.fromarray(real_crop(side=128)).save(buffer, "PNG")
    engine = Engine(installed_zoo, AnalysisSettings(methods=("aedr", "reconstruction")))
    findings = engine.analyse_evidence(evidence_from_bytes(Path("crop.png"), buffer.getvalue()))
    assert not any(r.startswith("reconstruction:") or "272" in r for r in findings.verdict.reasons)
    assert any("real calibration samples (crops of" in r for r in findings.verdict.reasons)  # the AEDR rule, stated once


def test_the_calibration_split_benchmark_leaves_the_decided_output_out_of_every_calibration():
    """benchmarks/calibration_outputs.py decides a model's own calibration output out of sample: that output's
    score leaves the model's own scores and conditions and every other model's cross scores, in step."""
    import importlib.util
    import types

    from forensics_app.core.calibrate import saved_jpeg_quality
    from forensics_app.core.pipeline import LoadedModel

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "calibration_outputs.py"
    spec = importlib.util.spec_from_file_location("calibration_outputs", path)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)

    def loaded(model, own, cross):
        cal = Calibration(model, "aedr", "2", {}, np.array(own, float), np.ones(5), {},
                          own_conditions=np.array([f"c{i}" for i in range(len(own))]), cross=cross)
        return LoadedModel(types.SimpleNamespace(id=model), None, {"aedr": cal}, "test")

    a = loaded("a", [1, 2, 3, 4], {"b": np.array([5.0, 6, 7])})
    b = loaded("b", [8, 9, 10], {"a": np.array([10.0, 20, 30, 40])})
    b.calibrations["aedr"].cross_conditions = {"a": np.array(["c0", "c1", "c2", "c3"])}
    left_a, left_b = (m.calibrations["aedr"] for m in benchmark.without_output([a, b], "a", 1, "aedr"))
    assert left_a.own_scores.tolist() == [1, 3, 4] and left_a.own_conditions.tolist() == ["c0", "c2", "c3"]
    assert left_b.cross["a"].tolist() == [10, 30, 40]  # output 1 of a, as b scored it
    assert left_b.cross_conditions["a"].tolist() == ["c0", "c2", "c3"]
    unknown_a = benchmark.without_generator([b], "a", "aedr")[0].calibrations["aedr"]  # a plays an unknown generator
    assert unknown_a.cross == {} and unknown_a.cross_conditions == {} and "a" in b.calibrations["aedr"].cross
    assert left_a.cross["b"].tolist() == [5, 6, 7] and left_b.own_scores.tolist() == [8, 9, 10]  # b's outputs stay
    assert a.calibrations["aedr"].own_scores.tolist() == [1, 2, 3, 4]  # the engine's calibrations are untouched
    assert b.calibrations["aedr"].cross["a"].tolist() == [10, 20, 30, 40]
    benchmark._remade["a"] = None  # outputs not remade (--no-histories, or no photos): no fine detail to check
    engine = types.SimpleNamespace(models=[a], methods=[types.SimpleNamespace(name="aedr")])
    assert benchmark.fine_details(engine, "a") == [None] * 4 and benchmark.histories(engine, "a") is None
    benchmark._remade.clear()
    assert [saved_jpeg_quality(h) for h in ("decoded, grid offset (1, 2)", "decoded, grid offset (0, 0), JPEG q94",
                                            "double JPEG q57, q79", "resized x1.20 then JPEG q65")] == [None, 94, 79, 65]
    assert [benchmark.jpeg_band(h) for h in ("decoded, grid offset (1, 2)", "decoded, grid offset (0, 0), JPEG q86",
                                             "decoded, grid offset (0, 0), JPEG q85")] == ["not JPEG'd", "JPEG q86-94",
                                                                                           "JPEG q70-85"]
