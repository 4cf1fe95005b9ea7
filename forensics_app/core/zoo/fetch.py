"""Finding weight files: in mirror folders first (air-gapped labs), else upstream (the hub or an https URL).

A mirror is any folder. A file with a published SHA-256 is found in it, in any sub-folder, by name and
then by hash (a renamed copy is found by its size and hash); nothing is accepted whose SHA-256 differs.
A hub file whose source publishes no hash is found only where its repository's files would be: a hub
cache (``models--owner--name/snapshots/...``), a download of the repository (``owner/name/...``), or a
diffusers folder holding it; its hash is recorded at install ("recorded, not pinned").

Hub files are downloaded with huggingface_hub: resumable, with a progress bar, a token from ``HF_TOKEN``
or ``hf auth login`` for gated repositories, ``HF_ENDPOINT`` for a private mirror of the hub, and
``HF_HUB_OFFLINE=1`` (or ``--offline``) limiting it to the local hub cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from forensics_app.core.errors import ZooError
from forensics_app.core.evidence import sha256_of_file
from forensics_app.core.zoo.manifest import SHIPPED_ZOO_DIR, HubSource, WeightFile, check_https_url, check_safe_name

MIRROR_ENV = "FORENSICS_APP_MIRROR"
SHIPPED_WEIGHTS_DIR = SHIPPED_ZOO_DIR / "weights"  # small demonstration weights shipped in the repo


@dataclass(frozen=True)
class FetchedFile:
    path: Path
    source: str  # "mirror:<path>", "hub cache:<path>" or the URL
    sha256: str  # of the installed copy: the published hash, or the one recorded now


def hub_offline() -> bool:
    """HF_HUB_OFFLINE read now (huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "on", "yes", "true")


def mirror_folders(explicit: list[Path] | None = None) -> list[Path]:
    folders = list(explicit or [])
    folders += [Path(p) for p in os.environ.get(MIRROR_ENV, "").split(os.pathsep) if p]
    folders.append(SHIPPED_WEIGHTS_DIR)
    return [f for f in folders if f.is_dir()]


def find_in_mirrors(weight: WeightFile, mirrors: list[Path], hub: HubSource | None = None) -> Path | None:
    for mirror in mirrors:
        for path in _expected_locations(weight, mirror, hub):
            if path.is_file() and (weight.sha256 is None or sha256_of_file(path) == weight.sha256):
                return path
        if weight.sha256 is None:
            continue  # without a published hash, a file elsewhere by the same name could be anything
        same_name = sorted(p for p in mirror.rglob(weight.file) if p.is_file())
        for path in same_name:
            if sha256_of_file(path) == weight.sha256:
                return path
        if weight.size is not None:
            for path in sorted(mirror.rglob("*")):
                if path.is_file() and path.stat().st_size == weight.size and sha256_of_file(path) == weight.sha256:
                    return path
    return None


def _expected_locations(weight: WeightFile, mirror: Path, hub: HubSource | None) -> list[Path]:
    """Where a hub file lies in a mirror: hub cache, repository download, or a diffusers folder.
    A file from an upstream URL is looked for by its name (such names are specific: taesd_encoder.pth)."""
    if hub is None or not weight.hub_path:
        return sorted(mirror.rglob(weight.file)) if weight.url else []  # upstream names are specific
    from huggingface_hub import try_to_load_from_cache

    owner, name = hub.repo.split("/")
    cached = try_to_load_from_cache(hub.repo, weight.hub_path, cache_dir=mirror, revision=hub.revision)
    candidates = [Path(cached)] if isinstance(cached, str) else []
    return candidates + [mirror / owner / name / weight.hub_path, mirror / name / weight.hub_path,
                         mirror / weight.hub_path, mirror / Path(weight.hub_path).name]


