"""Calibrated p-values, thresholds at a false-attribution rate, and the verdict rule."""

from __future__ import annotations

import numpy as np
import pytest

from forensics_app.core.calibration import Calibration, calibration_for, load_calibrations, save_calibrations
from forensics_app.core.findings import CONSISTENT, INCONCLUSIVE, REJECTED, UNCALIBRATED, UNDECIDED, CandidateFinding
from forensics_app.core.verdict import decide, rank, reading_status


def make_calibration(n=199, seed=0) -> Calibration:
    rng = np.random.default_rng(seed)
    return Calibration("m", "aedr", "1", {"score_form": "highpass"}, rng.normal(1.3, 0.1, n),
                       rng.normal(3.0, 0.4, n), {"real": "synthetic"})


def test_p_values_are_one_sided_and_never_zero():
    cal = make_calibration()
    assert cal.p_real(0.0) == pytest.approx(1 / 200)
    assert cal.p_own(100.0) == pytest.approx(1 / 200)
    assert cal.p_real(10.0) == 1.0 and cal.p_own(0.0) == 1.0
    assert cal.p_real(2.0) < cal.p_real(3.0)


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
def test_threshold_keeps_false_attributions_of_real_at_most_the_critical_p(alpha):
    cal = make_calibration()
    t = cal.threshold(alpha)
    assert np.mean(cal.real_scores <= t) <= alpha
    assert cal.p_real(t) <= alpha < cal.p_real(np.sort(cal.real_scores)[int(alpha * 200)])


def test_too_small_calibration_cannot_attribute_at_that_rate():
    assert make_calibration(n=50).threshold(0.01) is None


def test_calibration_round_trips_and_stale_ones_are_ignored(tmp_path):
    cal = make_calibration()
    save_calibrations(tmp_path / "c.json", [cal])
    loaded = load_calibrations(tmp_path / "c.json")["aedr"]
    assert np.array_equal(loaded.real_scores, cal.real_scores)

    class Method:
        name, version, parameters = "aedr", "1", {"score_form": "highpass"}

    assert calibration_for(Method, Method.parameters, {"aedr": loaded}) is loaded
    assert calibration_for(Method, {"score_form": "ratio"}, {"aedr": loaded}) is None
    Method.version = "2"
    assert calibration_for(Method, Method.parameters, {"aedr": loaded}) is None


def test_histogram_counts_every_sample():
    h = make_calibration().histogram(bins=30)
    assert sum(h["own"]) == 199 and sum(h["real"]) == 199 and len(h["edges"]) == 31


def test_reading_status():
    assert reading_status(0.5, 0.005, 0.01, 0.01) == CONSISTENT
    assert reading_status(0.005, 0.5, 0.01, 0.01) == REJECTED
    assert reading_status(0.5, 0.5, 0.01, 0.01) == UNDECIDED
    assert reading_status(0.001, 0.001, 0.01, 0.01) == UNDECIDED
    assert reading_status(None, None, 0.01, 0.01) == UNCALIBRATED
    assert reading_status(0.5, 0.005, 0.0025, 0.01) == UNDECIDED  # below alpha, not below the critical p
    assert reading_status(0.005, 0.5, 0.0025, 0.01) == REJECTED  # rejecting the true model: alpha, once
    assert reading_status(0.5, 0.001, None, 0.01) == UNDECIDED  # the rule abstains: never consistent


def reading(model, status, method="aedr", decisive=True, p_real=0.5):
    return CandidateFinding(model, model.upper(), method, method, "1", decisive, 1.0, {}, 0.5, p_real, 1.0, status,
                            "CPU", {}, 0.0, None)


NAMES = {"a": "Model A", "b": "Model B"}


