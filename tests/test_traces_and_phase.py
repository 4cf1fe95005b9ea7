"""What the pixels show of an image's history, and AEDR's search of the latent-grid phase."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import MIRROR, real_crop, save_png
from forensics_app.core.calibrate import jpeg_roundtrip, resized, to_uint8
from forensics_app.core.methods.aedr import GRID_OFFSET_LEVEL
from forensics_app.core.traces import JPEG_TRACES, NO_JPEG, RESAMPLING_LEVEL, pixel_traces


def test_jpeg_traces_are_seen_in_the_pixels_whatever_the_container_and_crop():
    photo = real_crop("lenna.png", side=200)
    compressed = jpeg_roundtrip(photo, 60)
    assert pixel_traces(compressed).condition == JPEG_TRACES
    assert pixel_traces(compressed[3:, 5:]).condition == JPEG_TRACES  # cropped off the 8x8 grid
    assert pixel_traces(compressed.astype(np.float32) / 255).condition == JPEG_TRACES  # as the pipeline passes it


def test_light_compression_and_downscaling_leave_no_strong_traces():
    photo = real_crop("lenna.png", side=256)
    assert pixel_traces(jpeg_roundtrip(photo, 98)).condition == NO_JPEG
    assert pixel_traces(resized(jpeg_roundtrip(photo, 60), 0.5)).condition == NO_JPEG


def test_upscaling_leaves_resampling_traces_that_the_original_has_not(taef2):
    photo = real_crop("lenna.png", side=256)
    output = to_uint8(taef2.reconstruct(photo / 255.0))
    for original in (photo, output, jpeg_roundtrip(photo, 90)):
        assert not pixel_traces(original).resampled
        assert pixel_traces(resized(original, 1.5)).resampled
    assert pixel_traces(resized(output, 1.25)).resampled
    assert pixel_traces(resized(photo, 1.5)).to_dict()["resampling_peak"] >= RESAMPLING_LEVEL


def test_blur_lowers_the_fine_detail_below_a_sharp_photos_and_a_decoders_outputs(taef2):
    from forensics_app.core.calibrate import blurred

    photo = real_crop("lenna.png", side=256)
    sharp = pixel_traces(photo).fine_detail
    soft = [pixel_traces(blurred(photo, sigma)).fine_detail for sigma in (1.0, 2.0, 3.0)]
    assert sharp > soft[0] > soft[1] > soft[2] and soft[1] < sharp / 4
    assert pixel_traces(to_uint8(taef2.reconstruct(photo / 255.0))).fine_detail > soft[0]
    assert pixel_traces(photo).to_dict()["fine_detail"] == round(sharp, 4)


def test_a_resized_generator_output_is_never_called_not_attributed(installed_zoo, tmp_path):
    """TAEF2's own output, upscaled 1.5x, no longer scores as its own; the resampling traces (and here also the
    ceiling of its downscaled outputs' scores) keep the negative from being read as one."""
    from conftest import save_png

    from forensics_app.core.pipeline import AnalysisSettings, Engine

    engine = Engine(installed_zoo, AnalysisSettings(models=("taef2",)))
    output = to_uint8(engine.models[0].autoencoder.reconstruct(real_crop("zebra.png", side=256) / 255.0))
    findings = engine.analyse_file(save_png(resized(output, 1.5), tmp_path / "upscaled.png"))
    assert findings.candidates[0].p_value <= engine.settings.alpha  # the score alone says "not TAEF2"
    assert findings.verdict.label == "inconclusive"
    assert any("resampling traces" in reason for reason in findings.verdict.reasons)
    assert findings.facts["pixel_traces"]["resampled"] is True


def test_the_grid_check_sees_an_output_cropped_off_its_grid_and_withholds_a_rejection(installed_zoo, tmp_path):
    """TAEF2 is scored at its stored grid only. Its output cropped 3 pixels off the top and left keeps sides
    that are multiples of 8, scores like a photo, and was called "not attributed"; the grid check sees that
    another phase reconstructs better and withholds the negative. The aligned output is still attributed."""
    from conftest import save_png

    from forensics_app.core.methods.base import MethodResult
    from forensics_app.core.pipeline import AnalysisSettings, Engine, off_grid

    engine = Engine(installed_zoo, AnalysisSettings(models=("taef2",)))
    output = to_uint8(engine.models[0].autoencoder.reconstruct(real_crop("zebra.png", side=272) / 255.0))
    shifted = engine.analyse_file(save_png(output[3:3 + 264, 3:3 + 264], tmp_path / "shifted.png"))
    reading = shifted.candidates[0]
    assert reading.components["grid_offset_ratio"] < GRID_OFFSET_LEVEL
    assert shifted.verdict.label == "inconclusive" and reading.status == "undecided"
    # a rejection with that measurement is withheld, saying why
    why = off_grid(engine.models[0].installed.manifest, MethodResult("aedr", "2", "taef2", 3.5, reading.components, {}),
                   (264, 264))
    assert "cropped off that grid" in why and f"{reading.components['grid_offset_ratio']:.2f}" in why
    aligned = engine.analyse_file(save_png(output[:264, :264], tmp_path / "aligned.png"))
    assert aligned.candidates[0].components["grid_offset_ratio"] > GRID_OFFSET_LEVEL
    assert aligned.verdict.label == "attributed"


