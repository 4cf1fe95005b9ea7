"""Report figures drawn from the same arrays the GUI shows (never screenshots).

Heat maps use the shared colour map (core/colormaps.py); the colour bar and the calibration
histogram are vector drawings, so their labels stay sharp and searchable.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from reportlab.graphics.shapes import Drawing, Line, PolyLine, Polygon, Rect, String
from reportlab.graphics.shapes import Image as DrawnImage
from reportlab.lib import colors
from reportlab.pdfbase.pdfmetrics import stringWidth

from forensics_app.core.colormaps import colourise, inferno_lut, map_display_range
from forensics_app.core.errors import EvidenceError
from forensics_app.core.evidence import preview_image, read_evidence_bytes, sha256_of_bytes

OWN_COLOUR = colors.Color(0.85, 0.37, 0.01)  # the model's own outputs
REAL_COLOUR = colors.Color(0.13, 0.40, 0.67)  # real photos
SCORE_COLOUR = colors.Color(0.80, 0.0, 0.0)
_COLOUR_STRIP = Image.fromarray(inferno_lut(256)[None, :, :])  # the colour scale, one pixel per step


def png_bytes(image: Image.Image) -> io.BytesIO:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)  # reportlab decodes it and compresses the pixels itself
    buffer.seek(0)
    return buffer


def heatmap_image(values: np.ndarray, max_side: int = 400) -> tuple[Image.Image, tuple[float, float]]:
    """Colourised map and its value range. Large maps are averaged down for print before colouring,
    so every printed colour is still on the colour scale; the range is taken from the full map."""
    value_range = map_display_range(values)
    small = values.astype(np.float32)
    h, w = small.shape
    scale = max(h, w) / max_side
    if scale > 1:
        size = (max(1, round(w / scale)), max(1, round(h / scale)))
        small = np.asarray(Image.fromarray(small, mode="F").resize(size, Image.Resampling.BOX))
    return Image.fromarray(colourise(small, value_range)), value_range


def colour_bar(value_range: tuple[float, float], width: float, label: str = "", font: str = "Helvetica") -> Drawing:
    """Horizontal colour scale with its end values, drawn with the same lookup table as the maps; the label
    has a line of its own under the end values, so the three never run together."""
    bar_h, line = 8, 9
    height = bar_h + line + (line if label else 0) + 2
    d = Drawing(width, height, initialFontName=font)  # the renderer's default would be Helvetica
    d.add(DrawnImage(0, height - bar_h, width, bar_h, _COLOUR_STRIP))
    lo, hi = value_range
    y = height - bar_h - line
    d.add(String(0, y, f"{lo:.3g}", fontName=font, fontSize=7))
    d.add(String(width, y, f"{hi:.3g} or more", fontName=font, fontSize=7, textAnchor="end"))
    if label:
        d.add(String(width / 2, y - line, label, fontName=font, fontSize=7, textAnchor="middle"))
    return d


_TICK_MULTIPLES = ((1,), (1, 3), (1, 2, 5), (1, 2, 3, 5, 7), tuple(range(1, 10)))


def log_ticks(lo: float, hi: float, fewest: int = 4, most: int = 8) -> list[float]:
    """Readable ticks for a log axis over [lo, hi]: decades, then 1-3, 1-2-5, ... multiples, whichever first
    gives at least ``fewest`` ticks without exceeding ``most``; for a range too narrow even for every
    multiple of a power of ten, evenly spaced round values."""
    previous = None
    for multiples in _TICK_MULTIPLES:
        ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                 for m in multiples if lo <= m * 10.0 ** e <= hi]
        if len(ticks) > most:  # many decades: every few decades
            return previous or ticks[::math.ceil(len(ticks) / most)]
        if len(ticks) >= fewest:
            return ticks
        previous = ticks
    step = _round_step((hi - lo) / fewest)
    return [k * step for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]


def _round_step(raw: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten that is at least ``raw``."""
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))


