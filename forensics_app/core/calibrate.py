"""Building a model's calibration: scores of its own outputs and of real photos, per method.

Own outputs are the model's decoder applied to real photos (decode(encode(x)), half of them from a
slightly perturbed latent so they are not all reconstructions of a photo) unless a folder of the
model's real outputs is given. Both sets are cropped at several sizes and half of each set is
re-saved as JPEG at quality 90-100, the form in which images usually travel; the false-attribution
threshold is then valid for such files too. Everything is seeded and recorded in ``data``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from forensics_app.core.calibration import Calibration, weights_sha256
from forensics_app.core.evidence import iter_image_files, load_evidence
from forensics_app.core.imageprep import TilingSettings, from_model_range, to_model_range
from forensics_app.core.jobs import NEVER_CANCELLED, CancelToken, Progress, ProgressCallback, no_progress


@dataclass(frozen=True)
class CalibrationPlan:
    crops_per_image: int = 3
    crop_sides: tuple[int, ...] = (128, 192, 256)
    jpeg_share: float = 0.5
    jpeg_qualities: tuple[int, int] = (90, 100)
    latent_noise: float = 0.1  # in units of the latent's standard deviation
    seed: int = 0


def to_uint8(rgb01: np.ndarray) -> np.ndarray:
    return np.round(np.clip(rgb01, 0, 1) * 255).astype(np.uint8)


def jpeg_roundtrip(rgb8: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb8).save(buffer, "JPEG", quality=int(quality))
    return np.asarray(Image.open(buffer).convert("RGB"))


def random_crops(rgb8: np.ndarray, plan: CalibrationPlan, factor: int, rng: np.random.Generator) -> list[np.ndarray]:
    h, w = rgb8.shape[:2]
    out = []
    for _ in range(plan.crops_per_image):
        side = int(rng.choice([s for s in plan.crop_sides if s <= min(h, w)] or [min(h, w) // factor * factor]))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        out.append(rgb8[y:y + side, x:x + side])
    return out


def own_output(autoencoder, rgb8: np.ndarray, perturb: bool, plan: CalibrationPlan,
               rng: np.random.Generator) -> np.ndarray:
    """What the model's decoder outputs for a latent near this photo's, saved as 8-bit."""
    pixel_range = autoencoder.manifest.pixel_range
    latent = autoencoder.encode(to_model_range(rgb8.astype(np.float32) / 255.0, pixel_range))
    if perturb:
        latent = latent + rng.standard_normal(latent.shape).astype(np.float32) * plan.latent_noise * latent.std()
    return to_uint8(from_model_range(autoencoder.decode(latent), pixel_range))


def build_calibrations(autoencoder, methods, real_dir: Path, generated_dir: Path | None = None,
                       plan: CalibrationPlan = CalibrationPlan(), max_images: int | None = None,
                       tiling: TilingSettings = TilingSettings(), progress: ProgressCallback = no_progress,
                       cancel: CancelToken = NEVER_CANCELLED) -> list[Calibration]:
    rng = np.random.default_rng(plan.seed)
    factor = autoencoder.manifest.spatial_factor
    real_files = iter_image_files([real_dir])[0][:max_images]
    generated_files = iter_image_files([generated_dir])[0][:max_images] if generated_dir else []

    real_samples, own_samples = [], []
    for path in real_files:
        for k, c in enumerate(random_crops(load_evidence(path).rgb, plan, factor, rng)):
            real_samples.append(c)
            if not generated_files:
                own_samples.append(own_output(autoencoder, c, perturb=k % 2 == 1, plan=plan, rng=rng))
    for path in generated_files:
        own_samples.extend(random_crops(load_evidence(path).rgb, plan, factor, rng))

    def maybe_jpeg(samples: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
        out, lossy = [], []
        for s in samples:
            compress = rng.random() < plan.jpeg_share
            if compress:
                s = jpeg_roundtrip(s, int(rng.integers(plan.jpeg_qualities[0], plan.jpeg_qualities[1] + 1)))
            out.append(s)
            lossy.append(compress)
        return out, np.asarray(lossy, dtype=bool)

    (real_samples, real_lossy), (own_samples, own_lossy) = maybe_jpeg(real_samples), maybe_jpeg(own_samples)
    scores = {m.name: {"own": [], "real": []} for m in methods}
    total = (len(real_samples) + len(own_samples)) * len(methods)
    done = 0
    for kind, samples in (("real", real_samples), ("own", own_samples)):
        for sample in samples:
            for method in methods:
                cancel.raise_if_cancelled()
                result = method.run(sample.astype(np.float32) / 255.0, autoencoder, tiling, cancel)
                scores[method.name][kind].append(result.score)
                done += 1
                progress(Progress(done / total, f"calibrating {method.name} on {kind} samples"))

    data = {
        "real": {"folder": str(real_dir), "images": len(real_files), "samples": len(real_samples)},
        "own": ({"folder": str(generated_dir), "images": len(generated_files)} if generated_files else
                {"made_by": "the model's own decoder from the real crops (every second one from a latent "
                            f"perturbed by {plan.latent_noise} standard deviations)"}) | {"samples": len(own_samples)},
        "plan": dict(plan.__dict__),
        "weights_sha256": weights_sha256(autoencoder.manifest),
    }
    return [Calibration(autoencoder.id, m.name, m.version, dict(m.parameters), np.asarray(scores[m.name]["own"]),
                        np.asarray(scores[m.name]["real"]), data, own_lossy=own_lossy, real_lossy=real_lossy)
            for m in methods]
