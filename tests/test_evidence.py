"""Evidence intake: a corpus of bad and odd inputs, each refused with a clear message or handled as documented.

Every input is generated here in a temporary folder; the test checks that intake never changes a file
(SHA-256, size and modification time of everything in the folder are the same afterwards).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile, features

from forensics_app.core.errors import EvidenceError
from forensics_app.core.evidence import (
    Evidence,
    IntakeLimits,
    evidence_from_bytes,
    iter_image_files,
    load_evidence,
    sha256_of_file,
)

from conftest import REAL_TEST

SHARED_ABSENT = f"{REAL_TEST} is absent: this test needs the project's shared photos in ../shared beside the checkout"


def noise_image(width: int = 96, height: int = 80, mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A deterministic textured image (smooth gradient plus noise) of the given size and mode."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = (x * 255 // max(width - 1, 1) + y * 128 // max(height - 1, 1)) % 256
    rgb = np.clip(base[..., None] + rng.integers(-40, 40, (height, width, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(rgb).convert(mode)


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_from_rows(width: int, height: int, bit_depth: int, colour_type: int, row: bytes) -> bytes:
    """A hand-built PNG (Pillow cannot write 16-bit RGB, nor headers that lie about the size)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    pixels = zlib.compress((b"\x00" + row) * min(height, 4096))
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", pixels)
            + png_chunk(b"IEND", b""))


def png_header_only(width: int, height: int) -> bytes:
    return png_from_rows(width, height, 8, 2, b"\x00" * 3)


def png_with_bad_header_crc() -> bytes:
    data = bytearray(encode(noise_image(), "PNG"))
    data[29:33] = b"\0\0\0\0"  # the IHDR checksum: signature (8) + length, type, 13-byte header (21)
    return bytes(data)


# ---------------------------------------------------------------------------------------------- corpus

@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Path], Path]  # writes the input under the folder and returns the path to load
    refused: str | None = None  # a fragment of the expected EvidenceError message
    check: Callable[[Evidence], None] | None = None  # for inputs that must be accepted
    limits: IntakeLimits = IntakeLimits()


def file_with(name: str, data: bytes | Callable[[], bytes]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data() if callable(data) else data)
        return path
    return make


def truncated(fmt: str, fraction: float, **options) -> Callable[[], bytes]:
    def make() -> bytes:
        data = encode(noise_image(), fmt, **options)
        return data[:int(len(data) * fraction)] if fraction < 1 else data[:-2]
    return make


def symlink_to_image(folder: Path) -> Path:
    target = file_with("target.png", encode(noise_image(), "PNG"))(folder)
    (folder / "link.png").symlink_to(target)
    return folder / "link.png"


def broken_symlink(folder: Path) -> Path:
    (folder / "dangling.png").symlink_to(folder / "gone.png")
    return folder / "dangling.png"


def unreadable_file(folder: Path) -> Path:
    path = file_with("secret.png", encode(noise_image(), "PNG"))(folder)
    path.chmod(0)
    return path


def fifo(folder: Path) -> Path:
    os.mkfifo(folder / "pipe.png")
    return folder / "pipe.png"


def folder_named_like_image(folder: Path) -> Path:
    (folder / "album.jpg").mkdir()
    return folder / "album.jpg"


def animated_gif() -> bytes:
    frames = [noise_image(seed=s).convert("P") for s in range(3)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80)


def multipage_tiff() -> bytes:
    return encode(noise_image(), "TIFF", save_all=True, append_images=[noise_image(seed=1)])


def heif(orientation: int = 1) -> Callable[[], bytes]:
    def make() -> bytes:
        pytest.importorskip("pillow_heif").register_heif_opener()  # to write HEIF through Pillow
        exif = Image.Exif()
        exif[0x0112] = orientation  # pillow-heif stores it as the container's rotation
        return encode(noise_image(96, 80), "HEIF", exif=exif.tobytes(), quality=80)
    return make


def jpeg_with_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return encode(noise_image(96, 80), "JPEG", exif=exif, quality=90)


def expect(note: str | None = None, **fields) -> Callable[[Evidence], None]:
    """Check Evidence fields, and that `note` is a fragment of one of the notes."""
    def check(evidence: Evidence) -> None:
        for name, value in fields.items():
            assert getattr(evidence, name) == value, (name, getattr(evidence, name))
        if note is not None:
            assert any(note in n for n in evidence.notes), evidence.notes
    return check


