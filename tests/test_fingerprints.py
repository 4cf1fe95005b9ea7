"""Learned fingerprints: tiny deterministic training to a working ONNX, open-set rule, shipped extractors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import real_crop
from forensics_app.cli import main as cli_main
from forensics_app.core.fingerprint import find_extractor, load_extractor, patch_grid, shipped_extractors
from forensics_app.train.fingerprints import (REAL, TrainSettings, load_class_folders, open_set_threshold,
                                              train_classifier, train_extractor)


def pixelated(rgb: np.ndarray) -> np.ndarray:
    """A stand-in 'generator' with an obvious fingerprint: 2x nearest-neighbour upsampling."""
    small = rgb[::2, ::2]
    return small.repeat(2, axis=0).repeat(2, axis=1)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fp-data")
    for cls in (REAL, "pixelated"):
        (root / cls).mkdir()
    for i, name in enumerate(["baboon.png", "lenna.png", "pepper.png"]):
        crop = real_crop(name, 128)
        Image.fromarray(crop).save(root / REAL / f"{i}.png")
        Image.fromarray(pixelated(crop)).save(root / "pixelated" / f"{i}.png")
    return root


TINY = TrainSettings(kind="repmix", steps=3, batch_size=6, width=4)


def test_patch_grid_is_centred_and_bounded():
    image = np.zeros((200, 300, 3), np.float32)
    assert patch_grid(image).shape == (12, 3, 64, 64)  # 3 rows x 4 columns
    assert len(patch_grid(np.zeros((2000, 2000, 3), np.float32))) <= 36
    with pytest.raises(ValueError):
        patch_grid(np.zeros((40, 300, 3), np.float32))


def test_tiny_training_is_deterministic(tiny_data):
    import torch

    classes, images, labels = load_class_folders(tiny_data)
    assert classes[0] == REAL
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    first, second = (train_classifier(images, labels, len(classes), TINY, log=lambda m: None) for _ in range(2))
    with torch.no_grad():
        assert torch.equal(first(x), second(x))


@pytest.mark.parametrize("kind", ["repmix", "manifpt"])
def test_trained_extractor_exports_a_working_onnx(tiny_data, tmp_path, kind):
    manifest = train_extractor(tiny_data, tmp_path, "fp-tiny", TrainSettings(kind=kind, steps=3, batch_size=6,
                                                                             width=4),
                               unknown=tiny_data, log=lambda m: None)
    assert manifest.kind == "extractor" and manifest.extra["classes"] == [REAL, "pixelated"]
    extractor = load_extractor(manifest)
    reading = extractor.read(real_crop("zebra.png", 160).astype(np.float32) / 255)
    assert reading.patches == 4 and reading.classes == (REAL, "pixelated")
    assert sum(reading.probabilities) == pytest.approx(1.0, abs=1e-5)
    assert 0 < manifest.extra["calibration"]["threshold"] <= 1
    (tmp_path / "weights" / "fp-tiny.onnx").write_bytes(b"tampered")
    with pytest.raises(Exception, match="SHA-256"):
        load_extractor(manifest)


def test_analysis_adds_fingerprint_as_non_decisive_candidate(tiny_data, tmp_path):
    from conftest import save_png
    from forensics_app.core.pipeline import AnalysisSettings, Engine
    from forensics_app.core.zoo.store import Zoo

    zoo = Zoo(tmp_path / "home")
    train_extractor(tiny_data, zoo.home / "extractors", "fp-tiny", TINY, log=lambda m: None)
    engine = Engine(zoo, AnalysisSettings(extractors=("fp-tiny",)))
    findings = engine.analyse_file(save_png(pixelated(real_crop("zebra.png", 128)), tmp_path / "x.png"))
    [candidate] = findings.candidates
    assert candidate.method == "repmix" and not candidate.decisive and candidate.method_version == "fp-tiny"
    assert candidate.model in (REAL, "pixelated", "unknown")
    assert findings.verdict.label == "inconclusive"  # fingerprints never vote
    assert engine.run_info()["extractors"][0]["id"] == "fp-tiny"


def test_open_set_threshold_names_at_most_the_target_share():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=200)
    threshold = open_set_threshold(np.log(probs), target=0.05)
    named = (probs.argmax(axis=1) > 0) & (probs[:, 1:].max(axis=1) >= threshold)
    assert named.mean() <= 0.05


def test_cli_fingerprint_train_and_eval(tiny_data, tmp_path, capsys):
    assert cli_main(["fingerprint", "train", "--data", str(tiny_data), "--out", "fp-cli", "--steps", "2",
                     "--into", str(tmp_path)]) == 0
    assert (tmp_path / "fp-cli.toml").exists() and (tmp_path / "weights" / "fp-cli.onnx").exists()
    assert cli_main(["fingerprint", "eval", "fp-cli", "--data", str(tiny_data), "--into", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "jpeg50" in out and "6 images" in out
    assert cli_main(["fingerprint", "eval", "no-such", "--data", str(tiny_data), "--into", str(tmp_path)]) == 2


SHIPPED = shipped_extractors()


@pytest.mark.skipif(not SHIPPED, reason="no extractor shipped in model_zoo")
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_extractor_loads_and_reads_held_out_images_sanely(name):
    extractor = find_extractor(name)
    assert extractor.classes[0] == REAL and {"taef2", "sd2"} <= set(extractor.classes)
    assert 0 < extractor.threshold <= 1 and len(extractor.calibration["unknown_generators"]) == 2
    photo = real_crop("baboon.png", 256).astype(np.float32) / 255
    on_photo = extractor.read(photo)
    assert on_photo.patches == 16 and sum(on_photo.probabilities) == pytest.approx(1, abs=1e-5)
    assert on_photo.named is None  # a held-out real photo: no generator is named
    assert extractor.read(photo) == on_photo
    # demo AE 6 (pixel shuffle + GAN) leaves the clearest trace of the zoo (named correctly for 88-94% of
    # held-out crops in benchmarks/fingerprints.py): its output of the same held-out photo is named
    generated = decoded_by_shipped("demo-ae-06", real_crop("baboon.png", 256))
    assert extractor.read(generated.astype(np.float32) / 255).named == "demo-ae-06"


def decoded_by_shipped(model_id: str, rgb8: np.ndarray) -> np.ndarray:
    """A shipped demo autoencoder's 8-bit output, run in torch from the zoo's weights."""
    import torch

    from forensics_app.core.zoo.architectures import build_autoencoder
    from forensics_app.core.zoo.manifest import SHIPPED_ZOO_DIR, read_manifest

    manifest = read_manifest(SHIPPED_ZOO_DIR / f"{model_id}.toml")
    encoder, decoder = build_autoencoder(manifest.architecture, {
        w.role: SHIPPED_ZOO_DIR / "weights" / w.file for w in manifest.weights})
    with torch.no_grad():
        output = decoder(encoder(torch.from_numpy(rgb8.transpose(2, 0, 1)[None].astype(np.float32) / 255)))
    return np.round(output[0].numpy().transpose(1, 2, 0).clip(0, 1) * 255).astype(np.uint8)


@pytest.mark.skipif(not SHIPPED, reason="no extractor shipped in model_zoo")
def test_analyze_shows_the_fingerprint_reading_in_the_table_and_the_report(installed_zoo, tmp_path, capsys):
    from conftest import save_png

    name = sorted(SHIPPED)[0]
    image = save_png(real_crop("baboon.png", 128), tmp_path / "photo.png")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FORENSICS_APP_HOME", str(installed_zoo.home))
        assert cli_main(["analyze", str(image), "--fingerprint", name, "--pdf", str(tmp_path / "r.pdf")]) == 0
    rows = capsys.readouterr().out.splitlines()
    reading = next(r for r in rows if "(fingerprint)" in r)
    assert find_extractor(name).kind in reading
    from pypdf import PdfReader

    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(tmp_path / "r.pdf").pages)
    assert f"Learned fingerprint {name} (shown, never votes)" in text and f"extractor {name}" in text


def test_verify_re_reads_the_fingerprints_a_run_recorded(installed_zoo, tmp_path):
    from conftest import save_png

    image = save_png(real_crop("baboon.png", 128), tmp_path / "photo.png")
    findings = tmp_path / "findings.json"
    home = ["--home", str(installed_zoo.home)]
    assert cli_main([*home, "analyze", str(image), "--fingerprint", sorted(SHIPPED)[0], "--json", str(findings)]) == 0
    assert cli_main([*home, "report", "verify", str(findings)]) == 0  # the reading is re-made, not "absent"


@pytest.mark.skipif(not SHIPPED, reason="no extractor shipped in model_zoo")
def test_a_fingerprint_reading_is_stored_in_a_case_under_its_extractor(installed_zoo, tmp_path, capsys):
    from conftest import save_png
    from forensics_app.core.case import Case

    image = save_png(real_crop("baboon.png", 128), tmp_path / "photo.png")
    case_file = str(tmp_path / "fp.case")
    name = sorted(SHIPPED)[0]
    assert cli_main(["case", "new", case_file, "--name", "Fingerprints", "--examiner", "J. Doe"]) == 0
    assert cli_main(["--home", str(installed_zoo.home), "analyze", str(image), "--case", case_file,
                     "--fingerprint", name]) == 0
    with Case.open(case_file) as case:
        [stored] = case.findings()
    assert [c.extractor for c in stored.candidates if c.extractor] == [name]
