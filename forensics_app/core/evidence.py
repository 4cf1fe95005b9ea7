"""Evidence intake: exact bytes -> SHA-256 -> safe decode -> Evidence.

The file is opened read-only and read once; the hash is of those exact bytes, and the pixels analysed
are decoded from the same bytes, so the analysis and the hash always refer to the same content.

Decoding policy (docs/intake.md lists every refusal and its message):
- The format is recognised from the content (magic bytes), never from the file name, and only the
  matching Pillow decoder is allowed to run: exotic decoders (EPS, PSD, ...) are never reached.
- Pillow must refuse truncated files (ImageFile.LOAD_TRUNCATED_IMAGES stays False; intake checks it) and
  intake also checks the container's own end marker (PNG IEND, GIF trailer, WebP/ISO-BMFF sizes).
- Image size is checked from the header before any pixel is decoded (decompression bombs).
- Pixels are the stored ones: EXIF orientation is recorded, never applied; alpha is dropped and said so;
  16-bit samples keep their most significant 8 bits; only the first frame/page is analysed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import io
import os
import struct
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from forensics_app.core.errors import EvidenceError
from forensics_app.core.files import NotARegularFile, open_regular_file, printable
from forensics_app.core.imageprep import Region, crop
from forensics_app.core.provenance import read_provenance


@dataclass(frozen=True)
class IntakeLimits:
    max_file_bytes: int = 512 * 1024 * 1024
    max_pixels: int = 100_000_000  # decompression-bomb guard, checked from the header before decoding
    max_side: int = 65_535  # the largest side JPEG can store; longer sides are malformed or hostile
    min_side: int = 64  # smaller images carry too little signal for any method


@dataclass(frozen=True)
class Evidence:
    """One evidence file: facts about the bytes and the decoded stored pixels (RGB)."""

    path: Path
    sha256: str
    size_bytes: int
    format: str  # format recognised from the content, e.g. "PNG", "JPEG", "HEIF"
    width: int
    height: int
    mode: str  # colour mode as stored, before conversion to RGB
    rgb: np.ndarray = field(repr=False)  # (H, W, 3) uint8 read-only, stored pixels (EXIF orientation NOT applied)
    jpeg_quality: int | None = None  # estimated from quantisation tables when JPEG
    notes: tuple[str, ...] = ()  # facts that affect interpretation (alpha dropped, first frame, ...)
    metadata: dict = field(default_factory=dict, repr=False)  # Provenance.to_dict(): claims, JSON-serialisable
    exif_orientation: int | None = None  # EXIF Orientation tag (1-8): for display only, never applied to rgb
    bit_depth: int = 8  # bits per sample as stored; analysis always uses 8
    frame_count: int = 1  # frames, pages or pictures in the file; only the first (primary) is analysed
    jpeg_standard_tables: bool | None = None  # JPEG: tables are exactly libjpeg's (IJG) for some quality

    def rgb01(self, region: Region | None = None) -> np.ndarray:
        """Pixels as float32 in [0, 1], shape (H, W, 3); of `region` only when one is given: cropped before
        converting, so a large image is never copied whole as floats (4 bytes per sample)."""
        pixels = (self.rgb if region is None else crop(self.rgb, region)).astype(np.float32)
        pixels /= 255.0  # in place: one float copy, not two
        return pixels


SUPPORTED_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF", "HEIF", "AVIF")
# Folder walks pick files by extension (reading every file's header would be slow and surprising);
# a file named explicitly is always accepted and recognised by its content.
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif",
                              ".heic", ".heif", ".avif"})

# The only Pillow plugin allowed to decode each recognised format (JPEG's also yields MPO multi-picture files).
_PILLOW_DECODERS = {fmt: [fmt] for fmt in SUPPORTED_FORMATS}
_FRAME_UNITS = {"GIF": "animation frames", "WEBP": "animation frames", "AVIF": "animation frames",
                "TIFF": "pages", "JPEG": "pictures (Multi-Picture Format)", "HEIF": "images"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_ORIENTATION_FOR_DISPLAY = {
    2: "mirror left-right", 3: "rotate 180°", 4: "mirror top-bottom", 5: "mirror and rotate 90° anticlockwise",
    6: "rotate 90° clockwise", 7: "mirror and rotate 90° clockwise", 8: "rotate 90° anticlockwise",
}
# Pillow and its native decoders signal malformed input with any of these (Pillow's own fuzz harness
# accepts most of this set; the AVIF and HEIF decoders raise RuntimeError). Caught only around decoding.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
                  ZeroDivisionError, OverflowError, RuntimeError, struct.error)


def sha256_of_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_of_file(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a regular file's bytes; OSError (NotARegularFile included) when it cannot be read."""
    digest = hashlib.sha256()
    with open_regular_file(path) as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def load_evidence(path: str | Path, limits: IntakeLimits = IntakeLimits(), *,
                  trust_anchors_pem: str | None = None) -> Evidence:
    """Read `path` read-only and decode it; raises EvidenceError with a plain message when it cannot."""
    path = Path(path)
    return evidence_from_file_bytes(path, read_evidence_bytes(path, limits), limits,
                                    trust_anchors_pem=trust_anchors_pem)


