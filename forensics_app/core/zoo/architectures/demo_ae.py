"""Demonstration autoencoders: a small configurable convolutional family (builder "demo_ae").

These are trained by this project (``forensics_app.train.demo_generators``) so the zoo holds
generators that differ in what leaves fingerprints: upsampling type, normalisation, activation,
latent size, spatial factor and training objective. They are not public generators.

Manifest ``[architecture]`` parameters:
    latent_channels    channels of the latent (N, C, H/f, W/f)
    width              feature channels of every hidden layer (a multiple of 8)
    downsamplings      the spatial factor f is 2 ** downsamplings; the decoder has that many 2x stages
    upsampling         "transposed" | "nearest_conv" | "bilinear_conv" | "pixel_shuffle"
    normalisation      "none" | "batch" | "group" (in the residual blocks; batch also after upsampling)
    activation         "relu" | "leaky_relu" | "silu" | "gelu"
    bottleneck_blocks  residual blocks beside the latent, on each side (default 1)

Every layer maps a size H to H/f, H or 2H (exactly when H is a multiple of f), so the models
export to ONNX with dynamic height and width. The weights are one safetensors file (role "autoencoder")
holding ``encoder.*`` and ``decoder.*`` keys.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from forensics_app.core.errors import ZooError
from forensics_app.core.zoo.weights import load_state_dict

UPSAMPLINGS = ("transposed", "nearest_conv", "bilinear_conv", "pixel_shuffle")
NORMALISATIONS = ("none", "batch", "group")
ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "silu": nn.SiLU, "gelu": nn.GELU}
GROUPS = 8  # GroupNorm groups; widths are multiples of 8


def _conv3(n_in: int, n_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, stride=stride, padding=1)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(GROUPS, channels)
    return nn.Identity()


def _upsample(kind: str, width: int) -> nn.Module:
    """Doubles H and W; each kind leaves its own periodic trace in the output."""
    if kind == "transposed":
        return nn.ConvTranspose2d(width, width, 4, stride=2, padding=1)
    if kind == "nearest_conv":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), _conv3(width, width))
    if kind == "bilinear_conv":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                             _conv3(width, width))
    return nn.Sequential(_conv3(width, width * 4), nn.PixelShuffle(2))


class ResidualBlock(nn.Module):
    def __init__(self, width: int, norm: str, activation: str):
        super().__init__()
        act = ACTIVATIONS[activation]
        self.body = nn.Sequential(_conv3(width, width), _norm(norm, width), act(), _conv3(width, width))
        self.out = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x + self.body(x))


class DemoAutoencoder(nn.Module):
    """Image in [0, 1] (N, 3, H, W) -> latent (N, C, H/f, W/f) -> image in (0, 1).

    The encoder starts with a learned f x f patch transform (one stride-f convolution): on a CPU
    budget of minutes it trains far faster than a stack of stride-2 layers. The decoder holds what
    leaves fingerprints: ``downsamplings`` upsampling stages of the chosen kind, each followed by
    the activation (and batch norm when chosen).
    """

    def __init__(self, latent_channels: int, width: int = 24, downsamplings: int = 2,
                 upsampling: str = "nearest_conv", normalisation: str = "none", activation: str = "relu",
                 bottleneck_blocks: int = 1):
        super().__init__()
        if upsampling not in UPSAMPLINGS or normalisation not in NORMALISATIONS or activation not in ACTIVATIONS:
            raise ValueError(f"unknown demo_ae option: upsampling={upsampling!r}, "
                             f"normalisation={normalisation!r}, activation={activation!r}")
        if width % GROUPS:
            raise ValueError(f"width must be a multiple of {GROUPS}, got {width}")
        factor, act = 2 ** downsamplings, ACTIVATIONS[activation]
        blocks = [ResidualBlock(width, normalisation, activation) for _ in range(2 * bottleneck_blocks)]

        self.encoder = nn.Sequential(nn.Conv2d(3, width, factor, stride=factor), act(),
                                     *blocks[:bottleneck_blocks], _conv3(width, latent_channels))
        # Group norm uses per-image statistics: after an upsampling stage it wiped out brightness and
        # contrast and changed with image size (held-out PSNR 3-7 dB lower), so it stays inside the
        # residual blocks, beside their skip path. Batch norm, fixed at inference, follows each stage.
        stage_norm = normalisation if normalisation == "batch" else "none"
        stages = []
        for _ in range(downsamplings):
            stages += [_upsample(upsampling, width), _norm(stage_norm, width), act()]
        # The sigmoid keeps outputs in the pixel range without the dead gradients of a clamp.
        self.decoder = nn.Sequential(_conv3(latent_channels, width), act(), *blocks[bottleneck_blocks:],
                                     *stages, _conv3(width, 3), nn.Sigmoid())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(image))


def architecture_kwargs(arch: dict) -> dict:
    """The DemoAutoencoder arguments named in a manifest's [architecture] table."""
    return {
        "latent_channels": int(arch["latent_channels"]),
        "width": int(arch.get("width", 24)),
        "downsamplings": int(arch.get("downsamplings", 2)),
        "upsampling": str(arch.get("upsampling", "nearest_conv")),
        "normalisation": str(arch.get("normalisation", "none")),
        "activation": str(arch.get("activation", "relu")),
        "bottleneck_blocks": int(arch.get("bottleneck_blocks", 1)),
    }


def build(arch: dict, weight_files: dict[str, Path]) -> tuple[nn.Module, nn.Module]:
    """Manifest builder "demo_ae": one state dict (role "autoencoder") for encoder and decoder."""
    try:
        model = DemoAutoencoder(**architecture_kwargs(arch))
    except (KeyError, ValueError) as exc:
        raise ZooError(f"The demo_ae architecture in the manifest is invalid ({exc}).") from None
    path = weight_files["autoencoder"]
    try:
        model.load_state_dict(load_state_dict(path), strict=True)
    except RuntimeError as exc:
        raise ZooError(f"{path.name} does not fit the demo_ae architecture described in the manifest "
                       f"({str(exc).splitlines()[0]}).") from None
    return model.encoder, model.decoder
