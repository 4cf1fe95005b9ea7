"""Tiny AutoEncoder (TAESD family) written from the published design.

The layer order follows the upstream state-dict keys (``nn.Sequential`` indices), so upstream
weights load with ``strict=True``. TAEF2 (FLUX.2 latent space, 32 channels) adds a pooled
GroupNorm branch to the three innermost blocks on each side.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from forensics_app.core.errors import ZooError
from forensics_app.core.zoo.weights import load_state_dict


def _conv3(n_in: int, n_out: int, **kwargs) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class SoftClamp(nn.Module):
    """tanh(x / 3) * 3: keeps decoder inputs in the range the decoder was trained on."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    def __init__(self, n_in: int, n_out: int, pooled_branch: bool = False):
        super().__init__()
        self.conv = nn.Sequential(_conv3(n_in, n_out), nn.ReLU(), _conv3(n_out, n_out), nn.ReLU(),
                                  _conv3(n_out, n_out))
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.fuse = nn.ReLU()
        self.pool = None
        if pooled_branch:
            wide = n_in * 4
            self.pool = nn.Sequential(nn.Conv2d(n_in, wide, 1, bias=False), nn.GroupNorm(4, wide), nn.ReLU(),
                                      nn.Conv2d(wide, n_in, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + self.skip(x))


def build_encoder(latent_channels: int, pooled_inner_blocks: bool, width: int = 64) -> nn.Sequential:
    """Image in [0, 1] (N, 3, H, W) -> latent (N, C, H/8, W/8)."""
    w, p = width, pooled_inner_blocks
    return nn.Sequential(
        _conv3(3, w), Block(w, w),
        _conv3(w, w, stride=2, bias=False), Block(w, w), Block(w, w), Block(w, w),
        _conv3(w, w, stride=2, bias=False), Block(w, w), Block(w, w), Block(w, w),
        _conv3(w, w, stride=2, bias=False), Block(w, w, p), Block(w, w, p), Block(w, w, p),
        _conv3(w, latent_channels),
    )


def build_decoder(latent_channels: int, pooled_inner_blocks: bool, width: int = 64) -> nn.Sequential:
    """Latent (N, C, h, w) -> image in about [0, 1] (N, 3, 8h, 8w)."""
    w, p = width, pooled_inner_blocks
    return nn.Sequential(
        SoftClamp(), _conv3(latent_channels, w), nn.ReLU(),
        Block(w, w, p), Block(w, w, p), Block(w, w, p), nn.Upsample(scale_factor=2), _conv3(w, w, bias=False),
        Block(w, w), Block(w, w), Block(w, w), nn.Upsample(scale_factor=2), _conv3(w, w, bias=False),
        Block(w, w), Block(w, w), Block(w, w), nn.Upsample(scale_factor=2), _conv3(w, w, bias=False),
        Block(w, w), _conv3(w, 3),
    )


def build(arch: dict, weight_files: dict[str, Path]) -> tuple[nn.Module, nn.Module]:
    """Manifest builder "taesd": separate encoder and decoder state dicts."""
    channels = int(arch["latent_channels"])
    pooled = bool(arch.get("pooled_inner_blocks", False))
    encoder, decoder = build_encoder(channels, pooled), build_decoder(channels, pooled)
    for module, role in ((encoder, "encoder"), (decoder, "decoder")):
        try:
            module.load_state_dict(load_state_dict(weight_files[role]), strict=True)
        except RuntimeError as exc:
            raise ZooError(f"{weight_files[role].name} does not fit the TAESD {role} architecture "
                           f"described in the manifest ({str(exc).splitlines()[0]}).") from None
    return encoder, decoder