def test_one_consistent_model_is_attributed():
    v = decide([reading("a", CONSISTENT), reading("b", REJECTED)], 0.01, NAMES)
    assert (v.label, v.model) == ("attributed", "a")
    assert v.text == "Consistent with Model A at a 1% false-attribution rate."
    assert not any("benchmarks/" in r or ".py" in r for r in v.reasons)  # the deep check is named, not a file
    assert any("only one decisive method (aedr)" in r for r in v.reasons)
    both = decide([reading("a", CONSISTENT), reading("a", CONSISTENT, method="inversion"), reading("b", REJECTED)],
                  0.01, NAMES)
    assert both.model == "a" and not any("only one decisive method" in r for r in both.reasons)


def test_a_score_that_other_generators_outputs_reach_names_no_generator():
    """Look-alike guard: outputs of b reach a's score 10% of the time, so a cannot be told from b's kind."""
    near = reading("a", CONSISTENT)
    near.calibration = {"look_alikes": {"b": 0.10}}
    v = decide([near, reading("b", REJECTED)], 0.01, NAMES)
    assert v.label == "inconclusive" and v.model is None
    assert "look-alike" in v.text and "Model B 10%" in v.text and "deep check" in v.text
    near.calibration = {"look_alikes": {"b": 0.02}}  # rarely reached: attributed
    assert decide([near, reading("b", REJECTED)], 0.01, NAMES).model == "a"


def test_all_rejected_is_not_attributed_unless_heavily_compressed():
    readings = [reading("a", REJECTED), reading("b", REJECTED)]
    negative = decide(readings, 0.01, NAMES)
    assert negative.label == "not_attributed" and "does not mean the image is a photograph" in negative.text
    assert "downscaled or edited after generation" in negative.text  # a negative cannot exclude an altered output
    v = decide(readings, 0.01, NAMES, jpeg_quality=70)
    assert v.label == "inconclusive" and any("quality 70" in r for r in v.reasons)
    v = decide(readings, 0.01, NAMES, jpeg_traces=True)  # JPEG traces seen in the pixels of a PNG
    assert v.label == "inconclusive" and any("seen in the pixels" in r for r in v.reasons)


def test_strong_jpeg_traces_in_the_pixels_withhold_an_attribution_too():
    """Measured on the calibration split: at quality 70-85 one in six attributions named the wrong generator."""
    assert decide([reading("a", CONSISTENT), reading("b", REJECTED)], 0.01, NAMES).model == "a"
    assert decide([reading("a", CONSISTENT), reading("b", REJECTED)], 0.01, NAMES, jpeg_quality=88).model == "a"
    for consistent in (["a"], ["a", "b"]):
        readings = [reading(m, CONSISTENT if m in consistent else REJECTED) for m in ("a", "b")]
        v = decide(readings, 0.01, NAMES, jpeg_traces=True)
        assert v.label == "inconclusive" and v.model is None and "strong JPEG traces in its pixels" in v.text
        assert "compressed heavily" in v.text and all(NAMES[m] in v.text for m in consistent)
        assert any("quality about 85 or lower" in r for r in v.reasons)
        v = decide(readings, 0.01, NAMES, jpeg_quality=85)  # the file's tables say so, the pixels do not
        assert v.label == "inconclusive" and "JPEG quality 85 by its file's tables" in v.text


def test_several_consistent_models_or_disagreeing_methods_are_inconclusive():
    assert decide([reading("a", CONSISTENT), reading("b", CONSISTENT)], 0.01, NAMES).label == "inconclusive"
    v = decide([reading("a", CONSISTENT), reading("a", REJECTED, method="inversion")], 0.01, NAMES)
    assert v.label == "inconclusive" and "disagree" in " ".join(v.reasons)


def test_baselines_never_decide():
    v = decide([reading("a", REJECTED), reading("a", CONSISTENT, method="reconstruction", decisive=False)], 0.01, NAMES)
    assert v.label == "not_attributed"


