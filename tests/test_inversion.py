"""Input reverse-engineering (inversion): determinism, optimisation, progress/cancel, attribution signal."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import REAL_CALIBRATION, real_crop, save_png
from forensics_app.core.calibrate import CalibrationPlan, build_calibration, own_output, real_pool
from forensics_app.core.calibration import calibration_for, load_calibrations
from forensics_app.core.errors import Cancelled
from forensics_app.core.imageprep import TilingSettings
from forensics_app.core.jobs import CancelToken
from forensics_app.core.methods import get_method
from forensics_app.core.methods.inversion import Inversion

FEW_STEPS = Inversion(steps=4)


def rgb01(rgb8: np.ndarray) -> np.ndarray:
    return rgb8.astype(np.float32) / 255.0


def decoded_by(autoencoder, rgb8: np.ndarray) -> np.ndarray:
    """What TAEF2's decoder outputs for this crop's latent, saved as 8-bit."""
    return own_output(autoencoder, rgb8, perturb=False, plan=CalibrationPlan(), rng=np.random.default_rng(0))


def test_registered_as_a_decisive_method():
    method = get_method("inversion")
    assert method.decisive and "inversion_residual" in method.map_titles


def test_same_image_same_score(taef2):
    image = rgb01(real_crop("lenna.png", 64, 200, 200))
    first = FEW_STEPS.run(image, taef2, TilingSettings(), CancelToken())
    second = FEW_STEPS.run(image, taef2, TilingSettings(), CancelToken())
    assert first.score == second.score
    np.testing.assert_array_equal(first.maps["inversion_residual"], second.maps["inversion_residual"])


def test_optimisation_lowers_the_loss_from_the_encoder_start(taef2):
    result = FEW_STEPS.run(rgb01(real_crop("baboon.png", 64)), taef2, TilingSettings(), CancelToken())
    assert result.components["final_loss"] < result.components["initial_loss"]
    assert result.score == pytest.approx(result.components["final_loss"] / result.components["initial_loss"])


def test_progress_is_reported_each_step_and_cancel_stops_the_run(taef2):
    image = rgb01(real_crop("pepper.png", 64))
    reported = []
    FEW_STEPS.run(image, taef2, TilingSettings(), CancelToken(), reported.append)
    assert [p.fraction for p in reported] == [0.25, 0.5, 0.75, 1.0]

    cancel, seen = CancelToken(), []

    def cancel_after_two(p):
        seen.append(p)
        if len(seen) == 2:
            cancel.cancel()

    with pytest.raises(Cancelled):
        Inversion(steps=50).run(image, taef2, TilingSettings(), cancel, cancel_after_two)
    assert len(seen) == 2


def test_stops_early_once_the_loss_stops_improving(taef2):
    impatient = Inversion(steps=20, stop_window=2, stop_tolerance=1.0)  # any improvement is "too little"
    result = impatient.run(rgb01(real_crop("pepper.png", 64)), taef2, TilingSettings(), CancelToken())
    assert result.components["steps_run"] == 3
    assert result.parameters["stopped_by"] == "no further improvement"


def test_a_run_cut_short_by_the_time_cap_is_compared_with_no_calibration(taef2):
    from forensics_app.core.pipeline import ran_with

    method = Inversion()
    shipped = load_calibrations(taef2.manifest.shipped_calibration)
    image = rgb01(real_crop("pepper.png", 64))
    whole = method.run(image, taef2, TilingSettings(), CancelToken())
    assert calibration_for(method, ran_with(method, taef2.manifest, whole), shipped) is shipped["inversion"]
    capped = Inversion(max_seconds=0.0).run(image, taef2, TilingSettings(), CancelToken())
    assert capped.parameters["stopped_by"] == "time cap" and capped.parameters["cut_short"]
    assert ran_with(method, taef2.manifest, capped) is None
    assert calibration_for(method, ran_with(method, taef2.manifest, capped), shipped) is None


def test_decoded_crop_scores_lower_than_the_photo_it_came_from(taef2):
    photo = real_crop("barbara.png", 64, 100, 100)
    real = FEW_STEPS.run(rgb01(photo), taef2, TilingSettings(), CancelToken())
    decoded = FEW_STEPS.run(rgb01(decoded_by(taef2, photo)), taef2, TilingSettings(), CancelToken())
    assert decoded.score < real.score


def test_residual_map_covers_the_image_and_large_images_use_a_centred_region(taef2):
    image = rgb01(real_crop("zebra.png", 128))[:64]  # 64 x 128
    result = Inversion(steps=1, max_side=64).run(image, taef2, TilingSettings(), CancelToken())
    residual = result.maps["inversion_residual"]
    assert residual.shape == (64, 128) and residual.dtype == np.float32
    assert result.parameters["region"] == {"x": 32, "y": 0, "width": 64, "height": 64}
    assert residual[:, 32:96].max() > 0
    assert not residual[:, :32].any() and not residual[:, 96:].any()


def test_calibrates_through_build_calibration(taef2):
    method = Inversion(steps=2)
    plan = CalibrationPlan(crops_per_image=2, crop_sides=(64,), own_samples=2)
    calibration, _ = build_calibration(taef2, method, real_pool(REAL_CALIBRATION, plan, max_images=1), REAL_CALIBRATION, plan,
                                       max_images=1)
    assert calibration.method == "inversion" and calibration.parameters == method.parameters
    assert len(calibration.own_scores) == len(calibration.real_scores) == 2


def test_cli_analyses_with_aedr_and_inversion_together(installed_zoo, tmp_path):
    from forensics_app.cli import main

    photo = save_png(real_crop("monarch.png", 64, 150, 150), tmp_path / "photo.png")
    out = tmp_path / "findings.json"
    main(["--home", str(installed_zoo.home), "analyze", str(photo), "--method", "aedr,inversion",
          "--json", str(out), "--maps", str(tmp_path / "maps")])
    [image] = json.loads(out.read_text())["images"]
    assert {c["method"] for c in image["candidates"]} == {"aedr", "inversion"}
    # the shipped inversion calibration applies: what a run records besides its parameters (its region, how it
    # stopped) does not make it stale
    [deep] = [c for c in image["candidates"] if c["method"] == "inversion"]
    assert deep["status"] != "uncalibrated" and deep["p_value"] is not None and deep["p_real"] is not None
    assert list((tmp_path / "maps").glob("*.inversion.inversion_residual.npy"))


def test_cli_calibrates_only_the_methods_asked_for(installed_zoo, tmp_path):
    from forensics_app.cli import main

    out = tmp_path / "calibration.json"
    assert main(["--home", str(installed_zoo.home), "zoo", "calibrate", "taef2", "--real", str(REAL_CALIBRATION),
                 "--max-images", "1", "--crops", "1", "--own", "2", "--method", "reconstruction", "--out", str(out)]) == 0
    assert set(load_calibrations(out)) == {"reconstruction"}


def test_random_starts_keep_the_best_restart_and_score_its_final_loss(taef2):
    """The no-encoder (GAN) path: seeded draws of the prior, the best of them kept, final loss as score."""
    image = rgb01(real_crop("pepper.png", 64))
    one, three = (Inversion(steps=3, start="random", restarts=n).run(image, taef2, TilingSettings(), CancelToken())
                  for n in (1, 3))
    for result in (one, three):
        assert result.parameters["start_used"] == "random" and result.parameters["score_form"] == "final"
        assert result.score == result.components["final_loss"]
    assert three.score <= one.score  # the first draw of three is the single draw
    again = Inversion(steps=3, start="random", restarts=3).run(image, taef2, TilingSettings(), CancelToken())
    assert again.score == three.score
    other_seed = Inversion(steps=3, start="random", restarts=3, seed=1).run(image, taef2, TilingSettings(), CancelToken())
    assert other_seed.score != three.score


def test_random_start_progress_covers_every_restart(taef2):
    reported = []
    Inversion(steps=2, start="random", restarts=2).run(rgb01(real_crop("pepper.png", 64)), taef2, TilingSettings(),
                                                       CancelToken(), reported.append)
    assert [p.fraction for p in reported] == [0.25, 0.5, 0.75, 1.0]
    assert reported[-1].message.startswith("start 2/2")


def test_encoder_models_start_from_the_encoder_by_default(taef2):
    result = FEW_STEPS.run(rgb01(real_crop("pepper.png", 64)), taef2, TilingSettings(), CancelToken())
    assert result.parameters["start_used"] == "encoder" and result.parameters["score_form"] == "relative"
    with pytest.raises(ValueError):
        Inversion(start="gradient-free")
