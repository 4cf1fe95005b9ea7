"""Demonstration generators: the demo_ae architecture, the training recipes, and the shipped zoo entries."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
import torch

from forensics_app.core.zoo.architectures import build_autoencoder
from forensics_app.core.zoo.architectures.demo_ae import UPSAMPLINGS
from forensics_app.core.zoo.manifest import SHIPPED_ZOO_DIR, read_manifest
from forensics_app.train.demo_generators import RECIPES, train

SHIPPED_DEMO_MANIFESTS = [m for m in map(read_manifest, sorted(SHIPPED_ZOO_DIR.glob("*.toml")))
                          if m.architecture.get("builder") == "demo_ae"]


def _synthetic_photos(count: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=(48, 56, 3), dtype=np.uint8) for _ in range(count)]


def test_recipes_vary_what_leaves_fingerprints():
    assert len(RECIPES) >= 8
    assert len({r.id for r in RECIPES}) == len(RECIPES)
    assert {r.upsampling for r in RECIPES} == set(UPSAMPLINGS)
    assert {r.normalisation for r in RECIPES} == {"none", "batch", "group"}
    assert sum(r.objective == "mse+patchgan" for r in RECIPES) >= 2
    assert {r.spatial_factor for r in RECIPES} == {4, 8}
    assert all(4 <= r.latent_channels <= 16 for r in RECIPES)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.id)
def test_recipe_builds_and_round_trips_shape(recipe):
    model = recipe.build_model().eval()
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        latent = model.encoder(image)
        output = model.decoder(latent)
    f = recipe.spatial_factor
    assert latent.shape == (1, recipe.latent_channels, 64 // f, 96 // f)
    assert output.shape == image.shape
    assert 0.0 <= output.min() and output.max() <= 1.0


def test_tiny_training_is_deterministic():
    # A GAN recipe with batch norm exercises every training path: the GAN term starts at step 2 of 4.
    recipe = next(r for r in RECIPES if r.objective == "mse+patchgan" and r.normalisation == "batch")
    recipe = dataclasses.replace(recipe, batch_size=2, patch_size=32)
    photos = _synthetic_photos()

    def weights(seed: int) -> dict[str, torch.Tensor]:
        model = train(dataclasses.replace(recipe, seed=seed), photos, steps=4, log=lambda message: None)
        return model.state_dict()

    first, again, other_seed = weights(1), weights(1), weights(2)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other_seed[k]) for k in first)


def test_the_shipped_demo_zoo_is_complete():
    assert {m.id for m in SHIPPED_DEMO_MANIFESTS} == {r.id for r in RECIPES}


@pytest.mark.parametrize("manifest", SHIPPED_DEMO_MANIFESTS, ids=lambda m: m.id)
def test_shipped_demo_manifest_loads_its_weights_strictly(manifest):
    assert manifest.demonstration and manifest.used_by == ()
    assert manifest.spatial_factor == 2 ** manifest.architecture["downsamplings"]
    (weight,) = manifest.weights
    assert weight.role == "autoencoder" and weight.url is None
    path = SHIPPED_ZOO_DIR / "weights" / weight.file
    assert path.stat().st_size == weight.size < 1024 * 1024
    assert hashlib.sha256(path.read_bytes()).hexdigest() == weight.sha256

    encoder, decoder = build_autoencoder(manifest.architecture, {"autoencoder": path})
    f = manifest.spatial_factor
    with torch.no_grad():
        latent = encoder(torch.rand(1, 3, 8 * f, 8 * f))
        assert latent.shape == (1, manifest.architecture["latent_channels"], 8, 8)
        assert decoder(latent).shape == (1, 3, 8 * f, 8 * f)


def test_written_manifest_keeps_a_calibration_made_for_the_model(tmp_path):
    from forensics_app.train.demo_generators import write_generator

    recipe = RECIPES[0]
    model = recipe.build_model().eval()
    manifest = write_generator(recipe, model, tmp_path, steps=0, wall_seconds=0.0, cpu_seconds=0.0, psnr=0.0)
    assert manifest.calibration_file is None  # nothing calibrated yet
    (tmp_path / f"{recipe.id}.calibration.json").write_text("{}")
    manifest = write_generator(recipe, model, tmp_path, steps=0, wall_seconds=0.0, cpu_seconds=0.0, psnr=0.0)
    assert read_manifest(tmp_path / f"{recipe.id}.toml").calibration_file == f"{recipe.id}.calibration.json"
    assert manifest.weights[0].sha256 == hashlib.sha256((tmp_path / "weights" / f"{recipe.id}.safetensors")
                                                        .read_bytes()).hexdigest()