def stored_not_rotated(evidence: Evidence) -> None:
    assert evidence.exif_orientation == 6
    assert (evidence.width, evidence.height) == (96, 80)  # as stored, not as displayed
    assert any("orientation 6" in n and "not rotated" in n for n in evidence.notes)


def sixteen_bit_grey(evidence: Evidence) -> None:
    values = np.arange(96 * 80, dtype=np.uint16).reshape(80, 96) * 8 + 3
    assert evidence.bit_depth == 16 and any("16-bit" in n for n in evidence.notes)
    assert np.array_equal(evidence.rgb[..., 0], (values >> 8).astype(np.uint8))


def grey_16bit_png() -> bytes:
    values = np.arange(96 * 80, dtype=np.uint16).reshape(80, 96) * 8 + 3
    return encode(Image.fromarray(values), "PNG")


def heif_decoder_applied_orientation(evidence: Evidence) -> None:
    assert evidence.format == "HEIF" and evidence.exif_orientation is None
    assert (evidence.width, evidence.height) == (80, 96)  # libheif rotates while decoding
    assert any("applied by the decoder" in n for n in evidence.notes)


CASES = [
    # refused: empty, truncated, not an image
    Case("zero-bytes", file_with("empty.png", b""), refused="is empty (0 bytes)"),
    *[Case(f"png-truncated-{f}", file_with("cut.png", truncated("PNG", f)), refused="truncated")
      for f in (0.1, 0.5, 0.9, 1)],
    *[Case(f"jpeg-truncated-{f}", file_with("cut.jpg", truncated("JPEG", f)), refused="truncated")
      for f in (0.05, 0.5, 0.95, 1)],
    Case("progressive-jpeg-truncated", file_with("cut.jpg", truncated("JPEG", 0.6, progressive=True)),
         refused="truncated"),
    Case("gif-truncated", file_with("cut.gif", truncated("GIF", 1)), refused="truncated"),
    Case("webp-truncated", file_with("cut.webp", truncated("WEBP", 0.7)), refused="truncated"),
    Case("tiff-truncated", file_with("cut.tif", truncated("TIFF", 0.5)), refused="truncated"),
    Case("bmp-truncated", file_with("cut.bmp", truncated("BMP", 0.5)), refused="truncated"),
    Case("heif-truncated", file_with("cut.heic", lambda: heif()()[:-100]), refused="truncated"),
    Case("png-bad-header-crc", file_with("crc.png", png_with_bad_header_crc), refused="its header is damaged"),
    Case("jpeg-marker-only", file_with("stub.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 40), refused="header is damaged"),
    Case("random-bytes", file_with("noise.png", np.random.default_rng(1).bytes(5000)),
         refused="not an image in a supported format"),
    Case("text-named-png", file_with("notes.png", "Meeting notes: café at 10.\n".encode() * 20),
         refused="it is a text file"),
    Case("html-page", file_with("photo.jpg", b"<!DOCTYPE html><html><body>404 Not Found</body></html>"),
         refused="web page (HTML)"),
    Case("pdf-document", file_with("scan.png", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"), refused="PDF document"),
    Case("svg-drawing", file_with("logo.png", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>'),
         refused="SVG vector drawing"),
    Case("zip-archive", file_with("pack.jpg", b"PK\x03\x04" + b"\x00" * 100), refused="ZIP archive"),
    Case("mp4-video", file_with("clip.heic", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\0" * 64),
         refused="video or other ISO media"),
    Case("photoshop-psd", file_with("layers.png", b"8BPS\x00\x01" + b"\x00" * 100), refused="Photoshop"),
    # refused: size
    Case("one-pixel", file_with("dot.png", lambda: encode(Image.new("RGB", (1, 1)), "PNG")),
         refused="at least 64 pixels on each side"),
    Case("63x63", file_with("small.png", lambda: encode(noise_image(63, 63), "PNG")), refused="63x63 pixels"),
    Case("bomb-header-10-gigapixels", file_with("bomb.png", png_header_only(100_000, 100_000)),
         refused="decompression bomb"),
    Case("bomb-header-108-megapixels", file_with("bomb.png", png_header_only(12_000, 9_000)),
         refused="over the limit of 100 megapixels"),
    Case("configured-pixel-limit", file_with("ok.png", lambda: encode(noise_image(), "PNG")),
         refused="over the limit of 0.005 megapixels", limits=IntakeLimits(max_pixels=5_000)),
    Case("side-over-limit", file_with("strip.png", png_header_only(70_000, 64)), refused="sides longer than 65535"),
    Case("file-over-size-limit", file_with("big.png", lambda: encode(noise_image(), "PNG")),
         refused="over the 1,000 bytes limit", limits=IntakeLimits(max_file_bytes=1000)),
    Case("float-tiff", file_with("depth.tif", lambda: encode(noise_image(mode="F"), "TIFF")), refused="32-bit"),
    # refused: not a readable regular file
    Case("nonexistent", lambda folder: folder / "missing.png", refused="does not exist"),
    Case("directory", folder_named_like_image, refused="is a folder"),
    Case("broken-symlink", broken_symlink, refused="broken link"),
    Case("fifo", fifo, refused="not a regular file"),
    Case("no-permission", unreadable_file, refused="permission denied"),
    # accepted, with the documented handling
    Case("64x64-smallest-accepted", file_with("edge.png", lambda: encode(noise_image(64, 64), "PNG")),
         check=expect(width=64, height=64)),
    Case("png-16-bit-grey", file_with("deep.png", grey_16bit_png), check=sixteen_bit_grey),
    Case("png-16-bit-rgb", file_with("deep.png", png_from_rows(64, 64, 16, 2, bytes(range(256)) + bytes(128))),
         check=expect(bit_depth=16, note="16-bit samples reduced to 8 bits")),
    Case("png-palette-transparency", file_with("pal.png", lambda: encode(noise_image().convert("P"), "PNG",
                                                                         transparency=0)),
         check=expect(mode="P", note="transparency")),
    Case("png-grey-alpha-LA", file_with("la.png", lambda: encode(noise_image().convert("LA"), "PNG")),
         check=expect(mode="LA", note="alpha channel that is fully opaque")),
    Case("png-rgba-half-transparent", file_with("rgba.png", lambda: encode(
        Image.fromarray(np.dstack([np.asarray(noise_image()), np.tile([0, 255], (80, 48)).astype(np.uint8)])), "PNG")),
         check=expect(mode="RGBA", note="50.0% of pixels not fully opaque")),
    Case("png-1-bit", file_with("bw.png", lambda: encode(noise_image().convert("1"), "PNG")),
         check=expect(bit_depth=1, note="1-bit")),
    Case("png-appended-data", file_with("tail.png", lambda: encode(noise_image(), "PNG") + b"hidden payload"),
         check=expect(note="14 bytes of extra data")),
    Case("jpeg-cmyk", file_with("print.jpg", lambda: encode(noise_image().convert("CMYK"), "JPEG")),
         check=expect(mode="CMYK", note="CMYK converted to RGB")),
    Case("jpeg-progressive", file_with("prog.jpg", lambda: encode(noise_image(), "JPEG", quality=80,
                                                                  progressive=True)),
         check=expect(jpeg_quality=80, jpeg_standard_tables=True)),
    Case("jpeg-custom-tables", file_with("cam.jpg", lambda: encode(noise_image(), "JPEG", qtables="web_high")),
         check=expect(jpeg_standard_tables=False, note="not from a standard encoder")),
    Case("jpeg-exif-orientation-6", file_with("rotated.jpg", lambda: jpeg_with_orientation(6)),
         check=stored_not_rotated),
    Case("jpeg-invalid-orientation", file_with("odd.jpg", lambda: jpeg_with_orientation(42)),
         check=expect(exif_orientation=None, note="invalid value 42")),
    Case("jpeg-mpo-two-pictures", file_with("phone.jpg", lambda: encode(noise_image(), "MPO", save_all=True,
                                                                        append_images=[noise_image(seed=2)])),
         check=expect(format="JPEG", frame_count=2, note="Multi-Picture")),
    Case("gif-animated", file_with("anim.gif", animated_gif),
         check=expect(format="GIF", frame_count=3, note="3 animation frames")),
    Case("tiff-multipage", file_with("pages.tiff", multipage_tiff), check=expect(frame_count=2, note="2 pages")),
    Case("webp-lossy", file_with("web.webp", lambda: encode(noise_image(), "WEBP", quality=70)),
         check=expect(format="WEBP")),
    Case("webp-lossless-alpha", file_with("web.webp", lambda: encode(noise_image().convert("RGBA"), "WEBP",
                                                                     lossless=True)),
         check=expect(format="WEBP")),
    Case("bmp", file_with("old.bmp", lambda: encode(noise_image(), "BMP")), check=expect(format="BMP")),
    Case("avif", file_with("new.avif", lambda: encode(noise_image(), "AVIF") if features.check("avif")
                           else pytest.skip("this Pillow cannot write AVIF")), check=expect(format="AVIF")),
    Case("heif", file_with("phone.heic", heif()), check=expect(format="HEIF", width=96, height=80)),
    Case("heif-orientation-6", file_with("phone.heic", heif(orientation=6)),
         check=heif_decoder_applied_orientation),
    Case("jpg-that-is-png", file_with("really-a-png.jpg", lambda: encode(noise_image(), "PNG")),
         check=expect(format="PNG")),
    Case("unicode-name", file_with("证据 – фото ñ 🖼.png", lambda: encode(noise_image(), "PNG")),
         check=expect(format="PNG")),
    Case("symlink", symlink_to_image, check=expect(note="symbolic link")),
]


def folder_state(folder: Path) -> dict[str, tuple]:
    """Size, modification time and SHA-256 of every regular file under `folder` (unreadable: no hash)."""
    state = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root, name)
            if path.is_symlink() or not path.is_file():
                continue
            info = path.stat()
            digest = sha256_of_file(path) if os.access(path, os.R_OK) else None
            state[str(path)] = (info.st_size, info.st_mtime_ns, digest)
    return state


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_intake_corpus(case: Case, tmp_path: Path):
    if case.id == "no-permission" and os.geteuid() == 0:
        pytest.skip("root can read any file, so a permission refusal cannot be produced")
    path = case.make(tmp_path)
    before = folder_state(tmp_path)
    if case.refused is not None:
        with pytest.raises(EvidenceError, match=re.escape(case.refused)) as refusal:
            load_evidence(path, case.limits)
        assert path.name in str(refusal.value)  # the message names the file the person chose
    else:
        evidence = load_evidence(path, case.limits)
        case.check(evidence)
        assert evidence.sha256 == sha256_of_file(path)
        assert evidence.rgb.dtype == np.uint8 and evidence.rgb.shape == (evidence.height, evidence.width, 3)
        json.dumps(evidence.metadata)
    assert folder_state(tmp_path) == before  # intake never writes evidence


def test_corpus_is_large_enough():
    assert sum(case.refused is not None for case in CASES) >= 30


# ---------------------------------------------------------------------------------------------- properties

def test_pixels_are_read_only_and_match_the_stored_image(tmp_path: Path):
    path = file_with("a.png", lambda: encode(noise_image(), "PNG"))(tmp_path)
    evidence = load_evidence(path)
    assert np.array_equal(evidence.rgb, np.asarray(noise_image()))
    with pytest.raises(ValueError):
        evidence.rgb[0, 0, 0] = 1
    assert evidence.rgb01().dtype == np.float32 and evidence.rgb01().max() <= 1.0


def test_hash_is_of_the_exact_bytes_and_format_comes_from_content():
    data = encode(noise_image(), "PNG")
    evidence = evidence_from_bytes(Path("looks-like.gif"), data)
    assert evidence.sha256 == hashlib.sha256(data).hexdigest() and evidence.size_bytes == len(data)
    assert evidence.format == "PNG"


def test_truncated_images_must_stay_refused_by_pillow(monkeypatch):
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        evidence_from_bytes(Path("x.png"), encode(noise_image(), "PNG"))


def test_heif_refused_plainly_when_its_decoder_is_unavailable(monkeypatch):
    from forensics_app.core import evidence as intake

    monkeypatch.setattr(intake, "_heif_decoder_ready", False)
    monkeypatch.setattr(intake, "_heif_decoder_error", "ImportError: no module named pillow_heif")
    with pytest.raises(EvidenceError, match="HEIF support is unavailable.*pillow_heif"):
        evidence_from_bytes(Path("phone.heic"), heif()())


def test_metadata_holds_provenance_claims(tmp_path: Path):
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "EOS R5"
    path = file_with("cam.jpg", lambda: encode(noise_image(), "JPEG", exif=exif))(tmp_path)
    metadata = load_evidence(path).metadata
    assert metadata["exif"]["Make"] == "Canon" and metadata["c2pa"]["state"] == "absent"
    assert "CLAIMS" in metadata["summary"][0]


@pytest.mark.skipif(not REAL_TEST.is_dir(), reason=SHARED_ABSENT)
def test_real_photo_png_and_its_jpeg_recompression(tmp_path: Path):
    original = REAL_TEST / "baboon.png"
    evidence = load_evidence(original)
    with Image.open(original) as img:
        assert np.array_equal(evidence.rgb, np.asarray(img.convert("RGB")))
    assert evidence.sha256 == sha256_of_file(original) and evidence.notes == ()
    recompressed = tmp_path / "baboon.jpg"
    recompressed.write_bytes(encode(Image.fromarray(evidence.rgb), "JPEG", quality=87))
    jpeg = load_evidence(recompressed)
    assert (jpeg.jpeg_quality, jpeg.jpeg_standard_tables) == (87, True)
    assert np.abs(jpeg.rgb.astype(int) - evidence.rgb).mean() < 12


@pytest.mark.skipif(not REAL_TEST.is_dir(), reason=SHARED_ABSENT)
def test_real_greyscale_photo_becomes_three_equal_channels():
    evidence = load_evidence(REAL_TEST / "bridge.png")
    assert evidence.mode == "L"
    assert np.array_equal(evidence.rgb[..., 0], evidence.rgb[..., 2])


# ---------------------------------------------------------------------------------------------- folders

def test_iter_image_files_walks_filters_sorts_and_reports_every_entry_left_out(tmp_path: Path):
    png = encode(noise_image(), "PNG")
    (tmp_path / "case" / "sub").mkdir(parents=True)
    (tmp_path / "case" / ".hidden-dir").mkdir()
    for name in ("b.JPG", "a.png", "c.Tiff", "notes.txt", ".hidden.png", "сканы.webp"):
        (tmp_path / "case" / name).write_bytes(png)
    (tmp_path / "case" / "sub" / "z.heic").write_bytes(png)
    (tmp_path / "case" / ".hidden-dir" / "x.png").write_bytes(png)
    (tmp_path / "case" / "sub" / "loop").symlink_to(tmp_path / "case")  # a folder link back to an ancestor
    (tmp_path / "case" / "dangling.gif").symlink_to(tmp_path / "nowhere.gif")
    (tmp_path / "case" / "again.png").symlink_to(tmp_path / "case" / "a.png")  # the same file twice
    (tmp_path / "case" / "self.png").symlink_to(tmp_path / "case" / "self.png")  # a link to itself
    os.mkfifo(tmp_path / "case" / "pipe.png")
    os.mkfifo(tmp_path / "case" / "pipe-without-extension")
    explicit = tmp_path / "chosen.data"
    explicit.write_bytes(png)

    files, skipped = iter_image_files([tmp_path / "case", explicit, tmp_path / "missing"])

    names = [p.relative_to(tmp_path).as_posix() for p in files]
    assert names == ["case/a.png", "case/b.JPG", "case/c.Tiff", "case/сканы.webp", "case/sub/z.heic",
                     "chosen.data", "missing"]  # named explicitly: taken, the intake says why it is refused
    reasons = {p.relative_to(tmp_path).as_posix(): (reason, refused) for p, reason, refused in skipped}
    assert reasons == {
        "case/.hidden-dir": ("is a hidden folder (its name starts with '.'): not searched", False),
        "case/.hidden.png": ("is a hidden file (its name starts with '.'): not analysed", False),
        "case/dangling.gif": ("is a broken link: the file it points to does not exist", True),
        "case/self.png": ("is a link loop (following its links leads back to them)", True),
        "case/pipe.png": ("is not a regular file (it is a device, pipe or socket)", True),
        "case/again.png": (f"is the same file as {tmp_path / 'case' / 'a.png'}: analysed once", False),
        "case/sub/loop": (f"leads to the folder {tmp_path / 'case'}, already searched", False),
    }


def test_iter_image_files_accepts_string_paths_and_empty_folders(tmp_path: Path):
    assert iter_image_files([str(tmp_path)]) == ([], [])
