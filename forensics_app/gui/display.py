"""Display-sized copies of pixels and maps: a simple pyramid level so big images stay fluid on screen.

Built in the worker thread; the view places every level at original pixel coordinates, so maps,
regions and zoom always refer to the stored image's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from forensics_app.core.calibrate import to_uint8
from forensics_app.core.colormaps import map_display_range
from forensics_app.core.findings import ImageFindings

DISPLAY_MAX_SIDE = 2048  # larger images are shown at every n-th pixel (analysis still uses all of them)


def display_step(height: int, width: int, max_side: int = DISPLAY_MAX_SIDE) -> int:
    """Smallest integer step that brings the longer side within max_side."""
    return max(1, -(-max(height, width) // max_side))


def downsample(array: np.ndarray, step: int) -> np.ndarray:
    """Every step-th pixel (no smoothing: what is shown are stored pixel values)."""
    return np.ascontiguousarray(array[::step, ::step]) if step > 1 else array


@dataclass
class DisplayImages:
    """What the image view shows: display-level copies, so the window never holds full-resolution
    maps and reconstructions (for a 12-megapixel photo those are about 250 MB per image)."""

    step: int  # display pixel = step x step stored pixels
    original: np.ndarray | None  # (h, w, 3) uint8, the whole stored image; None when it cannot be shown
    reconstructions: dict[str, np.ndarray] = field(default_factory=dict)  # model -> (h, w, 3) uint8 of R(x)
    maps: dict[tuple[str, str, str], np.ndarray] = field(default_factory=dict)  # (model, method, map) -> (h, w)
    map_ranges: dict[tuple[str, str, str], tuple[float, float]] = field(default_factory=dict)  # of the full map


def prepare_display(rgb8: np.ndarray | None, findings: ImageFindings) -> DisplayImages:
    """Display copies of the image, R(x) and every map; colour ranges come from the full-resolution maps.
    ``rgb8`` None: the evidence cannot be shown (a stored item whose file changed); the maps still can."""
    step = display_step(findings.facts["height"], findings.facts["width"])
    return DisplayImages(step, None if rgb8 is None else downsample(rgb8, step),
                         {model: downsample(to_uint8(r), step) for model, r in findings.reconstructions.items()},
                         {key: downsample(values, step) for key, values in findings.maps.items()},
                         {key: map_display_range(values) for key, values in findings.maps.items()})
