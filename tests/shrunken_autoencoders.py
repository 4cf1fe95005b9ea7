"""Small random-weight instances of the real diffusers autoencoder classes: the same code paths as the
catalogue's models (layers, attention, normalisation, up/down sampling), at a size a test can export."""

from __future__ import annotations

from pathlib import Path

SHRUNKEN = {
    "AutoencoderKL": dict(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                          up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, latent_channels=4,
                          norm_num_groups=4, sample_size=32),
    "AutoencoderKLFlux2": dict(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                               up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, latent_channels=8,
                               norm_num_groups=4, sample_size=32),
    "AutoencoderTiny": dict(encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8),
                            num_encoder_blocks=(1, 1), num_decoder_blocks=(1, 1), latent_channels=4),
    "AutoencoderDC": dict(latent_channels=4, attention_head_dim=4,
                          encoder_block_types=("ResBlock", "EfficientViTBlock"),
                          decoder_block_types=("ResBlock", "EfficientViTBlock"),
                          encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8),
                          encoder_layers_per_block=(1, 1), decoder_layers_per_block=(1, 1),
                          encoder_qkv_multiscales=((), (5,)), decoder_qkv_multiscales=((), (5,)),
                          upsample_block_type="interpolate", downsample_block_type="Conv"),
    "AutoencoderKLQwenImage": dict(base_dim=8, z_dim=4, dim_mult=[1, 2], num_res_blocks=1,
                                   temperal_downsample=[False], latents_mean=[0.0] * 4, latents_std=[1.0] * 4),
    "AutoencoderKLHunyuanImage": dict(in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(32, 64),
                                      layers_per_block=1, spatial_compression_ratio=2, sample_size=32),
}


def save_shrunken(class_name: str, folder: Path, seed: int = 0) -> None:
    """config.json + diffusion_pytorch_model.safetensors of a random-weight instance, as diffusers saves them."""
    import diffusers
    import torch

    torch.manual_seed(seed)
    getattr(diffusers, class_name)(**SHRUNKEN[class_name]).save_pretrained(folder, safe_serialization=True)