def evidence_from_file_bytes(path: Path, data: bytes, limits: IntakeLimits = IntakeLimits(), *,
                             trust_anchors_pem: str | None = None) -> Evidence:
    """Decode the bytes that read_evidence_bytes read from `path` (the second half of load_evidence, for
    callers that read and decode in separate steps, as the batch does): a symbolic link is noted."""
    evidence = evidence_from_bytes(path, data, limits, trust_anchors_pem=trust_anchors_pem)
    if path.is_symlink():
        link_note = f"opened through a symbolic link to {path.resolve()}"
        evidence = dataclasses.replace(evidence, notes=evidence.notes + (link_note,))
    return evidence


def read_evidence_bytes(path: Path, limits: IntakeLimits = IntakeLimits()) -> bytes:
    """The exact bytes of a regular file, opened read-only; refuses folders, devices, pipes and huge files."""
    name = _display_name(path)
    if path.is_symlink() and not path.exists():
        raise EvidenceError(f"{name} {_missing_reason(path)}.")
    try:
        with open_regular_file(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > limits.max_file_bytes:
                raise EvidenceError(_too_large_message(name, size, limits))
            data = fh.read(limits.max_file_bytes + 1)
    except NotARegularFile:
        raise EvidenceError(f"{name} is a folder, not an image file." if path.is_dir() else
                            f"{name} {_NOT_REGULAR}.") from None
    except FileNotFoundError:
        raise EvidenceError(f"{name} does not exist (check the path).") from None
    except PermissionError:
        raise EvidenceError(f"{name} cannot be read: permission denied.") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise EvidenceError(f"{name} {_LINK_LOOP}.") from None
        raise EvidenceError(f"{name} cannot be read: {exc.strerror or exc}.") from None
    if len(data) > limits.max_file_bytes:  # the file grew while being read
        raise EvidenceError(_too_large_message(name, len(data), limits))
    return data


def evidence_from_bytes(path: Path, data: bytes, limits: IntakeLimits = IntakeLimits(), *,
                        trust_anchors_pem: str | None = None) -> Evidence:
    """Decode evidence already read into memory; `path` is used only for naming and messages."""
    _require_strict_decoding()
    path = Path(path)
    name = _display_name(path)
    digest = sha256_of_bytes(data)
    if not data:
        raise EvidenceError(f"{name} is empty (0 bytes).")
    fmt = sniff_format(data)
    if fmt is None:
        raise EvidenceError(_not_an_image_message(name, data))
    notes: list[str] = []
    _check_container_complete(name, fmt, data, notes)
    with _decoding(name, fmt, notes):
        img = open_image(data, fmt, name)
    with img:
        with _decoding(name, fmt, notes):
            decoded = _decode(name, fmt, img, limits, notes)
        metadata = read_provenance(data, fmt, img, trust_anchors_pem=trust_anchors_pem).to_dict()
    height, width = decoded["rgb"].shape[:2]
    return Evidence(path=path, sha256=digest, size_bytes=len(data), format=fmt, width=width, height=height,
                    notes=tuple(notes), metadata=metadata, **decoded)


@contextlib.contextmanager
def _decoding(name: str, fmt: str, notes: list[str]):
    """Decoder errors become a plain EvidenceError, and decoder warnings notes (truncation: a refusal)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with _decode_errors_refused(name, fmt):
            yield
    for warning in caught:
        text = str(warning.message)
        if "truncated" in text.lower():
            raise EvidenceError(_truncated_message(name, fmt))
        if not issubclass(warning.category, Image.DecompressionBombWarning):  # our own limit decides
            notes.append(f"decoder warning: {text}")


@contextlib.contextmanager
def _decode_errors_refused(name: str, fmt: str):
    try:
        yield
    except Image.DecompressionBombError as exc:
        raise EvidenceError(f"{name} declares an enormous image ({_plain(exc)}); refused as a possible "
                            f"decompression bomb.") from None
    except UnidentifiedImageError:
        raise EvidenceError(f"{name} starts like a {fmt} file but its header is damaged or incomplete "
                            f"(the file may be truncated).") from None
    except MemoryError:
        raise EvidenceError(f"{name} is too large to decode in the available memory.") from None
    except _DECODE_ERRORS as exc:
        detail = _plain(exc)
        if "truncated" in detail.lower():
            raise EvidenceError(_truncated_message(name, fmt)) from None
        raise EvidenceError(f"{name} is a damaged {fmt} file and cannot be decoded ({detail}).") from None


def _decode(name: str, fmt: str, img: Image.Image, limits: IntakeLimits, notes: list[str]) -> dict:
    """Check the header, then decode the first frame into read-only RGB; returns those Evidence fields."""
    _check_dimensions(name, img.width, img.height, limits)
    mode = img.mode  # as stored: some decoders change it while loading
    frame_count = getattr(img, "n_frames", 1)
    if frame_count > 1:
        notes.append(f"contains {frame_count} {_FRAME_UNITS.get(fmt, 'frames')}: only the first "
                     f"(primary) one is analysed")
    bit_depth = _stored_bit_depth(fmt, img)  # before load(): the tile list that tells it is dropped then
    quality, standard_tables = _jpeg_tables(img, notes) if fmt == "JPEG" else (None, None)
    orientation = _exif_orientation(fmt, img, notes)
    img.load()
    rgb = _to_rgb(name, img, bit_depth, notes)
    rgb.setflags(write=False)  # evidence pixels are never modified in place by any method
    return {"rgb": rgb, "mode": mode, "exif_orientation": orientation, "bit_depth": bit_depth,
            "frame_count": frame_count, "jpeg_quality": quality, "jpeg_standard_tables": standard_tables}


def _check_dimensions(name: str, width: int, height: int, limits: IntakeLimits) -> None:
    if width <= 0 or height <= 0:
        raise EvidenceError(f"{name} declares an invalid size of {width}x{height} pixels.")
    if max(width, height) > limits.max_side:
        raise EvidenceError(f"{name} is {width}x{height} pixels; sides longer than {limits.max_side} pixels "
                            f"are refused (malformed or hostile header).")
    if width * height > limits.max_pixels:
        raise EvidenceError(f"{name} is {width}x{height} pixels, over the limit of "
                            f"{limits.max_pixels / 1e6:g} megapixels (possible decompression bomb).")
    if min(width, height) < limits.min_side:
        raise EvidenceError(f"{name} is {width}x{height} pixels; at least {limits.min_side} pixels on each "
                            f"side are needed to analyse it.")


def _to_rgb(name: str, img: Image.Image, bit_depth: int, notes: list[str]) -> np.ndarray:
    if img.mode in ("F", "I") and bit_depth != 16:
        raise EvidenceError(f"{name} has 32-bit integer or floating-point samples (scientific or HDR data), "
                            f"which are not supported; export it as an 8- or 16-bit image.")
    if bit_depth == 16:
        notes.append("16-bit samples reduced to 8 bits for analysis (the most significant 8 bits are kept)")
    elif bit_depth == 1:
        notes.append("1-bit black-and-white image: analysed as black (0) and white (255)")
    elif bit_depth > 8:
        notes.append(f"{bit_depth}-bit samples reduced to 8 bits by the decoder")
    if img.mode.startswith("I"):  # 16-bit greyscale: Pillow keeps it whole, so reduce it here
        grey = (np.clip(np.asarray(img, dtype=np.int64), 0, 65535) >> 8).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.has_transparency_data:
        rgba = np.asarray(img.convert("RGBA"))
        see_through = float(np.mean(rgba[..., 3] < 255))
        if see_through:
            notes.append(f"has transparency ({see_through:.1%} of pixels not fully opaque): the colour "
                         f"channels are analysed as stored and alpha is ignored; colours under transparent "
                         f"pixels may be arbitrary")
        else:
            notes.append("has an alpha channel that is fully opaque: ignored")
        return np.ascontiguousarray(rgba[..., :3])
    if img.mode == "CMYK":
        notes.append("CMYK converted to RGB with a simple formula (no colour profile applied)")
    return np.ascontiguousarray(np.asarray(img if img.mode == "RGB" else img.convert("RGB")))  # no copy to convert


def _stored_bit_depth(fmt: str, img: Image.Image) -> int:
    if img.mode == "1":
        return 1
    if fmt == "HEIF" and "bit_depth" in img.info:  # pillow-heif reports it and delivers 10/12-bit as 8
        return int(img.info["bit_depth"])
    rawmode = ""
    if img.tile:
        args = img.tile[0].args
        rawmode = args if isinstance(args, str) else str(args[0]) if args else ""
    return 16 if img.mode.startswith("I;16") or ";16" in rawmode else 8


def _exif_orientation(fmt: str, img: Image.Image, notes: list[str]) -> int | None:
    if fmt == "HEIF":
        # libheif always applies the container's rotation/mirroring (part of the HEIF image definition).
        original = img.info.get("original_orientation")
        if original not in (None, 1):
            notes.append(f"HEIF orientation {original} was applied by the decoder: pixels are as displayed")
        return None
    try:
        value = img.getexif().get(0x0112)
    except _DECODE_ERRORS as exc:
        notes.append(f"EXIF could not be read ({_plain(exc)})")
        return None
    if value is None:
        return None
    if value not in range(1, 9):
        notes.append(f"EXIF orientation has the invalid value {value!r}: ignored")
        return None
    if value != 1:
        notes.append(f"EXIF orientation {value} ({_ORIENTATION_FOR_DISPLAY[value]} for display): pixels are "
                     f"analysed as stored, not rotated")
    return int(value)


# ---------------------------------------------------------------------------------------------- content

def open_image(data: bytes, fmt: str, name: str = "The file") -> Image.Image:
    """Open (header only) with the one Pillow decoder allowed for the content-recognised format `fmt`."""
    if fmt == "HEIF":
        _register_heif_decoder(name)
    Image.init()  # Image.open(formats=...) fails on a plugin not yet imported; this imports them all once
    return Image.open(io.BytesIO(data), formats=_PILLOW_DECODERS[fmt])


def preview_image(data: bytes, max_side: int, limits: IntakeLimits = IntakeLimits()) -> Image.Image | None:
    """A small RGB preview of image bytes, for display only (thumbnails in the window and the report).

    Decoded like evidence: only by the decoder pinned for the format the content shows, and only when
    the header's size is within `limits` (a 10000x10000 image of zeros is not expanded to preview it).
    None when the bytes are not a supported, sound image."""
    fmt = sniff_format(data)
    if fmt is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides
            with open_image(data, fmt) as img:
                _check_dimensions("", img.width, img.height, limits)
                img.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced size
                preview = img.convert("RGB")
    except (EvidenceError, MemoryError, Image.DecompressionBombError, *_DECODE_ERRORS):
        return None
    preview.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return preview


def sniff_format(data: bytes) -> str | None:
    """The supported format these bytes start with (magic numbers), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if data[:2] == b"BM" and len(data) >= 26:
        return "BMP"
    brands = _iso_brands(data)
    if brands & _AVIF_BRANDS:
        return "AVIF"
    if brands & _HEIF_BRANDS:
        return "HEIF"
    return None


def _iso_brands(data: bytes) -> set[bytes]:
    """Major and compatible brands of an ISO-BMFF 'ftyp' box (HEIF, AVIF, MP4, ...)."""
    if data[4:8] != b"ftyp" or len(data) < 16:
        return set()
    size = min(int.from_bytes(data[:4], "big"), len(data))
    return {data[8:12]} | {data[i:i + 4] for i in range(16, size - 3, 4)}


_OTHER_CONTENT = (  # (magic, what it is): to say what the file is instead of only "not an image"
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"8BPS", "a Photoshop document (PSD); export it as PNG or TIFF"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image, which is not supported"),
    (b"\xff\x0a", "a JPEG XL image, which is not supported"),
    (b"\x00\x00\x00\x0cJXL ", "a JPEG XL image, which is not supported"),
)


def _not_an_image_message(name: str, data: bytes) -> str:
    supported = "PNG, JPEG, WebP, TIFF, BMP, GIF, HEIC/HEIF or AVIF"
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    what = next((desc for magic, desc in _OTHER_CONTENT if data.startswith(magic)), None)
    if what is None and data[4:8] == b"ftyp":
        what = "a video or other ISO media file, not a HEIF or AVIF image"
    elif what is None and head.startswith((b"<!doctype html", b"<html")):
        what = "a web page (HTML), perhaps saved instead of the image"
    elif what is None and b"<svg" in head:
        what = "an SVG vector drawing; export it as PNG to analyse it"
    elif what is None and _looks_like_text(data[:4096]):
        what = "a text file"
    if what:
        return f"{name} is not an image: it is {what}. Supported formats: {supported}."
    return f"{name} is not an image in a supported format ({supported})."


def _looks_like_text(sample: bytes) -> bool:
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(sample) - 3  # a multi-byte character cut at the sample's end
    return True


def _check_container_complete(name: str, fmt: str, data: bytes, notes: list[str]) -> None:
    """Refuse files whose container ends early; note bytes appended after the image's end."""
    end = {"PNG": _png_end, "GIF": _gif_end, "WEBP": _riff_end, "HEIF": _iso_end, "AVIF": _iso_end}.get(fmt)
    if end is None:  # JPEG, TIFF and BMP truncation is caught by the decoder itself
        return
    image_end = end(data)
    if image_end is None or image_end > len(data):
        raise EvidenceError(_truncated_message(name, fmt))
    if image_end < len(data):
        notes.append(f"{len(data) - image_end} bytes of extra data after the end of the image (some tools "
                     f"append data; it can also hide content)")


def _png_end(data: bytes) -> int | None:
    pos = 8
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        pos += 12 + length
        if kind == b"IEND":
            return pos
    return None


def _gif_end(data: bytes) -> int | None:
    def skip_colour_table(pos: int, packed: int) -> int:
        return pos + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)

    if len(data) < 13:
        return None
    pos = skip_colour_table(13, data[10])
    while pos < len(data):
        block = data[pos]
        if block == 0x3B:  # trailer
            return pos + 1
        if block == 0x21:  # extension: introducer, label, sub-blocks
            pos += 2
        elif block == 0x2C:  # image descriptor (10 bytes), local colour table, LZW code size, sub-blocks
            if pos + 10 > len(data):
                return None
            pos = skip_colour_table(pos + 10, data[pos + 9]) + 1
        else:
            return None
        while pos < len(data) and data[pos]:
            pos += data[pos] + 1
        pos += 1
    return None