def fetch_weight(weight: WeightFile, dest_dir: Path, mirrors: list[Path], allow_download: bool = True,
                 hub: HubSource | None = None) -> FetchedFile:
    """Copy a verified weight file into dest_dir (atomically) and say where it came from."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / check_safe_name("Weight file name", weight.file)
    allow_download = allow_download and not hub_offline()
    found = find_in_mirrors(weight, mirrors, hub)
    if found is not None:
        _atomic_copy(found, dest)
        source = f"mirror:{found}"
    elif hub is not None and weight.hub_path:
        source = _hub_fetch(hub, weight, dest, allow_download)
    elif weight.url and allow_download:
        _download(weight, dest)
        source = weight.url
    else:
        where = ", ".join(str(m) for m in mirrors) or "no mirror folder"
        named = f"{weight.file} (SHA-256 {weight.sha256[:12]}…)" if weight.sha256 else weight.file
        raise ZooError(f"{named} was not found in {where}"
                       + ("" if weight.url else ", and it has no upstream URL") + ".")
    actual = sha256_of_file(dest)
    if weight.sha256 is not None and actual != weight.sha256:
        dest.unlink(missing_ok=True)
        raise ZooError(f"{weight.file}: SHA-256 mismatch (expected {weight.sha256}, got {actual}); "
                       f"the file was not installed.")
    return FetchedFile(dest, source, actual)


def _hub_fetch(hub: HubSource, weight: WeightFile, dest: Path, allow_download: bool) -> str:
    """Download (or, offline, take from the local hub cache) one file of a hub repository."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError

    url = hub.url(weight.hub_path)
    try:
        path = hf_hub_download(hub.repo, weight.hub_path, revision=hub.revision, local_files_only=not allow_download,
                               endpoint=os.environ.get("HF_ENDPOINT") or None,
                               cache_dir=os.environ.get("HF_HUB_CACHE") or None)
    except GatedRepoError:
        raise ZooError(f"{hub.repo} is gated: accept its licence on huggingface.co with your account, then give "
                       f"a token (HF_TOKEN or `hf auth login`) and install again.") from None
    except LocalEntryNotFoundError:
        raise ZooError(f"{weight.hub_path} of {hub.repo} is not in the local hub cache and downloads are off "
                       f"(--offline or HF_HUB_OFFLINE). Point --mirror at a folder holding it (a hub cache, "
                       f"a download of the repository, or a diffusers folder).") from None
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise ZooError(f"Could not download {url}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}. "
                       f"On a machine without internet, point --mirror (or ${MIRROR_ENV}) at a folder "
                       f"holding the file.") from None
    _atomic_copy(Path(path), dest)
    return url if allow_download else f"hub cache:{path}"


def _atomic_copy(src: Path, dest: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".partial-")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ZooError(f"Could not write {dest}: {exc.strerror or exc}.") from None


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects (GitHub's raw URLs redirect) but never to anything other than https."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        check_https_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


# Only the handlers https needs: no file://, ftp:// or data: opener is ever built.
_HTTPS_ONLY = urllib.request.OpenerDirector()
for _handler in (urllib.request.HTTPSHandler(), _HttpsOnlyRedirects(), urllib.request.HTTPErrorProcessor(),
                 urllib.request.HTTPDefaultErrorHandler()):
    _HTTPS_ONLY.add_handler(_handler)


def _download(weight: WeightFile, dest: Path, timeout: float = 60.0) -> None:
    check_https_url(weight.url)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".download-")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, _HTTPS_ONLY.open(weight.url, timeout=timeout) as response:
            while block := response.read(1 << 20):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != weight.sha256:
            raise ZooError(f"{weight.file} downloaded from {weight.url} has SHA-256 {digest.hexdigest()}, "
                           f"expected {weight.sha256}; it was discarded.")
        os.replace(tmp, dest)
    except OSError as exc:
        raise ZooError(f"Could not download {weight.file} from {weight.url}: {exc}. On a machine without "
                       f"internet, point --mirror (or ${MIRROR_ENV}) at a folder holding the file.") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
