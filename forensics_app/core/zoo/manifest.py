"""Zoo manifests: one TOML file per generator family (autoencoder or extractor).

Shipped manifests live in the repository's ``model_zoo/``; manifests written by ``zoo import``
live beside the installed files in the user's zoo folder. Both have the same format (see README).
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import tomli_w

from forensics_app.core.errors import ZooError

# Ids and file names become path components under the zoo folder: one plain component, never "..".
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_safe_name(what: str, name) -> str:
    """``name`` when it is a single plain path component (letters, digits, ``._-``), else ZooError."""
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name):
        raise ZooError(f"{what} {name!r} is not allowed: use letters, digits, '.', '_' and '-' only, "
                       f"starting with a letter or digit (it names a file or folder inside the zoo).")
    return name


def check_https_url(url) -> str:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme != "https" or not parts.hostname:
        raise ZooError(f"Weight URL {url!r} is not allowed: only https:// URLs are fetched.")
    return url


_HUB_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
_HUB_REVISION = re.compile(r"[0-9a-f]{40}|[A-Za-z0-9][A-Za-z0-9_.-]*")
HUB_SITE = "https://huggingface.co"


def check_hub_path(path) -> str:
    """A file's path inside a hub repository: relative, each part a plain name."""
    if not isinstance(path, str) or not path or not all(_SAFE_NAME.fullmatch(p) for p in path.split("/")):
        raise ZooError(f"Hub file path {path!r} is not allowed: a relative path of plain names.")
    return path


@dataclass(frozen=True)
class HubSource:
    """Where a catalogue entry's files live on the Hugging Face hub."""

    repo: str  # "owner/name"
    revision: str  # a commit hash (pinned) or a branch name such as "main" (not pinned)
    gated: bool = False  # the licence must be accepted on the hub and a token given

    def __post_init__(self):
        if not isinstance(self.repo, str) or not _HUB_REPO.fullmatch(self.repo):
            raise ZooError(f"Hub repository {self.repo!r} is not of the form owner/name.")
        if not isinstance(self.revision, str) or not _HUB_REVISION.fullmatch(self.revision):
            raise ZooError(f"Hub revision {self.revision!r} is neither a commit hash nor a branch name.")

    @property
    def pinned(self) -> bool:
        return bool(re.fullmatch(r"[0-9a-f]{40}", self.revision))

    def url(self, path: str) -> str:
        return f"{HUB_SITE}/{self.repo}/resolve/{self.revision}/{path}"


def _shipped_zoo_dir() -> Path:
    """model_zoo/ of a source checkout, else the copy a wheel installed under <prefix>/share."""
    checkout = Path(__file__).resolve().parents[3] / "model_zoo"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "forensics-app" / "model_zoo"


SHIPPED_ZOO_DIR = _shipped_zoo_dir()


@dataclass(frozen=True)
class WeightFile:
    role: str  # "encoder", "decoder", "autoencoder", "extractor", "config", ...
    file: str  # file name in the mirror and in the install folder
    sha256: str | None  # None: the source publishes none; the installer records the hash it fetched
    size: int | None = None
    url: str | None = None  # upstream location; None for files that only exist locally
    hub_path: str | None = None  # path inside the manifest's hub repository
    recorded_at_install: bool = False  # sha256 is the hash first fetched, not one the source published

    def __post_init__(self):
        check_safe_name("Weight file name", self.file)
        if self.url is not None:
            check_https_url(self.url)
        if self.hub_path is not None:
            check_hub_path(self.hub_path)
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", str(self.sha256)):
            raise ZooError(f"{self.file}: {self.sha256!r} is not a SHA-256 (64 lower-case hex digits).")

    @property
    def pinned(self) -> bool:
        """True when the hash was published by the source (or made here, for local files)."""
        return self.sha256 is not None and not self.recorded_at_install

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None and v is not False}


