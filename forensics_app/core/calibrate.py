"""Building calibrations: scores of real photos as users bring them, and of each model's own outputs.

The real side is a *pool* of crops of real photographs, made the same way for every model so that
the scores of all installed candidates can be compared sample by sample (the family-wise decision
rule in core/family.py needs that). Each real crop goes through one randomly drawn history of the
real world: as published, re-compressed as JPEG at quality 50-100, compressed twice, resized by
0.5-1.5x before cropping, or resized and then compressed; the crop itself is at a random offset.
*Soft* samples (``SOFT_HISTORIES``: blurred as out-of-focus shots, phone noise reduction and soft
lenses are, then kept or compressed; ids ``#s<j>``, from streams of their own, so they leave every other
sample as it was) are drawn on request (``kinds``) and are not in the shipped pool: autoencoders smooth,
so blurred photos sit nearest their outputs, and with 764 of them in the pool (one per six others) the
thresholds fell so far that TAEF2 named 31% of its own clean calibration outputs among nine candidates,
against 93% (README). Instead the verdict names no model on an image smoother than that model's own
outputs (``own_fine_detail``; core/verdict.py).
Each sample records its id (photo file, crop number and a tag of the plan that drew it), so a model
calibrated later with the same folder and plan scores exactly the same samples, and ids from another
plan never match; and the condition its pixels show (core/traces.py), so evidence is compared with
samples of its own condition. Crop k of a photo is drawn from its own random stream (seed, photo
name, k), so a plan with fewer crops per photo, or a subset of the photos, draws a *subset* of the
same samples: a model calibrated on a laptop with 4 crops per photo shares its samples with the
shipped calibrations made with 24, and the family-wise rule pairs them by id.

Only photos of the *calibration split* enter (``calibration_split``): a fixed two thirds of the
folder chosen by the SHA-256 of each file name, so anyone can recompute it; the other third is the
test split that benchmarks measure error rates on. The project's demonstration autoencoders were
trained on CBSD68, so CBSD68 never calibrates.

Own outputs are the model's decoder applied to crops of the same calibration photos (every second
one from a slightly perturbed latent), then saved as the generator's users save them: as they are
or as JPEG at quality 70-100, and cropped at a random offset of the latent grid when the method
searches the grid phase. ``cross`` records each model's scores of *other* models' own outputs: the
wrong-generator rate and the test between look-alike candidates are read from it. Own outputs that were
downscaled afterwards score like photos, and antialiased downscaling leaves no trace the app sees, so each
calibration also records how high its own outputs score once downscaled (``downscaled_own_ceiling``): a
model's rejection of an image under that ceiling is not informative (core/pipeline.py).
"""

from __future__ import annotations

import hashlib
import io
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from forensics_app.core.calibration import Calibration, weights_sha256
from forensics_app.core.evidence import IntakeLimits, iter_image_files, load_evidence
from forensics_app.core.imageprep import TilingSettings, analysis_region, crop, from_model_range, to_model_range
from forensics_app.core.jobs import NEVER_CANCELLED, CancelToken, Progress, ProgressCallback, no_progress
from forensics_app.core.traces import pixel_traces

REAL_HISTORIES = ("as published", "JPEG", "double JPEG", "resized", "resized then JPEG")
SOFT_HISTORIES = ("blurred", "blurred then JPEG")


@dataclass(frozen=True)
class CalibrationPlan:
    # 24 crops of each of the 427 calibration photos: ~10,000 samples, ~4,500 per pixel condition, which
    # the family-wise rule needs for nine candidates at alpha 1% (3 samples at a threshold near alpha/9)
    crops_per_image: int = 24
    crop_sides: tuple[int, ...] = (128, 160, 192)
    own_samples: int = 300  # own outputs per model
    cross_samples: int = 60  # of each other model's own outputs, scored by this model
    real_jpeg_qualities: tuple[int, int] = (50, 100)
    own_jpeg_share: float = 0.6
    own_jpeg_qualities: tuple[int, int] = (70, 100)
    resize_range: tuple[float, float] = (0.5, 1.5)
    blur_sigma: tuple[float, float] = (0.5, 3.0)  # Gaussian, in pixels of the crop
    downscale_range: tuple[float, float] = (0.5, 0.9)  # own outputs downscaled for downscaled_own_ceiling
    latent_noise: float = 0.1  # in units of the latent's standard deviation
    seed: int = 0

    @property
    def soft_crops_per_image(self) -> int:
        """Soft samples per photo (drawn on request): one for every six others (4 for 24), at least one."""
        return max(1, round(self.crops_per_image / 6))