def _riff_end(data: bytes) -> int | None:
    return 8 + int.from_bytes(data[4:8], "little") if len(data) >= 12 else None


def _iso_end(data: bytes) -> int | None:
    """End of the last complete top-level ISO-BMFF box (None when a box runs past the data)."""
    pos = 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        if size == 1:  # 64-bit size follows the type
            if pos + 16 > len(data):
                return None
            size = int.from_bytes(data[pos + 8:pos + 16], "big")
        elif size == 0:  # box extends to the end of the file
            return len(data)
        if size < 8:
            return None
        pos += size
    return pos if pos <= len(data) else None


# ---------------------------------------------------------------------------------------------- JPEG

def estimate_jpeg_quality(img: Image.Image) -> int | None:
    """Estimate IJG quality from the luminance quantisation table (inverse of libjpeg's scaling)."""
    tables = getattr(img, "quantization", None)
    if not tables or 0 not in tables:
        return None
    luma = np.sort(np.asarray(tables[0], dtype=np.float64))
    errors = [np.abs(np.sort(_ijg_table(_IJG_LUMA, q)) - luma).sum() for q in range(1, 101)]
    return int(np.argmin(errors)) + 1


def _jpeg_tables(img: Image.Image, notes: list[str]) -> tuple[int | None, bool | None]:
    """Estimated quality, and whether the tables are exactly libjpeg's standard ones at that quality.

    Standard (IJG) tables are what libjpeg-based software writes (Pillow, OpenCV, most web tools);
    cameras, phones, Photoshop and many services use their own, so non-standard tables mean the
    quality is approximate and the file passed through such an encoder. This says nothing by itself
    about how many times the image was compressed.
    """
    quality = estimate_jpeg_quality(img)
    if quality is None:
        return None, None
    tables = img.quantization
    standard = np.array_equal(tables[0], _ijg_table(_IJG_LUMA, quality)) and (
        1 not in tables or np.array_equal(tables[1], _ijg_table(_IJG_CHROMA, quality)))
    if standard:
        notes.append(f"JPEG quality {quality}: standard libjpeg (IJG) quantisation tables")
    else:
        notes.append(f"JPEG quality about {quality}: quantisation tables not from a standard encoder "
                     f"(camera, phone, editor or online service); the quality is an estimate")
    return quality, standard