def test_no_candidates_is_inconclusive_and_ranking_puts_consistent_first():
    assert decide([], 0.01, NAMES).label == "inconclusive"
    ranked = rank([reading("b", REJECTED), reading("a", CONSISTENT, p_real=0.001),
                   reading("a", CONSISTENT, method="reconstruction", decisive=False)])
    assert [(r.model, r.method) for r in ranked] == [("a", "aedr"), ("b", "aedr"), ("a", "reconstruction")]


def test_images_are_compared_with_samples_of_their_own_pixel_condition():
    rng = np.random.default_rng(1)
    own = np.concatenate([rng.normal(1.3, 0.05, 150), rng.normal(1.8, 0.2, 150)])  # no traces, then JPEG traces
    real = rng.normal(3.0, 0.3, 300)
    conditions = np.where(np.arange(300) >= 150, "jpeg", "clean")
    cal = Calibration("m", "aedr", "2", {}, own, real, {}, own_conditions=conditions, real_conditions=conditions,
                      real_ids=np.array([f"r{i}" for i in range(300)]))
    clean, jpeg = cal.for_condition("clean"), cal.for_condition("jpeg")
    assert len(clean.own_scores) == 150 and clean.data["condition"] == "clean" and len(clean.real_ids) == 150
    assert clean.p_own(1.8) < 0.01 < jpeg.p_own(1.8)  # a JPEG-like score is an outlier only for clean evidence
    assert cal.for_condition(None) is cal


def test_calibration_records_pixel_conditions_ids_and_the_split(taef2):
    from dataclasses import replace

    from conftest import SHARED
    from forensics_app.core.calibrate import (CalibrationPlan, build_calibration, calibration_split,
                                              in_calibration_split, real_pool, test_split)
    from forensics_app.core.methods.reconstruction import METHOD

    folder = SHARED / "images" / "real" / "cset14"
    assert set(calibration_split(folder)).isdisjoint(test_split(folder))
    assert all(in_calibration_split(p) for p in calibration_split(folder))
    plan = replace(CalibrationPlan(), crops_per_image=2, crop_sides=(64,), own_samples=3)
    pool = real_pool(folder, plan, max_images=2)
    assert [s.id for s in pool] == [s.id for s in real_pool(folder, plan, max_images=2)]  # deterministic ids
    cal, own = build_calibration(taef2, METHOD, pool, folder, plan, max_images=2)
    assert len(cal.real_scores) == len(cal.real_conditions) == len(cal.real_ids) == 4
    assert cal.data["own_fine_detail"]["n"] == 3 and cal.data["own_fine_detail"]["floor"] > 0
    assert len(cal.own_scores) == len(own) == 3 and cal.data["real"]["photos"] == 2
    assert all(s.id.split("/")[1].split("#")[0] in {p.name for p in calibration_split(folder)} for s in pool)


def test_the_real_pool_holds_soft_photos_drawn_apart_from_the_other_samples():
    from dataclasses import replace

    from conftest import SHARED
    from forensics_app.core.calibrate import CalibrationPlan, real_pool

    folder = SHARED / "images" / "real" / "cset14"
    plan = replace(CalibrationPlan(), crops_per_image=6, crop_sides=(64,))
    pool = real_pool(folder, plan, max_images=1, kinds=(False, True))
    usual, soft = pool[:6], pool[6:]
    assert plan.soft_crops_per_image == 1 and len(soft) == 1 and soft[0].history.startswith("blurred sigma")
    assert "#s0@" in soft[0].id and soft[0].id.split("@")[1] != usual[0].id.split("@")[1]
    # the usual samples are the same with or without the soft ones, so adding them left the shipped ids valid
    assert [s.id for s in real_pool(folder, plan, max_images=1, kinds=(False,))] == [s.id for s in usual]
    assert [s.id for s in real_pool(folder, plan, max_images=1, kinds=(True,))] == [s.id for s in soft]
    sharp = real_pool(folder, replace(plan, blur_sigma=(0.0, 0.0)), max_images=1, kinds=(True,))[0]
    assert sharp.history.startswith("blurred sigma 0.00") and sharp.id != soft[0].id  # another plan, another id
    assert np.abs(sharp.pixels.astype(float) - soft[0].pixels).mean() > 1  # the same crop, unblurred


