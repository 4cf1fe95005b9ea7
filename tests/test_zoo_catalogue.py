"""Issue #14: the catalogue of public generator autoencoders, its architectures, hub installs and listing."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import REAL_CALIBRATION
from local_servers import HUB_COMMIT, serve_hub
from shrunken_autoencoders import SHRUNKEN, save_shrunken
from forensics_app.core.errors import ZooError
from forensics_app.core.zoo.architectures.diffusers_vae import CLASSES
from forensics_app.core.zoo.manifest import HubSource, Manifest, WeightFile, shipped_manifests
from forensics_app.core.zoo.store import Zoo

CATALOGUE = {m.id: m for m in shipped_manifests().values() if m.kind == "autoencoder" and not m.demonstration}
REQUIRED = ["sd-vae-kl-f8", "sd-vae-ft-ema", "sd-vae-ft-mse", "sdxl-vae", "sdxl-vae-fp16-fix", "sd3-vae",
            "flux1-vae", "flux2-vae", "qwen-image-vae", "sana-dc-ae", "hunyuanimage-2.1-vae",
            "taesd", "taesdxl", "taesd3", "taef1", "taef2"]


# -- the catalogue entries -----------------------------------------------------------------------
def test_catalogue_names_every_public_autoencoder_of_the_issue():
    assert sorted(REQUIRED) == sorted(CATALOGUE)


@pytest.mark.parametrize("model_id", REQUIRED)
def test_catalogue_entry_names_family_users_licence_and_source(model_id):
    m = CATALOGUE[model_id]
    assert m.family and m.used_by and m.licence and m.display_name
    assert m.source_urls() and all(u.startswith("https://") for u in m.source_urls())
    if m.architecture["builder"] == "diffusers_vae":
        assert m.architecture["class"] in CLASSES
        assert m.hub is not None and {w.role for w in m.weights} == {"autoencoder", "config"}
    # no invented hashes: where the source publishes none, none is recorded until the first install
    assert all(w.sha256 is None or w.pinned for w in m.weights)


def test_catalogue_architectures_cover_the_five_diffusers_classes_of_the_issue():
    classes = {m.architecture.get("class") for m in CATALOGUE.values()}
    assert {"AutoencoderKL", "AutoencoderKLFlux2", "AutoencoderDC", "AutoencoderKLQwenImage"} <= classes
    assert "AutoencoderTiny" in CLASSES  # the TAESD family in diffusers format imports through it


# -- each architecture: import, export with the parity check, reconstruction ------------------------
@pytest.mark.slow
@pytest.mark.parametrize("class_name", sorted(SHRUNKEN))
def test_each_class_imports_exports_and_reconstructs(tmp_path, class_name):
    import torch

    from forensics_app.core.zoo.architectures import build_autoencoder
    from forensics_app.core.zoo.autoencoder import OnnxAutoencoder

    folder = tmp_path / "vae"
    save_shrunken(class_name, folder)
    zoo = Zoo(tmp_path / "home")
    model = zoo.import_diffusers(folder, "shrunken")
    assert model.manifest.architecture["class"] == class_name
    for role in ("encoder", "decoder"):
        assert model.receipt["parity"][role]["max_abs_diff"] < 1e-3
    factor = model.manifest.spatial_factor
    rgb = np.random.default_rng(0).random((4 * factor, 6 * factor, 3)).astype(np.float32)
    reconstruction = OnnxAutoencoder(model).reconstruct(rgb)
    assert reconstruction.shape == rgb.shape and np.isfinite(reconstruction).all()
    encoder, decoder = build_autoencoder(model.manifest.architecture, model.weight_paths())
    x = torch.from_numpy(rgb.transpose(2, 0, 1)[None] * 2 - 1)
    with torch.no_grad():
        expected = ((decoder(encoder(x)) + 1) / 2).clamp(0, 1)[0].numpy().transpose(1, 2, 0)
    assert np.max(np.abs(reconstruction - expected)) < 1e-3


def test_parity_check_refuses_an_export_that_outputs_nan(tmp_path, monkeypatch):
    from forensics_app.core.zoo import store

    folder = tmp_path / "vae"
    save_shrunken("AutoencoderTiny", folder)
    monkeypatch.setattr(store, "parity_max_abs_diff", lambda module, path, example: float("nan"))
    with pytest.raises(ZooError, match="differs from torch"):
        Zoo(tmp_path / "home").import_diffusers(folder, "nan")


# -- installs from the hub (a local stand-in on 127.0.0.1) -----------------------------------------
REPO = "test-org/tiny-vae"


def _hub_entry(tmp_path, monkeypatch, sha256: str | None = None, gated: bool = False, revision: str = "main") -> Zoo:
    """A catalogue holding one hub entry; the hub folder serves its files under test-org/tiny-vae/vae/."""
    served = tmp_path / "hub" / "test-org" / "tiny-vae" / "vae"
    save_shrunken("AutoencoderTiny", served)
    weights = (WeightFile("autoencoder", "diffusion_pytorch_model.safetensors", sha256,
                          hub_path="vae/diffusion_pytorch_model.safetensors"),
               WeightFile("config", "config.json", None, hub_path="vae/config.json"))
    manifest = Manifest(id="tiny-hub", display_name="Tiny hub VAE", kind="autoencoder", family="test family",
                        used_by=("tests",), licence="MIT", architecture={"builder": "diffusers_vae",
                                                                         "class": "AutoencoderTiny"},
                        weights=weights, pixel_range=(-1.0, 1.0), spatial_factor=2,
                        hub=HubSource(REPO, revision, gated))
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "tiny-hub.toml").write_text(manifest.to_toml())
    monkeypatch.setenv("FORENSICS_APP_MANIFESTS", str(manifests))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("FORENSICS_APP_MIRROR", raising=False)
    return Zoo(tmp_path / "home")


def test_install_from_the_hub_records_the_hash_as_not_pinned(tmp_path, monkeypatch):
    zoo = _hub_entry(tmp_path, monkeypatch)
    with serve_hub(tmp_path / "hub") as (endpoint, requests):
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        model = zoo.install("tiny-hub")
    assert any("/test-org/tiny-vae/resolve/main/vae/diffusion_pytorch_model.safetensors" in r for r in requests)
    entry = model.receipt["weights"]["diffusion_pytorch_model.safetensors"]
    served = tmp_path / "hub" / "test-org" / "tiny-vae" / "vae" / "diffusion_pytorch_model.safetensors"
    from forensics_app.core.evidence import sha256_of_file

    assert entry["sha256"] == sha256_of_file(served) and entry["pinned"] is False
    assert entry["source"] == f"https://huggingface.co/{REPO}/resolve/main/vae/diffusion_pytorch_model.safetensors"
    assert zoo.verify("tiny-hub") == []
    from forensics_app.core.zoo.catalogue import RECORDED, catalogue

    listed = next(e for e in catalogue(zoo) if e["id"] == "tiny-hub")
    assert listed["installed"] and listed["calibrated"] is False and "NOT calibrated" in listed["calibration"]
    assert {w["hash"] for w in listed["weights"]} == {RECORDED}


def test_hub_file_whose_published_hash_differs_is_refused(tmp_path, monkeypatch):
    zoo = _hub_entry(tmp_path, monkeypatch, sha256="0" * 64)
    with serve_hub(tmp_path / "hub") as (endpoint, _):
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        with pytest.raises(ZooError, match="SHA-256 mismatch"):
            zoo.install("tiny-hub")
    assert not (zoo.root / "tiny-hub").exists()


def test_gated_repository_says_how_to_get_access(tmp_path, monkeypatch):
    zoo = _hub_entry(tmp_path, monkeypatch, gated=True)
    with serve_hub(tmp_path / "hub", gated=(REPO,)) as (endpoint, _):
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        with pytest.raises(ZooError, match="is gated: accept its licence"):
            zoo.install("tiny-hub")
    assert not (zoo.root / "tiny-hub").exists()


def test_offline_install_uses_the_hub_cache_and_never_the_network(tmp_path, monkeypatch):
    zoo = _hub_entry(tmp_path, monkeypatch)
    with serve_hub(tmp_path / "hub") as (endpoint, requests):
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        zoo.install("tiny-hub")
        zoo.remove("tiny-hub")
        seen = len(requests)
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        model = zoo.install("tiny-hub")
        assert len(requests) == seen
    assert model.receipt["weights"]["config.json"]["source"].startswith("mirror:") or \
        model.receipt["weights"]["config.json"]["source"].startswith("hub cache:")


def test_offline_without_the_files_is_a_clear_error(tmp_path, monkeypatch):
    zoo = _hub_entry(tmp_path, monkeypatch)
    with pytest.raises(ZooError, match="not in the local hub cache"):
        zoo.install("tiny-hub", allow_download=False)


@pytest.mark.parametrize("layout", ["hub-cache", "repository-download", "diffusers-folder"])
def test_offline_install_from_a_mirror_folder(tmp_path, monkeypatch, layout):
    zoo = _hub_entry(tmp_path, monkeypatch)
    mirror = tmp_path / "mirror"
    served = tmp_path / "hub" / "test-org" / "tiny-vae"
    if layout == "hub-cache":  # what `hf download` leaves in a cache folder, copied to the air-gapped machine
        with serve_hub(tmp_path / "hub") as (endpoint, _):
            from huggingface_hub import hf_hub_download

            for name in ("config.json", "diffusion_pytorch_model.safetensors"):
                hf_hub_download(REPO, f"vae/{name}", endpoint=endpoint, cache_dir=mirror)
        assert (mirror / "models--test-org--tiny-vae" / "snapshots" / HUB_COMMIT).is_dir()
    elif layout == "repository-download":
        shutil.copytree(served, mirror / "test-org" / "tiny-vae")
    else:
        shutil.copytree(served / "vae", mirror)
    model = zoo.install("tiny-hub", mirrors=[mirror], allow_download=False)
    assert all(w["source"].startswith("mirror:") for w in model.receipt["weights"].values())


# -- zoo list --------------------------------------------------------------------------------------
def test_zoo_list_json_describes_every_entry(tmp_path):
    from test_cli import run_cli

    result = run_cli(["zoo", "list", "--json"], tmp_path / "home")
    assert result.returncode == 0
    entries = {e["id"]: e for e in json.loads(result.stdout)}
    assert set(REQUIRED) <= set(entries)
    for model_id in REQUIRED:
        e = entries[model_id]
        assert {"id", "display_name", "family", "used_by", "kind", "demonstration", "installed"} <= set(e)
        assert e["source"]["urls"] and e["installed"] is False
    assert entries["sdxl-vae"]["weights"][0]["hash"] == "not pinned (recorded at first install)"
    assert entries["flux2-vae"]["source"]["gated"] is True
    assert entries["sd-vae-ft-mse"]["source"]["revision_pinned"] is True


def test_installed_but_uncalibrated_model_says_so_in_the_table(tmp_path):
    from test_cli import run_cli

    folder = tmp_path / "vae"
    save_shrunken("AutoencoderTiny", folder)
    Zoo(tmp_path / "home").import_diffusers(folder, "fresh")
    table = run_cli(["zoo", "list"], tmp_path / "home").stdout
    row = next(line for line in table.splitlines() if line.startswith("fresh "))
    assert "NOT CALIBRATED" in row
    assert "cannot decide" in table


def test_importing_ends_with_a_calibration_when_real_photos_are_given(tmp_path, monkeypatch, capsys):
    """Installed means calibrated: --real calibrates the new model (a subset of the shipped samples);
    without real photos the model says plainly that it cannot decide."""
    import argparse
    import functools

    from forensics_app.cli import _calibrate_after_install, main
    from forensics_app.core import calibrate
    from forensics_app.core.calibration import load_calibrations
    from forensics_app.core.zoo.catalogue import calibration_state

    real = tmp_path / "copy" / REAL_CALIBRATION.name  # ids name the folder and the photo, not the path
    real.mkdir(parents=True)
    for photo in calibrate.calibration_split(REAL_CALIBRATION)[:2]:
        shutil.copy(photo, real / photo.name)
    monkeypatch.setattr(calibrate, "CalibrationPlan", functools.partial(calibrate.CalibrationPlan, own_samples=3))
    save_shrunken("AutoencoderKL", tmp_path / "vae")
    home = tmp_path / "home"
    assert main(["--home", str(home), "zoo", "import", str(tmp_path / "vae"), "--id", "new",
                 "--real", str(real), "--crops", "2"]) == 0
    assert "min left" in capsys.readouterr().out  # progress with a time estimate
    model = Zoo(home).installed("new")
    assert calibration_state(model)[0]
    aedr = load_calibrations(model.calibration_folder() / "calibration.json")["aedr"]
    assert len(aedr.own_scores) == 3 and len(aedr.real_scores) == 4
    shipped = set(load_calibrations(shipped_manifests()["taef2"].shipped_calibration)["aedr"].real_ids.tolist())
    assert set(aedr.real_ids.tolist()) <= shipped  # the same samples as the shipped calibrations: paired by id

    (model.calibration_folder() / "calibration.json").unlink()
    monkeypatch.delenv("FORENSICS_APP_REAL_PHOTOS", raising=False)
    _calibrate_after_install(Zoo(home), "new", argparse.Namespace(real=None, crops=None))
    assert "NOT CALIBRATED" in capsys.readouterr().out and not calibration_state(model)[0]
