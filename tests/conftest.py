"""Shared fixtures: the real TAEF2 installed once per session from the offline mirror in ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SHARED = Path(__file__).resolve().parents[2] / "shared"  # ../shared beside the checkout (the repository root)
MIRROR = SHARED / "zoo-mirror"
REAL_TEST = SHARED / "images" / "real" / "cset14"  # held-out photos: never used for calibration or training
REAL_CALIBRATION = SHARED / "images" / "real" / "imagenet1k"  # its calibration split (core/calibrate.py)
GENERATED = SHARED / "images" / "generated"


def require_shared(folder: Path) -> Path:
    """Skip the calling test, saying what is missing, when a shared asset folder is absent."""
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: this test needs the project's shared assets in ../shared beside the "
                    "checkout")
    return folder


@pytest.fixture(scope="session")
def installed_zoo(tmp_path_factory):
    from forensics_app.core.zoo.store import Zoo

    require_shared(MIRROR)
    zoo = Zoo(tmp_path_factory.mktemp("app-home"))
    zoo.install("taef2", mirrors=[MIRROR])
    return zoo


@pytest.fixture(scope="session")
def taef2(installed_zoo):
    from forensics_app.core.zoo.autoencoder import OnnxAutoencoder

    return OnnxAutoencoder(installed_zoo.installed("taef2"))


def real_crop(name: str = "baboon.png", side: int = 128, y: int = 0, x: int = 0) -> np.ndarray:
    """A crop of a held-out real photo, (side, side, 3) uint8."""
    rgb = np.asarray(Image.open(require_shared(REAL_TEST) / name).convert("RGB"))
    return rgb[y:y + side, x:x + side].copy()


def save_png(rgb8: np.ndarray, path: Path) -> Path:
    Image.fromarray(rgb8).save(path)
    return path


def taef2_parameters(method) -> dict:
    """The parameters a calibration of TAEF2 records for this method (AEDR adds the model's phase search)."""
    from forensics_app.core.calibrate import parameters_for
    from forensics_app.core.zoo.manifest import shipped_manifests

    return parameters_for(method, shipped_manifests()["taef2"])