def test_local_calibration_overrides_the_shipped_one_per_method(installed_zoo, tmp_path):
    import shutil

    from forensics_app.core.pipeline import load_model_calibrations
    from forensics_app.core.zoo.store import Zoo

    zoo = Zoo(tmp_path / "home")
    shutil.copytree(installed_zoo.root / "taef2", zoo.root / "taef2")
    model = zoo.installed("taef2")
    local = make_calibration()
    local.model, local.method = "taef2", "reconstruction"
    save_calibrations(model.calibration_folder() / "calibration.json", [local])
    calibrations, source = load_model_calibrations(model)
    assert np.array_equal(calibrations["reconstruction"].own_scores, local.own_scores)
    assert len(calibrations["aedr"].own_scores) >= 200  # still the shipped one
    assert "(reconstruction)" in source and "shipped default" in source


def test_calibrations_made_for_other_weights_are_ignored(installed_zoo, tmp_path):
    import shutil

    from forensics_app.core.calibration import save_calibrations, weights_sha256
    from forensics_app.core.pipeline import load_model_calibrations
    from forensics_app.core.zoo.store import Zoo

    shutil.copytree(installed_zoo.root, tmp_path / "zoo")
    model = Zoo(tmp_path).installed("taef2")
    assert set(load_model_calibrations(model)[0]) == {"aedr", "reconstruction", "inversion"}  # shipped, all valid
    rng = np.random.default_rng(0)
    retrained = Calibration("taef2", "aedr", "2", {}, rng.normal(1, 0.1, 50), rng.normal(3, 0.1, 50),
                            {"weights_sha256": {"taef2.safetensors": "0" * 64}})
    save_calibrations(model.calibration_folder() / "calibration.json", [retrained])
    calibrations, source = load_model_calibrations(model)
    assert calibrations["aedr"].data["weights_sha256"] == weights_sha256(model.manifest)  # the shipped one
    assert "ignored, made for other weights: calibration.json (aedr)" in source


def test_the_deep_check_caveat_says_where_to_turn_it_on():
    v = decide([reading("a", CONSISTENT), reading("b", REJECTED)], 0.01, NAMES)
    [caveat] = [r for r in v.reasons if "only one decisive method" in r]
    assert "deep check (the inversion method" in caveat and "Settings > Methods" in caveat
    assert "--method aedr,inversion" in caveat


def test_verdict_headlines_never_let_a_negative_read_as_a_clean_bill():
    from forensics_app.core.findings import Verdict

    assert Verdict("attributed", "a", "").headline("Model A") == "attributed to Model A"
    negative = Verdict("not_attributed", None, "").headline()
    assert "no installed generator fits" in negative and "not proof of a photograph" in negative
    assert Verdict("inconclusive", None, "").headline() == "inconclusive"


def calibrated(p_own, p_real, critical_p, alpha=0.01, n_own=199, n_real=999):
    finding = reading("a", UNDECIDED, p_real=p_real)
    finding.p_value = p_own
    finding.calibration = {"n_own": n_own, "n_real": n_real, "rule": {"alpha": alpha, "critical_p": critical_p}}
    return finding


def test_p_values_get_a_plain_reading_judged_by_the_rule_that_decided():
    consistent = calibrated(p_own=0.4, p_real=0.001, critical_p=0.002)
    assert (consistent.p_own_reading(), consistent.p_real_reading()) == ("fits its outputs", "rare for real photos")
    rejected = calibrated(p_own=0.005, p_real=0.3, critical_p=0.002, n_own=999)
    assert (rejected.p_own_reading(), rejected.p_real_reading()) == ("rare for its outputs", "fits real photos")
    # below alpha but above the critical p of a family of candidates: not rare enough to count
    assert calibrated(0.4, 0.005, critical_p=0.002).p_real_reading() == "fits real photos"
    assert calibrated(0.4, 0.001, critical_p=None).p_real_reading() == "too few photos to judge"
    assert reading("a", UNCALIBRATED).p_own_reading() == ""  # no calibration, no reading
    assert consistent.p_real_sentence() == ("p_real ≤\xa00.001: none of 999 of the real photos in the calibration "
                                            "score this low or lower (rare for real photos).")
    assert rejected.p_own_sentence().startswith("p_own 0.005: about 5 in 1,000 of A's own outputs")


