"""Torch encoder/decoder of an installed model, built once per process: for methods that need gradients.

onnxruntime runs the forward-only methods; optimisation-based methods need autograd, so they run the
same weights (the files the ONNX was exported from, verified at install) in torch. Building the modules
reads the weights, so they are cached per installed model; parameters are frozen, since only the
methods' inputs are ever optimised. Modules use the channels-last layout: about 20% faster
convolutions on CPU (measured for TAEF2's decoder, forward + backward).
"""

from __future__ import annotations

import threading

from forensics_app.core.errors import ZooError
from forensics_app.core.evidence import sha256_of_file
from forensics_app.core.zoo.architectures import build_autoencoder
from forensics_app.core.zoo.store import InstalledModel, torch_available

_lock = threading.Lock()
_built: dict[tuple[str, str], tuple] = {}


def torch_autoencoder(installed: InstalledModel) -> tuple:
    """(encoder, decoder) torch modules in eval mode with frozen parameters, shared by every caller."""
    check_ready(installed)
    import torch

    key = (str(installed.folder), installed.model_hash)
    with _lock:
        if key not in _built:
            _check_weights(installed)
            encoder, decoder = build_autoencoder(installed.manifest.architecture, installed.weight_paths())
            for module in filter(None, (encoder, decoder)):
                module.requires_grad_(False).to(memory_format=torch.channels_last)
            _built[key] = (encoder, decoder)
        return _built[key]


def check_ready(installed: InstalledModel) -> None:
    """Say before any work starts when a torch method cannot run here: no torch, or no weights (a pack install)."""
    if not torch_available():
        raise ZooError(f"{installed.id}: the deep check (inversion) optimises through the decoder with torch, which "
                       f"this installation does not include (the desktop bundle runs ONNX only). Run it with the "
                       f"development install, or leave the deep check off.")
    if installed.lacks_weights:
        raise ZooError(f"{installed.id} was installed from a model pack, which carries the ONNX files but not "
                       f"the weights the deep check (inversion) needs. Install it from its source for the deep "
                       f"check: forensics-app zoo install {installed.id}")


def _check_weights(installed: InstalledModel) -> None:
    """The weight files must still be the ones installed (as the ONNX files are checked before they run)."""
    for weight in installed.manifest.weights:
        path = installed.folder / "weights" / weight.file
        if not path.is_file() or sha256_of_file(path) != weight.sha256:
            raise ZooError(f"{installed.id}: {weight.file} is missing or not the file this model was installed "
                           f"with; it was not loaded. Reinstall: forensics-app zoo install {installed.id}")
