"""Train the demonstration generators: small autoencoders (builder "demo_ae") for the model zoo.

They give AEDR hard negatives (smooth outputs of an autoencoder that is not TAEF2) and give the
learned-fingerprint methods a zoo of generators that differ in what leaves fingerprints: upsampling
type, normalisation, activation, latent size, spatial factor and objective (plain MSE, or MSE plus
a small patch-GAN term, which adds its own high-frequency traces).

Data split: training uses random patches of the calibration/training photos (colour BSD68) only.
The held-out test photos (CSet14, skimage.data) are never trained on; CSet14 centre crops give the
held-out PSNR recorded in each manifest.

    python -m forensics_app.train.demo_generators --out model_zoo [--only ID ...] [--steps N]

writes ``<out>/weights/<id>.safetensors`` and ``<out>/<id>.toml`` per recipe. Given its seed a
recipe trains to the same weights on the same torch version and thread count.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from forensics_app.core.zoo.architectures.demo_ae import DemoAutoencoder, architecture_kwargs
from forensics_app.core.zoo.manifest import Manifest, WeightFile
from forensics_app.train import SHARED

IMAGES_DIR = SHARED / "images" / "real"
TRAINING_PHOTOS = IMAGES_DIR / "cbsd68"  # calibration/training split
HELDOUT_PHOTOS = IMAGES_DIR / "cset14"  # test split: evaluation only
HELDOUT_CROP = 256
# One thread: float reductions depend on the thread count, so a fixed count makes runs repeat
# exactly on any machine; on shared cores two threads also ran about 5x slower (spin-waiting).
TRAINING_THREADS = 1
FAMILY = "demonstration autoencoders (trained by this project)"
UPSAMPLING_NAMES = {"transposed": "transposed conv", "nearest_conv": "nearest + conv",
                    "bilinear_conv": "bilinear + conv", "pixel_shuffle": "pixel shuffle"}


@dataclass(frozen=True)
class Recipe:
    id: str
    number: int  # shown in the display name
    upsampling: str
    normalisation: str
    activation: str
    latent_channels: int
    downsamplings: int  # spatial factor = 2 ** downsamplings
    seed: int
    adversarial_weight: float = 0.0  # 0: plain MSE autoencoder; > 0: MSE + this times a patch-GAN term
    width: int = 24
    bottleneck_blocks: int = 1
    steps: int = 4000
    batch_size: int = 8
    patch_size: int = 48
    learning_rate: float = 5e-3
    adversarial_start: float = 0.5  # fraction of the steps trained on MSE alone before the GAN term starts

    @property
    def spatial_factor(self) -> int:
        return 2 ** self.downsamplings

    @property
    def objective(self) -> str:
        return "mse+patchgan" if self.adversarial_weight > 0 else "mse"

    @property
    def architecture(self) -> dict:
        return {"builder": "demo_ae", "latent_channels": self.latent_channels, "width": self.width,
                "downsamplings": self.downsamplings, "upsampling": self.upsampling,
                "normalisation": self.normalisation, "activation": self.activation,
                "bottleneck_blocks": self.bottleneck_blocks}

    @property
    def display_name(self) -> str:
        gan = " + GAN" if self.adversarial_weight > 0 else ""
        return (f"Demo AE {self.number} ({UPSAMPLING_NAMES[self.upsampling]}{gan}, "
                f"{self.latent_channels} latent ch., f{self.spatial_factor})")

    def build_model(self) -> DemoAutoencoder:
        return DemoAutoencoder(**architecture_kwargs(self.architecture))


# Factor-8 recipes get more steps: their decoders have a third upsampling stage to learn.
RECIPES = (
    Recipe("demo-ae-01", 1, "transposed", "none", "relu", 8, 2, seed=101),
    Recipe("demo-ae-02", 2, "nearest_conv", "batch", "relu", 10, 2, seed=102),
    Recipe("demo-ae-03", 3, "bilinear_conv", "none", "silu", 16, 3, seed=103, steps=6000),
    Recipe("demo-ae-04", 4, "pixel_shuffle", "group", "gelu", 12, 2, seed=104),
    Recipe("demo-ae-05", 5, "transposed", "batch", "leaky_relu", 16, 3, seed=105, adversarial_weight=1e-3,
           steps=6000),
    Recipe("demo-ae-06", 6, "pixel_shuffle", "batch", "relu", 8, 2, seed=106, adversarial_weight=1e-3),
    Recipe("demo-ae-07", 7, "nearest_conv", "group", "silu", 8, 2, seed=107),
    Recipe("demo-ae-08", 8, "bilinear_conv", "none", "leaky_relu", 6, 2, seed=108, adversarial_weight=1e-3),
)


class PatchDiscriminator(nn.Module):
    """Scores overlapping patches (about 22 px receptive field) as photo (> 0) or reconstruction (< 0)."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, width * 2, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width * 2, 1, 3, padding=1),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.layers(image)


