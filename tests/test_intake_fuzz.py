"""Bounded fuzzing of intake: any bytes give either a valid Evidence or an EvidenceError, nothing else.

Inputs are random bytes and valid small images of every writable format with random byte edits
(overwrites, deletions, insertions, truncation). Derandomised so that a failure reproduces. A longer
run outside the suite (about 180,000 mutated files, AVIF and HEIF included) is what showed that the
AVIF decoder reports damage with RuntimeError, now handled.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from forensics_app.core.errors import EvidenceError
from forensics_app.core.evidence import evidence_from_bytes
from forensics_app.core.provenance import Provenance, read_provenance

FUZZ_SETTINGS = settings(max_examples=200, deadline=None, database=None, derandomize=True,
                         suppress_health_check=[HealthCheck.too_slow])


def _seed_files() -> dict[str, bytes]:
    rng = np.random.default_rng(7)
    img = Image.fromarray(rng.integers(0, 256, (66, 70, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x010F], exif[0x0112] = "Canon", 6
    seeds = {}
    for key, fmt, source, options in [
        ("png", "PNG", img, {"exif": exif}), ("jpeg", "JPEG", img, {"exif": exif, "comment": b"c"}),
        ("progressive", "JPEG", img, {"progressive": True}), ("webp", "WEBP", img, {"exif": exif}),
        ("tiff", "TIFF", img, {"compression": "tiff_deflate"}), ("bmp", "BMP", img, {}),
        ("gif", "GIF", img.convert("P"), {"save_all": True, "append_images": [img.convert("P").rotate(90)]}),
        ("png16", "PNG", Image.fromarray(rng.integers(0, 65536, (64, 64), dtype=np.uint16)), {}),
    ]:
        buffer = io.BytesIO()
        source.save(buffer, fmt, **options)
        seeds[key] = buffer.getvalue()
    return seeds


SEEDS = _seed_files()


@st.composite
def mutated_images(draw) -> bytes:
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data) - 1))
        edit = draw(st.sampled_from(["overwrite", "delete", "insert", "truncate"]))
        if edit == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[at:at + len(chunk)] = chunk
        elif edit == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        else:
            del data[max(at, 1):]
        if not data:
            break
    return bytes(data)


fuzz_inputs = st.one_of(st.binary(max_size=600), mutated_images())


@FUZZ_SETTINGS
@given(fuzz_inputs)
def test_evidence_from_bytes_returns_valid_evidence_or_refuses(data: bytes):
    try:
        evidence = evidence_from_bytes(Path("fuzzed.img"), data)
    except EvidenceError as refusal:
        assert str(refusal).startswith("fuzzed.img ")
        return
    assert evidence.sha256 == hashlib.sha256(data).hexdigest()
    assert evidence.rgb.dtype == np.uint8 and evidence.rgb.shape == (evidence.height, evidence.width, 3)
    assert min(evidence.width, evidence.height) >= 64
    json.dumps(evidence.metadata)


@settings(FUZZ_SETTINGS, max_examples=100)
@given(fuzz_inputs, st.sampled_from(["PNG", "JPEG", "WEBP", "TIFF", "GIF", "BMP"]))
def test_read_provenance_never_raises(data: bytes, fmt: str):
    provenance = read_provenance(data, fmt)
    assert isinstance(provenance, Provenance)
    json.dumps(provenance.to_dict())
