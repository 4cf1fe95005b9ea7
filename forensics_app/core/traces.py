"""What an image's pixels show of its compression history: JPEG quantisation traces.

An image is compared with calibration samples of the same *pixel* condition, not of the same file
container: a JPEG re-saved as PNG (a screenshot, a conversion) still carries its block grid and
quantised DCT coefficients, and a JPEG re-compressed at quality 98 carries almost none.

The detector: on the 8x8 block grid, the DCT coefficients of a decompressed JPEG cluster at multiples
of their quantisation step. For a low-frequency position it measures how strongly the non-zero
coefficients cluster at multiples of the best step between 3 and 40 (the mean resultant length of
their phase modulo that step: near 1 for quantised values, near 0 for natural ones). The grid phase is
found with the two lowest-frequency positions over all 64 phases (so a crop does not hide the grid);
the strength is the median over seven low-frequency positions at that phase. Measured on
crops of the calibration split's photos (benchmarks/zoo_attribution.py keeps the check): quality 75
and below gives 0.59 or more for 90% of crops, downscaled or pristine crops stay under 0.39 for 98%;
quality 90 and above is mostly indistinguishable from uncompressed, which is what matters here (such
light compression barely moves an autoencoder's scores).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

JPEG_TRACE_LEVEL = 0.55
NO_JPEG, JPEG_TRACES = "no strong JPEG traces", "JPEG traces (quality about 85 or lower)"
CONDITIONS = (NO_JPEG, JPEG_TRACES)

_POSITIONS = ((0, 1), (1, 0), (1, 1), (0, 2), (2, 0), (2, 1), (1, 2))
_STEPS = np.arange(3, 41)
_MIN_COEFFICIENTS = 40


def _luma(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    scale = 255.0 if rgb.dtype != np.uint8 else 1.0
    return rgb.astype(np.float32) @ (np.array([0.299, 0.587, 0.114], dtype=np.float32) * np.float32(scale))


def _block_dct(luma: np.ndarray, dy: int, dx: int) -> np.ndarray:
    from scipy.fft import dct

    view = luma[dy:, dx:]
    h, w = view.shape[0] // 8 * 8, view.shape[1] // 8 * 8
    blocks = view[:h, :w].reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8) - 128.0
    return dct(dct(blocks, axis=1, norm="ortho"), axis=2, norm="ortho")


def _clustering(coefficients: np.ndarray) -> float:
    nonzero = coefficients[np.abs(coefficients) > 1.5]
    if len(nonzero) < _MIN_COEFFICIENTS:
        return 0.0
    return float(np.abs(np.exp(2j * np.pi * nonzero[:, None] / _STEPS[None, :]).mean(axis=0)).max())


@dataclass(frozen=True)
class PixelTraces:
    jpeg: float  # quantisation clustering on the best grid phase (0: none)
    grid_phase: tuple[int, int]  # (row, column) offset of the block grid found

    @property
    def condition(self) -> str:
        return JPEG_TRACES if self.jpeg >= JPEG_TRACE_LEVEL else NO_JPEG

    def to_dict(self) -> dict:
        return {"jpeg_quantisation": round(self.jpeg, 4), "grid_phase": list(self.grid_phase),
                "condition": self.condition}


def pixel_traces(rgb: np.ndarray, max_side: int = 512) -> PixelTraces:
    """rgb: (H, W, 3) uint8, or float in [0, 1]; a central region of at most max_side is examined."""
    luma = _luma(rgb)
    h, w = luma.shape
    y, x = max(0, (h - max_side) // 2 // 8 * 8), max(0, (w - max_side) // 2 // 8 * 8)
    luma = luma[y:y + max_side + 8, x:x + max_side + 8]
    phases = [(dy, dx) for dy in range(8) for dx in range(8)]
    grid = [sum(_clustering(_block_dct(luma, dy, dx)[:, p, q]) for p, q in _POSITIONS[:2]) for dy, dx in phases]
    phase = phases[int(np.argmax(grid))]
    coefficients = _block_dct(luma, *phase)
    return PixelTraces(float(np.median([_clustering(coefficients[:, p, q]) for p, q in _POSITIONS])), phase)
