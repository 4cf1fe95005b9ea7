"""Diffusers autoencoders from config.json + one safetensors file, through one builder ("diffusers_vae").

The class is the config's ``_class_name``: AutoencoderKL (SD 1.x/2.x, SDXL, SD3, FLUX.1), AutoencoderKLFlux2
(FLUX.2), AutoencoderTiny (TAESD family), AutoencoderDC (Sana's DC-AE), AutoencoderKLQwenImage
(Qwen-Image; a video autoencoder, run here on one frame) and AutoencoderKLHunyuanImage (HunyuanImage 2.1).
All take and return images in [-1, 1]; the
encoder is deterministic (the mean of the latent distribution where there is one).

Nothing is built from a config before it has been checked: the config must be a JSON object of plain
values of sane size, and the model it describes (built first on torch's "meta" device, which allocates
no memory) must have exactly the tensor names and shapes listed in the safetensors header. A config with
huge channel counts therefore costs nothing and is refused, instead of allocating tens of gigabytes.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from forensics_app.core.errors import ZooError
from forensics_app.core.evidence import sha256_of_file
from forensics_app.core.files import NotARegularFile, open_regular_file, read_regular_file
from forensics_app.core.zoo.manifest import Manifest, WeightFile
from forensics_app.core.zoo.weights import load_state_dict


@dataclass(frozen=True)
class DiffusersClass:
    spatial_factor: Callable[[dict], int]  # from the full config (diffusers' defaults filled in)
    frames: bool = False  # video autoencoder: (N, C, T, H, W); one frame is run


def _stages(key: str) -> Callable[[dict], int]:
    """Every stage after the first halves height and width."""
    return lambda config: 2 ** (len(config[key]) - 1)


CLASSES = {
    "AutoencoderKL": DiffusersClass(_stages("block_out_channels")),
    "AutoencoderKLFlux2": DiffusersClass(_stages("block_out_channels")),
    "AutoencoderTiny": DiffusersClass(_stages("num_encoder_blocks")),
    "AutoencoderDC": DiffusersClass(_stages("encoder_block_out_channels")),
    # diffusers' spelling; the spatial downsamplings are one per entry, temporal or not
    "AutoencoderKLQwenImage": DiffusersClass(lambda config: 2 ** len(config["temperal_downsample"]), frames=True),
    "AutoencoderKLHunyuanImage": DiffusersClass(lambda config: int(config["spatial_compression_ratio"])),
}
SUPPORTED = tuple(CLASSES)

MAX_CONFIG_BYTES = 1 << 20
MAX_HEADER_BYTES = 100 << 20  # a safetensors header lists names and shapes; real ones are well under 1 MB
MAX_INT = 1 << 16  # no channel count, layer count or size in a real autoencoder config comes near this
MAX_LIST = 64
MAX_DEPTH = 4


class _Encode(nn.Module):
    def __init__(self, vae, frames: bool):
        super().__init__()
        self.vae, self.frames = vae, frames

    def forward(self, image):
        encoded = self.vae.encode(image.unsqueeze(2) if self.frames else image)
        latent = _latent_of(encoded)
        return latent.squeeze(2) if self.frames else latent


class _Decode(nn.Module):
    def __init__(self, vae, frames: bool):
        super().__init__()
        self.vae, self.frames = vae, frames

    def forward(self, latent):
        image = self.vae.decode(latent.unsqueeze(2) if self.frames else latent).sample
        return image.squeeze(2) if self.frames else image


def _latent_of(encoded):
    """The deterministic latent of each class's encode() output."""
    if hasattr(encoded, "latent_dist"):  # KL autoencoders: the mean of the Gaussian
        return encoded.latent_dist.mean
    if hasattr(encoded, "latents"):  # AutoencoderTiny
        return encoded.latents
    return encoded.latent  # AutoencoderDC


# -- checks before anything is built ------------------------------------------------------------
def read_config(path: Path) -> dict:
    """config.json as a checked dict: a JSON object, a supported ``_class_name``, plain values of sane size."""
    # checked on the open file, so a FIFO or device swapped in after a look at the path cannot block the read
    data = read_regular_file(path, MAX_CONFIG_BYTES, "diffusers config.json", error=ZooError)
    try:
        config = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ZooError(f"{path} is not a readable diffusers config.json ({exc}).") from None
    if not isinstance(config, dict):
        raise ZooError(f"{path} must hold a JSON object (a diffusers config), not a {type(config).__name__}.")
    cls = config.get("_class_name")
    if cls not in CLASSES:
        raise ZooError(f"{path.parent.name}: autoencoder class {cls!r} is not supported "
                       f"(supported: {', '.join(SUPPORTED)}).")
    for key, value in config.items():
        _check_value(value, f"{path.name}: {key}", 0)
    return config


def _check_value(value, where: str, depth: int) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, (str, float)):
        return
    if isinstance(value, int):
        if abs(value) > MAX_INT:
            raise ZooError(f"{where} = {value} is out of range for an autoencoder config (at most {MAX_INT}).")
        return
    if isinstance(value, list) and depth < MAX_DEPTH:
        if len(value) > MAX_LIST:
            raise ZooError(f"{where} lists {len(value)} values; an autoencoder config lists at most {MAX_LIST}.")
        for item in value:
            _check_value(item, where, depth + 1)
        return
    raise ZooError(f"{where} is not a plain value an autoencoder config holds ({type(value).__name__}).")


def safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape, read from the safetensors header alone (no tensor data is read)."""
    try:
        with open_regular_file(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(8)
            length = struct.unpack("<Q", head)[0] if len(head) == 8 else None
            if length is None or length > min(MAX_HEADER_BYTES, size - 8):
                raise ZooError(f"{path.name} is not a valid safetensors file (bad header length).")
            raw = fh.read(length)
    except (NotARegularFile, FileNotFoundError):
        raise ZooError(f"{path} is not a regular file; the safetensors weight file must be one.") from None
    try:
        header = json.loads(raw)
        return {name: tuple(int(d) for d in entry["shape"]) for name, entry in header.items()
                if name != "__metadata__"}
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError, KeyError, ValueError, AttributeError):
        raise ZooError(f"{path.name} is not a valid safetensors file (unreadable header).") from None


def _instantiate(config: dict, device: str):
    import diffusers
    import torch

    diffusers.logging.set_verbosity_error()  # unused config keys (e.g. _name_or_path) are not news
    cls = getattr(diffusers, config["_class_name"])
    try:
        with torch.device(device):
            return cls.from_config(config)
    except Exception as exc:  # diffusers raises TypeError/ValueError/AssertionError/... for bad configs
        raise ZooError(f"config.json does not describe a valid {config['_class_name']} "
                       f"({type(exc).__name__}: {exc}).") from None


def check_fits(config: dict, weights: Path):
    """Build the model on the meta device and compare its tensors with the file's header; return the meta model."""
    vae = _instantiate(config, "meta")
    expected = {name: tuple(t.shape) for name, t in vae.state_dict().items()}
    found = vae._fix_state_dict_keys_on_load(safetensors_shapes(weights))  # old attention key names
    problems = [f"missing {n}" for n in sorted(set(expected) - set(found))]
    problems += [f"unexpected {n}" for n in sorted(set(found) - set(expected))]
    problems += [f"{n}: file {found[n]}, config {expected[n]}" for n in sorted(set(found) & set(expected))
                 if found[n] != expected[n]]
    if problems:
        raise ZooError(f"{weights.name} does not fit the {config['_class_name']} described by config.json "
                       f"({len(problems)} differences, e.g. {'; '.join(problems[:3])}); nothing was built.")
    return vae


def spatial_factor(vae) -> int:
    return CLASSES[type(vae).__name__].spatial_factor(vae.config)


# -- import and build ----------------------------------------------------------------------------
def manifest_for_folder(folder: Path, model_id: str) -> Manifest:
    config = read_config(folder / "config.json")
    cls = config["_class_name"]
    candidates = sorted(folder.glob("*.safetensors"))
    irregular = [p.name for p in candidates if not p.is_file()]
    if irregular:
        raise ZooError(f"{folder}: {', '.join(irregular)} is not a regular file; it was not read.")
    if len(candidates) != 1:
        raise ZooError(f"{folder} must hold exactly one .safetensors weight file (found {len(candidates)}); "
                       f".bin/.ckpt pickles are not loaded.")
    weights = candidates[0]
    vae = check_fits(config, weights)
    files = [WeightFile("autoencoder", weights.name, sha256_of_file(weights), weights.stat().st_size),
             WeightFile("config", "config.json", sha256_of_file(folder / "config.json"),
                        (folder / "config.json").stat().st_size)]
    return Manifest(
        id=model_id, display_name=f"{model_id} (imported {cls})", kind="autoencoder",
        family=f"imported diffusers {cls}", used_by=(), licence="as stated by the source of the imported weights",
        architecture={"builder": "diffusers_vae", "class": cls}, weights=tuple(files), pixel_range=(-1.0, 1.0),
        spatial_factor=spatial_factor(vae), latent_scale=float(config.get("scaling_factor") or 1.0),
        latent_shift=float(config.get("shift_factor") or 0.0),
        description=f"Imported from the local diffusers folder {folder}.",
    )


def build(arch: dict, weight_files: dict[str, Path]) -> tuple[nn.Module, nn.Module]:
    config = read_config(Path(weight_files["config"]))
    if arch.get("class") not in (None, config["_class_name"]):
        raise ZooError(f"The manifest names class {arch['class']!r} but config.json describes "
                       f"{config['_class_name']!r}.")
    weights = Path(weight_files["autoencoder"])
    meta = check_fits(config, weights)
    vae = _instantiate(config, "cpu")
    state = meta._fix_state_dict_keys_on_load(load_state_dict(weights))
    try:
        vae.load_state_dict(state, strict=True)  # copies cast fp16/bf16 files to the model's float32
    except RuntimeError as exc:
        raise ZooError(f"The weights do not fit the {config['_class_name']} config "
                       f"({str(exc).splitlines()[0]}).") from None
    vae.eval()
    frames = CLASSES[config["_class_name"]].frames
    return _Encode(vae, frames), _Decode(vae, frames)