def calibration_histogram(histogram: dict, score: float | None, threshold: float | None, width: float,
                          height: float, title: str = "", font: str = "Helvetica") -> Drawing:
    """Share of own-output and real-photo calibration samples per score bin (log score axis), with the
    image's score as a red line and the decision threshold as a dashed line."""
    edges = np.asarray(histogram["edges"], dtype=float)
    own = np.asarray(histogram["own"], dtype=float)
    real = np.asarray(histogram["real"], dtype=float)
    own_share, real_share = own / max(own.sum(), 1), real / max(real.sum(), 1)
    left, bottom, top_pad, right_pad = 30, 34, 16 if title else 6, 8
    plot_w, plot_h = width - left - right_pad, height - bottom - top_pad
    d = Drawing(width, height, initialFontName=font)  # the renderer's default would be Helvetica
    lo, hi = float(edges[0]), float(edges[-1])
    top = max(own_share.max(initial=0), real_share.max(initial=0)) * 1.1 or 1.0

    def x_of(value: float) -> float:
        value = min(max(value, lo), hi)
        return left + plot_w * (math.log(value) - math.log(lo)) / (math.log(hi) - math.log(lo))

    def y_of(share: float) -> float:
        return bottom + plot_h * share / top

    for shares, colour in ((real_share, REAL_COLOUR), (own_share, OWN_COLOUR)):
        fill = colors.Color(colour.red, colour.green, colour.blue, alpha=0.35)
        for i, share in enumerate(shares):
            if share > 0:
                x0, x1 = x_of(edges[i]), x_of(edges[i + 1])
                d.add(Rect(x0, bottom, x1 - x0, y_of(share) - bottom, fillColor=fill, strokeColor=None))
        outline = [left, bottom]
        for i, share in enumerate(shares):
            outline += [x_of(edges[i]), y_of(share), x_of(edges[i + 1]), y_of(share)]
        d.add(PolyLine(outline + [left + plot_w, bottom], strokeColor=colour, strokeWidth=0.8))

    d.add(Line(left, bottom, left + plot_w, bottom, strokeWidth=0.6))
    d.add(Line(left, bottom, left, bottom + plot_h, strokeWidth=0.6))
    for tick in log_ticks(lo, hi):
        x = x_of(tick)
        d.add(Line(x, bottom, x, bottom - 3, strokeWidth=0.6))
        d.add(String(x, bottom - 11, f"{tick:.3g}", fontName=font, fontSize=6.5, textAnchor="middle"))
    d.add(String(left + plot_w / 2, bottom - 21, "score (log scale; low = consistent with the model)",
                 fontName=font, fontSize=6.5, textAnchor="middle"))
    for share in (0, top / 1.1 / 2, top / 1.1):
        d.add(String(left - 3, y_of(share) - 2, f"{share:.0%}", fontName=font, fontSize=6.5, textAnchor="end"))

    if threshold is not None and lo < threshold < hi:
        d.add(Line(x_of(threshold), bottom, x_of(threshold), bottom + plot_h, strokeColor=colors.grey,
                   strokeWidth=0.8, strokeDashArray=[2, 2]))
    if score is not None and math.isfinite(score):
        x = x_of(score)
        d.add(Line(x, bottom, x, bottom + plot_h, strokeColor=SCORE_COLOUR, strokeWidth=1.4))
        if not lo <= score <= hi:  # off the scale: an arrow says which way
            direction = 1 if score > hi else -1
            d.add(Polygon([x, bottom + plot_h, x + 5 * direction, bottom + plot_h - 3, x, bottom + plot_h - 6],
                          fillColor=SCORE_COLOUR, strokeColor=None))

    legend_y = 3
    items = [(OWN_COLOUR, "model's own outputs"), (REAL_COLOUR, "real photos"), (SCORE_COLOUR, "this image")]
    if threshold is not None:
        items.append((colors.grey, "threshold"))
    x = left
    for colour, text in items:
        d.add(Rect(x, legend_y, 8, 5, fillColor=colour, strokeColor=None))
        d.add(String(x + 10, legend_y, text, fontName=font, fontSize=6.5))
        x += 13 + stringWidth(text, font, 6.5)
    if title:
        d.add(String(left, height - 10, title, fontName=font, fontSize=7.5))
    return d


@dataclass
class EvidenceCheck:
    """The evidence file as found at reporting time."""

    sha256_now: str | None  # None: the file is not readable at its recorded path
    thumbnail: Image.Image | None
    note: str  # plain-language result of the re-verification


def check_evidence(path: Path, recorded_sha256: str, max_side: int = 220) -> EvidenceCheck:
    """Re-hash the evidence file and make a thumbnail of the same bytes (for display only), decoded as the
    intake decodes evidence: a findings file can name any file, and no other decoder may run on it."""
    try:
        data = read_evidence_bytes(Path(path))  # regular files within the intake's size limit only
    except EvidenceError:
        return EvidenceCheck(None, None, "The file is not available at its recorded path: its hash could not be "
                                         "re-verified at reporting time.")
    now = sha256_of_bytes(data)
    if now != recorded_sha256:
        return EvidenceCheck(now, None, "The file at the recorded path has CHANGED since analysis (its SHA-256 "
                                        "differs); no thumbnail is shown. The findings describe the original.")
    return EvidenceCheck(now, preview_image(data, max_side),
                         "Re-verified at reporting time: the file's SHA-256 matches.")