def script(name: str):
    """A module of scripts/ (not a package), loaded from its file."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_score_form_is_switched_to_only_for_more_own_outputs_without_losing_published_ones():
    """scripts/compare_score_forms.py's rule: +5% of all own outputs consistent, at most 2% of the PNG ones lost."""
    compare = script("compare_score_forms")
    now = {"own PNG": (100, 120), "own, all": (150, 300)}
    assert compare.worth_switching(now, {"own PNG": (100, 120), "own, all": (165, 300)})
    assert not compare.worth_switching(now, {"own PNG": (100, 120), "own, all": (164, 300)})  # under 5% more
    assert not compare.worth_switching(now, {"own PNG": (97, 120), "own, all": (200, 300)})  # 2.5% of PNG lost
    assert [compare.group_of(h) for h in ("decoded, grid offset (1, 2)", "decoded, grid offset (0, 0), JPEG q90",
                                          "decoded, grid offset (0, 0), JPEG q89")] == ["PNG", "JPEG q>=90", "JPEG q<90"]


def test_real_pool_parts_are_merged_in_split_order_and_a_sample_in_two_parts_is_refused():
    """scripts/calibrate_zoo.py merges real-pool parts made on different machines: in the calibration split's
    order whatever the parts' order, and never counting a sample twice (it would sit twice in every tail)."""
    from pathlib import Path

    calibrate_zoo = script("calibrate_zoo")
    photos = [Path("b.jpg"), Path("a.jpg")]

    def part(ids, provider, other_provider="CPU"):
        return {"ids": ids, "conditions": ["c"] * len(ids),
                "scores": {"m": [float(len(i)) for i in ids], "n": [0.0] * len(ids)},
                "providers": {"m": [provider], "n": [other_provider]}}

    first, second = part(["m/a.jpg#1", "m/b.jpg#s0"], "CUDA"), part(["m/b.jpg#0", "m/a.jpg#0"], "CPU")
    merged = calibrate_zoo.merged([first, second], photos, ["m", "n"])
    assert merged["ids"] == ["m/b.jpg#0", "m/b.jpg#s0", "m/a.jpg#0", "m/a.jpg#1"]
    # each model keeps the providers that scored its samples
    assert merged["providers"] == {"m": ["CPU", "CUDA"], "n": ["CPU"]} and merged["photos"] == 2
    with pytest.raises(SystemExit, match="1 real samples are in more than one part"):
        calibrate_zoo.merged([first, part(["m/a.jpg#1"], "CPU")], photos, ["m"])
    # a model's shipped record keeps what scored its samples when new ones are added to them
    recorded = Calibration("m", "aedr", "2", {}, np.ones(2), np.ones(2),
                           {"real": {"scored_with": "onnxruntime CPUExecutionProvider, CUDAExecutionProvider"}})
    assert calibrate_zoo.scored_with(recorded) == {"CPUExecutionProvider", "CUDAExecutionProvider"}
    assert calibrate_zoo.scored_with(Calibration("m", "aedr", "2", {}, np.ones(2), np.ones(2), {})) == set()


