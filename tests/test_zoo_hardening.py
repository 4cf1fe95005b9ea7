"""Issue #13 (zoo): what the zoo deletes, where it writes, what it fetches, what it runs, what it builds."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from conftest import MIRROR
from local_servers import serve_folder
from forensics_app.core.errors import ZooError
from forensics_app.core.zoo.fetch import fetch_weight
from forensics_app.core.zoo.manifest import WeightFile, parse_manifest, shipped_manifests
from forensics_app.core.zoo.store import Zoo

TAEF2 = shipped_manifests()["taef2"]


def _copy_installed(installed_zoo, tmp_path, model_id="taef2") -> Zoo:
    zoo = Zoo(tmp_path / "home")
    shutil.copytree(installed_zoo.root / model_id, zoo.root / model_id)
    return zoo


# -- 1. zoo remove ------------------------------------------------------------------------------
@pytest.mark.parametrize("target", [".", "..", "", "taef2/..", "/", "zoo"])
def test_remove_refuses_anything_but_an_installed_id(installed_zoo, tmp_path, target):
    zoo = _copy_installed(installed_zoo, tmp_path)
    with pytest.raises(ZooError):
        zoo.remove(target)
    assert zoo.installed_ids() == ["taef2"]


def test_remove_refuses_a_path_outside_the_zoo(installed_zoo, tmp_path):
    zoo = _copy_installed(installed_zoo, tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "receipt.json").write_text("{}")  # looks like a model folder, but is not in the zoo
    with pytest.raises(ZooError):
        zoo.remove(str(victim))
    assert (victim / "receipt.json").exists()


def test_remove_refuses_a_model_folder_that_links_outside(installed_zoo, tmp_path):
    zoo = Zoo(tmp_path / "home")
    outside = tmp_path / "outside"
    shutil.copytree(installed_zoo.root / "taef2", outside)
    zoo.root.mkdir(parents=True)
    (zoo.root / "taef2").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ZooError, match="not a folder inside the zoo"):
        zoo.remove("taef2")
    assert (outside / "receipt.json").exists()


def test_cli_remove_of_a_folder_is_a_usage_error(installed_zoo, tmp_path):
    from test_cli import run_cli

    zoo = _copy_installed(installed_zoo, tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir()
    result = run_cli(["zoo", "remove", str(victim)], zoo.home)
    assert result.returncode == 2 and "not installed" in result.stderr
    assert victim.is_dir() and zoo.installed_ids() == ["taef2"]


# -- 2. ids, file names, URLs, failed installs --------------------------------------------------
def _manifest_text(model_id="evil", file="taef2_encoder.pth", url=None, latent_channels=32) -> str:
    text = TAEF2.to_toml().replace('id = "taef2"', f'id = "{model_id}"', 1)
    text = text.replace('file = "taef2_encoder.pth"', f'file = "{file}"', 1)
    text = text.replace("latent_channels = 32", f"latent_channels = {latent_channels}")
    if url is not None:
        text = text.replace(TAEF2.weights[0].url, url)
    return text


@pytest.mark.parametrize("model_id", ["../outside", "a/b", "..", ".", ".hidden", "x y"])
def test_manifest_id_that_is_not_a_plain_name_is_refused(model_id):
    with pytest.raises(ZooError, match="Model id"):
        parse_manifest(_manifest_text(model_id=model_id))


@pytest.mark.parametrize("file", ["../../outside.pth", "/tmp/x.pth", "sub/x.pth", ".."])
def test_weight_file_name_that_climbs_out_is_refused(file):
    with pytest.raises(ZooError, match="Weight file name"):
        parse_manifest(_manifest_text(file=file))


@pytest.mark.parametrize("url", ["file:///etc/passwd", "http://example.org/x.pth", "ftp://example.org/x.pth"])
def test_weight_url_other_than_https_is_refused(url):
    with pytest.raises(ZooError, match="only https"):
        parse_manifest(_manifest_text(url=url))


def test_download_redirected_away_from_https_is_refused(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    (served / "x.pth").write_bytes(b"bytes")
    with serve_folder(served) as (plain_base, _):
        with serve_folder(served, tls_folder=tmp_path, redirects={"/x.pth": f"{plain_base}/x.pth"}) as (base, ca):
            monkeypatch.setenv("SSL_CERT_FILE", str(ca))
            weight = WeightFile("encoder", "x.pth", hashlib.sha256(b"bytes").hexdigest(), url=f"{base}/x.pth")
            with pytest.raises(ZooError, match="only https"):
                fetch_weight(weight, tmp_path / "dest", [], allow_download=True)
    assert not any((tmp_path / "dest").iterdir())


def _zoo_with_manifest(tmp_path, monkeypatch, text: str) -> Zoo:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "entry.toml").write_text(text)
    monkeypatch.setenv("FORENSICS_APP_MANIFESTS", str(manifests))
    return Zoo(tmp_path / "home")


def test_install_that_fails_after_fetching_leaves_nothing_behind(tmp_path, monkeypatch):
    # the weights are found and copied, then do not fit the architecture the manifest describes
    zoo = _zoo_with_manifest(tmp_path, monkeypatch, _manifest_text(model_id="misfit", latent_channels=16))
    with pytest.raises(ZooError, match="does not fit"):
        zoo.install("misfit", mirrors=[MIRROR], allow_download=False)
    assert not (zoo.root / "misfit").exists()
    assert not zoo.root.exists() or not any(zoo.root.rglob("*.pth"))


def test_failed_reinstall_keeps_the_installed_model(installed_zoo, tmp_path, monkeypatch):
    zoo = _copy_installed(installed_zoo, tmp_path)
    before = sorted(p.name for p in (zoo.root / "taef2").rglob("*"))
    monkeypatch.setenv("FORENSICS_APP_MIRROR", "")
    with pytest.raises(ZooError, match="not found"):
        zoo.install("taef2", mirrors=[tmp_path / "empty"], allow_download=False)
    assert sorted(p.name for p in (zoo.root / "taef2").rglob("*")) == before
    assert zoo.verify("taef2") == []


# -- 3. what analysis runs ----------------------------------------------------------------------
def test_another_models_onnx_in_the_folder_is_not_run(installed_zoo, tmp_path):
    from forensics_app.core.zoo.autoencoder import OnnxAutoencoder

    zoo = _copy_installed(installed_zoo, tmp_path)
    zoo.install("demo-ae-01")
    shutil.copy(zoo.root / "demo-ae-01" / "decoder.onnx", zoo.root / "taef2" / "decoder.onnx")
    with pytest.raises(ZooError, match="decoder.onnx is not the file this model was installed with"):
        OnnxAutoencoder(zoo.installed("taef2"))


def test_receipt_edited_to_match_a_swapped_onnx_is_refused(installed_zoo, tmp_path):
    zoo = _copy_installed(installed_zoo, tmp_path)
    zoo.install("demo-ae-01")
    shutil.copy(zoo.root / "demo-ae-01" / "decoder.onnx", zoo.root / "taef2" / "decoder.onnx")
    receipt_path = zoo.root / "taef2" / "receipt.json"
    receipt = json.loads(receipt_path.read_text())
    receipt["onnx"]["decoder.onnx"] = json.loads((zoo.root / "demo-ae-01" / "receipt.json").read_text())["onnx"][
        "decoder.onnx"]
    receipt_path.write_text(json.dumps(receipt))
    with pytest.raises(ZooError, match="does not match"):
        zoo.installed("taef2")


def test_the_report_records_the_hashes_of_the_bytes_that_ran(installed_zoo, tmp_path):
    from forensics_app.core.pipeline import AnalysisSettings, Engine

    zoo = _copy_installed(installed_zoo, tmp_path)
    folder = zoo.root / "taef2"
    ran = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in ("encoder.onnx", "decoder.onnx")}
    engine = Engine(zoo, AnalysisSettings(models=("taef2",)))
    (folder / "decoder.onnx").write_bytes(b"changed after the session was made")  # the session holds the bytes
    info = engine.run_info()["models"][0]
    assert {name: entry["sha256"] for name, entry in info["onnx"].items()} == ran


# -- 10. zoo import checks config.json before building ---------------------------------------------
def _tiny_kl(folder: Path) -> None:
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, latent_channels=4,
                        norm_num_groups=4, sample_size=32)
    vae.save_pretrained(folder, safe_serialization=True)


def _edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | changes))


def test_import_refuses_a_config_whose_channels_do_not_match_the_weights(tmp_path):
    folder = tmp_path / "vae"
    _tiny_kl(folder)
    # would allocate about 154 GB if built: refused from the safetensors header, before any allocation
    _edit_config(folder, block_out_channels=[40000, 40000])
    started = time.process_time()
    with pytest.raises(ZooError, match="does not fit"):
        Zoo(tmp_path / "home").import_diffusers(folder, "huge")
    assert time.process_time() - started < 30  # a generous bound: the real allocation would not finish
    assert not (tmp_path / "home" / "zoo" / "huge").exists()


def test_import_refuses_out_of_range_config_values(tmp_path):
    folder = tmp_path / "vae"
    _tiny_kl(folder)
    _edit_config(folder, layers_per_block=10**9)
    with pytest.raises(ZooError, match="out of range"):
        Zoo(tmp_path / "home").import_diffusers(folder, "many")


@pytest.mark.parametrize("text", ["[1, 2, 3]", '"AutoencoderKL"', "null"])
def test_import_of_a_config_that_is_not_an_object_is_a_clear_error(tmp_path, text):
    folder = tmp_path / "vae"
    _tiny_kl(folder)
    (folder / "config.json").write_text(text)
    with pytest.raises(ZooError, match="JSON object"):
        Zoo(tmp_path / "home").import_diffusers(folder, "x")


def test_cli_import_of_a_list_config_exits_with_a_message(tmp_path):
    from test_cli import run_cli

    folder = tmp_path / "vae"
    _tiny_kl(folder)
    (folder / "config.json").write_text("[]")
    result = run_cli(["zoo", "import", str(folder), "--id", "x"], tmp_path / "home")
    assert result.returncode == 2 and "Traceback" not in result.stderr and "JSON object" in result.stderr


@pytest.mark.parametrize("name", ["config.json", "diffusion_pytorch_model.safetensors"])
def test_import_never_opens_a_fifo(tmp_path, name):
    folder = tmp_path / "vae"
    _tiny_kl(folder)
    (folder / name).unlink()
    os.mkfifo(folder / name)  # opening it for reading would block forever
    with pytest.raises(ZooError, match="not a regular file"):
        Zoo(tmp_path / "home").import_diffusers(folder, "fifo")


def test_changed_weights_are_not_loaded_for_gradient_methods(installed_zoo, tmp_path):
    from forensics_app.core.zoo.torch_models import torch_autoencoder

    zoo = _copy_installed(installed_zoo, tmp_path)
    with open(zoo.root / "taef2" / "weights" / "taef2_decoder.pth", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ZooError, match="taef2_decoder.pth is missing or not the file"):
        torch_autoencoder(zoo.installed("taef2"))
