"""The user's zoo folder: installed models, their ONNX files, receipts and calibrations.

Layout (under ``FORENSICS_APP_HOME`` or the platform's user data folder):
    zoo/<id>/manifest.toml      copy of the manifest installed from (imported models: the only copy)
    zoo/<id>/weights/<file>     verified upstream weights
    zoo/<id>/encoder.onnx, decoder.onnx
    zoo/<id>/receipt.json       hashes of weights and ONNX files, parity check, versions, sources
    zoo/<id>/calibration/<method>.json   calibrations made on this machine (override shipped ones)
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from forensics_app import __version__
from forensics_app.core.errors import ModelNotInstalled, ZooError
from forensics_app.core.evidence import sha256_of_file
from forensics_app.core.zoo.export import PARITY_TOLERANCE, export_module, parity_max_abs_diff
from forensics_app.core.zoo.fetch import fetch_weight, mirror_folders
from forensics_app.core.zoo.manifest import Manifest, read_manifest, shipped_manifests

HOME_ENV = "FORENSICS_APP_HOME"
ONNX_FILES = {"encoder": "encoder.onnx", "decoder": "decoder.onnx"}


def app_home() -> Path:
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV])
    from platformdirs import user_data_dir

    return Path(user_data_dir("forensics-app", appauthor=False))


@dataclass(frozen=True)
class InstalledModel:
    manifest: Manifest
    folder: Path
    receipt: dict

    @property
    def id(self) -> str:
        return self.manifest.id

    def onnx_path(self, role: str) -> Path:
        return self.folder / ONNX_FILES[role]

    def weight_paths(self) -> dict[str, Path]:
        return {w.role: self.folder / "weights" / w.file for w in self.manifest.weights}

    @property
    def model_hash(self) -> str:
        """One hash naming exactly these ONNX files: part of every result's cache key and report."""
        return self.receipt["model_hash"]

    def calibration_folder(self) -> Path:
        return self.folder / "calibration"


