"""Cost of one AEDR check (two reconstructions: encode, decode, encode, decode) per catalogue architecture.

    python benchmarks/zoo_speed.py [--sizes 512 1024] [--threads 1] [--only NAME ...] [--json OUT]

The real weights cannot be downloaded on the machines this project is built on, and random weights
cost exactly what trained ones cost: each architecture is built at its real size (the configs below,
from the published config.json files) with random weights, imported into a scratch zoo (ONNX export
and parity check included) and timed through onnxruntime on this CPU, as the app runs it (default
tiling). GFLOP are the install's count (torch's meta device at 256 px, multiply-adds x 2, convolutions and
matrix products; receipt.json "cost") scaled by the pixel count, as the CPU time policy estimates them.
A 1024 px run is skipped for an architecture whose 512 px check takes more than --skip-after seconds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, held_out_photos, print_table, write_json  # noqa: E402

from forensics_app.core.imageprep import TilingSettings  # noqa: E402
from forensics_app.core.jobs import NEVER_CANCELLED  # noqa: E402
from forensics_app.core.methods.aedr import METHOD as AEDR  # noqa: E402
from forensics_app.core.runtime import RuntimeSettings, SessionCache  # noqa: E402
from forensics_app.core.zoo.autoencoder import OnnxAutoencoder  # noqa: E402
from forensics_app.core.zoo.store import Zoo  # noqa: E402

KL_F8 = dict(block_out_channels=[128, 256, 512, 512], down_block_types=["DownEncoderBlock2D"] * 4,
             up_block_types=["UpDecoderBlock2D"] * 4, layers_per_block=2, norm_num_groups=32)
SANA_DC_AE = dict(  # mit-han-lab/dc-ae-f32c32-sana-1.0-diffusers config.json
    latent_channels=32, attention_head_dim=32,
    encoder_block_types=["ResBlock"] * 3 + ["EfficientViTBlock"] * 3,
    decoder_block_types=["ResBlock"] * 3 + ["EfficientViTBlock"] * 3,
    encoder_block_out_channels=[128, 256, 512, 512, 1024, 1024],
    decoder_block_out_channels=[128, 256, 512, 512, 1024, 1024],
    encoder_layers_per_block=[2, 2, 2, 3, 3, 3], decoder_layers_per_block=[3, 3, 3, 3, 3, 3],
    encoder_qkv_multiscales=[[], [], [], [5], [5], [5]], decoder_qkv_multiscales=[[], [], [], [5], [5], [5]],
    downsample_block_type="Conv", upsample_block_type="interpolate", decoder_norm_types="rms_norm",
    decoder_act_fns="silu")
HUNYUAN_IMAGE_21 = dict(  # the vae/config.json of HunyuanImage 2.1 in diffusers format
    in_channels=3, out_channels=3, latent_channels=64, block_out_channels=[128, 256, 512, 512, 1024, 1024],
    layers_per_block=2, spatial_compression_ratio=32, sample_size=384)


@dataclass(frozen=True)
class Architecture:
    name: str
    catalogue_ids: tuple[str, ...]  # the catalogue entries that decode with this architecture
    diffusers_class: str | None  # None: the real TAEF2 from the offline mirror (builder "taesd")
    config: dict = field(default_factory=dict)  # on top of the class's diffusers defaults


ARCHITECTURES = [
    Architecture("SD kl-f8, 4 ch", ("sd-vae-kl-f8", "sd-vae-ft-ema", "sd-vae-ft-mse", "sdxl-vae",
                                    "sdxl-vae-fp16-fix"), "AutoencoderKL", KL_F8 | {"latent_channels": 4}),
    Architecture("SD3/FLUX.1 kl-f8, 16 ch", ("sd3-vae", "flux1-vae"), "AutoencoderKL",
                 KL_F8 | {"latent_channels": 16, "use_quant_conv": False, "use_post_quant_conv": False}),
    Architecture("FLUX.2, 32 ch", ("flux2-vae",), "AutoencoderKLFlux2"),  # diffusers' defaults are FLUX.2's
    Architecture("Qwen-Image (1 frame)", ("qwen-image-vae",), "AutoencoderKLQwenImage"),  # likewise
    Architecture("Sana DC-AE f32c32", ("sana-dc-ae",), "AutoencoderDC", SANA_DC_AE),
    Architecture("HunyuanImage 2.1 f32c64", ("hunyuanimage-2.1-vae",), "AutoencoderKLHunyuanImage",
                 HUNYUAN_IMAGE_21),
    Architecture("TAESD, 4 ch", ("taesd", "taesdxl"), "AutoencoderTiny", {"latent_channels": 4}),
    Architecture("TAESD, 16 ch", ("taesd3", "taef1"), "AutoencoderTiny", {"latent_channels": 16}),
    Architecture("TAEF2 (real weights)", ("taef2",), None),
]


def install(arch: Architecture, zoo: Zoo, scratch: Path):
    """The architecture in the scratch zoo, exported to ONNX with the parity check; returns (model, seconds)."""
    started = time.perf_counter()
    if arch.diffusers_class is None:
        model = zoo.install("taef2", mirrors=[SHARED / "zoo-mirror"], allow_download=False)
    else:
        import diffusers
        import torch

        torch.manual_seed(0)
        folder = scratch / arch.diffusers_class
        getattr(diffusers, arch.diffusers_class)(**arch.config).save_pretrained(folder, safe_serialization=True)
        model = zoo.import_diffusers(folder, arch.name.lower().replace(" ", "-").replace(",", "")
                                     .replace("/", "-").replace("(", "").replace(")", ""))
    return model, time.perf_counter() - started


def gflop_per_check(model, side: int) -> float:
    """Floating-point operations of two reconstructions at side x side: the install's count (at 256 px,
    on torch's meta device) scaled by the pixel count; attention at larger sizes costs a little more."""
    return model.gflop_per_megapixel * side * side / 1e6


