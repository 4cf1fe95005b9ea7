"""Preparing pixels for a model without ever resizing them (resampling destroys generator traces).

Images are cropped to the model's spatial factor, analysed whole when small enough, otherwise in
overlapping tiles whose centres are stitched back; beyond a pixel budget a centred region is analysed
and the findings say which.

CPU time policy: on a CPU a full-size VAE costs about two minutes per 512 px check, so each candidate
run on the CPU gets a time budget. A check's cost is its floating-point operations, which scale with
the pixel count (convolutions; counted once per model at install, zoo/store.py); at the stated CPU rate
the budget becomes a pixel budget, and a larger image is analysed in its centred region of that many
pixels, no fewer than about MIN_REGION_PIXELS (the calibration crops are at most 192 px, so a region is
never smaller than what the calibration measured). The region depends only on recorded settings, the
image's size and the model, never on how fast this machine happens to be, so a re-run elsewhere
analyses the same pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from forensics_app.core.errors import EvidenceError


@dataclass(frozen=True)
class TilingSettings:
    whole_image_max_side: int = 1024  # images up to this size go through the model in one pass
    tile: int = 512
    overlap: int = 32  # each tile's outer overlap/2 pixels are discarded: border effects of convolutions
    max_pixels: int = 16_000_000  # beyond this, a centred region of this many pixels is analysed
    # CPU policy: at most this many seconds per candidate, estimated at cpu_gflop_per_second (None: no limit)
    cpu_seconds_per_candidate: float | None = 30.0
    # what onnxruntime sustains on these convolutions on a 4-core laptop CPU (this 2-core machine, one
    # thread per session: 58-82, benchmarks/zoo_speed.py); a faster machine can raise the seconds instead
    cpu_gflop_per_second: float = 100.0


@dataclass(frozen=True)
class Region:
    x: int
    y: int
    width: int
    height: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


MIN_REGION_PIXELS = 256 * 256


def cpu_pixel_budget(settings: TilingSettings, gflop_per_megapixel: float | None) -> int | None:
    """Pixels one candidate may analyse on a CPU within the time policy (None: no limit applies, or the
    model's cost was not recorded)."""
    if settings.cpu_seconds_per_candidate is None or not gflop_per_megapixel:
        return None
    gflop = settings.cpu_seconds_per_candidate * settings.cpu_gflop_per_second
    return max(MIN_REGION_PIXELS, int(gflop / gflop_per_megapixel * 1e6))


def analysis_region(height: int, width: int, factor: int, settings: TilingSettings, min_side: int,
                    pixel_budget: int | None = None) -> Region:
    """The largest centred region that is a multiple of ``factor`` and within the pixel budget (the
    settings' ``max_pixels``, or ``pixel_budget`` where that is smaller)."""
    h, w = height - height % factor, width - width % factor
    if min(h, w) < max(min_side, factor):
        raise EvidenceError(f"The image is {width}x{height} pixels; this model needs at least "
                            f"{max(min_side, factor)} pixels on each side.")
    budget = min(settings.max_pixels, pixel_budget or settings.max_pixels)
    if h * w > budget:
        scale = (budget / (h * w)) ** 0.5
        h = max(factor, int(h * scale) // factor * factor)
        w = max(factor, int(w * scale) // factor * factor)
    # the region starts where the stored image starts unless it had to shrink: then it is centred, and starts
    # on the stored latent grid (a start off the grid would crop a generator's output off its own grid)
    y = 0 if h >= height - factor else (height - h) // 2 // factor * factor
    x = 0 if w >= width - factor else (width - w) // 2 // factor * factor
    return Region(x, y, w, h)


def crop(rgb: np.ndarray, region: Region) -> np.ndarray:
    return rgb[region.y:region.y + region.height, region.x:region.x + region.width]


def tile_starts(length: int, tile: int, overlap: int, factor: int) -> list[int]:
    if length <= tile:
        return [0]
    step = (tile - overlap) // factor * factor
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def apply_tiled(fn: Callable[[np.ndarray], np.ndarray], image: np.ndarray, factor: int,
                settings: TilingSettings, between_tiles: Callable[[], None] = lambda: None) -> np.ndarray:
    """Apply an image->image function (H, W, C) in overlapping tiles and stitch the tile centres."""
    h, w = image.shape[:2]
    if max(h, w) <= settings.whole_image_max_side:
        return fn(image)
    out = np.empty_like(image)
    half = settings.overlap // 2
    ys, xs = tile_starts(h, settings.tile, settings.overlap, factor), tile_starts(w, settings.tile, settings.overlap, factor)
    for y in ys:
        for x in xs:
            between_tiles()
            th, tw = min(settings.tile, h - y), min(settings.tile, w - x)
            result = fn(image[y:y + th, x:x + tw])
            # keep the tile centre; tiles at the image border keep their border side too
            y0 = 0 if y == 0 else half
            x0 = 0 if x == 0 else half
            out[y + y0:y + th, x + x0:x + tw] = result[y0:, x0:]
    return out


def to_model_range(rgb01: np.ndarray, pixel_range: tuple[float, float]) -> np.ndarray:
    """(H, W, 3) in [0, 1] -> (1, 3, H, W) float32 in the model's pixel range."""
    lo, hi = pixel_range
    chw = np.ascontiguousarray(rgb01.transpose(2, 0, 1)[None], dtype=np.float32)
    return chw * np.float32(hi - lo) + np.float32(lo)


def from_model_range(nchw: np.ndarray, pixel_range: tuple[float, float]) -> np.ndarray:
    """(1, 3, H, W) in the model's range -> (H, W, 3) in [0, 1], clipped like a saved image."""
    lo, hi = pixel_range
    rgb = (nchw[0].transpose(1, 2, 0) - np.float32(lo)) / np.float32(hi - lo)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32, copy=False)
