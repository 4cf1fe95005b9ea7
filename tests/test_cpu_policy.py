"""The CPU time policy: on a CPU each candidate analyses at most the pixels its time budget pays for."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import REAL_TEST, require_shared, save_png
from PIL import Image

from forensics_app.core.imageprep import MIN_REGION_PIXELS, TilingSettings, analysis_region, cpu_pixel_budget
from forensics_app.core.pipeline import AnalysisSettings, Engine
from forensics_app.core.runtime import RuntimeSettings
from forensics_app.core.zoo.store import Zoo

TAEF2_GFLOP_PER_MEGAPIXEL = 2026  # ONNX graph count: 66.4 GFLOP per reconstruction of 256x256, two per check


def test_the_budget_is_the_seconds_at_the_stated_rate_over_the_cost_per_pixel():
    tiling = TilingSettings(cpu_seconds_per_candidate=30, cpu_gflop_per_second=100)
    assert cpu_pixel_budget(tiling, 27_700) == int(3000 / 27_700 * 1e6)  # a full-size VAE: ~0.11 MP
    assert cpu_pixel_budget(tiling, 1e9) == MIN_REGION_PIXELS  # never below what the calibration measured
    assert cpu_pixel_budget(tiling, None) is None  # cost unknown: no limit, and the findings say so
    assert cpu_pixel_budget(TilingSettings(cpu_seconds_per_candidate=None), 27_700) is None


def test_a_budgeted_region_is_centred_on_the_latent_grid_and_within_budget():
    region = analysis_region(3004, 4004, 8, TilingSettings(), 32, pixel_budget=108_303)
    assert region.width * region.height <= 108_303
    assert region.width % 8 == region.height % 8 == region.x % 8 == region.y % 8 == 0  # on the stored grid
    assert abs(region.width / region.height - 4 / 3) < 0.05
    assert abs((region.x + region.width / 2) - 2002) <= 8 and abs((region.y + region.height / 2) - 1502) <= 8
    # the settings' pixel limit still applies where it is the smaller one
    assert analysis_region(3000, 4000, 8, TilingSettings(max_pixels=50_000), 32, pixel_budget=108_303).width < 260


def test_install_records_what_a_check_costs_per_megapixel(installed_zoo):
    cost = installed_zoo.installed("taef2").gflop_per_megapixel
    assert cost == pytest.approx(TAEF2_GFLOP_PER_MEGAPIXEL, rel=0.01)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    rgb = np.asarray(Image.open(require_shared(REAL_TEST) / "baboon.png").convert("RGB"))[:480, :496]
    return save_png(np.ascontiguousarray(rgb), tmp_path_factory.mktemp("policy") / "photo.png")


def analysed(zoo, path, seconds):
    tiling = TilingSettings(cpu_seconds_per_candidate=seconds, cpu_gflop_per_second=100)
    engine = Engine(zoo, AnalysisSettings(models=("taef2",), tiling=tiling, runtime=RuntimeSettings(provider="cpu")))
    return engine.analyse_file(path)


def test_on_a_cpu_a_candidate_over_budget_analyses_a_centred_part_and_says_so(installed_zoo, photo):
    # 0.4 s at 100 GFLOP/s pays for 40 GFLOP: less than the smallest region, so 256x256-ish
    findings = analysed(installed_zoo, photo, 0.4)
    candidate = findings.candidates[0]
    region = candidate.region
    assert 0.95 * MIN_REGION_PIXELS <= region["width"] * region["height"] <= MIN_REGION_PIXELS
    assert findings.region == region  # the only candidate: the analysed part of the image is its region
    assert findings.maps[("taef2", "aedr", "first_reconstruction_error")].shape == (region["height"],
                                                                                   region["width"])
    note = next(r for r in findings.verdict.reasons if "CPU time policy" in r)
    assert f"the central {region['width']}x{region['height']} pixels of 496x480" in note
    assert "at most 0.4 s per candidate" in note and "GPU" in note

    whole = analysed(installed_zoo, photo, None).candidates[0]
    assert whole.region == {"x": 0, "y": 0, "width": 496, "height": 480}
    assert whole.score != candidate.score


def test_a_model_installed_before_costs_were_recorded_says_no_limit_applied(installed_zoo, photo, tmp_path):
    zoo = Zoo(tmp_path / "home")
    shutil.copytree(installed_zoo.model_folder("taef2"), zoo.model_folder("taef2"))
    receipt_path = zoo.model_folder("taef2") / "receipt.json"
    receipt = json.loads(receipt_path.read_text())
    del receipt["cost"]
    receipt_path.write_text(json.dumps(receipt))
    findings = analysed(zoo, photo, 0.4)
    assert findings.candidates[0].region["width"] == 496
    assert any("no CPU time limit applied" in r and "reinstall" in r for r in findings.verdict.reasons)


def test_a_run_recorded_before_the_policy_is_re_run_without_it():
    from forensics_app.core.report.verify import settings_of

    run = {"settings": {"methods": ["aedr"], "alpha": 0.01, "tiling": {"whole_image_max_side": 1024, "tile": 512,
                                                                       "overlap": 32, "max_pixels": 16_000_000}},
           "models": [{"id": "taef2"}], "providers": ["CPUExecutionProvider"]}
    assert settings_of(run).tiling.cpu_seconds_per_candidate is None
    run["settings"]["tiling"] |= {"cpu_seconds_per_candidate": 30.0, "cpu_gflop_per_second": 100.0}
    assert settings_of(run).tiling.cpu_seconds_per_candidate == 30.0
