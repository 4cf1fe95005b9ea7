"""Learned fingerprints: data building, training and evaluation of the three patch classifiers.

Classifiers (methods.md sections 3-4) over 64x64 patches, all trained with the same benign
perturbations (JPEG q 60-100, resize 0.5-1.5x, crop offset, blur, noise):

- ``plain``: a small CNN on the patch's high-pass residual, cross-entropy over {real, generator_1..k};
  the baseline.
- ``repmix``: the same CNN with representation mixing (mixup of the feature maps of two patches at a randomly chosen
  layer, weight lambda ~ Beta(1, 1), mixed labels) and a two-part objective: a synthetic-or-not head
  (binary cross-entropy) plus a which-generator head (cross-entropy over generators, weighted by how
  synthetic the mixed sample is).
- ``manifpt``: the classifier sees only the artifact a(x) = x - proj(x), represented by its log DCT
  magnitude (a frequency representation: upsampling artifacts sit at fixed frequencies), then an MLP.
  proj(x) is a Gaussian low-pass of x (a fixed layer inside the exported network), chosen by a quick
  measurement (``measure-projection``: low-pass sigma 1 / sigma 2 / nearest real patch in an 8x8
  low-pass pixel embedding; the numbers are in the module's PROJECTION_MEASUREMENT).

Data split (explicit, as everywhere in the project):
- TRAINING images: crops of images/real/cbsd68 (the calibration/training split), the same crops
  passed through every zoo generator; SD1/SD2 outputs from images/generated: the first 60% of files.
- TEST images: crops of images/real/cset14 and six skimage.data photos (astronaut, chelsea, coffee,
  rocket, cat, hubble_deep_field), the same crops through every generator; SD1/SD2: the other 40%.
- Two generators (HELDOUT_GENERATORS) are never trained on: their outputs of the held-back training
  photos (one in VALIDATION_EVERY, never trained on) calibrate the open-set threshold, their
  test-split images measure the false-naming rate.

Generators (classes): TAEF2 and the demonstration autoencoders of the zoo (``build --home H`` with
them installed), and SD1/SD2 samples (images/generated). ``--standin-steps N`` can add the demo
recipes trained here for only N steps (classes ``<recipe id>-standin``) where the zoo's demo models
are not available; the shipped extractors do not use them.

    python -m forensics_app.train.fingerprints build --out DATA --home H [--standin-steps 100 ...]
    python -m forensics_app.train.fingerprints train --data DATA/train --unknown DATA/calibration-unknown \
        --kind repmix --out model_zoo --name fp-repmix

The dataset folder has one sub-folder per class (``DATA/train/<class>/*.png``, ``DATA/test/...``,
``DATA/calibration-unknown/<class>``, ``DATA/test-unknown/<class>``).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter
from torch import nn
from torch.nn import functional as F

from forensics_app.core.fingerprint import EXTRACTOR_ROLE, PATCH, load_extractor
from forensics_app.core.zoo.manifest import Manifest, WeightFile, read_manifest
from forensics_app.train import SHARED

TRAIN_PHOTOS = SHARED / "images/real/cbsd68"  # calibration/training split
TEST_PHOTOS = SHARED / "images/real/cset14"  # test split
TEST_SKIMAGE = ("astronaut", "chelsea", "coffee", "rocket", "cat", "hubble_deep_field")
GENERATED = SHARED / "images/generated"
SAMPLE_FOLDERS = ("sd1", "sd2")  # generators that only left samples (no weights in the zoo)
SAMPLE_TRAIN_FRACTION = 0.6
HELDOUT_GENERATORS = ("demo-ae-04", "demo-ae-08")  # never trained on: open-set measurement
CROP = 128  # stored crop side; resize 0.5x still leaves one 64 px patch
CROPS_PER_PHOTO = 6
REAL = "real"
THREADS = 1  # one thread: on shared cores two threads ran ~10x slower (spin-waiting), and one repeats exactly
KINDS = ("plain", "repmix", "manifpt")
# measure-projection on 2026-11-23 (classes real, sd1, sd2, taef2; chance 0.25; one clean centre patch per
# test crop, 476 patches; 300 steps): accuracy of the artifact-spectrum classifier for each proj(x).
# The nearest real patch leaves the content difference of two unrelated photos in the residual.
PROJECTION_MEASUREMENT = {"lowpass sigma 1": 0.376, "lowpass sigma 2": 0.372, "nearest real patch": 0.296}
# pilot on 2026-11-23 (zoo demo generators, 10 classes, plain classifier, 2,400 steps, batch 32): test
# accuracy of the CNN on raw pixels vs on x - lowpass_sigma1(x).
RESIDUAL_FRONT = {"raw pixels": 0.472, "high-pass residual": 0.689}
OPEN_SET_TARGET = 0.05
VALIDATION_EVERY = 6  # one training photo in six calibrates the p-values instead of being trained on
CALIBRATION_QUANTILES = 51  # held-out generators named as a known generator at most this often


# -- data ----------------------------------------------------------------------------------------
def _photo_crops(rgb: np.ndarray, count: int) -> list[np.ndarray]:
    """Up to ``count`` non-overlapping CROP x CROP crops on a grid, row-major."""
    rows, cols = rgb.shape[0] // CROP, rgb.shape[1] // CROP
    return [rgb[r * CROP:(r + 1) * CROP, c * CROP:(c + 1) * CROP] for r in range(rows) for c in range(cols)][:count]


def _rgb(path_or_array) -> np.ndarray:
    if isinstance(path_or_array, np.ndarray):
        image = Image.fromarray(path_or_array)
    else:
        image = Image.open(path_or_array)
    return np.asarray(image.convert("RGB"))


def split_photos(split: str) -> dict[str, np.ndarray]:
    """Named real photos of a split: 'train' (CBSD68) or 'test' (CSet14 + skimage.data)."""
    if split == "train":
        return {p.stem: _rgb(p) for p in sorted(TRAIN_PHOTOS.glob("*.png"))}
    import skimage.data

    photos = {p.stem: _rgb(p) for p in sorted(TEST_PHOTOS.glob("*.png"))}
    photos.update({name: _rgb(getattr(skimage.data, name)()) for name in TEST_SKIMAGE})
    return photos


def sample_crops(folder: str, split: str) -> dict[str, np.ndarray]:
    paths = sorted((GENERATED / folder).glob("*.png"))
    cut = int(len(paths) * SAMPLE_TRAIN_FRACTION)
    chosen = paths[:cut] if split == "train" else paths[cut:]
    return {f"{p.stem}_{i}": crop for p in chosen for i, crop in enumerate(_photo_crops(_rgb(p), 16))}


def build_dataset(out: Path, zoo, generator_ids: list[str], log=print) -> None:
    """Write DATA/{train,test,calibration-unknown,test-unknown}/<class>/*.png (8-bit, as saved)."""
    from forensics_app.core.zoo.autoencoder import OnnxAutoencoder

    for split in ("train", "test"):
        crops = {f"{name}_{i}": c for name, photo in split_photos(split).items()
                 for i, c in enumerate(_photo_crops(photo, CROPS_PER_PHOTO))}
        _write_class(out / split / REAL, crops)
        for folder in SAMPLE_FOLDERS:
            _write_class(out / split / folder, sample_crops(folder, split))
        for model_id in generator_ids:
            autoencoder = OnnxAutoencoder(zoo.installed(model_id))
            started = time.perf_counter()
            outputs = {name: np.round(np.clip(autoencoder.reconstruct(c.astype(np.float32) / 255), 0, 1) * 255)
                       .astype(np.uint8) for name, c in crops.items()}
            where = {"train": "calibration-unknown", "test": "test-unknown"}[split] \
                if model_id in HELDOUT_GENERATORS else split
            _write_class(out / where / model_id, outputs)
            log(f"{split}/{model_id}: {len(outputs)} crops in {time.perf_counter() - started:.0f} s")


def build_standin_classes(out: Path, steps: int, only: list[str] | None = None, log=print) -> None:
    """Add classes made by the demo-generator recipes trained here for only ``steps`` steps.

    For when the zoo's demo generators are not available: the recipes (upsampling, normalisation,
    objective, latent size) are the zoo's, the weights are not, so the classes are named
    ``<recipe id>-standin``. Same photos and splits as ``build_dataset``.
    """
    from forensics_app.train.demo_generators import RECIPES, load_photos, train

    training_photos = load_photos(TRAIN_PHOTOS)
    crops = {split: {f"{name}_{i}": c for name, photo in split_photos(split).items()
                     for i, c in enumerate(_photo_crops(photo, CROPS_PER_PHOTO))} for split in ("train", "test")}
    for recipe in (r for r in RECIPES if not only or r.id in only):
        started = time.perf_counter()
        model = train(recipe, training_photos, steps, log=lambda message: None)
        name = f"{recipe.id}-standin"
        for split, named in crops.items():
            with torch.no_grad():
                outputs = {k: np.round(model(torch.from_numpy(c.transpose(2, 0, 1).astype(np.float32)[None] / 255))
                                       [0].clamp(0, 1).numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
                           for k, c in named.items()}
            where = {"train": "calibration-unknown", "test": "test-unknown"}[split] \
                if recipe.id in HELDOUT_GENERATORS else split
            _write_class(out / where / name, outputs)
        log(f"{name}: trained {steps} steps and applied in {time.perf_counter() - started:.0f} s")


def _write_class(folder: Path, crops: dict[str, np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, crop in crops.items():
        Image.fromarray(np.ascontiguousarray(crop)).save(folder / f"{name}.png")


def load_class_folders(data: Path, classes: list[str] | None = None) -> tuple[list[str], list[np.ndarray], np.ndarray]:
    """(class names, images uint8 (H, W, 3), labels). Class order: 'real' first, then sorted."""
    classes, paths, labels = _class_files(data, classes)
    return classes, [_rgb(p) for p in paths], labels


def _class_files(data: Path, classes: list[str] | None) -> tuple[list[str], list[Path], np.ndarray]:
    found = sorted(p.name for p in Path(data).iterdir() if p.is_dir())
    if classes is None:
        classes = ([REAL] if REAL in found else []) + [c for c in found if c != REAL]
    paths, labels = [], []
    for label, name in enumerate(classes):
        files = sorted((Path(data) / name).glob("*.png")) + sorted((Path(data) / name).glob("*.jpg"))
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise FileNotFoundError(f"no images in the class folders of {data}")
    return classes, paths, np.asarray(labels)


def _source_photo(path: Path) -> str:
    return path.stem.rsplit("_", 1)[0]  # crops are named <photo>_<n>


def validation_mask(paths: list[Path]) -> np.ndarray:
    """Every VALIDATION_EVERY-th source photo is kept out of training (all its crops, every class)."""
    sources = [_source_photo(p) for p in paths]
    order = {s: i for i, s in enumerate(sorted(set(sources)))}
    return np.asarray([order[s] % VALIDATION_EVERY == VALIDATION_EVERY - 1 for s in sources])


# -- perturbations ---------------------------------------------------------------------------------
def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(buffer).convert("RGB"))


def resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    size = (max(PATCH, round(w * scale)), max(PATCH, round(h * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.BICUBIC))


def blur(rgb: np.ndarray, sigma: float) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(sigma)))


def noise(rgb: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(rgb + rng.normal(0, sigma, rgb.shape), 0, 255).round().astype(np.uint8)


# the evaluation conditions: one benign perturbation at a time, fixed strength
EVAL_PERTURBATIONS = {
    "clean": lambda x, rng: x,
    "jpeg90": lambda x, rng: jpeg(x, 90), "jpeg75": lambda x, rng: jpeg(x, 75), "jpeg50": lambda x, rng: jpeg(x, 50),
    "resize0.5": lambda x, rng: resize(x, 0.5), "resize0.75": lambda x, rng: resize(x, 0.75),
    "resize1.5": lambda x, rng: resize(x, 1.5),
    "crop": lambda x, rng: x[5:, 3:][:101, :101],
    "blur": lambda x, rng: blur(x, 1.0),
    "noise": lambda x, rng: noise(x, 3.0, rng),
}


def training_perturbation(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random benign perturbations (each with probability 0.3), then a random 64 px patch."""
    if rng.random() < 0.3:
        rgb = resize(rgb, rng.uniform(0.5, 1.5))
    if rng.random() < 0.3:
        rgb = blur(rgb, rng.uniform(0.3, 1.5))
    if rng.random() < 0.3:
        rgb = noise(rgb, rng.uniform(1, 5), rng)
    if rng.random() < 0.3:
        rgb = jpeg(rgb, rng.integers(60, 101))
    top, left = rng.integers(rgb.shape[0] - PATCH + 1), rng.integers(rgb.shape[1] - PATCH + 1)
    patch = rgb[top:top + PATCH, left:left + PATCH]
    return patch[:, ::-1] if rng.random() < 0.5 else patch


# -- network ---------------------------------------------------------------------------------------
class LowPassResidual(nn.Module):
    """a(x) = x - proj(x), proj = Gaussian low-pass (fixed depthwise convolution, reflect padding)."""

    def __init__(self, sigma: float = 1.0):
        super().__init__()
        radius = max(1, math.ceil(3 * sigma))
        t = torch.arange(-radius, radius + 1, dtype=torch.float32)
        g = torch.exp(-t ** 2 / (2 * sigma ** 2))
        g = g / g.sum()
        self.register_buffer("kernel", (g[:, None] * g[None, :]).expand(3, 1, -1, -1).clone())
        self.radius = radius

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        smooth = F.conv2d(F.pad(x, [self.radius] * 4, mode="reflect"), self.kernel, groups=3)
        return (x - smooth) * 8.0  # residuals are small: rescale to the range the first layer expects


def dct_matrix(n: int) -> torch.Tensor:
    """Orthonormal DCT-II basis (n x n): the 2-D DCT of a patch P is D @ P @ D.T."""
    k, i = torch.arange(n, dtype=torch.float64)[:, None], torch.arange(n, dtype=torch.float64)[None, :]
    basis = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    basis[0] /= math.sqrt(2)
    return basis.float()


class ArtifactSpectrumNet(nn.Module):
    """ManiFPT-style: artifact a(x) = x - lowpass(x), represented by its log DCT magnitude, then an MLP.

    Upsampling layers leave periodic artifacts; in the spectrum they sit at fixed frequencies
    whatever the patch content or position, so a small classifier learns them from few samples.
    """

    def __init__(self, generators: int, sigma: float | None = 1.0, hidden: int = 96):
        super().__init__()
        self.artifact = LowPassResidual(sigma) if sigma else nn.Identity()  # None: artifacts come precomputed
        self.register_buffer("dct", dct_matrix(PATCH))
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(3 * (PATCH // 2) ** 2, hidden), nn.ReLU(),
                                  nn.Linear(hidden, hidden), nn.ReLU())
        self.synthetic = nn.Linear(hidden, 1)
        self.generator = nn.Linear(hidden, generators)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spectrum = self.dct @ self.artifact(x) @ self.dct.T
        log_magnitude = torch.log(spectrum.abs() + 1e-3)
        features = self.body(F.avg_pool2d(log_magnitude, 2) + 3.0)  # 2x2 frequency bins, roughly centred
        return log_probabilities(self.synthetic(features)[:, 0], self.generator(features))


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


class FingerprintNet(nn.Module):
    """Small CNN on the image's high-pass residual; full resolution first (fingerprints are
    high-frequency), then three stride-2 stages.

    The fixed residual front (x - Gaussian low-pass, as in forensic CNNs' fixed high-pass layers)
    removes the content the network would otherwise fit first: on the demo zoo, 2,400 steps reached
    0.689 test accuracy with it and 0.472 without (``pilot`` numbers in the module's RESIDUAL_FRONT).
    Two heads: synthetic-or-not (one logit) and which-generator (k logits). ``forward`` returns the
    log-probabilities over {real, generator_1..k}: log P(real) = log(1 - s), log P(g) = log s + log softmax.
    """

    def __init__(self, generators: int, width: int = 16, sigma: float = 1.0):
        super().__init__()
        self.artifact = LowPassResidual(sigma)
        self.stages = nn.ModuleList([
            _block(3, width, 1),
            _block(width, 2 * width, 2), _block(2 * width, 4 * width, 2), _block(4 * width, 4 * width, 2),
        ])
        self.synthetic = nn.Linear(4 * width, 1)
        self.generator = nn.Linear(4 * width, generators)

    def features(self, x: torch.Tensor, mix_at: int | None = None, partner=None, lam=None) -> torch.Tensor:
        x = self.artifact(x)
        for index, stage in enumerate(self.stages):
            if index == mix_at:  # representation mixing: this layer's input is a blend of two samples
                x = lam.view(-1, 1, 1, 1) * x + (1 - lam.view(-1, 1, 1, 1)) * x[partner]
            x = stage(x)
        return x.mean(dim=(2, 3))

    def heads(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.synthetic(features)[:, 0], self.generator(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        synthetic, generator = self.heads(self.features(x))
        return log_probabilities(synthetic, generator)


def log_probabilities(synthetic: torch.Tensor, generator: torch.Tensor) -> torch.Tensor:
    return torch.cat([F.logsigmoid(-synthetic)[:, None],
                      F.logsigmoid(synthetic)[:, None] + F.log_softmax(generator, dim=1)], dim=1)


# -- training --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainSettings:
    kind: str = "repmix"
    steps: int = 6000
    batch_size: int = 32
    learning_rate: float = 3e-3
    seed: int = 0
    artifact_sigma: float = 1.0  # the low-pass removed from the input (every kind)
    width: int = 16

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _batch(images, labels, rng, size) -> tuple[torch.Tensor, torch.Tensor]:
    """A class-balanced batch of perturbed patches."""
    classes = np.unique(labels)
    picked = [rng.choice(np.flatnonzero(labels == rng.choice(classes))) for _ in range(size)]
    patches = np.stack([training_perturbation(images[i], rng) for i in picked])
    x = torch.from_numpy(patches.transpose(0, 3, 1, 2).astype(np.float32) / 255)
    return x, torch.from_numpy(labels[picked]).long()


def repmix_loss(model: FingerprintNet, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Mix two samples' representations at a random stage; BCE(synthetic) + CE(generator), mixed labels."""
    partner = torch.from_numpy(rng.permutation(len(y)))
    lam = torch.from_numpy(rng.beta(1.0, 1.0, len(y)).astype(np.float32))
    mix_at = int(rng.integers(len(model.stages)))
    synthetic, generator = model.heads(model.features(x, mix_at, partner, lam))
    is_synthetic = (y > 0).float()
    synthetic_target = lam * is_synthetic + (1 - lam) * is_synthetic[partner]
    # which-generator target: each side's share of the mix, only where that side is synthetic
    k = generator.shape[1]
    one_hot = F.one_hot((y - 1).clamp(min=0), k).float() * is_synthetic[:, None]
    target = lam[:, None] * one_hot + (1 - lam[:, None]) * one_hot[partner]
    weight = target.sum(dim=1)
    generator_loss = -(target * F.log_softmax(generator, dim=1)).sum(dim=1).sum() / weight.sum().clamp(min=1e-6)
    return F.binary_cross_entropy_with_logits(synthetic, synthetic_target) + generator_loss


def train_classifier(images: list[np.ndarray], labels: np.ndarray, n_classes: int, settings: TrainSettings,
                     log=print) -> FingerprintNet:
    if settings.kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    try:
        model = (ArtifactSpectrumNet(n_classes - 1, settings.artifact_sigma) if settings.kind == "manifpt"
                 else FingerprintNet(n_classes - 1, width=settings.width, sigma=settings.artifact_sigma))
        optimiser = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, settings.learning_rate, total_steps=settings.steps)
        model.train()
        for step in range(settings.steps):
            x, y = _batch(images, labels, rng, settings.batch_size)
            if settings.kind == "repmix":
                loss = repmix_loss(model, x, y, rng)
            else:
                loss = F.nll_loss(model(x), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            if step % 100 == 0 or step == settings.steps - 1:
                log(f"{settings.kind} step {step + 1}/{settings.steps} loss {loss.item():.3f}")
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def export_onnx(model: FingerprintNet, path: Path, tolerance: float = 2e-3) -> None:
    """Export with a dynamic batch axis; refuses an ONNX whose output differs from torch's.

    The outputs are log-probabilities: 2e-3 is a 0.2% relative change of a probability. The
    ManiFPT net's log-DCT magnitudes magnify float rounding of near-zero coefficients (7e-4 seen)."""
    import onnxruntime

    path.parent.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    example = torch.rand(2, 3, PATCH, PATCH, generator=generator)
    with warnings.catch_warnings():  # the legacy exporter's deprecation and constant-folding notes
        warnings.simplefilter("ignore")
        torch.onnx.export(model, example, str(path), input_names=["patches"], output_names=["log_probs"],
                          dynamic_axes={"patches": {0: "batch"}, "log_probs": {0: "batch"}}, opset_version=17,
                          dynamo=False)
    probe = torch.rand(5, 3, PATCH, PATCH, generator=generator)  # another batch size: the axis is dynamic
    with torch.no_grad():
        expected = model(probe).numpy()
    got = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"patches": probe.numpy()})[0]
    if np.abs(got - expected).max() > tolerance:
        raise RuntimeError(f"ONNX export of the fingerprint net differs from torch by {np.abs(got - expected).max():.2e}")


# -- calibration and evaluation through the exported ONNX -------------------------------------------
def predict_images(extractor, images: list[np.ndarray]) -> np.ndarray:
    """Mean log-probabilities per image over its patch grid, (N, classes)."""
    return np.stack([extractor.mean_log_probs(image.astype(np.float32) / 255) for image in images])


def open_set_threshold(unknown_log_probs: np.ndarray, target: float = OPEN_SET_TARGET) -> float:
    """Smallest max-generator-probability that names at most ``target`` of the unknown-generator images."""
    probs = np.exp(unknown_log_probs)
    named = probs[:, 1:].max(axis=1)
    named = np.where(probs.argmax(axis=1) > 0, named, 0.0)  # predicted 'real': never named
    return float(min(1.0, np.quantile(named, 1 - target, method="higher") + 1e-6))


def write_extractor(model: FingerprintNet, classes: list[str], settings: TrainSettings, out: Path, name: str,
                    training: dict, calibration: dict) -> Manifest:
    """ONNX in OUT/weights/NAME.onnx and the manifest OUT/NAME.toml (kind = 'extractor')."""
    onnx_path = out / "weights" / f"{name}.onnx"
    export_onnx(model, onnx_path)
    manifest = Manifest(
        id=name, display_name=f"Learned fingerprint ({settings.kind}, {len(classes) - 1} generators)",
        kind="extractor", family="learned fingerprints (trained by this project)", used_by=(),
        licence="MIT (this project)", demonstration=True,
        architecture={"builder": "fingerprint_net", "kind": settings.kind, "patch": PATCH},
        weights=(WeightFile(role=EXTRACTOR_ROLE, file=onnx_path.name,
                            sha256=hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
                            size=onnx_path.stat().st_size),),
        spatial_factor=1,
        description=(f"{settings.kind} patch classifier over {{real, {', '.join(classes[1:])}}}: mean "
                     f"log-probabilities over a grid of {PATCH}x{PATCH} patches; names a generator only "
                     f"when its probability reaches the open-set threshold."),
        extra={"classes": classes, "training": settings.to_dict(), "training_data": training,
               "calibration": calibration, "torch_version": torch.__version__},
    )
    (out / f"{name}.toml").write_text(manifest.to_toml(), encoding="utf-8")
    return read_manifest(out / f"{name}.toml")


def score_quantiles(log_probs: np.ndarray) -> list[float]:
    """Quantiles of the fingerprint score 1 - (highest generator probability): LOW = a generator fits."""
    scores = 1 - np.exp(log_probs)[:, 1:].max(axis=1)
    return [round(float(q), 5) for q in np.quantile(scores, np.linspace(0, 1, CALIBRATION_QUANTILES))]


def train_extractor(data: Path, out: Path, name: str, settings: TrainSettings,
                    unknown: Path | None = None, log=print) -> Manifest:
    """Train on DATA/<class>/ images, export, calibrate, write the manifest.

    Calibration: one training photo in six (all its crops, every class) is held back; on those
    images the score distribution of known generators' outputs (p_own) and of real photos (p_real) is
    stored. The open-set threshold names at most OPEN_SET_TARGET of ``unknown`` (generators never
    trained on) and of the held-back real photos.
    """
    classes, paths, labels = _class_files(data, None)
    held_back = validation_mask(paths)
    if held_back.all() or not held_back.any():
        held_back = np.zeros(len(paths), bool)
    images = [_rgb(p) for p in paths]
    training_images = [im for im, v in zip(images, held_back) if not v]
    started = time.perf_counter()
    model = train_classifier(training_images, labels[~held_back], len(classes), settings, log)
    seconds = time.perf_counter() - started
    training = {"folder": str(data), "images_per_class": {c: int((labels == i).sum()) for i, c in enumerate(classes)},
                "held_back_for_calibration": int(held_back.sum()),
                "split": "real: images/real/cbsd68 crops (calibration/training split); generators: the same "
                         "crops through each generator; sd1/sd2: first 60% of files",
                "perturbations": "each p=0.3: resize 0.5-1.5x, blur sigma 0.3-1.5, noise 1-5/255, JPEG q60-100; "
                                 "random 64 px crop, horizontal flip",
                "training_seconds": round(seconds, 1), "threads": THREADS}
    calibration = {"threshold": 1.0, "target_unknown_named": OPEN_SET_TARGET,
                   "method": "max-softmax over generator classes (mean log-probabilities over the patch grid)"}
    manifest = write_extractor(model, classes, settings, out, name, training, calibration)
    extractor = load_extractor(manifest)
    if held_back.any():
        log_probs = predict_images(extractor, [im for im, v in zip(images, held_back) if v])
        truth = labels[held_back]
        calibration.update(
            own_score_quantiles=score_quantiles(log_probs[truth > 0]),
            real_score_quantiles=score_quantiles(log_probs[truth == 0]),
            validation_accuracy=round(float(np.mean(log_probs.argmax(axis=1) == truth)), 4),
            validation_images=int(held_back.sum()))
    if unknown is not None and unknown.is_dir():
        # Only the held-back photos: the network has seen the content of the others (through the known
        # generators), and unknown generators' versions of familiar content read as overconfident.
        unknown_classes, unknown_paths, _ = _class_files(unknown, None)
        held_back_sources = {_source_photo(p) for p, v in zip(paths, held_back) if v}
        chosen = [p for p in unknown_paths if _source_photo(p) in held_back_sources] or unknown_paths
        unknown_threshold = open_set_threshold(predict_images(extractor, [_rgb(p) for p in chosen]))
        # A real photo named as a generator is a false attribution too: the held-back real photos bound it.
        real_threshold = open_set_threshold(log_probs[truth == 0]) if held_back.any() else 0.0
        calibration.update(threshold=max(unknown_threshold, real_threshold), unknown_threshold=unknown_threshold,
                           real_threshold=real_threshold, unknown_generators=unknown_classes,
                           unknown_images=len(chosen),
                           unknown_data=f"{unknown} (held-out generators' outputs on the held-back training photos)")
    manifest = write_extractor(model, classes, settings, out, name, training, calibration)
    log(f"{name}: trained in {seconds:.0f} s, threshold {calibration['threshold']:.3f}, "
        f"validation accuracy {calibration.get('validation_accuracy')}")
    return manifest


def evaluate(extractor, data: Path, perturbations=EVAL_PERTURBATIONS, seed: int = 0) -> dict:
    """Closed-set accuracy per perturbation on DATA/<class>/ (classes must be the extractor's)."""
    classes, images, labels = load_class_folders(data, [c for c in extractor.classes
                                                        if (Path(data) / c).is_dir()])
    truth = np.asarray([extractor.classes.index(classes[i]) for i in labels])
    out = {}
    for name, perturb in perturbations.items():
        rng = np.random.default_rng(seed)
        log_probs = predict_images(extractor, [perturb(im, rng) for im in images])
        out[name] = float(np.mean(log_probs.argmax(axis=1) == truth))
    return {"accuracy": out, "images": len(images), "classes": classes}


def naming_rates(extractor, data: Path) -> dict:
    """Per class folder of DATA: how often its images are named as any known generator (at the
    manifest's open-set threshold), named as their own class, and called real."""
    out = {}
    for folder in sorted(p for p in Path(data).iterdir() if p.is_dir()):
        _, images, _ = load_class_folders(data, [folder.name])
        readings = [extractor.read(image.astype(np.float32) / 255) for image in images]
        out[folder.name] = {"images": len(images),
                            "named": float(np.mean([r.named is not None for r in readings])),
                            "named_correctly": float(np.mean([r.named == folder.name for r in readings])),
                            "called_real": float(np.mean([r.predicted == REAL for r in readings]))}
    return out


def _nearest_real_residual(patches: np.ndarray, bank: np.ndarray, bank_embedding: np.ndarray) -> np.ndarray:
    """x - (nearest real patch in an 8x8 low-pass pixel embedding); patches (N, 3, P, P) in [0, 1]."""
    embedding = patches.reshape(len(patches), 3, PATCH // 8, 8, PATCH // 8, 8).mean(axis=(3, 5)).reshape(len(patches), -1)
    distances = ((embedding[:, None, :] - bank_embedding[None]) ** 2).sum(axis=2)
    return (patches - bank[distances.argmin(axis=1)]) * 8.0


def measure_projections(data: Path, steps: int = 300, log=print) -> dict:
    """ManiFPT projection choice: closed-set accuracy (one centre patch, clean) of the artifact-spectrum
    classifier for proj = Gaussian low-pass (sigma 1, 2) and proj = nearest real patch (bank: real
    crops of the held-back training photos; classifier trained on the other photos)."""
    classes, paths, labels = _class_files(data / "train", None)
    held_back = validation_mask(paths)
    images = [_rgb(p) for p in paths]
    train_images = [im for im, v in zip(images, held_back) if not v]
    train_labels = labels[~held_back]
    bank = np.stack([images[i][r:r + PATCH, c:c + PATCH] for i in np.flatnonzero(held_back & (labels == 0))
                     for r in (0, PATCH) for c in (0, PATCH)]).transpose(0, 3, 1, 2).astype(np.float32) / 255
    bank_embedding = bank.reshape(len(bank), 3, PATCH // 8, 8, PATCH // 8, 8).mean(axis=(3, 5)).reshape(len(bank), -1)
    _, test_images, test_labels = load_class_folders(data / "test", classes)
    centre = np.stack([im[32:32 + PATCH, 32:32 + PATCH] for im in test_images]).transpose(0, 3, 1, 2)
    centre = centre.astype(np.float32) / 255
    results = {}
    for option, sigma in (("lowpass sigma 1", 1.0), ("lowpass sigma 2", 2.0), ("nearest real patch", None)):
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        model = ArtifactSpectrumNet(len(classes) - 1, sigma)
        optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
        prepare = (lambda x: x) if sigma else (lambda x: torch.from_numpy(_nearest_real_residual(x.numpy(), bank,
                                                                                             bank_embedding)))
        for _ in range(steps):
            x, y = _batch(train_images, train_labels, rng, 32)
            loss = F.nll_loss(model(prepare(x)), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        with torch.no_grad():
            predicted = model.eval()(prepare(torch.from_numpy(centre))).argmax(dim=1).numpy()
        results[option] = round(float(np.mean(predicted == test_labels)), 4)
        log(f"projection {option}: accuracy {results[option]:.3f} ({len(test_labels)} test patches, {steps} steps)")
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="write the dataset folders")
    build.add_argument("--out", type=Path, required=True)
    build.add_argument("--home", type=Path, help="application home with the generators installed")
    build.add_argument("--generator", action="append", help="zoo id (default: taef2 and every demo-* manifest)")
    build.add_argument("--standin-steps", type=int, help="also train the demo recipes this many steps as stand-ins")
    build.add_argument("--standin-only", action="append", help="only this demo recipe id as a stand-in")
    train = sub.add_parser("train", help="train one classifier, export ONNX + manifest")
    train.add_argument("--data", type=Path, required=True, help="folder with one sub-folder per class")
    train.add_argument("--unknown", type=Path, help="held-out generators' images for the open-set threshold")
    train.add_argument("--kind", choices=KINDS, default="repmix")
    train.add_argument("--steps", type=int, default=TrainSettings.steps)
    train.add_argument("--out", type=Path, default=Path("model_zoo"))
    train.add_argument("--name", required=True)
    measure = sub.add_parser("measure-projection", help="ManiFPT: compare projections onto the real manifold")
    measure.add_argument("--data", type=Path, required=True, help="the dataset folder (with train/ and test/)")
    measure.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)
    if args.command == "measure-projection":
        torch.set_num_threads(THREADS)
        measure_projections(args.data, args.steps)
    elif args.command == "build":
        from forensics_app.core.zoo.store import Zoo

        zoo = Zoo(args.home)
        ids = args.generator or ["taef2"] + sorted(m for m in zoo.manifests() if m.startswith("demo-"))
        build_dataset(args.out, zoo, ids)
        if args.standin_steps:
            build_standin_classes(args.out, args.standin_steps, args.standin_only)
    else:
        train_extractor(args.data, args.out, args.name, TrainSettings(kind=args.kind, steps=args.steps),
                        args.unknown)


if __name__ == "__main__":
    main()