def load_photos(folder: Path) -> list[np.ndarray]:
    """RGB uint8 arrays (H, W, 3), in file-name order so sampling is reproducible."""
    paths = sorted(folder.glob("*.png"))
    if not paths:
        raise FileNotFoundError(f"no PNG photos in {folder}")
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


def sample_patches(photos: list[np.ndarray], rng: np.random.Generator, count: int, size: int) -> torch.Tensor:
    """Random crops with random horizontal flips, as (count, 3, size, size) floats in [0, 1]."""
    patches = []
    for _ in range(count):
        photo = photos[rng.integers(len(photos))]
        top = rng.integers(photo.shape[0] - size + 1)
        left = rng.integers(photo.shape[1] - size + 1)
        patch = photo[top:top + size, left:left + size]
        patches.append(patch[:, ::-1] if rng.random() < 0.5 else patch)
    batch = np.stack(patches).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return torch.from_numpy(batch)


@contextmanager
def deterministic_torch(seed: int):
    """Seeded, deterministic, fixed-thread torch; the caller's settings come back afterwards."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(TRAINING_THREADS)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def initialise_weights(model: nn.Module) -> None:
    """He initialisation: PyTorch's default shrinks activations layer by layer, which stalls short training.

    A convolution feeding a pixel shuffle starts with the same kernel for all sub-pixels of a channel
    (ICNR), so the shuffle starts as nearest-neighbour upsampling instead of a checkerboard.
    """
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu",
                                    mode="fan_out" if isinstance(module, nn.ConvTranspose2d) else "fan_in")
            nn.init.zeros_(module.bias)
    for module in model.modules():
        layers = list(module.children()) if isinstance(module, nn.Sequential) else []
        for conv, shuffle in zip(layers, layers[1:]):
            if isinstance(conv, nn.Conv2d) and isinstance(shuffle, nn.PixelShuffle):
                sub_pixels = shuffle.upscale_factor ** 2
                with torch.no_grad():
                    conv.weight.copy_(conv.weight[::sub_pixels].repeat_interleave(sub_pixels, dim=0))


def train(recipe: Recipe, photos: list[np.ndarray], steps: int | None = None, log=print) -> DemoAutoencoder:
    """Train one recipe on the given photos; returns the model in eval mode."""
    steps = recipe.steps if steps is None else steps
    with deterministic_torch(recipe.seed):
        rng = np.random.default_rng(recipe.seed)
        model = recipe.build_model()
        initialise_weights(model)
        optimiser = torch.optim.Adam(model.parameters(), lr=recipe.learning_rate)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda step: 0.5 * (1 + math.cos(math.pi * step / max(steps, 1))))
        adversarial = recipe.adversarial_weight > 0
        if adversarial:
            critic = PatchDiscriminator()
            critic_optimiser = torch.optim.Adam(critic.parameters(), lr=2e-4, betas=(0.5, 0.9))
        gan_from = int(steps * recipe.adversarial_start)
        model.train()
        for step in range(steps):
            photo = sample_patches(photos, rng, recipe.batch_size, recipe.patch_size)
            reconstruction = model(photo)
            mse = torch.mean((reconstruction - photo) ** 2)
            loss = mse
            if adversarial and step >= gan_from:
                # Hinge GAN: the critic learns photo vs reconstruction, the autoencoder learns to fool it.
                critic_loss = (torch.relu(1 - critic(photo)).mean()
                               + torch.relu(1 + critic(reconstruction.detach())).mean())
                critic_optimiser.zero_grad()
                critic_loss.backward()
                critic_optimiser.step()
                loss = mse - recipe.adversarial_weight * critic(reconstruction).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            if step % 500 == 0 or step == steps - 1:
                log(f"{recipe.id} step {step + 1}/{steps} mse {mse.item():.5f} "
                    f"(patch PSNR {10 * math.log10(1 / max(mse.item(), 1e-10)):.2f} dB)")
    return model.eval()


def heldout_psnr(model: DemoAutoencoder, photos: list[np.ndarray], crop: int = HELDOUT_CROP) -> float:
    """Mean PSNR (dB) of 8-bit reconstructions of centre crops, as a generator would save them."""
    values = []
    with torch.no_grad():
        for photo in photos:
            top, left = (photo.shape[0] - crop) // 2, (photo.shape[1] - crop) // 2
            original = photo[top:top + crop, left:left + crop].astype(np.float32) / 255.0
            image = torch.from_numpy(original.transpose(2, 0, 1).copy())[None]
            output = model(image)[0].numpy().transpose(1, 2, 0)
            saved = np.round(output * 255.0) / 255.0
            values.append(10 * math.log10(1 / float(np.mean((saved - original) ** 2))))
    return float(np.mean(values))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_generator(recipe: Recipe, model: DemoAutoencoder, out_dir: Path, steps: int,
                    wall_seconds: float, cpu_seconds: float, psnr: float) -> Manifest:
    """Save the weights (one safetensors file) and the zoo manifest; returns the manifest."""
    weights_dir = out_dir / "weights"
    weights_dir.mkdir(parents=True, exist_ok=True)
    weights_path = weights_dir / f"{recipe.id}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights_path))
    parameters = sum(p.numel() for p in model.parameters())
    # The calibration is made after training (zoo calibrate); a retrained model keeps the reference and
    # the engine ignores the file until it is remade, since it records the old weights' SHA-256.
    calibration = f"{recipe.id}.calibration.json"
    manifest = Manifest(
        id=recipe.id, display_name=recipe.display_name, kind="autoencoder", family=FAMILY, used_by=(),
        licence="MIT (this project)", architecture=recipe.architecture,
        weights=(WeightFile(role="autoencoder", file=weights_path.name, sha256=sha256_of(weights_path),
                            size=weights_path.stat().st_size),),
        spatial_factor=recipe.spatial_factor, demonstration=True,
        calibration_file=calibration if (out_dir / calibration).exists() else None,
        description=(f"Small convolutional autoencoder trained by this project for demonstration "
                     f"({recipe.objective} objective, {parameters} parameters). It is not a public "
                     f"generator: an image attributed here was decoded by this demo model."),
        extra={
            "recipe": dataclasses.asdict(recipe) | {"steps": steps},
            "objective": recipe.objective,
            "seed": recipe.seed,
            "parameters": parameters,
            "training_data": {
                "folder": "images/real/cbsd68 (colour BSD68, the calibration/training split)",
                "photos": len(sorted(TRAINING_PHOTOS.glob("*.png"))),
                "patch_size": recipe.patch_size, "batch_size": recipe.batch_size, "steps": steps,
                "augmentation": "random crops, random horizontal flips",
            },
            "torch_version": torch.__version__,
            "training_threads": TRAINING_THREADS,
            # CPU seconds measure the work; wall seconds also count time spent waiting for a shared core.
            "training_cpu_seconds": round(cpu_seconds, 1),
            "training_wall_seconds": round(wall_seconds, 1),
            "heldout_psnr_db": round(psnr, 2),
            "heldout_data": f"images/real/cset14, {HELDOUT_CROP}x{HELDOUT_CROP} centre crops, "
                            f"outputs rounded to 8 bits (test split, never trained on)",
        },
    )
    (out_dir / f"{recipe.id}.toml").write_text(manifest.to_toml(), encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="zoo folder for manifests (weights go to OUT/weights)")
    parser.add_argument("--only", action="append", choices=[r.id for r in RECIPES], help="train only this recipe")
    parser.add_argument("--steps", type=int, help="override each recipe's number of steps")
    args = parser.parse_args(argv)

    training, heldout = load_photos(TRAINING_PHOTOS), load_photos(HELDOUT_PHOTOS)
    for recipe in RECIPES:
        if args.only and recipe.id not in args.only:
            continue
        steps = recipe.steps if args.steps is None else args.steps
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        model = train(recipe, training, steps)
        wall_seconds, cpu_seconds = time.perf_counter() - wall_start, time.process_time() - cpu_start
        psnr = heldout_psnr(model, heldout)
        manifest = write_generator(recipe, model, args.out, steps, wall_seconds, cpu_seconds, psnr)
        print(f"{recipe.id}: {cpu_seconds:.0f} s CPU ({wall_seconds:.0f} s wall), held-out PSNR {psnr:.2f} dB, "
              f"{manifest.weights[0].size / 1024:.0f} KiB", flush=True)


if __name__ == "__main__":
    main()