def plan_tag(plan: CalibrationPlan, soft: bool = False) -> str:
    """A short digest of everything that decides what real sample (photo, k) is; not how many are drawn."""
    drawn = ("per-crop streams", plan.crop_sides, plan.real_jpeg_qualities, plan.resize_range, plan.seed)
    if soft:
        drawn += ("soft", plan.blur_sigma)
    return hashlib.sha256(repr(drawn).encode()).hexdigest()[:8]


def sample_stream(plan: CalibrationPlan, photo_name: str, k: int, soft: bool = False) -> np.random.Generator:
    """The random stream of crop k (soft crop k) of one photo: independent of which other samples are drawn."""
    digest = int(hashlib.sha256(photo_name.encode("utf-8")).hexdigest()[:16], 16)
    return np.random.default_rng([plan.seed, digest, k, 1] if soft else [plan.seed, digest, k])


def in_calibration_split(path: Path) -> bool:
    """Two thirds of a folder's photos calibrate, one third tests: by the SHA-256 of the file name."""
    return int(hashlib.sha256(path.name.encode("utf-8")).hexdigest(), 16) % 3 != 0


def calibration_split(folder: Path) -> list[Path]:
    return [p for p in iter_image_files([folder])[0] if in_calibration_split(p)]


def test_split(folder: Path) -> list[Path]:
    return [p for p in iter_image_files([folder])[0] if not in_calibration_split(p)]


def to_uint8(rgb01: np.ndarray) -> np.ndarray:
    return np.round(np.clip(rgb01, 0, 1) * 255).astype(np.uint8)


def jpeg_roundtrip(rgb8: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb8).save(buffer, "JPEG", quality=int(quality))
    return np.asarray(Image.open(buffer).convert("RGB"))


def resized(rgb8: np.ndarray, scale: float) -> np.ndarray:
    image = Image.fromarray(rgb8)
    size = (max(8, round(image.width * scale)), max(8, round(image.height * scale)))
    return np.asarray(image.resize(size, Image.Resampling.BICUBIC))


