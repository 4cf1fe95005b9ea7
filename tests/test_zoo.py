"""Zoo: install from a mirror with SHA-256 checks, safe loading, ONNX parity, verify/remove/import."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import MIRROR, real_crop
from local_servers import serve_folder
from forensics_app.core.errors import ModelNotInstalled, ZooError
from forensics_app.core.zoo.fetch import fetch_weight
from forensics_app.core.zoo.manifest import WeightFile, shipped_manifests
from forensics_app.core.zoo.store import Zoo
from forensics_app.core.zoo.weights import load_state_dict

TAEF2_ENCODER = shipped_manifests()["taef2"].weights[0]


def test_install_writes_receipt_with_hashes_and_parity(installed_zoo):
    model = installed_zoo.installed("taef2")
    receipt = model.receipt
    assert receipt["weights"]["taef2_encoder.pth"]["sha256"] == TAEF2_ENCODER.sha256
    assert receipt["weights"]["taef2_encoder.pth"]["source"].startswith("mirror:")
    assert set(receipt["onnx"]) == {"encoder.onnx", "decoder.onnx"}
    for role in ("encoder", "decoder"):
        assert receipt["parity"][role]["max_abs_diff"] < 1e-3
    assert installed_zoo.verify("taef2") == []


def test_onnx_and_torch_agree_on_a_real_photo(installed_zoo, taef2):
    from forensics_app.core.imageprep import to_model_range
    from forensics_app.core.zoo.architectures import build_autoencoder

    model = installed_zoo.installed("taef2")
    encoder, decoder = build_autoencoder(model.manifest.architecture, model.weight_paths())
    x = to_model_range(real_crop(side=96).astype(np.float32) / 255, model.manifest.pixel_range)
    with torch.no_grad():
        expected = decoder(encoder(torch.from_numpy(x))).numpy()
    got = taef2.decode(taef2.encode(x))
    assert np.max(np.abs(got - expected)) < 1e-3


def test_mirror_file_with_wrong_hash_is_not_used(tmp_path):
    fake_mirror = tmp_path / "mirror" / "nested"
    fake_mirror.mkdir(parents=True)
    (fake_mirror / TAEF2_ENCODER.file).write_bytes(b"not the real weights")
    with pytest.raises(ZooError, match="not found"):
        fetch_weight(TAEF2_ENCODER, tmp_path / "dest", [tmp_path / "mirror"], allow_download=False)
    assert not (tmp_path / "dest" / TAEF2_ENCODER.file).exists()


def test_renamed_file_in_a_mirror_is_found_by_hash(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copy(MIRROR / "taesd" / TAEF2_ENCODER.file, mirror / "renamed.bin")
    fetched = fetch_weight(TAEF2_ENCODER, tmp_path / "dest", [mirror], allow_download=False)
    assert fetched.path.name == TAEF2_ENCODER.file


def test_download_with_wrong_hash_is_discarded(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    (served / "x.pth").write_bytes(b"tampered download")
    with serve_folder(served, tls_folder=tmp_path) as (base, ca_file):
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        weight = WeightFile("encoder", "x.pth", TAEF2_ENCODER.sha256, url=f"{base}/x.pth")
        with pytest.raises(ZooError, match="SHA-256"):
            fetch_weight(weight, tmp_path / "dest", [], allow_download=True)
    assert not any((tmp_path / "dest").iterdir())


def test_download_with_right_hash_is_installed(tmp_path, monkeypatch):
    with serve_folder(MIRROR / "taesd", tls_folder=tmp_path) as (base, ca_file):
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        url = f"{base}/{TAEF2_ENCODER.file}"
        weight = WeightFile("encoder", TAEF2_ENCODER.file, TAEF2_ENCODER.sha256, url=url)
        fetched = fetch_weight(weight, tmp_path / "dest", [], allow_download=True)
    assert fetched.source == url
    assert fetched.path.read_bytes() == (MIRROR / "taesd" / TAEF2_ENCODER.file).read_bytes()


class Payload:
    def __reduce__(self):  # what a malicious checkpoint would do on unpickling
        return (print, ("code ran",))


def test_pth_holding_a_pickled_object_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(2), "payload": Payload()}, path)
    with pytest.raises(ZooError, match="refused"):
        load_state_dict(path)
    assert "code ran" not in capsys.readouterr().out


def test_plain_pickle_is_refused(tmp_path):
    path = tmp_path / "plain.pth"
    path.write_bytes(pickle.dumps({"a": [1, 2, 3]}, protocol=2))
    with pytest.raises(ZooError):
        load_state_dict(path)


def test_verify_detects_a_changed_onnx_file(installed_zoo, tmp_path):
    zoo = Zoo(tmp_path / "home")
    shutil.copytree(installed_zoo.root / "taef2", zoo.root / "taef2")
    with open(zoo.root / "taef2" / "decoder.onnx", "ab") as fh:
        fh.write(b"\0")
    assert any("decoder.onnx has changed" in p for p in zoo.verify("taef2"))
    zoo.remove("taef2")
    with pytest.raises(ModelNotInstalled):
        zoo.installed("taef2")


def test_unknown_model_id_is_a_clear_error(tmp_path):
    with pytest.raises(ZooError, match="No zoo entry called 'nope'"):
        Zoo(tmp_path).install("nope")


def _tiny_diffusers_vae(folder: Path) -> None:
    """A small randomly initialised AutoencoderKL: a fixture for the import path, not a generator."""
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, latent_channels=4,
                        norm_num_groups=4, sample_size=32)
    vae.save_pretrained(folder, safe_serialization=True)


def test_import_a_local_diffusers_autoencoder(tmp_path):
    folder = tmp_path / "tiny-vae"
    _tiny_diffusers_vae(folder)
    zoo = Zoo(tmp_path / "home")
    model = zoo.import_diffusers(folder, "tiny-kl")
    assert model.manifest.pixel_range == (-1.0, 1.0)
    assert model.manifest.spatial_factor == 2
    assert "imported" in model.manifest.display_name
    assert zoo.verify("tiny-kl") == []
    assert "tiny-kl" in zoo.manifests()
    with pytest.raises(ZooError, match="already exists"):
        zoo.import_diffusers(folder, "tiny-kl")


def test_import_refuses_pickle_only_folders(tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text('{"_class_name": "AutoencoderKL"}')
    (folder / "diffusion_pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ZooError, match="safetensors"):
        Zoo(tmp_path / "home").import_diffusers(folder, "x")
    assert not (tmp_path / "home" / "zoo" / "x").exists()
