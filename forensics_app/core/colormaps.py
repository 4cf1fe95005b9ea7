"""Colour maps shared by the GUI, the report and exported map images (one definition, one look)."""

from __future__ import annotations

import numpy as np

# Anchor colours of matplotlib's "inferno" (perceptually uniform, readable in greyscale print).
_INFERNO_ANCHORS = np.array([
    [0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39],
    [252, 255, 164]], dtype=np.float64)


def inferno_lut(n: int = 256) -> np.ndarray:
    """(n, 3) uint8 lookup table."""
    positions = np.linspace(0, 1, len(_INFERNO_ANCHORS))
    samples = np.linspace(0, 1, n)
    lut = np.stack([np.interp(samples, positions, _INFERNO_ANCHORS[:, c]) for c in range(3)], axis=1)
    return np.round(lut).astype(np.uint8)


def map_display_range(values: np.ndarray) -> tuple[float, float]:
    """0 to the 99.5th percentile: a few extreme pixels must not wash out the rest of the map."""
    hi = float(np.percentile(values, 99.5)) if values.size else 1.0
    return 0.0, hi if hi > 0 else 1.0


def colourise(values: np.ndarray, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """(H, W) float -> (H, W, 3) uint8 with the inferno map over value_range."""
    lo, hi = value_range or map_display_range(values)
    index = np.clip((values - lo) / (hi - lo), 0, 1) * 255
    return inferno_lut()[np.round(index).astype(np.uint8)]