class Zoo:
    def __init__(self, home: Path | None = None):
        self.home = Path(home) if home else app_home()
        self.root = self.home / "zoo"

    # -- what exists -------------------------------------------------------------------------
    def manifests(self) -> dict[str, Manifest]:
        """Shipped manifests, plus manifests of imported models found in the zoo folder."""
        found = shipped_manifests()
        if self.root.is_dir():
            for path in sorted(self.root.glob("*/manifest.toml")):
                manifest = read_manifest(path)
                found.setdefault(manifest.id, manifest)
        return found

    def manifest(self, model_id: str) -> Manifest:
        manifests = self.manifests()
        if model_id not in manifests:
            raise ZooError(f"No zoo entry called {model_id!r}. Known: {', '.join(sorted(manifests)) or 'none'}.")
        return manifests[model_id]

    def installed_ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob("*/receipt.json"))

    def installed(self, model_id: str) -> InstalledModel:
        folder = self.root / model_id
        receipt_path = folder / "receipt.json"
        if not receipt_path.exists():
            known = self.manifests()
            if model_id not in known:  # a typo: say which ids exist rather than how to install a missing one
                installed = self.installed_ids()
                installable = sorted(i for i, m in known.items() if i not in installed and m.kind == "autoencoder")
                raise ZooError(f"There is no model called {model_id!r}. Installed: {', '.join(installed) or 'none'}; "
                               f"installable: {', '.join(installable) or 'none'} (see: forensics-app zoo list).")
            raise ModelNotInstalled(f"Model {model_id!r} is not installed. Run: forensics-app zoo install {model_id}")
        manifest = read_manifest(folder / "manifest.toml")
        shipped = shipped_manifests().get(model_id)
        if shipped is not None:  # the shipped copy also knows where its default calibration lives
            manifest = shipped if shipped.weights == manifest.weights else manifest
        return InstalledModel(manifest, folder, json.loads(receipt_path.read_text()))

    def all_installed(self) -> list[InstalledModel]:
        return [self.installed(i) for i in self.installed_ids()]

    # -- install -----------------------------------------------------------------------------
    def install(self, model_id: str, mirrors: list[Path] | None = None, allow_download: bool = True,
                log=lambda message: None) -> InstalledModel:
        manifest = self.manifest(model_id)
        if manifest.kind != "autoencoder":
            raise ZooError(f"{model_id} is a {manifest.kind}; only autoencoders are installed this way.")
        folder = self.root / model_id
        weights_dir = folder / "weights"
        sources = {}
        for weight in manifest.weights:
            fetched = fetch_weight(weight, weights_dir, mirror_folders(mirrors), allow_download)
            sources[weight.file] = fetched.source
            log(f"{weight.file}: SHA-256 verified ({fetched.source})")
        from forensics_app.core.zoo.architectures import build_autoencoder

        encoder, decoder = build_autoencoder(manifest.architecture,
                                             {w.role: weights_dir / w.file for w in manifest.weights})
        parity = self._export(manifest, encoder, decoder, folder, log)
        if manifest.source is None or manifest.source.parent != folder:
            (folder / "manifest.toml").write_text(manifest.to_toml(), encoding="utf-8")
        receipt = self._receipt(manifest, folder, sources, parity)
        _write_json_atomic(folder / "receipt.json", receipt)
        log(f"{model_id} installed in {folder}")
        return self.installed(model_id)

    def _export(self, manifest: Manifest, encoder, decoder, folder: Path, log) -> dict:
        import torch

        generator = torch.Generator().manual_seed(0)
        side = 8 * manifest.spatial_factor
        lo, hi = manifest.pixel_range
        image = torch.rand(1, 3, side, side, generator=generator) * (hi - lo) + lo
        with torch.no_grad():
            latent = encoder(image)
        parity = {}
        for role, module, example in (("encoder", encoder, image), ("decoder", decoder, latent)):
            path = folder / ONNX_FILES[role]
            export_module(module, example, path, "image" if role == "encoder" else "latent",
                          "latent" if role == "encoder" else "image")
            # a different size from the export example: proves the height/width axes are really dynamic
            probe = torch.rand(1, example.shape[1], example.shape[2] * 2, example.shape[3] * 3, generator=generator)
            probe = probe * (hi - lo) + lo if role == "encoder" else probe * 2 - 1
            diff = parity_max_abs_diff(module, path, probe)
            if diff > PARITY_TOLERANCE:
                raise ZooError(f"ONNX {role} of {manifest.id} differs from torch by {diff:.2e} "
                               f"(tolerance {PARITY_TOLERANCE}); the install was not completed.")
            parity[role] = {"max_abs_diff": diff, "input_shape": list(probe.shape)}
            log(f"{role}: exported to ONNX, max |ONNX - torch| = {diff:.2e}")
        return parity

    def _receipt(self, manifest: Manifest, folder: Path, sources: dict, parity: dict) -> dict:
        import onnx
        import onnxruntime
        import torch

        onnx_hashes = {role: sha256_of_file(folder / name) for role, name in ONNX_FILES.items()}
        weights = {w.file: {"sha256": w.sha256, "source": sources[w.file]} for w in manifest.weights}
        model_hash = _combined_hash([w.sha256 for w in manifest.weights] + list(onnx_hashes.values()))
        return {
            "id": manifest.id, "model_hash": model_hash, "weights": weights,
            "onnx": {ONNX_FILES[r]: {"sha256": h} for r, h in onnx_hashes.items()},
            "parity": parity, "installed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": {"forensics_app": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
                         "onnxruntime": onnxruntime.__version__, "python": sys.version.split()[0],
                         "platform": platform.platform()},
        }

    # -- verify / remove / import -------------------------------------------------------------
    def verify(self, model_id: str) -> list[str]:
        """Re-hash every installed file against the receipt and manifest; return the problems found."""
        model = self.installed(model_id)
        problems = []
        for weight in model.manifest.weights:
            path = model.folder / "weights" / weight.file
            if not path.exists():
                problems.append(f"{weight.file} is missing")
            elif sha256_of_file(path) != weight.sha256:
                problems.append(f"{weight.file} has changed (SHA-256 differs from the manifest)")
        for name, entry in model.receipt["onnx"].items():
            path = model.folder / name
            if not path.exists():
                problems.append(f"{name} is missing")
            elif sha256_of_file(path) != entry["sha256"]:
                problems.append(f"{name} has changed (SHA-256 differs from the install receipt)")
        return problems

    def remove(self, model_id: str) -> None:
        folder = self.root / model_id
        if not folder.is_dir():
            raise ModelNotInstalled(f"Model {model_id!r} is not installed.")
        shutil.rmtree(folder)

    def import_diffusers(self, source: Path, model_id: str, log=lambda message: None) -> InstalledModel:
        """Add a local diffusers autoencoder folder (config.json + safetensors) to the zoo and install it."""
        from forensics_app.core.zoo.architectures.diffusers_vae import manifest_for_folder

        if model_id in shipped_manifests() or (self.root / model_id).exists():
            raise ZooError(f"A zoo entry called {model_id!r} already exists; choose another --id.")
        manifest = manifest_for_folder(Path(source), model_id)
        folder = self.root / model_id
        folder.mkdir(parents=True)
        try:
            (folder / "manifest.toml").write_text(manifest.to_toml(), encoding="utf-8")
            return self.install(model_id, mirrors=[Path(source)], allow_download=False, log=log)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise


def _combined_hash(hashes: list[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