@dataclass(frozen=True)
class Manifest:
    id: str
    display_name: str
    kind: str  # "autoencoder" (training-free methods) or "extractor" (learned fingerprints)
    family: str  # e.g. "FLUX.2 latent space"
    used_by: tuple[str, ...]  # public generators whose images this component produces
    licence: str
    architecture: dict  # {"builder": module in zoo/architectures, ...builder parameters}
    weights: tuple[WeightFile, ...]
    pixel_range: tuple[float, float] = (0.0, 1.0)
    spatial_factor: int = 8
    latent_scale: float = 1.0
    latent_shift: float = 0.0
    # side of the patch AEDR tries every latent-grid phase on (0: scored at the stored grid only);
    # set per model from the measured phase recovery and cost (methods/aedr.py)
    phase_search_patch: int = 0
    # the AEDR score form this model is read and calibrated with (methods/aedr.py SCORE_FORMS); chosen
    # per decoder, since where its traces survive JPEG depends on the decoder
    aedr_score_form: str = "highpass"
    demonstration: bool = False  # trained by this project for demonstration; not a public generator
    description: str = ""
    calibration_file: str | None = None  # shipped default calibration beside the manifest
    extra: dict = field(default_factory=dict)  # recipe, provenance notes, class lists, ...
    source: Path | None = None  # the TOML file this was read from
    hub: HubSource | None = None  # catalogue entries fetched from the Hugging Face hub

    def __post_init__(self):
        check_safe_name("Model id", self.id)
        if self.calibration_file is not None:
            check_safe_name("Calibration file name", self.calibration_file)

    @property
    def shipped_calibration(self) -> Path | None:
        if self.calibration_file and self.source is not None:
            path = self.source.parent / self.calibration_file
            return path if path.exists() else None
        return None

    def source_urls(self) -> list[str]:
        """Where each weight file comes from upstream (hub files: their resolve URL at the revision)."""
        urls = []
        for weight in self.weights:
            if self.hub is not None and weight.hub_path:
                urls.append(self.hub.url(weight.hub_path))
            elif weight.url:
                urls.append(weight.url)
        return urls

    def to_toml(self) -> str:
        doc = {
            "id": self.id, "display_name": self.display_name, "kind": self.kind, "family": self.family,
            "used_by": list(self.used_by), "licence": self.licence, "demonstration": self.demonstration,
            "description": self.description,
            "input": {"pixel_range": list(self.pixel_range), "spatial_factor": self.spatial_factor,
                      "latent_scale": self.latent_scale, "latent_shift": self.latent_shift,
                      "phase_search_patch": self.phase_search_patch, "aedr_score_form": self.aedr_score_form},
            "architecture": self.architecture,
            "weights": [w.to_dict() for w in self.weights],
        }
        if self.hub is not None:
            doc["hub"] = {"repo": self.hub.repo, "revision": self.hub.revision, "gated": self.hub.gated}
        if self.calibration_file:
            doc["calibration"] = {"file": self.calibration_file}
        if self.extra:
            doc["extra"] = self.extra
        return tomli_w.dumps(doc)


def parse_manifest(text: str, source: Path | None = None) -> Manifest:
    where = source.name if source else "manifest"
    try:
        doc = tomllib.loads(text)
        inp = doc.get("input", {})
        return Manifest(
            id=doc["id"], display_name=doc["display_name"], kind=doc.get("kind", "autoencoder"),
            family=doc.get("family", ""), used_by=tuple(doc.get("used_by", ())), licence=doc["licence"],
            architecture=dict(doc["architecture"]),
            weights=tuple(WeightFile(**({"sha256": None} | w)) for w in doc["weights"]),
            pixel_range=tuple(inp.get("pixel_range", (0.0, 1.0))), spatial_factor=int(inp.get("spatial_factor", 8)),
            latent_scale=float(inp.get("latent_scale", 1.0)), latent_shift=float(inp.get("latent_shift", 0.0)),
            phase_search_patch=int(inp.get("phase_search_patch", 0)),
            aedr_score_form=str(inp.get("aedr_score_form", "highpass")),
            demonstration=bool(doc.get("demonstration", False)), description=doc.get("description", ""),
            calibration_file=doc.get("calibration", {}).get("file"), extra=doc.get("extra", {}), source=source,
            hub=HubSource(**doc["hub"]) if "hub" in doc else None,
        )
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ZooError(f"{where} is not a valid zoo manifest ({type(exc).__name__}: {exc}).") from None
    except ZooError as exc:
        raise ZooError(f"{where}: {exc}") from None


def read_manifest(path: Path) -> Manifest:
    return parse_manifest(path.read_text(encoding="utf-8"), source=path)


def shipped_manifest_dir() -> Path:
    return Path(os.environ.get("FORENSICS_APP_MANIFESTS", SHIPPED_ZOO_DIR))


def shipped_manifests() -> dict[str, Manifest]:
    out = {}
    for path in sorted(shipped_manifest_dir().glob("*.toml")):
        m = read_manifest(path)
        out[m.id] = m
    return out