def photo(side: int) -> np.ndarray:
    name, rgb = held_out_photos()[0]
    return np.asarray(Image.fromarray(rgb).resize((side, side), Image.LANCZOS), np.float32) / 255.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    parser.add_argument("--skip-after", type=float, default=60.0,
                        help="skip larger sizes for an architecture whose check took longer (seconds)")
    parser.add_argument("--only", nargs="*", help="architecture names to run (default: all)")
    parser.add_argument("--provider", default="cpu", choices=("cpu", "cuda"),
                        help="cuda: onnxruntime's CUDA provider (TF32 off, as the app runs it)")
    parser.add_argument("--json")
    args = parser.parse_args()

    sessions = SessionCache(RuntimeSettings(provider=args.provider, intra_op_threads=args.threads))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        zoo = Zoo(Path(tmp) / "home")
        for arch in ARCHITECTURES:
            if args.only and arch.name not in args.only:
                continue
            model, install_s = install(arch, zoo, Path(tmp))
            parameters = sum(p.numel() for p in _torch_parameters(model)) / 1e6
            row = {"architecture": arch.name, "catalogue_ids": list(arch.catalogue_ids),
                   "class": arch.diffusers_class or "taesd (TAEF2)", "parameters_millions": round(parameters, 2),
                   "import_and_export_seconds": round(install_s, 1), "sizes": {}}
            autoencoder = OnnxAutoencoder(model, sessions)
            for side in sorted(args.sizes):
                slow = [s for s, r in row["sizes"].items() if r.get("seconds", 0) > args.skip_after]
                if slow:
                    row["sizes"][side] = {"skipped": f"the {slow[0]} px check took more than {args.skip_after:.0f} s"}
                    continue
                rgb = photo(side)
                if args.provider == "cuda":  # the first run of a shape includes cuDNN's algorithm search
                    AEDR.components(rgb, autoencoder, TilingSettings(), NEVER_CANCELLED)
                started = time.perf_counter()
                AEDR.components(rgb, autoencoder, TilingSettings(), NEVER_CANCELLED)
                seconds = time.perf_counter() - started
                row["sizes"][side] = {"gflop": round(gflop_per_check(model, side), 1), "seconds": round(seconds, 2)}
                print(f"{arch.name} @ {side}px: {row['sizes'][side]}", flush=True)
            results.append(row)
            zoo.remove(model.id)

    header = ["architecture", "stands for", "M params"]
    for side in sorted(args.sizes):
        header += [f"GFLOP@{side}", f"s@{side}"]
    rows = []
    for r in results:
        cells = [r["architecture"], ", ".join(r["catalogue_ids"]), r["parameters_millions"]]
        for side in sorted(args.sizes):
            size = r["sizes"][side]
            cells += [size.get("gflop", "-"), size.get("seconds", "skipped")]
        rows.append(cells)
    where = "this CPU" if args.provider == "cpu" else "CUDA (after one warm-up check per size)"
    print_table(f"One AEDR check (2 reconstructions) on {where}, onnxruntime, {args.threads} thread(s), "
                f"random weights at the real sizes", header, rows)
    for r in results:
        for side, size in r["sizes"].items():
            if "skipped" in size:
                print(f"  {r['architecture']} at {side} px skipped: {size['skipped']}")
    write_json(args.json, {"provider": args.provider, "threads": args.threads, "skip_after_seconds": args.skip_after, "results": results})
    return 0


def _torch_parameters(model):
    from forensics_app.core.zoo.architectures import build_autoencoder

    encoder, decoder = build_autoencoder(model.manifest.architecture, model.weight_paths())
    shared = {id(p): p for module in (encoder, decoder) for p in module.parameters()}
    return shared.values()


if __name__ == "__main__":
    sys.exit(main())
