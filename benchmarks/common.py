"""Shared pieces of the benchmarks: the held-out image split, crops, AUC, table printing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from forensics_app.core.zoo.store import Zoo

SHARED = Path(__file__).resolve().parents[2] / "shared"
TEST_PHOTOS = SHARED / "images" / "real" / "cset14"  # held out: never used for calibration or training
GENERATED = SHARED / "images" / "generated"
ALPHA = 0.01
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "cat")


def calibrated_autoencoders() -> list[str]:
    """The zoo's autoencoders that ship a calibration (TAEF2 and the demo AEs; their weights are in the mirror)."""
    from forensics_app.core.zoo.manifest import shipped_manifests

    return sorted(i for i, m in shipped_manifests().items() if m.kind == "autoencoder" and m.calibration_file)


def zoo_with(home: Path, model_ids) -> Zoo:
    """The zoo in ``home`` with these models installed (from the offline mirror when missing)."""
    zoo = Zoo(home)
    for model_id in model_ids:
        if model_id not in zoo.installed_ids():
            zoo.install(model_id, mirrors=[SHARED / "zoo-mirror"])
    return zoo


def held_out_photos() -> list[tuple[str, np.ndarray]]:
    """Real photographs of the test split: Set14 (colour) plus photos bundled with scikit-image."""
    import skimage.data

    photos = [(p.name, np.asarray(Image.open(p).convert("RGB"))) for p in sorted(TEST_PHOTOS.glob("*.png"))]
    photos += [(name, getattr(skimage.data, name)()) for name in SKIMAGE_PHOTOS]
    return photos


def generated_images(folder: str) -> list[tuple[str, np.ndarray]]:
    return [(p.name, np.asarray(Image.open(p).convert("RGB"))) for p in sorted((GENERATED / folder).glob("*.png"))]


def crops(images: list[tuple[str, np.ndarray]], side: int, per_image: int,
          seed: int | np.random.Generator) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)  # a Generator passed in is used as it is
    out = []
    for _, rgb in images:
        h, w = rgb.shape[:2]
        if min(h, w) < side:
            continue
        for _ in range(per_image):
            y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            out.append(np.ascontiguousarray(rgb[y:y + side, x:x + side]))
    return out


def auc(negatives, positives) -> float:
    """P(a positive scores lower than a negative): scores are LOW = consistent with the candidate."""
    neg, pos = np.asarray(negatives, float)[None, :], np.asarray(positives, float)[:, None]
    return float(np.mean(pos < neg) + 0.5 * np.mean(pos == neg))


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    cells = [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))


def write_json(path: str | None, data: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2), encoding="utf-8")
        print(f"\nwritten to {path}")


def statuses_alone(calibration, scores) -> list[str]:
    """Each score's reading status with this one model as the only candidate, over all its samples
    (the benchmarks that study one model's score forms; zoo_attribution.py goes through the Engine)."""
    from forensics_app.core.family import family_rule
    from forensics_app.core.verdict import reading_status

    rule = family_rule({calibration.model: calibration}, ALPHA, None)
    used = rule.calibrations[calibration.model]
    return [reading_status(used.p_own(s), used.p_real(s), rule.critical_p, ALPHA) for s in scores]
