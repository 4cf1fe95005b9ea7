"""End to end on real data: the real TAEF2, held-out photos, the shipped calibration."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import GENERATED, real_crop, save_png
from forensics_app.core.calibrate import jpeg_roundtrip, to_uint8
from forensics_app.core.errors import EvidenceError
from forensics_app.core.imageprep import TilingSettings
from forensics_app.core.jobs import NEVER_CANCELLED
from forensics_app.core.methods.aedr import METHOD as AEDR
from forensics_app.core.pipeline import AnalysisSettings, Engine

# (photo, y, x) of held-out Set14 photos: never used for calibration
CROPS = [("baboon.png", 0, 0), ("barbara.png", 100, 200), ("lenna.png", 200, 200), ("pepper.png", 50, 300),
         ("zebra.png", 100, 100), ("monarch.png", 200, 300)]


@pytest.fixture(scope="module")
def engine(installed_zoo):
    return Engine(installed_zoo, AnalysisSettings(models=("taef2",), methods=("aedr", "reconstruction")))


@pytest.fixture(scope="module")
def crops():
    return [real_crop(name, 128, y, x) for name, y, x in CROPS]


def verdicts(engine, images, tmp_path, prefix):
    return [engine.analyse_file(save_png(im, tmp_path / f"{prefix}{i}.png")).verdict for i, im in enumerate(images)]


def test_shipped_calibration_is_used(engine):
    (model,) = engine.models
    assert "shipped default" in model.calibration_source
    assert {"aedr", "reconstruction"} <= set(model.calibrations)


def test_taef2_decoded_photos_are_attributed_and_the_photos_are_not(engine, taef2, crops, tmp_path):
    decoded = [to_uint8(taef2.reconstruct(c / 255.0)) for c in crops]
    own = verdicts(engine, decoded, tmp_path, "own")
    real = verdicts(engine, crops, tmp_path, "real")
    assert sum(v.label == "attributed" and v.model == "taef2" for v in own) >= 5
    assert not any(v.label == "attributed" for v in real)
    # the grid check and resampling traces withhold some negatives (inconclusive), never attribute
    assert sum(v.label == "not_attributed" for v in real) >= 3


def test_jpeg_q90_keeps_decoded_images_below_their_sources(taef2, crops):
    """Measured, not decided: after JPEG q90 a TAEF2 output still scores lower than the photo it came from."""
    def score(rgb8):
        parts, _, _ = AEDR.components(rgb8 / 255.0, taef2, TilingSettings(), NEVER_CANCELLED)
        return parts["L1_highpass"] / parts["L2_highpass"]

    lower = [score(jpeg_roundtrip(to_uint8(taef2.reconstruct(c / 255.0)), 90)) < score(jpeg_roundtrip(c, 90))
             for c in crops]
    assert sum(lower) >= 5


def test_out_of_zoo_generators_are_not_attributed(engine, tmp_path):
    from PIL import Image

    images = [np.asarray(Image.open(p).convert("RGB"))[:192, :192]
              for folder in ("sd1", "sd2") for p in sorted((GENERATED / folder).glob("*.png"))[:3]]
    assert not any(v.label == "attributed" for v in verdicts(engine, images, tmp_path, "sd"))


def test_findings_carry_calibrated_readings_and_maps(engine, crops, tmp_path):
    findings = engine.analyse_file(save_png(crops[0], tmp_path / "a.png"))
    aedr = next(c for c in findings.candidates if c.method == "aedr")
    assert 0 < aedr.p_value <= 1 and 0 < aedr.p_real <= 1
    assert aedr.components["L1"] > 0 and aedr.provider == "CPUExecutionProvider"
    assert aedr.calibration["n_real"] >= 100
    assert findings.maps[("taef2", "aedr", "first_reconstruction_error")].shape == (128, 128)
    assert findings.candidates[-1].method == "reconstruction"  # baselines rank after decisive readings


def test_large_images_are_tiled_and_maps_stitched(taef2):
    rgb = np.concatenate([real_crop("baboon.png", 256), real_crop("lenna.png", 256)], axis=1) / 255.0
    whole = AEDR.run(rgb, taef2, TilingSettings(), NEVER_CANCELLED)
    tiled = AEDR.run(rgb, taef2, TilingSettings(whole_image_max_side=256, tile=256, overlap=32), NEVER_CANCELLED)
    assert tiled.maps["first_reconstruction_error"].shape == (256, 512)
    assert tiled.score == pytest.approx(whole.score, rel=0.05)


def test_image_too_small_for_analysis_is_refused_clearly(engine, tmp_path):
    with pytest.raises(EvidenceError, match="pixels"):
        engine.analyse_file(save_png(real_crop(side=40), tmp_path / "tiny.png"))


def test_luma_chroma_detail_leaves_out_what_jpeg_discards():
    """Chroma varying pixel by pixel (removed by 4:2:0 subsampling) and luma varying smoothly over more
    than 5 pixels do not count; luma detail finer than that does."""
    from forensics_app.core.methods.aedr import LUMA_WEIGHTS, luma_chroma_detail

    yy, xx = np.mgrid[:64, :64]
    no_luma = np.array([1.0, -LUMA_WEIGHTS[0] / LUMA_WEIGHTS[1], 0.0], dtype=np.float32)  # R up, G down: luma 0
    chroma_checker = ((yy + xx) % 2 * 2 - 1)[..., None] * no_luma * 0.1
    slow_luma = np.repeat(np.sin(xx / 10.0)[..., None], 3, axis=2) * 0.1
    fine_luma = np.repeat(((yy + xx) % 2 * 2 - 1)[..., None], 3, axis=2) * 0.1
    assert luma_chroma_detail(chroma_checker.astype(np.float32)) < 1e-9
    assert luma_chroma_detail(slow_luma.astype(np.float32)) < 1e-3 * luma_chroma_detail(fine_luma.astype(np.float32))


def test_each_model_is_read_with_the_score_form_its_manifest_names(taef2):
    """The form is per decoder: the score, the recorded parameters and the calibration that matches follow
    the manifest, and a calibration made with another form is stale."""
    from dataclasses import replace

    from forensics_app.core.calibration import calibration_for, load_calibrations
    from forensics_app.core.methods.aedr import SCORE_FORMS

    rgb = real_crop(side=96) / 255.0
    as_shipped = AEDR.run(rgb, taef2, TilingSettings(), NEVER_CANCELLED)
    from forensics_app.core.zoo.autoencoder import OnnxAutoencoder
    from forensics_app.core.zoo.manifest import parse_manifest

    detail = OnnxAutoencoder(replace(taef2.model, manifest=replace(taef2.manifest, aedr_score_form="luma_chroma_detail")))
    read_for_jpeg = AEDR.run(rgb, detail, TilingSettings(), NEVER_CANCELLED)
    assert as_shipped.score == pytest.approx(SCORE_FORMS[taef2.manifest.aedr_score_form](as_shipped.components))
    assert read_for_jpeg.score == pytest.approx(SCORE_FORMS["luma_chroma_detail"](read_for_jpeg.components))
    assert read_for_jpeg.score != pytest.approx(as_shipped.score)
    assert read_for_jpeg.parameters["score_form"] == "luma_chroma_detail"
    assert parse_manifest(detail.manifest.to_toml()).aedr_score_form == "luma_chroma_detail"  # kept on install
    shipped = load_calibrations(taef2.manifest.shipped_calibration)
    assert calibration_for(AEDR, as_shipped.parameters, shipped) is not None
    assert calibration_for(AEDR, read_for_jpeg.parameters, shipped) is None


def test_a_manifest_naming_an_unknown_score_form_is_refused_clearly(taef2):
    from dataclasses import replace

    from forensics_app.core.errors import ZooError

    unknown = replace(taef2.manifest, aedr_score_form="wavelet")
    with pytest.raises(ZooError, match="score form 'wavelet'.*does not know"):
        AEDR.parameters_for(unknown)