def test_a_downscaled_output_is_not_called_not_attributed(installed_zoo, tmp_path):
    """TAEF2's output downscaled 0.75x (bicubic, antialiased: no resampling trace) scores beyond 99% of its own
    outputs as made and far from the real threshold, so TAEF2 alone rejected it ("not attributed"); the score
    is one its outputs reach once downscaled (the ceiling its calibration records), so the rejection is withheld."""
    from forensics_app.core.pipeline import AnalysisSettings, Engine
    from forensics_app.core.verdict import reading_status

    engine = Engine(installed_zoo, AnalysisSettings(models=("taef2",)))
    output = to_uint8(engine.models[0].autoencoder.reconstruct(real_crop("flowers.png", side=256) / 255.0))
    findings = engine.analyse_file(save_png(resized(output, 0.75), tmp_path / "downscaled.png"))
    reading = findings.candidates[0]
    assert not findings.facts["pixel_traces"]["resampled"]
    critical = reading.calibration["rule"]["critical_p"]
    assert reading_status(reading.p_value, reading.p_real, critical, engine.settings.alpha) == "rejected"
    assert reading.score <= reading.calibration["data"]["downscaled_own"]["ceiling"]
    assert reading.status == "undecided" and findings.verdict.label == "inconclusive"
    assert any("a downscaled output of this model is not excluded" in r for r in findings.verdict.reasons)
    assert not any("lies between the model's own outputs and real photos" in r for r in findings.verdict.reasons)
    assert any("unlike the model's own outputs as they were made, but that does not exclude" in r
               for r in findings.verdict.reasons)
    assert "may have been cropped or downscaled" in findings.verdict.text


def test_the_calibration_never_runs_the_grid_check(taef2):
    from forensics_app.core.imageprep import TilingSettings
    from forensics_app.core.jobs import NEVER_CANCELLED
    from forensics_app.core.methods.aedr import METHOD

    result = METHOD.run(real_crop(side=128) / 255.0, taef2, TilingSettings(), NEVER_CANCELLED)
    assert "grid_offset_ratio" not in result.components  # score_samples calls run() only
    METHOD.complete(result, real_crop(side=128) / 255.0, taef2, NEVER_CANCELLED)
    assert result.components["grid_offset_ratio"] > 0


@pytest.fixture(scope="module")
def demo_ae(installed_zoo):
    from forensics_app.core.zoo.autoencoder import OnnxAutoencoder

    installed_zoo.install("demo-ae-01", mirrors=[MIRROR])
    return OnnxAutoencoder(installed_zoo.installed("demo-ae-01"))


def test_aedr_finds_the_grid_phase_of_a_cropped_output(demo_ae):
    from forensics_app.core.imageprep import TilingSettings
    from forensics_app.core.jobs import NEVER_CANCELLED
    from forensics_app.core.methods.aedr import METHOD

    output = to_uint8(demo_ae.reconstruct(real_crop("zebra.png", side=160) / 255.0)).astype(np.float32) / 255
    aligned = METHOD.run(output[:144, :144], demo_ae, TilingSettings(), NEVER_CANCELLED)
    cropped = METHOD.run(output[3:3 + 144, 1:1 + 144], demo_ae, TilingSettings(), NEVER_CANCELLED)
    photo = METHOD.run(real_crop("zebra.png", side=144) / 255.0, demo_ae, TilingSettings(), NEVER_CANCELLED)
    factor = demo_ae.manifest.spatial_factor
    assert (cropped.components["phase_y"], cropped.components["phase_x"]) == ((factor - 3) % factor, (factor - 1) % factor)
    assert cropped.components["score_at_stored_grid"] > 3 * cropped.score  # off the grid, nearer a photo than its outputs
    assert cropped.score < 4 * aligned.score < photo.score
    assert cropped.parameters["phase_search_patch"] == demo_ae.manifest.phase_search_patch > 0
    assert all(m.shape == (144, 144) for m in cropped.maps.values())


def test_models_without_phase_search_are_scored_at_the_stored_grid_and_say_so(taef2):
    from forensics_app.core.imageprep import TilingSettings
    from forensics_app.core.jobs import NEVER_CANCELLED
    from forensics_app.core.methods.aedr import METHOD

    result = METHOD.run(real_crop(side=128) / 255.0, taef2, TilingSettings(), NEVER_CANCELLED)
    assert result.components["phase_searched"] == 0.0 and result.parameters["phase_search_patch"] == 0
    assert result.score == result.components["score_at_stored_grid"]


def test_a_reading_consistent_among_several_candidates_carries_its_profile_check(demo_ae, installed_zoo, tmp_path):
    from forensics_app.core.findings import CONSISTENT
    from forensics_app.core.pipeline import AnalysisSettings, Engine

    engine = Engine(installed_zoo, AnalysisSettings(models=("demo-ae-01", "taef2")))
    output = to_uint8(demo_ae.reconstruct(real_crop("zebra.png", side=128) / 255.0))
    findings = engine.analyse_file(save_png(output, tmp_path / "output.png"))
    reading = next(c for c in findings.candidates if c.model == "demo-ae-01" and c.method == "aedr")
    assert reading.status == CONSISTENT
    profile = reading.calibration["profile"]
    assert profile["candidates"] == ["taef2"] and profile["n"] >= 50 and 0 < profile["p"] <= 1
    assert findings.verdict.label == ("inconclusive" if profile["unlike"] else "attributed")
    # the look-alikes reach the zoo generators that are not installed, and reasons can name them as the catalogue does
    assert {f"demo-ae-0{k}" for k in range(2, 9)} <= set(reading.calibration["look_alikes"])
    assert engine.display_names["demo-ae-02"] == installed_zoo.manifest("demo-ae-02").display_name
