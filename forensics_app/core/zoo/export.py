"""Export a torch encoder/decoder to ONNX (dynamic batch, height, width) and check it against torch."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import numpy as np

from forensics_app.core.errors import ZooError

PARITY_TOLERANCE = 1e-3  # max abs difference allowed between ONNX and torch outputs


def _attention_as_matrix_products(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                  enable_gqa=False):
    """softmax(q k^T * scale) v for any number of batch axes: the ONNX exporter translates only 4-D
    scaled_dot_product_attention, and HunyuanImage's autoencoder calls it on 3-D tensors."""
    import torch

    if attn_mask is not None or is_causal or dropout_p or enable_gqa:
        raise NotImplementedError("attention with a mask, causality, dropout or grouped queries is not exported")
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    return torch.matmul(torch.softmax(torch.matmul(query * scale, key.transpose(-2, -1)), dim=-1), value)


def export_module(module, example, path: Path, input_name: str, output_name: str) -> None:
    import torch

    # DYNAMIC lets the exporter infer constraints such as "height is even"; an example batch of 2
    # keeps the batch axis from being specialised to the value 1.
    dynamic = torch.export.Dim.DYNAMIC
    shapes = ({0: dynamic, 2: dynamic, 3: dynamic},)
    example = torch.cat([example, example]) if example.shape[0] == 1 else example
    tmp = path.with_suffix(".partial")
    # The exporter narrates every stage and warns about optional torchvision ops; none of it is news.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            # optimize=False: the exporter's optimiser drops tiny constants such as the 1e-15 in DC-AE's
            # linear attention (x / (sum + 1e-15)), turning 0/1e-15 into 0/0 = NaN; onnxruntime still
            # optimises the graph when it loads it.
            exported = torch.export.export(module, (example,), dynamic_shapes=shapes)
            exported = exported.run_decompositions({torch.ops.aten.scaled_dot_product_attention.default:
                                                    _attention_as_matrix_products})
            program = torch.onnx.export(exported, dynamo=True, input_names=[input_name],
                                        output_names=[output_name], verbose=False, optimize=False)
            program.save(str(tmp), external_data=False)
        tmp.replace(path)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise ZooError(f"Export of {path.name} to ONNX failed: {type(exc).__name__}: {exc}") from exc


def gflop_per_megapixel(encoder, decoder, factor: int) -> float:
    """Floating-point operations (multiply-adds x 2) of one AEDR check, i.e. two reconstructions, per
    megapixel: counted at 256 px on torch's meta device (no arithmetic is done). Moves both modules to
    the meta device: call it last."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    side = max(256 // factor, 1) * factor
    encoder, decoder = encoder.to("meta"), decoder.to("meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        decoder(encoder(torch.zeros(1, 3, side, side, device="meta")))
    return 2 * counter.get_total_flops() / 1e9 / (side * side / 1e6)


def parity_max_abs_diff(module, onnx_path: Path, example) -> float:
    """Run the same random input through torch and onnxruntime (CPU) and return the max abs difference."""
    import onnxruntime as ort
    import torch

    with torch.no_grad():
        expected = module(example).numpy()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: example.numpy()})[0]
    if got.shape != expected.shape:
        raise ZooError(f"{onnx_path.name}: ONNX output shape {got.shape} differs from torch {expected.shape}.")
    return float(np.max(np.abs(got - expected)))
