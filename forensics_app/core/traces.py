"""What an image's pixels show of their history: JPEG quantisation traces and resampling traces.

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

Resampling (Kirchner 2008, "Fast and reliable resampling detection by spectral analysis of fixed
linear predictor residue"): an interpolated image's pixels are linear combinations of their neighbours
in a pattern that repeats with the resampling period. The residue of a fixed linear predictor, mapped
to a probability-like p-map (exp(-e^2/2)), averaged along rows (and along columns) keeps that repeating
pattern and averages the content away; its spectrum then has a peak far above its median. The block
grid of JPEG and of 8x upsampling decoders repeats at multiples of 1/8 cycle per pixel, so those
frequencies are left out. The statistic is the highest peak over the median. Measured on 256 px crops
of calibration-split photos and of TAEF2's and two demo AEs' outputs made from them (37 each): not
resampled (photos, outputs, JPEG q90 of either) at most 11.8; upscaled 1.1-1.5x at least 9 (TAEF2 16,
median 19-58); downscaled with antialiasing (0.5-0.9x) mostly below 10, i.e. not seen; upscaled and
then JPEG-compressed at q90 mostly not seen. So a resampling trace is a fact about the pixels, while
its absence is not evidence of no resizing.

Fine detail: the energy of the 3x3 Laplacian of the luma over that of its gradient (Sobel / 4), i.e.
how much of an image's detail sits at the finest scale. Blur removes that scale first (calibration-split
photos: median 1.7, 1% under 0.26; blurred with sigma 1-1.5 px: median 0.18; 2-3 px: 0.06), and so do
decoders: the demo AEs' outputs lie at 0.05-0.6, TAEF2's at 0.16-3.4. core/verdict.py names no model
for an image smoother than 99% of that model's own outputs (``own_fine_detail`` in its calibration).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

JPEG_TRACE_LEVEL = 0.55
RESAMPLING_LEVEL = 15.0  # above every unresampled crop measured (11.8), below most upscaled ones
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


def _predictor_pmap(luma: np.ndarray) -> np.ndarray:
    """exp(-e^2 / 2) of the residue e of Kirchner's fixed 3x3 linear predictor (8-bit luma)."""
    centre = luma[1:-1, 1:-1]
    edges = luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:]
    corners = luma[:-2, :-2] + luma[:-2, 2:] + luma[2:, :-2] + luma[2:, 2:]
    residue = centre - (0.5 * edges - 0.25 * corners)
    return np.exp(-0.5 * residue * residue)


def _periodic_peak(signal: np.ndarray) -> float:
    """Highest spectral peak over the median, off the 1/8-cycle grid frequencies and the lowest ones."""
    n = len(signal)
    spectrum = np.abs(np.fft.rfft(signal - signal.mean()))
    frequency = np.arange(len(spectrum)) / n
    kept = frequency > 0.04
    for k in range(1, 5):
        kept &= np.abs(frequency - k / 8) > 1.5 / n
    if kept.sum() < 16:
        return 0.0
    median = float(np.median(spectrum[kept]))
    return float(spectrum[kept].max() / median) if median > 0 else 0.0


def resampling_peak(luma: np.ndarray) -> float:
    pmap = _predictor_pmap(luma)
    return max(_periodic_peak(pmap.mean(axis=0)), _periodic_peak(pmap.mean(axis=1)))


def fine_detail(luma: np.ndarray) -> float:
    """Mean squared 3x3 Laplacian over mean squared gradient (Sobel / 4), two pixels in from the edges."""
    from scipy.ndimage import laplace, sobel

    luma = luma.astype(np.float64)
    inner = (slice(2, -2), slice(2, -2))
    laplacian = laplace(luma, mode="nearest")[inner]
    gradient = (sobel(luma, 0, mode="nearest")[inner] ** 2 + sobel(luma, 1, mode="nearest")[inner] ** 2) / 16
    return float(np.mean(laplacian ** 2) / max(float(np.mean(gradient)), 1e-9))


@dataclass(frozen=True)
class PixelTraces:
    jpeg: float  # quantisation clustering on the best grid phase (0: none)
    grid_phase: tuple[int, int]  # (row, column) offset of the block grid found
    resampling: float = 0.0  # periodic interpolation peak over the spectrum's median (0: not measured)
    fine_detail: float | None = None  # finest-scale share of the detail (fine_detail(); None: not measured)

    @property
    def condition(self) -> str:
        return JPEG_TRACES if self.jpeg >= JPEG_TRACE_LEVEL else NO_JPEG

    @property
    def resampled(self) -> bool:
        return self.resampling >= RESAMPLING_LEVEL

    def to_dict(self) -> dict:
        return {"jpeg_quantisation": round(self.jpeg, 4), "grid_phase": list(self.grid_phase),
                "condition": self.condition, "resampling_peak": round(self.resampling, 2),
                "resampled": self.resampled,
                "fine_detail": None if self.fine_detail is None else round(self.fine_detail, 4)}


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
    return PixelTraces(float(np.median([_clustering(coefficients[:, p, q]) for p, q in _POSITIONS])), phase,
                       resampling_peak(luma), fine_detail(luma))
