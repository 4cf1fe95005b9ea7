"""Display-sized copies of pixels and maps: a simple pyramid level so big images stay fluid on screen.

Built in the worker thread; the view places every level at original pixel coordinates, so maps,
regions and zoom always refer to the stored image's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from forensics_app.core.calibrate import to_uint8

DISPLAY_MAX_SIDE = 2048  # larger images are shown at every n-th pixel (analysis still uses all of them)


def display_step(height: int, width: int, max_side: int = DISPLAY_MAX_SIDE) -> int:
    """Smallest integer step that brings the longer side within max_side."""
    return max(1, -(-max(height, width) // max_side))


def downsample(array: np.ndarray, step: int) -> np.ndarray:
    """Every step-th pixel (no smoothing: what is shown are stored pixel values)."""
    return np.ascontiguousarray(array[::step, ::step]) if step > 1 else array


@dataclass
class DisplayImages:
    """What the image view needs besides the findings: pixels at display size."""

    step: int  # display pixel = step x step stored pixels
    original: np.ndarray  # (h, w, 3) uint8, the whole stored image
    reconstructions: dict[str, np.ndarray] = field(default_factory=dict)  # model -> (h, w, 3) uint8 of R(x)


def prepare_display(rgb8: np.ndarray, reconstructions: dict[str, np.ndarray]) -> DisplayImages:
    step = display_step(*rgb8.shape[:2])
    return DisplayImages(step, downsample(rgb8, step),
                         {model: downsample(to_uint8(r), step) for model, r in reconstructions.items()})
