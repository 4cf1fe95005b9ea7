"""Evidence intake: exact bytes -> SHA-256 -> safe decode -> Evidence.

The file is read once, read-only; the hash is of those exact bytes, and the pixels analysed are
decoded from the same bytes, so the analysis and the hash always refer to the same content.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from forensics_app.core.errors import EvidenceError


@dataclass(frozen=True)
class IntakeLimits:
    max_file_bytes: int = 512 * 1024 * 1024
    max_pixels: int = 100_000_000  # decompression-bomb guard
    min_side: int = 64  # smaller images carry too little signal for any method


@dataclass(frozen=True)
class Evidence:
    """One evidence file: facts about the bytes and the decoded stored pixels (RGB)."""

    path: Path
    sha256: str
    size_bytes: int
    format: str  # decoder's name for the content, e.g. "PNG", "JPEG"
    width: int
    height: int
    mode: str  # colour mode as stored, before conversion to RGB
    rgb: np.ndarray = field(repr=False)  # (H, W, 3) uint8, stored pixels (EXIF orientation NOT applied)
    jpeg_quality: int | None = None  # estimated from quantisation tables when JPEG
    notes: tuple[str, ...] = ()  # facts that affect interpretation (alpha dropped, first frame, ...)
    metadata: dict = field(default_factory=dict, repr=False)  # provenance claims (EXIF, PNG text, C2PA)

    def rgb01(self) -> np.ndarray:
        """Pixels as float32 in [0, 1], shape (H, W, 3)."""
        return self.rgb.astype(np.float32) / 255.0


def sha256_of_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_of_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def load_evidence(path: str | Path, limits: IntakeLimits = IntakeLimits()) -> Evidence:
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise EvidenceError(f"Cannot read {path.name}: {exc.strerror or exc}.") from None
    if size == 0:
        raise EvidenceError(f"{path.name} is empty (0 bytes).")
    if size > limits.max_file_bytes:
        raise EvidenceError(f"{path.name} is {size / 2**20:.0f} MiB, over the {limits.max_file_bytes / 2**20:.0f} MiB limit.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EvidenceError(f"Cannot read {path.name}: {exc.strerror or exc}.") from None
    return evidence_from_bytes(path, data, limits)


def evidence_from_bytes(path: Path, data: bytes, limits: IntakeLimits = IntakeLimits()) -> Evidence:
    digest = sha256_of_bytes(data)
    notes: list[str] = []
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or "unknown"
            if img.width * img.height > limits.max_pixels:
                raise EvidenceError(
                    f"{path.name} is {img.width}x{img.height} pixels, over the limit of "
                    f"{limits.max_pixels / 1e6:.0f} megapixels (possible decompression bomb).")
            mode = img.mode
            quality = estimate_jpeg_quality(img) if fmt == "JPEG" else None
            if getattr(img, "n_frames", 1) > 1:
                notes.append(f"animated ({img.n_frames} frames): only the first frame is analysed")
            img.load()
            rgb = _to_rgb(img, notes)
    except EvidenceError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise EvidenceError(f"{path.name} is not a readable image ({_plain(exc)}).") from None
    h, w = rgb.shape[:2]
    if min(h, w) < limits.min_side:
        raise EvidenceError(f"{path.name} is {w}x{h} pixels; at least {limits.min_side} pixels on each side "
                            f"are needed to analyse it.")
    return Evidence(path=path, sha256=digest, size_bytes=len(data), format=fmt, width=w, height=h, mode=mode,
                    rgb=rgb, jpeg_quality=quality, notes=tuple(notes))


def _to_rgb(img: Image.Image, notes: list[str]) -> np.ndarray:
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        alpha = np.asarray(rgba)[..., 3]
        if alpha.min() < 255:
            notes.append("has transparency: the colour channels are analysed, alpha is ignored")
        return np.ascontiguousarray(np.asarray(rgba)[..., :3])
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        notes.append("16-bit greyscale reduced to 8 bits for analysis")
        grey = np.clip(np.round(arr / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    return np.ascontiguousarray(np.asarray(img.convert("RGB")))


def estimate_jpeg_quality(img: Image.Image) -> int | None:
    """Estimate IJG quality from the luminance quantisation table (inverse of libjpeg's scaling)."""
    tables = getattr(img, "quantization", None)
    if not tables or 0 not in tables:
        return None
    luma = np.asarray(tables[0], dtype=np.float64)
    base = np.asarray(_IJG_LUMA, dtype=np.float64)
    best, best_err = None, np.inf
    for q in range(1, 101):
        scale = 5000 / q if q < 50 else 200 - 2 * q
        table = np.clip(np.floor((base * scale + 50) / 100), 1, 255)
        err = np.abs(np.sort(table) - np.sort(luma)).sum()
        if err < best_err:
            best, best_err = q, err
    return best


def _plain(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[0].lower() + text[1:] if text else text


_IJG_LUMA = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]
