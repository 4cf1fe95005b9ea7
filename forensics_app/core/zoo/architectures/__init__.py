"""Architectures the zoo can build, one module per builder name.

Each module exposes ``build(arch: dict, weight_files: dict[str, Path]) -> (encoder, decoder)``:
torch modules with weights loaded, in eval mode; the encoder is None for a generator that has none
(a GAN: only input inversion from random starts applies to it). The encoder maps an image in the manifest's
pixel range (N, 3, H, W) to a latent; the decoder maps a latent back to the pixel range.
Adding an architecture is adding a module here and naming it in a manifest's ``builder``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from forensics_app.core.errors import ZooError


def build_autoencoder(arch: dict, weight_files: dict[str, Path]):
    name = arch.get("builder", "")
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError:
        raise ZooError(f"Unknown architecture builder {name!r} in the manifest.") from None
    encoder, decoder = module.build(arch, weight_files)
    return (encoder.eval() if encoder is not None else None), decoder.eval()
