"""Safe weight loading: safetensors, or torch state dicts through ``weights_only=True``.

Nothing else is ever unpickled: a .pth holding arbitrary Python objects is refused.
"""

from __future__ import annotations

from pathlib import Path

from forensics_app.core.errors import ZooError


def load_state_dict(path: Path) -> dict:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises its own error types for corrupt headers
            raise ZooError(f"{path.name} is not a valid safetensors file ({exc}).") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError for unsafe globals, RuntimeError for bad zips
        raise ZooError(f"{path.name} was refused: it is not a plain tensor state dict "
                       f"(only tensors may be loaded; {type(exc).__name__}).") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ZooError(f"{path.name} was refused: it does not hold a state dict of tensors.")
    return state