def blurred(rgb8: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of standard deviation ``sigma`` pixels (an out-of-focus or noise-reduced photo)."""
    return np.asarray(Image.fromarray(rgb8).filter(ImageFilter.GaussianBlur(sigma)))


def random_crop(rgb8: np.ndarray, plan: CalibrationPlan, rng: np.random.Generator) -> np.ndarray | None:
    h, w = rgb8.shape[:2]
    sides = [s for s in plan.crop_sides if s <= min(h, w)]
    if not sides:
        return None
    side = int(rng.choice(sides))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    return np.ascontiguousarray(rgb8[y:y + side, x:x + side])


def real_sample(photo: np.ndarray, plan: CalibrationPlan, rng: np.random.Generator,
                soft: bool = False) -> tuple[np.ndarray | None, str]:
    """One crop of a real photo with a randomly drawn real-world history (a soft one when ``soft``)."""
    history = str(rng.choice(SOFT_HISTORIES if soft else REAL_HISTORIES))
    quality = lambda: int(rng.integers(plan.real_jpeg_qualities[0], plan.real_jpeg_qualities[1] + 1))
    if history.startswith("resized"):
        scale = float(rng.uniform(*plan.resize_range))
        photo = resized(photo, scale)
        history = history.replace("resized", f"resized x{scale:.2f}")
    crop = random_crop(photo, plan, rng)
    if crop is None:
        return None, history
    if history.startswith("blurred"):
        sigma = float(rng.uniform(*plan.blur_sigma))
        crop = blurred(crop, sigma)
        history = history.replace("blurred", f"blurred sigma {sigma:.2f}")
    if history.endswith("JPEG"):
        q1 = quality()
        crop = jpeg_roundtrip(crop, q1)
        if history == "double JPEG":
            q2 = quality()
            crop = jpeg_roundtrip(crop, q2)
            history = f"double JPEG q{q1}, q{q2}"
        else:
            history = f"{history} q{q1}"
    return crop, history


@dataclass
class Sample:
    id: str
    pixels: np.ndarray  # (H, W, 3) uint8
    history: str
    condition: str  # what the pixels show (core/traces.py)


def real_pool(folder: Path, plan: CalibrationPlan = CalibrationPlan(), max_images: int | None = None,
              photos: list[Path] | None = None, kinds: tuple[bool, ...] = (False,)) -> list[Sample]:
    """The real samples every model is calibrated on: deterministic for a folder, plan and seed.

    ``photos`` draws the samples of those photos only (a share of the split, for parallel workers);
    ``kinds``: (False,) the usual samples (the shipped pool), (True,) the soft ones, (False, True) both.
    """
    samples = []
    for path in calibration_split(folder)[:max_images] if photos is None else photos:
        photo = load_evidence(path).rgb
        for soft in kinds:
            for k in range(plan.soft_crops_per_image if soft else plan.crops_per_image):
                pixels, history = real_sample(photo, plan, sample_stream(plan, path.name, k, soft), soft)
                if pixels is not None:
                    number = f"s{k}" if soft else str(k)
                    samples.append(Sample(f"{folder.name}/{path.name}#{number}@{plan_tag(plan, soft)}", pixels,
                                          history, pixel_traces(pixels).condition))
    return samples


def own_output(autoencoder, rgb8: np.ndarray, perturb: bool, plan: CalibrationPlan,
               rng: np.random.Generator) -> np.ndarray:
    """What the model's decoder outputs for a latent near this photo's, saved as 8-bit."""
    pixel_range = autoencoder.manifest.pixel_range
    latent = autoencoder.encode(to_model_range(rgb8.astype(np.float32) / 255.0, pixel_range))
    if perturb:
        latent = latent + rng.standard_normal(latent.shape).astype(np.float32) * plan.latent_noise * latent.std()
    return to_uint8(from_model_range(autoencoder.decode(latent), pixel_range))


def own_pool(autoencoder, folder: Path, plan: CalibrationPlan = CalibrationPlan(), shift_phase: bool = True,
             max_images: int | None = None) -> list[Sample]:
    """The model's own outputs as they travel; ``shift_phase`` crops them off the latent grid at random."""
    rng = np.random.default_rng([plan.seed, 1])
    factor = autoencoder.manifest.spatial_factor
    photos = calibration_split(folder)[:max_images]
    samples = []
    k = 0
    while len(samples) < plan.own_samples and photos:
        path = photos[k % len(photos)]
        crop = random_crop(load_evidence(path).rgb, plan, rng)
        k += 1
        if crop is None:
            continue
        side = crop.shape[0] // factor * factor
        output = own_output(autoencoder, crop[:side, :side], perturb=k % 2 == 0, plan=plan, rng=rng)
        dy, dx = (int(v) for v in rng.integers(0, factor, 2)) if shift_phase else (0, 0)
        output = np.ascontiguousarray(output[dy:, dx:])
        history = f"decoded, grid offset ({dy}, {dx})"
        if rng.random() < plan.own_jpeg_share:
            q = int(rng.integers(plan.own_jpeg_qualities[0], plan.own_jpeg_qualities[1] + 1))
            output = jpeg_roundtrip(output, q)
            history += f", JPEG q{q}"
        samples.append(Sample(f"{autoencoder.id}/{path.name}#{k}", output, history, pixel_traces(output).condition))
    return samples


def saved_jpeg_quality(history: str) -> int | None:
    """The quality of the last JPEG save a sample's history records (own_pool, real_sample); None: never saved as JPEG."""
    found = re.findall(r"q(\d+)", history[history.rfind("JPEG"):]) if "JPEG" in history else []
    return int(found[-1]) if found else None


def score_samples(autoencoder, method, samples: list[Sample], tiling: TilingSettings = TilingSettings(),
                  progress: ProgressCallback = no_progress, cancel: CancelToken = NEVER_CANCELLED,
                  label: str = "") -> np.ndarray:
    factor = autoencoder.manifest.spatial_factor
    scores = []
    for i, sample in enumerate(samples):
        cancel.raise_if_cancelled()
        # the region the pipeline would analyse in an evidence file with these pixels
        region = analysis_region(*sample.pixels.shape[:2], factor, tiling, IntakeLimits().min_side)
        rgb01 = crop(sample.pixels, region).astype(np.float32) / 255.0
        scores.append(method.run(rgb01, autoencoder, tiling, cancel).score)
        progress(Progress((i + 1) / len(samples), f"{label}{method.name}: {i + 1}/{len(samples)}"))
    return np.asarray(scores, dtype=np.float64)


def parameters_for(method, manifest) -> dict:
    """The method's parameters for this model (AEDR adds the model's phase search)."""
    specific = getattr(method, "parameters_for", None)
    return specific(manifest) if specific else dict(method.parameters)


FINE_DETAIL_QUANTILE = 0.01


def own_fine_detail(own: list[Sample]) -> dict | None:
    """The floor of the own outputs' fine detail (core/traces.py): an image below it is smoother than 99% of
    them, so the verdict names no model on it (it was blurred after it was made, or smooths like a decoder).
    None without own outputs."""
    if not own:
        return None
    values = [pixel_traces(s.pixels).fine_detail for s in own]
    return {"quantile": FINE_DETAIL_QUANTILE, "floor": float(np.quantile(values, FINE_DETAIL_QUANTILE)),
            "n": len(values)}


DOWNSCALED_QUANTILE = 0.99


def downscaled_own_ceiling(autoencoder, method, own: list[Sample], plan: CalibrationPlan = CalibrationPlan(),
                           tiling: TilingSettings = TilingSettings(), progress: ProgressCallback = no_progress,
                           cancel: CancelToken = NEVER_CANCELLED) -> dict | None:
    """How high the model's own outputs score once downscaled (bicubic, antialiased, by a random factor in
    ``plan.downscale_range``), over those whose pixels show no resampling traces (the others are inconclusive
    anyway): an image scoring under this ceiling may be a downscaled output of the model, so the model's
    rejection of it excludes nothing. None without own outputs, or when every downscaled one shows traces."""
    rng = np.random.default_rng([plan.seed, 2])  # a stream of its own: the own samples stay as they were
    low, high = plan.downscale_range
    samples = []
    for sample in own:
        pixels = resized(sample.pixels, float(rng.uniform(low, high)))
        if min(pixels.shape[:2]) >= IntakeLimits().min_side and not pixel_traces(pixels).resampled:
            samples.append(Sample(sample.id, pixels, f"{sample.history}, downscaled", ""))
    if not samples:
        return None
    scores = score_samples(autoencoder, method, samples, tiling, progress, cancel, "own outputs downscaled, ")
    return {"quantile": DOWNSCALED_QUANTILE, "ceiling": float(np.quantile(scores, DOWNSCALED_QUANTILE)),
            "n": len(scores), "of": len(own), "scales": [low, high]}


def shifts_phase(method, autoencoder) -> bool:
    """Whether the score searches the latent-grid phase for this model: then own samples are cropped off-grid."""
    return bool(parameters_for(method, autoencoder.manifest).get("phase_search_patch"))


def real_pool_record(folder: Path, ids: list[str]) -> dict:
    """What a calibration's real side is made of, as its data record states it."""
    per_photo = Counter(Counter(i.split("#")[0] for i in ids).values())  # crops per photo -> photos
    return {"folder": folder.name, "split": "calibration split (core/calibrate.py: in_calibration_split)",
            "photos": len({i.split("#")[0] for i in ids}), "samples": len(ids),
            "histories": list(REAL_HISTORIES + (SOFT_HISTORIES if any("#s" in i for i in ids) else ())),
            "photos_by_crops": {str(crops): photos for crops, photos in sorted(per_photo.items())}}


def plan_record(plan: CalibrationPlan) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in plan.__dict__.items()}


