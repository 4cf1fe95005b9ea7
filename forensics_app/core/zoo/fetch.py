"""Finding weight files: in mirror folders first (air-gapped labs), else at the upstream URL.

A mirror is any folder; a file is found in it, in any sub-folder, by name and then by SHA-256
(a renamed copy is found by its size and hash). Nothing is accepted whose SHA-256 differs.
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
from forensics_app.core.zoo.manifest import SHIPPED_ZOO_DIR, WeightFile, check_https_url, check_safe_name

MIRROR_ENV = "FORENSICS_APP_MIRROR"
SHIPPED_WEIGHTS_DIR = SHIPPED_ZOO_DIR / "weights"  # small demonstration weights shipped in the repo


@dataclass(frozen=True)
class FetchedFile:
    path: Path
    source: str  # "mirror:<path>" or the URL


def mirror_folders(explicit: list[Path] | None = None) -> list[Path]:
    folders = list(explicit or [])
    folders += [Path(p) for p in os.environ.get(MIRROR_ENV, "").split(os.pathsep) if p]
    folders.append(SHIPPED_WEIGHTS_DIR)
    return [f for f in folders if f.is_dir()]


def find_in_mirrors(weight: WeightFile, mirrors: list[Path]) -> Path | None:
    for mirror in mirrors:
        same_name = sorted(p for p in mirror.rglob(weight.file) if p.is_file())
        for path in same_name:
            if sha256_of_file(path) == weight.sha256:
                return path
        if weight.size is not None:
            for path in sorted(mirror.rglob("*")):
                if path.is_file() and path.stat().st_size == weight.size and sha256_of_file(path) == weight.sha256:
                    return path
    return None


def fetch_weight(weight: WeightFile, dest_dir: Path, mirrors: list[Path], allow_download: bool = True) -> FetchedFile:
    """Copy a verified weight file into dest_dir (atomically) and say where it came from."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / check_safe_name("Weight file name", weight.file)
    found = find_in_mirrors(weight, mirrors)
    if found is not None:
        _atomic_copy(found, dest)
        source = f"mirror:{found}"
    elif weight.url and allow_download:
        _download(weight, dest)
        source = weight.url
    else:
        where = ", ".join(str(m) for m in mirrors) or "no mirror folder"
        raise ZooError(f"{weight.file} (SHA-256 {weight.sha256[:12]}…) was not found in {where}"
                       + ("" if weight.url else ", and it has no upstream URL") + ".")
    actual = sha256_of_file(dest)
    if actual != weight.sha256:
        dest.unlink(missing_ok=True)
        raise ZooError(f"{weight.file}: SHA-256 mismatch (expected {weight.sha256}, got {actual}); "
                       f"the file was not installed.")
    return FetchedFile(dest, source)


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