def _ijg_table(base: list[int], quality: int) -> np.ndarray:
    """libjpeg's jpeg_quality_scaling + jpeg_add_quant_table with force_baseline (values 1..255)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((np.asarray(base) * scale + 50) // 100, 1, 255)


# ---------------------------------------------------------------------------------------------- folders

class Skipped(NamedTuple):
    """A folder entry the walk did not take, and why."""

    path: Path
    reason: str  # completes a sentence after the name: "pipe.png is not a regular file (...)"
    refused: bool  # True: an input that cannot be read (a failure); False: left out by the walk's rules


class FolderWalk(NamedTuple):
    files: list[Path]
    skipped: list[Skipped]


_LINK_LOOP = "is a link loop (following its links leads back to them)"
_NOT_REGULAR = "is not a regular file (it is a device, pipe or socket)"


def iter_image_files(paths: Iterable[str | Path]) -> FolderWalk:
    """Image files named by `paths` (files as given, folders walked) and every entry left out, with why.

    Files named explicitly are always taken (the intake explains a refusal). Folders are walked
    recursively in sorted order, keeping files whose extension is in IMAGE_EXTENSIONS (any case);
    everything else the walk meets with such an extension, and every folder it does not enter, is
    listed in ``skipped``: hidden names (starting with "."), devices, pipes, sockets, broken links,
    link loops, unreadable folders, a folder reached again through a link (so link loops end) and a
    file reached a second time (listed once).
    """
    files: list[Path] = []
    skipped: list[Skipped] = []
    first_seen: dict[tuple[int, int], Path] = {}

    def add(candidate: Path) -> None:
        try:
            info = os.stat(candidate)
        except OSError:  # named explicitly but unreadable: the intake says why
            files.append(candidate)
            return
        key = (info.st_dev, info.st_ino)
        if key in first_seen:
            first = printable(str(first_seen[key]))
            skipped.append(Skipped(candidate, f"is the same file as {first}: analysed once", False))
        else:
            first_seen[key] = candidate
            files.append(candidate)

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for candidate in _walk_folder(path, skipped):
                add(candidate)
        else:
            add(path)
    return FolderWalk(files, skipped)


def _walk_folder(root: Path, skipped: list[Skipped]) -> Iterable[Path]:
    entered: dict[tuple[int, int], str] = {}

    def unreadable(exc: OSError) -> None:
        skipped.append(Skipped(Path(exc.filename), f"is a folder that cannot be read ({exc.strerror or exc})", True))

    for folder, subfolders, names in os.walk(root, followlinks=True, onerror=unreadable):
        try:
            info = os.stat(folder)
        except OSError as exc:
            unreadable(exc)
            subfolders[:] = []
            continue
        key = (info.st_dev, info.st_ino)
        if key in entered:  # reached again through a link: a loop or a second way in
            skipped.append(Skipped(Path(folder), f"leads to the folder {printable(entered[key])}, already searched",
                                   False))
            subfolders[:] = []
            continue
        entered[key] = folder
        for name in sorted(d for d in subfolders if d.startswith(".")):
            skipped.append(Skipped(Path(folder, name), "is a hidden folder (its name starts with '.'): not searched",
                                   False))
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(names):
            if os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
                continue
            candidate = Path(folder, name)
            if name.startswith("."):
                skipped.append(Skipped(candidate, "is a hidden file (its name starts with '.'): not analysed", False))
            elif candidate.is_file():
                yield candidate
            else:
                skipped.append(Skipped(candidate, _missing_reason(candidate), True))


def _missing_reason(path: Path) -> str:
    """Why a path that is not a readable regular file cannot be analysed (after a name)."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return _LINK_LOOP
        if path.is_symlink():
            return "is a broken link: the file it points to does not exist"
        return "does not exist"
    return _NOT_REGULAR


