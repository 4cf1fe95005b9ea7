"""An installed autoencoder run through onnxruntime: the object every training-free method uses."""

from __future__ import annotations

import hashlib

import numpy as np

from forensics_app.core.errors import ZooError
from forensics_app.core.imageprep import TilingSettings, apply_tiled, from_model_range, to_model_range
from forensics_app.core.jobs import NEVER_CANCELLED, CancelToken
from forensics_app.core.runtime import SessionCache, default_session_cache, session_provider
from forensics_app.core.zoo.store import ONNX_FILES, InstalledModel


class OnnxAutoencoder:
    def __init__(self, model: InstalledModel, sessions: SessionCache | None = None):
        self.model = model
        sessions = sessions or default_session_cache()
        self.onnx_sha256: dict[str, str] = {}  # file name -> SHA-256 of the bytes the sessions were made from
        self._encoder = self._verified_session(sessions, "encoder")
        self._decoder = self._verified_session(sessions, "decoder")

    def _verified_session(self, sessions: SessionCache, role: str):
        """Hash the ONNX bytes, compare with the install receipt, and run exactly those bytes."""
        name = ONNX_FILES[role]
        path = self.model.onnx_path(role)
        if not path.is_file():
            raise ZooError(f"{self.id}: {name} is missing; reinstall: forensics-app zoo install {self.id}")
        data = path.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        expected = self.model.receipt.get("onnx", {}).get(name, {}).get("sha256")
        if actual != expected:
            raise ZooError(f"{self.id}: {name} is not the file this model was installed with (SHA-256 "
                           f"{actual[:12]}…, receipt {str(expected)[:12]}…); it was not run. "
                           f"Reinstall: forensics-app zoo install {self.id}")
        self.onnx_sha256[name] = actual
        return sessions.get_verified(data, actual)

    @property
    def onnx_record(self) -> dict:
        """What ran, in the receipt's shape: {file name: {"sha256": hash of the bytes loaded}}."""
        return {name: {"sha256": digest} for name, digest in self.onnx_sha256.items()}

    @property
    def id(self) -> str:
        return self.model.id

    @property
    def manifest(self):
        return self.model.manifest

    @property
    def provider(self) -> str:
        return session_provider(self._decoder)

    def encode(self, image: np.ndarray, cancel: CancelToken = NEVER_CANCELLED) -> np.ndarray:
        """(N, 3, H, W) in the model's pixel range -> latent."""
        return _run(self._encoder, image, cancel)

    def decode(self, latent: np.ndarray, cancel: CancelToken = NEVER_CANCELLED) -> np.ndarray:
        return _run(self._decoder, latent, cancel)

    def reconstruct(self, rgb01: np.ndarray, tiling: TilingSettings = TilingSettings(),
                    cancel: CancelToken = NEVER_CANCELLED) -> np.ndarray:
        """R(x) = D(E(x)) for an (H, W, 3) image in [0, 1] whose sides are multiples of the spatial factor.

        The output is clipped to [0, 1] as any saved image of the generator would be.
        """
        pixel_range = self.manifest.pixel_range

        def one_pass(tile: np.ndarray) -> np.ndarray:
            latent = self.encode(to_model_range(tile, pixel_range), cancel)
            return from_model_range(self.decode(latent, cancel), pixel_range)

        return apply_tiled(one_pass, rgb01, self.manifest.spatial_factor, tiling, cancel.raise_if_cancelled)


def _run(session, array: np.ndarray, cancel: CancelToken) -> np.ndarray:
    import onnxruntime as ort

    cancel.raise_if_cancelled()
    options = ort.RunOptions()
    cancel.track(options)
    try:
        return session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(array, np.float32)},
                           options)[0]
    except Exception:
        cancel.raise_if_cancelled()  # a terminated run surfaces as Cancelled, not as a model error
        raise
    finally:
        cancel.untrack(options)
