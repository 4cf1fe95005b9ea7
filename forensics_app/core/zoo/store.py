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
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from forensics_app import __version__
from forensics_app.core.errors import ModelNotInstalled, ZooError
from forensics_app.core.evidence import sha256_of_file
from forensics_app.core.zoo.export import PARITY_TOLERANCE, export_module, gflop_per_megapixel, parity_max_abs_diff
from forensics_app.core.zoo.fetch import fetch_weight, mirror_folders
from forensics_app.core.zoo.manifest import Manifest, check_safe_name, read_manifest, shipped_manifests

HOME_ENV = "FORENSICS_APP_HOME"
ONNX_FILES = {"encoder": "encoder.onnx", "decoder": "decoder.onnx"}
STAGING = ".installing"  # inside a model's folder: everything an install writes, until it succeeds


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

    @property
    def gflop_per_megapixel(self) -> float | None:
        """What one AEDR check costs per megapixel, counted at install (None: installed before it was)."""
        return self.receipt.get("cost", {}).get("gflop_per_megapixel")

    @property
    def from_pack(self) -> bool:
        """Installed from a model pack (core/zoo/pack.py), which carries the ONNX files but not the weights."""
        return "pack" in self.receipt

    @property
    def lacks_weights(self) -> bool:
        """Installed from a pack and without (some of) its weight files: ONNX analysis only."""
        return self.from_pack and not all(p.exists() for p in self.weight_paths().values())


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

    def model_folder(self, model_id: str) -> Path:
        """zoo/<id>, refusing ids that are not one plain name (no '/', '..', '.')."""
        return self.root / check_safe_name("Model id", model_id)

    def installed(self, model_id: str) -> InstalledModel:
        folder = self.model_folder(model_id)
        receipt_path = folder / "receipt.json"
        if not receipt_path.is_file():
            known = self.manifests()
            if model_id not in known:  # a typo: say which ids exist rather than how to install a missing one
                installed = self.installed_ids()
                installable = sorted(i for i, m in known.items() if i not in installed and m.kind == "autoencoder")
                raise ZooError(f"There is no model called {model_id!r}. Installed: {', '.join(installed) or 'none'}; "
                               f"installable: {', '.join(installable) or 'none'} (see: forensics-app zoo list).")
            raise ModelNotInstalled(f"Model {model_id!r} is not installed. Run: forensics-app zoo install {model_id}")
        manifest = read_manifest(folder / "manifest.toml")
        receipt = json.loads(receipt_path.read_text(encoding="utf-8"))
        if manifest.id != model_id or receipt.get("id") != model_id:
            raise ZooError(f"The zoo folder {folder} holds files of another model (manifest {manifest.id!r}, "
                           f"receipt {receipt.get('id')!r}); reinstall {model_id}.")
        if receipt.get("model_hash") != model_hash_of(manifest, receipt):
            raise ZooError(f"The install receipt of {model_id} does not match its manifest and ONNX hashes; "
                           f"reinstall {model_id}.")
        shipped = shipped_manifests().get(model_id)
        if shipped is not None:  # the shipped copy also knows where its default calibration lives
            manifest = shipped if shipped.weights == manifest.weights else manifest
        return InstalledModel(manifest, folder, receipt)

    def all_installed(self) -> list[InstalledModel]:
        return [self.installed(i) for i in self.installed_ids()]

    # -- install -----------------------------------------------------------------------------
    def install(self, model_id: str, mirrors: list[Path] | None = None, allow_download: bool = True,
                log=lambda message: None) -> InstalledModel:
        """Fetch, build, export and check in zoo/<id>/.installing, then move the results into zoo/<id>.

        A failed install leaves nothing behind: the staging folder goes, and so does zoo/<id> when
        this install created it. The receipt is written last, so a model counts as installed only
        when every file it names is in place.
        """
        manifest = self.manifest(model_id)
        if manifest.kind != "autoencoder":
            raise ZooError(f"{model_id} is a {manifest.kind}; only autoencoders are installed this way.")
        require_torch(f"Installing {model_id} from its source files")
        folder = self.model_folder(model_id)
        created = not folder.exists()
        staging = folder / STAGING
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            sources, weights = {}, []
            for weight in manifest.weights:
                fetched = fetch_weight(weight, staging / "weights", mirror_folders(mirrors), allow_download,
                                       hub=manifest.hub)
                sources[weight.file] = fetched.source
                if weight.sha256 is None:  # the source publishes no hash: this install records it
                    weight = replace(weight, sha256=fetched.sha256, recorded_at_install=True)
                    log(f"{weight.file}: SHA-256 {fetched.sha256} recorded, not pinned ({fetched.source})")
                else:
                    log(f"{weight.file}: SHA-256 verified ({fetched.source})")
                weights.append(weight)
            manifest = replace(manifest, weights=tuple(weights))
            from forensics_app.core.zoo.architectures import build_autoencoder

            encoder, decoder = build_autoencoder(manifest.architecture,
                                                 {w.role: staging / "weights" / w.file for w in manifest.weights})
            parity = self._export(manifest, encoder, decoder, staging, log)
            cost = {"gflop_per_megapixel": gflop_per_megapixel(encoder, decoder, manifest.spatial_factor)}
            self._commit(manifest, staging, folder)
            write_receipt(folder / "receipt.json", self._receipt(manifest, folder, sources, parity, cost))
        except BaseException:
            if created:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log(f"{model_id} installed in {folder}")
        return self.installed(model_id)

    @staticmethod
    def _commit(manifest: Manifest, staging: Path, folder: Path) -> None:
        (folder / "receipt.json").unlink(missing_ok=True)  # not installed while files are being swapped
        (folder / "weights").mkdir(exist_ok=True)
        for weight in manifest.weights:
            os.replace(staging / "weights" / weight.file, folder / "weights" / weight.file)
        for name in ONNX_FILES.values():
            os.replace(staging / name, folder / name)
        if manifest.source is None or manifest.source.parent != folder:
            (folder / "manifest.toml").write_text(manifest.to_toml(), encoding="utf-8")

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
            if not diff <= PARITY_TOLERANCE:  # NaN (a model that outputs NaN) fails too
                raise ZooError(f"ONNX {role} of {manifest.id} differs from torch by {diff:.2e} "
                               f"(tolerance {PARITY_TOLERANCE}); the install was not completed.")
            parity[role] = {"max_abs_diff": diff, "input_shape": list(probe.shape)}
            log(f"{role}: exported to ONNX, max |ONNX - torch| = {diff:.2e}")
        return parity

    def _receipt(self, manifest: Manifest, folder: Path, sources: dict, parity: dict, cost: dict) -> dict:
        import onnx
        import onnxruntime
        import torch

        onnx_files = {name: {"sha256": sha256_of_file(folder / name)} for name in ONNX_FILES.values()}
        weights = {w.file: {"sha256": w.sha256, "pinned": w.pinned, "source": sources[w.file]}
                   for w in manifest.weights}
        return {
            "id": manifest.id, "model_hash": model_hash_of(manifest, {"onnx": onnx_files}), "weights": weights,
            "onnx": onnx_files,
            "parity": parity, "cost": cost, "installed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
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
                if not model.from_pack:  # a pack carries no weights: analysis runs the ONNX files alone
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
        """Delete an installed model's folder; only an installed id, only a real folder inside the zoo."""
        if not isinstance(model_id, str) or model_id not in self.installed_ids():
            raise ModelNotInstalled(f"Model {model_id!r} is not installed "
                                    f"(installed: {', '.join(self.installed_ids()) or 'none'}).")
        folder = self.model_folder(model_id)
        if folder.is_symlink() or folder.resolve().parent != self.root.resolve():
            raise ZooError(f"{folder} is not a folder inside the zoo ({self.root}); it was not removed.")
        shutil.rmtree(folder)

    def import_diffusers(self, source: Path, model_id: str, log=lambda message: None) -> InstalledModel:
        """Add a local diffusers autoencoder folder (config.json + safetensors) to the zoo and install it."""
        require_torch(f"Importing {source}")
        from forensics_app.core.zoo.architectures.diffusers_vae import manifest_for_folder

        folder = self.model_folder(model_id)
        if model_id in shipped_manifests() or folder.exists():
            raise ZooError(f"A zoo entry called {model_id!r} already exists; choose another --id.")
        manifest = manifest_for_folder(Path(source), model_id)
        folder.mkdir(parents=True)
        try:
            (folder / "manifest.toml").write_text(manifest.to_toml(), encoding="utf-8")
            return self.install(model_id, mirrors=[Path(source)], allow_download=False, log=log)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise


def torch_available() -> bool:
    """Whether torch can be imported: an analysis-only installation (the desktop bundle) has none."""
    import importlib

    try:
        importlib.import_module("torch")
    except ImportError:
        return False
    return True


def require_torch(what: str) -> None:
    """Exporting to ONNX needs torch."""
    if not torch_available():
        raise ZooError(f"{what} exports the model to ONNX with torch, which this installation does not include. "
                       f"Install a model pack instead: forensics-app zoo install FILE.fapack (a pack is made on a "
                       f"machine with torch: forensics-app zoo pack ID --out FILE.fapack).")


def model_hash_of(manifest: Manifest, receipt: dict) -> str:
    """One hash over the weights' and the ONNX files' SHA-256s (weights in manifest order, then encoder, decoder)."""
    import hashlib

    onnx = receipt.get("onnx", {})
    hashes = [w.sha256 for w in manifest.weights] + [str(onnx.get(n, {}).get("sha256")) for n in ONNX_FILES.values()]
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def write_receipt(path: Path, data: dict) -> None:
    """An install receipt, written whole or not at all (also by pack installs: the same bytes either way)."""
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