def build_calibration(autoencoder, method, real: list[Sample], folder: Path, plan: CalibrationPlan = CalibrationPlan(),
                      generated: list[Sample] | None = None, tiling: TilingSettings = TilingSettings(),
                      progress: ProgressCallback = no_progress, cancel: CancelToken = NEVER_CANCELLED,
                      max_images: int | None = None) -> tuple[Calibration, list[Sample]]:
    """One model's calibration for one method; returns it with the own samples (for other models' cross scores)."""
    own = generated if generated is not None else own_pool(autoencoder, folder, plan,
                                                          shifts_phase(method, autoencoder), max_images)
    real_scores = score_samples(autoencoder, method, real, tiling, progress, cancel, "real photos, ")
    own_scores = score_samples(autoencoder, method, own, tiling, progress, cancel, "own outputs, ")
    data = {
        "real": real_pool_record(folder, [s.id for s in real]),
        "own": ({"made_by": "files given by the user"} if generated is not None else
                {"made_by": "the model's own decoder from crops of the calibration photos (every second one from "
                            f"a latent perturbed by {plan.latent_noise} standard deviations)"}) | {"samples": len(own)},
        "plan": plan_record(plan),
        "weights_sha256": weights_sha256(autoencoder.manifest),
        "own_fine_detail": own_fine_detail(own),
        "downscaled_own": downscaled_own_ceiling(autoencoder, method, own, plan, tiling, progress, cancel),
    }
    calibration = Calibration(
        autoencoder.id, method.name, method.version, parameters_for(method, autoencoder.manifest), own_scores,
        real_scores, data,
        own_conditions=np.array([s.condition for s in own]), real_conditions=np.array([s.condition for s in real]),
        real_ids=np.array([s.id for s in real]))
    return calibration, own
