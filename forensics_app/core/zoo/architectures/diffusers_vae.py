"""Diffusers autoencoders (AutoencoderKL, AutoencoderTiny) from a local folder: config.json + safetensors.

This is how a lab adds the SD 1.x/2.x, SDXL, SD3 or FLUX.1 VAEs it has downloaded. Both classes take
and return images in [-1, 1]; the encoder is deterministic (the mean of the latent distribution).
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from forensics_app.core.errors import ZooError
from forensics_app.core.evidence import sha256_of_file
from forensics_app.core.zoo.manifest import Manifest, WeightFile
from forensics_app.core.zoo.weights import load_state_dict

SUPPORTED = ("AutoencoderKL", "AutoencoderTiny")


class _Encode(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, image):
        encoded = self.vae.encode(image)
        return encoded.latent_dist.mean if hasattr(encoded, "latent_dist") else encoded.latents


class _Decode(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, latent):
        return self.vae.decode(latent).sample


def _read_config(folder: Path) -> dict:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ZooError(f"{folder} has no readable diffusers config.json ({exc}).") from None


def manifest_for_folder(folder: Path, model_id: str) -> Manifest:
    config = _read_config(folder)
    cls = config.get("_class_name")
    if cls not in SUPPORTED:
        raise ZooError(f"{folder.name}: autoencoder class {cls!r} is not supported (supported: {', '.join(SUPPORTED)}).")
    weights = sorted(folder.glob("*.safetensors"))
    if len(weights) != 1:
        raise ZooError(f"{folder} must hold exactly one .safetensors weight file (found {len(weights)}); "
                       f".bin/.ckpt pickles are not loaded.")
    files = [WeightFile("autoencoder", weights[0].name, sha256_of_file(weights[0]), weights[0].stat().st_size),
             WeightFile("config", "config.json", sha256_of_file(folder / "config.json"),
                        (folder / "config.json").stat().st_size)]
    factor = 2 ** (len(config.get("block_out_channels", [0] * 4)) - 1) if cls == "AutoencoderKL" else 8
    return Manifest(
        id=model_id, display_name=f"{model_id} (imported {cls})", kind="autoencoder",
        family=f"imported diffusers {cls}", used_by=(), licence="as stated by the source of the imported weights",
        architecture={"builder": "diffusers_vae", "class": cls}, weights=tuple(files), pixel_range=(-1.0, 1.0),
        spatial_factor=factor, latent_scale=float(config.get("scaling_factor", 1.0)),
        latent_shift=float(config.get("shift_factor") or 0.0),
        description=f"Imported from the local diffusers folder {folder}.",
    )


def build(arch: dict, weight_files: dict[str, Path]) -> tuple[nn.Module, nn.Module]:
    import diffusers

    config = json.loads(Path(weight_files["config"]).read_text(encoding="utf-8"))
    cls = getattr(diffusers, arch["class"])
    vae = cls.from_config(config)
    try:
        vae.load_state_dict(load_state_dict(Path(weight_files["autoencoder"])), strict=True)
    except RuntimeError as exc:
        raise ZooError(f"The weights do not fit the {arch['class']} config ({str(exc).splitlines()[0]}).") from None
    vae.eval()
    return _Encode(vae), _Decode(vae)