# ---------------------------------------------------------------------------------------------- helpers

def _require_strict_decoding() -> None:
    # Another library flipping this global would make Pillow fill missing data with grey silently;
    # analysing invented pixels is a bug, not a property of the evidence, so it is not an EvidenceError.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True: truncated evidence would be "
                           "accepted silently. Something in this process changed it; it must stay False.")


_heif_decoder_error: str | None = None  # why the HEIF decoder could not be registered, once tried
_heif_decoder_ready = False


def _register_heif_decoder(name: str) -> None:
    """Register pillow-heif's opener on first use (it loads a native library; most inputs never need it)."""
    global _heif_decoder_ready, _heif_decoder_error
    if not _heif_decoder_ready and _heif_decoder_error is None:
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
            _heif_decoder_ready = True
        except Exception as exc:  # missing wheel or broken native library: HEIF is then unavailable
            _heif_decoder_error = f"{type(exc).__name__}: {exc}"
    if not _heif_decoder_ready:
        raise EvidenceError(f"{name} is a HEIC/HEIF image, but HEIF support is unavailable on this computer "
                            f"({_heif_decoder_error}).")


def _truncated_message(name: str, fmt: str) -> str:
    return f"{name} is truncated: the {fmt} data ends before the image is complete."


def _too_large_message(name: str, size: int, limits: IntakeLimits) -> str:
    return f"{name} is {_file_size(size)}, over the {_file_size(limits.max_file_bytes)} limit."


def _file_size(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size:,} bytes"


def _display_name(path: Path) -> str:
    return printable(path.name or str(path))


def _plain(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[0].lower() + text[1:]


_IJG_LUMA = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]
_IJG_CHROMA = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, *([99] * 32),
]
