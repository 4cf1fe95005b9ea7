"""Model packs: a pack installs with onnxruntime alone, gives the same readings, and a bad pack changes nothing."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import real_crop, save_png
from forensics_app.core.errors import ZooError
from forensics_app.core.pipeline import AnalysisSettings, Engine
from forensics_app.core.zoo.pack import INDEX, PACKS_ENV, install_bundled_packs, install_pack, make_pack
from forensics_app.core.zoo.store import Zoo


@pytest.fixture(scope="module")
def pack(installed_zoo, tmp_path_factory) -> Path:
    return make_pack(installed_zoo, "taef2", tmp_path_factory.mktemp("packs") / "taef2.fapack").path


def members(pack: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(pack) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_pack(path: Path, files: dict[str, bytes], rehash: bool = True) -> Path:
    """A pack with these members; with ``rehash`` its index is made consistent with them (a careful forger)."""
    files = dict(files)
    if rehash:
        index = json.loads(files[INDEX])
        index["files"] = {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                          for name, data in files.items() if name != INDEX}
        files[INDEX] = json.dumps(index).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def desk(pack, tmp_path) -> Zoo:
    """A fresh home with TAEF2 installed from the pack."""
    zoo = Zoo(tmp_path / "desk")
    install_pack(zoo, pack)
    return zoo


def test_a_pack_holds_the_onnx_files_manifest_calibration_and_receipt_but_no_weights(pack, installed_zoo):
    files = members(pack)
    assert set(files) == {INDEX, "manifest.toml", "receipt.json", "encoder.onnx", "decoder.onnx",
                          "taef2.calibration.json"}
    index = json.loads(files[INDEX])
    assert index["model_hash"] == installed_zoo.installed("taef2").model_hash
    for name, entry in index["files"].items():
        assert hashlib.sha256(files[name]).hexdigest() == entry["sha256"] and len(files[name]) == entry["size"]


def test_the_installed_pack_is_the_same_model_and_reads_images_identically(desk, installed_zoo, tmp_path):
    lab, installed = installed_zoo.installed("taef2"), desk.installed("taef2")
    assert installed.from_pack and not lab.from_pack
    assert installed.model_hash == lab.model_hash and installed.receipt["onnx"] == lab.receipt["onnx"]
    assert desk.verify("taef2") == []  # no weights in a pack, and that is not a problem
    assert not (installed.folder / "weights").exists()
    image = save_png(real_crop(side=128), tmp_path / "crop.png")
    only_taef2 = AnalysisSettings(models=("taef2",))  # the session's lab zoo may hold other models too
    at_lab = Engine(installed_zoo, only_taef2).analyse_file(image).candidates
    at_desk = Engine(desk, only_taef2).analyse_file(image).candidates
    assert [(c.model, c.method, c.score, c.p_value, c.p_real, c.status) for c in at_desk] == \
        [(c.model, c.method, c.score, c.p_value, c.p_real, c.status) for c in at_lab]


def test_the_deep_check_of_a_pack_install_says_it_needs_the_weights(desk):
    with pytest.raises(ZooError, match="carries the ONNX files but not the weights"):
        Engine(desk, AnalysisSettings(methods=("aedr", "inversion")))


def tampered_onnx(files: dict[str, bytes]) -> dict[str, bytes]:
    data = bytearray(files["decoder.onnx"])
    data[len(data) // 2] ^= 0x01
    return files | {"decoder.onnx": bytes(data)}


@pytest.mark.parametrize("damage, message", [
    (lambda f, p: write_pack(p, tampered_onnx(f), rehash=False), "does not match its SHA-256"),
    (lambda f, p: p.write_bytes(Path(p.with_name("good.fapack")).read_bytes()[:-5000]), "truncated or damaged"),
    (lambda f, p: p.write_bytes(b"not a zip at all"), "not a readable model pack"),
    (lambda f, p: write_pack(p, {k: v for k, v in f.items() if k != "receipt.json"}, rehash=False),
     "missing: receipt.json"),
    (lambda f, p: write_pack(p, f | {"../outside.txt": b"x"}, rehash=False), "not listed: ../outside.txt"),
    (lambda f, p: write_pack(p, f | {"../outside.txt": b"x"}), "'../outside.txt' is not allowed"),
    (lambda f, p: write_pack(p, f | {"extra.bin": b"x"}), "files a model pack does not have: extra.bin"),
    # consistently re-hashed, so only the receipt's own hashes can tell
    (lambda f, p: write_pack(p, tampered_onnx(f)), "not the file its install receipt names"),
    (lambda f, p: write_pack(p, f | {INDEX: json.dumps(json.loads(f[INDEX]) | {"format": "zip"}).encode()}),
     "not a model pack of format"),
])
def test_a_damaged_or_edited_pack_is_refused_and_the_installed_model_is_kept(desk, pack, tmp_path, damage, message):
    before = snapshot(desk.home)
    (tmp_path / "good.fapack").write_bytes(pack.read_bytes())
    bad = tmp_path / "bad.fapack"
    damage(members(pack), bad)
    with pytest.raises(ZooError, match=message):
        install_pack(desk, bad)
    assert snapshot(desk.home) == before and desk.installed_ids() == ["taef2"]


def test_a_pack_whose_weights_are_not_the_catalogues_is_refused_even_when_every_hash_agrees(pack, tmp_path):
    from forensics_app.core.zoo.manifest import parse_manifest
    from forensics_app.core.zoo.store import model_hash_of

    files = members(pack)
    forged = files["manifest.toml"].decode().replace(parse_manifest(files["manifest.toml"].decode()).weights[0].sha256,
                                                     "0" * 64)
    receipt = json.loads(files["receipt.json"])
    receipt["model_hash"] = model_hash_of(parse_manifest(forged), receipt)
    index = json.loads(files[INDEX]) | {"model_hash": receipt["model_hash"]}
    bad = write_pack(tmp_path / "forged.fapack", files | {"manifest.toml": forged.encode(),
                                                          "receipt.json": json.dumps(receipt).encode(),
                                                          INDEX: json.dumps(index).encode()})
    zoo = Zoo(tmp_path / "home")
    with pytest.raises(ZooError, match="not the ones the catalogue publishes"):
        install_pack(zoo, bad)
    assert zoo.installed_ids() == [] and not (zoo.root / "taef2").exists()


def test_an_onnx_file_onnxruntime_cannot_load_is_refused(pack, tmp_path):
    files = members(pack)
    junk = b"\x00" * 100
    receipt = json.loads(files["receipt.json"])
    receipt["onnx"]["decoder.onnx"]["sha256"] = hashlib.sha256(junk).hexdigest()
    manifest_text = files["manifest.toml"].decode()
    from forensics_app.core.zoo.manifest import parse_manifest
    from forensics_app.core.zoo.store import model_hash_of

    receipt["model_hash"] = model_hash_of(parse_manifest(manifest_text), receipt)
    index = json.loads(files[INDEX]) | {"model_hash": receipt["model_hash"]}
    bad = write_pack(tmp_path / "junk.fapack", files | {"decoder.onnx": junk, "receipt.json": json.dumps(receipt).encode(),
                                                        INDEX: json.dumps(index).encode()})
    with pytest.raises(ZooError, match="decoder.onnx is not a model onnxruntime can load"):
        install_pack(Zoo(tmp_path / "home"), bad)


def test_the_expected_pack_hash_is_enforced(pack, tmp_path):
    zoo = Zoo(tmp_path / "home")
    with pytest.raises(ZooError, match="not the pack you were given"):
        install_pack(zoo, pack, expected_sha256="0" * 64)
    assert zoo.installed_ids() == []
    install_pack(zoo, pack, expected_sha256=hashlib.sha256(pack.read_bytes()).hexdigest().upper())
    assert zoo.installed_ids() == ["taef2"]


def test_a_pack_over_a_source_install_keeps_its_weights_and_this_machines_calibration(installed_zoo, pack, tmp_path):
    import shutil

    zoo = Zoo(tmp_path / "home")
    shutil.copytree(installed_zoo.root / "taef2", zoo.root / "taef2")
    local = zoo.root / "taef2" / "calibration" / "calibration.json"
    local.parent.mkdir(exist_ok=True)
    local.write_text('{"schema": "made here", "methods": {}}')
    install_pack(zoo, pack)
    model = zoo.installed("taef2")
    assert model.from_pack and zoo.verify("taef2") == []
    assert all(p.is_file() for p in model.weight_paths().values())  # the deep check still has its weights
    assert local.read_text() == '{"schema": "made here", "methods": {}}'  # the pack brought none of its own


def test_a_pack_of_a_pack_install_installs_the_same_model(desk, tmp_path):
    repacked = make_pack(desk, "taef2", tmp_path / "again.fapack").path
    zoo = Zoo(tmp_path / "third")
    assert install_pack(zoo, repacked).model_hash == desk.installed("taef2").model_hash


def test_packing_refuses_to_overwrite_the_models_own_files(desk):
    target = desk.installed("taef2").folder / "encoder.onnx"
    before = target.read_bytes()
    with pytest.raises(Exception, match="refusing to overwrite an input"):
        make_pack(desk, "taef2", target)
    assert target.read_bytes() == before


def test_packs_shipped_with_the_application_install_on_first_start_only(pack, tmp_path, monkeypatch):
    monkeypatch.setenv(PACKS_ENV, str(pack.parent))
    fresh = Zoo(tmp_path / "fresh")
    assert install_bundled_packs(fresh) == ["taef2"]
    fresh.remove("taef2")
    install_pack(fresh, pack)
    before = snapshot(fresh.home)
    assert install_bundled_packs(fresh) == []  # a home with a model is the examiner's: left alone
    assert snapshot(fresh.home) == before


def test_the_command_line_packs_and_installs(installed_zoo, tmp_path):
    def cli(*args, home):
        return subprocess.run([sys.executable, "-m", "forensics_app", "--home", str(home), *args],
                              capture_output=True, text=True, timeout=300, env=dict(os.environ))

    out = tmp_path / "taef2.fapack"
    made = cli("zoo", "pack", "taef2", "--out", str(out), home=installed_zoo.home)
    assert made.returncode == 0 and "pack SHA-256 " + hashlib.sha256(out.read_bytes()).hexdigest() in made.stdout
    installed = cli("zoo", "install", str(out), home=tmp_path / "desk")
    assert installed.returncode == 0 and "taef2 installed from taef2.fapack" in installed.stdout
    verified = cli("zoo", "verify", home=tmp_path / "desk")
    assert verified.returncode == 0 and "weights not installed (model pack)" in verified.stdout
    image = save_png(real_crop(side=96), tmp_path / "photo.png")
    assert cli("analyze", str(image), "--json", str(tmp_path / "f.json"), home=tmp_path / "desk").returncode == 0
    verified = cli("report", "verify", str(tmp_path / "f.json"), home=tmp_path / "desk")
    assert verified.returncode == 0 and "IDENTICAL" in verified.stdout  # the absent weights are not a difference
    assert "taef2_decoder.pth is not installed (model pack)" in verified.stdout
    refused = cli("zoo", "install", str(tmp_path / "missing.fapack"), home=tmp_path / "desk")
    assert refused.returncode == 2 and "missing.fapack is not a file" in refused.stderr
    assert "Traceback" not in refused.stderr