def test_a_calibration_records_how_high_its_own_outputs_score_once_downscaled(taef2):
    """Antialiased downscaling leaves no trace the app sees and makes a model's outputs score like photos, so each
    calibration records the 99% ceiling of its own outputs' scores once downscaled (those the resampling
    detector misses); own outputs too small to downscale and still analyse give none."""
    from dataclasses import replace

    from conftest import SHARED
    from forensics_app.core.calibrate import (CalibrationPlan, build_calibration, downscaled_own_ceiling, own_pool,
                                              real_pool)
    from forensics_app.core.imageprep import TilingSettings
    from forensics_app.core.jobs import NEVER_CANCELLED
    from forensics_app.core.methods.aedr import METHOD

    folder = SHARED / "images" / "real" / "cset14"
    plan = replace(CalibrationPlan(), crop_sides=(128,), own_samples=3)
    own = own_pool(taef2, folder, plan, shift_phase=False, max_images=2)
    ceiling = downscaled_own_ceiling(taef2, METHOD, own, plan)
    assert ceiling["of"] == 3 and 1 <= ceiling["n"] <= 3 and ceiling["scales"] == [0.5, 0.9]
    own_scores = [METHOD.run(s.pixels / 255.0, taef2, TilingSettings(), NEVER_CANCELLED).score for s in own]
    assert ceiling["ceiling"] > max(own_scores)  # downscaled, they score further from the model than as made
    assert downscaled_own_ceiling(taef2, METHOD, own, plan) == ceiling  # its own random stream: repeatable
    calibration, _ = build_calibration(taef2, METHOD, real_pool(folder, replace(plan, crops_per_image=1), max_images=2),
                                       folder, plan, generated=own)
    assert calibration.data["downscaled_own"] == ceiling  # every calibration built records it
    small = own_pool(taef2, folder, replace(plan, crop_sides=(64,)), shift_phase=False, max_images=2)
    assert downscaled_own_ceiling(taef2, METHOD, small, plan) is None  # 32-58 px: below the intake's minimum


def test_an_undecided_model_is_described_by_what_its_p_values_say():
    """A reading the pipeline kept from rejecting (p_own <= alpha, p_real above the threshold) is not described as
    lying between the two sides; one unlike both its own outputs and real photos still is."""
    withheld = reading("a", UNDECIDED, p_real=0.5)
    withheld.p_value, withheld.calibration = 0.004, {"rule": {"critical_p": 0.001}}
    between = reading("a", UNDECIDED, p_real=0.0005)
    between.p_value, between.calibration = 0.004, {"rule": {"critical_p": 0.001}}
    verdict = decide([withheld], 0.01, NAMES)
    assert "unlike the model's own outputs as they were made, but that does not exclude" in verdict.reasons[0]
    # the headline says what the image may be, not that the evidence lies between generator and photo
    assert verdict.label == INCONCLUSIVE and "does not exclude Model A: the image may have been cropped or downscaled" \
        in verdict.text
    rejected = reading("b", REJECTED, p_real=0.5)
    assert "does not exclude Model A:" in decide([withheld, rejected], 0.01, NAMES).text  # B is excluded, A not
    assert "resized" in decide([withheld], 0.01, NAMES, resampled=True).text
    assert "lies between the model's own outputs and real photos" in decide([between], 0.01, NAMES).reasons[0]
    assert "lies between" in decide([reading("a", UNDECIDED)], 0.01, NAMES).reasons[0]  # p_own 0.5


def test_a_rejection_within_what_downscaled_own_outputs_reach_is_withheld():
    from forensics_app.core.pipeline import within_downscaled_reach

    reach = {"quantile": 0.99, "ceiling": 3.4, "n": 280, "of": 300, "scales": [0.5, 0.9]}
    cal = Calibration("m", "aedr", "2", {}, np.ones(5), np.ones(5), {"downscaled_own": reach})
    why = within_downscaled_reach(cal, 3.1)
    assert "not excluded" in why and "3.4" in why and "280" in why and "0.5-0.9x" in why
    assert within_downscaled_reach(cal, 3.5) is None  # beyond the ceiling: the rejection stands
    assert within_downscaled_reach(Calibration("m", "aedr", "2", {}, np.ones(5), np.ones(5), {}), 3.1) is None
