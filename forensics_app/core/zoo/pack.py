"""Model packs: one file that installs a model with onnxruntime alone (no torch, no download).

A lab installs a model from its source (export to ONNX needs torch), calibrates it, and writes a pack
with ``forensics-app zoo pack ID --out FILE``; every desk installs that file with ``zoo install FILE``.

A pack is a ZIP file holding:
    pack.json              format, model id, model hash, and the SHA-256 and size of every other member
    manifest.toml          the installed manifest (weights' hashes included)
    receipt.json           the install receipt: ONNX hashes, parity check, versions, sources
    <name>.onnx            every ONNX file the receipt names (encoder, decoder)
    <calibration file>     the calibration shipped with the manifest, when it has one
    calibration/calibration.json   a calibration made on the lab's machine, when there is one

The upstream weights are not packed: analysis runs the ONNX files only. The deep check (inversion)
needs them and torch, so a model installed from a pack says so when it is asked for.

Installing verifies everything before anything in the zoo changes: member names, sizes and SHA-256
against pack.json, the receipt's ONNX hashes and model hash, the manifest against the catalogue's
published weight hashes, the calibration files' shape, and that onnxruntime loads every ONNX file.
The new model folder is built beside the zoo and swapped in by renaming, so a refused or interrupted
install leaves the installed models as they were. The hashes find damage and partial edits; they do
not prove who made a pack: compare the pack's SHA-256 (printed by ``zoo pack``) with the lab's, or pass
it to ``zoo install FILE --sha256 HEX``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from forensics_app import __version__
from forensics_app.core.errors import ZooError
from forensics_app.core.evidence import sha256_of_file
from forensics_app.core.files import atomic_output, check_output_path
from forensics_app.core.zoo.manifest import check_safe_name, parse_manifest, shipped_manifests
from forensics_app.core.zoo.store import InstalledModel, Zoo, model_hash_of, write_receipt

PACK_FORMAT = "forensics-app/model-pack/1"
PACK_SUFFIX = ".fapack"
INDEX = "pack.json"
MANIFEST = "manifest.toml"
RECEIPT = "receipt.json"
LOCAL_CALIBRATION = "calibration/calibration.json"
PACKS_ENV = "FORENSICS_APP_PACKS"
_MAX_SMALL_FILE = 64 << 20  # manifest, receipt and calibrations are kilobytes to a few megabytes
_CHUNK = 1 << 20


@dataclass(frozen=True)
class PackInfo:
    path: Path
    model_id: str
    sha256: str  # of the pack file: what a desk compares with the lab's
    files: dict  # member name -> {"sha256", "size"}


def make_pack(zoo: Zoo, model_id: str, out: Path, log=lambda message: None) -> PackInfo:
    """Write the installed model ``model_id`` as one pack file at ``out`` (atomically)."""
    model = zoo.installed(model_id)
    problems = zoo.verify(model_id)
    if problems:
        raise ZooError(f"{model_id} fails its own check ({'; '.join(problems)}); reinstall it before packing.")
    if model.manifest.kind != "autoencoder":
        raise ZooError(f"{model_id} is a {model.manifest.kind}; only autoencoders are packed.")
    members = {MANIFEST: model.folder / MANIFEST, RECEIPT: model.folder / RECEIPT}
    for name in model.receipt["onnx"]:
        members[check_safe_name("ONNX file name", name)] = model.folder / name
    shipped = model.manifest.shipped_calibration
    if shipped is not None:
        members[model.manifest.calibration_file] = shipped
    local = model.calibration_folder() / "calibration.json"
    if local.is_file():
        members[LOCAL_CALIBRATION] = local
    out = check_output_path(out, members.values(), "pack file")
    for name in (MANIFEST, RECEIPT, *(n for n in members if n.endswith(".json") and n != RECEIPT)):
        _check_small(name, members[name].stat().st_size)
    files = {name: {"sha256": sha256_of_file(path), "size": path.stat().st_size} for name, path in members.items()}
    if any(files[name]["sha256"] != entry["sha256"] for name, entry in model.receipt["onnx"].items()):
        raise ZooError(f"An ONNX file of {model_id} changed while it was being packed; try again.")
    index = {"format": PACK_FORMAT, "id": model_id, "display_name": model.manifest.display_name,
             "model_hash": model.model_hash, "files": files,
             "made_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "made_with": {"forensics_app": __version__, "python": sys.version.split()[0]}}
    with atomic_output(out) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        archive.writestr(INDEX, json.dumps(index, indent=2, sort_keys=True), zipfile.ZIP_DEFLATED)
        for name, path in members.items():
            # ONNX weights barely compress; storing them keeps packing and installing fast
            method = zipfile.ZIP_STORED if name.endswith(".onnx") else zipfile.ZIP_DEFLATED
            archive.write(path, name, method)
    info = PackInfo(out, model_id, sha256_of_file(out), files)
    log(f"{model_id}: {len(files)} files packed into {out} ({out.stat().st_size / 1e6:.1f} MB), "
        f"pack SHA-256 {info.sha256}")
    return info


def install_pack(zoo: Zoo, pack: Path, expected_sha256: str | None = None,
                 log=lambda message: None) -> InstalledModel:
    """Verify the pack file, then install its model into ``zoo``; installed models are untouched on refusal.

    This is what the window's zoo manager calls for a pack file; ``log`` receives one line per step.
    """
    pack = Path(pack)
    if not pack.is_file():
        raise ZooError(f"{pack} is not a file: expected a model pack ({PACK_SUFFIX}) made by "
                       f"'forensics-app zoo pack ID --out FILE'.")
    pack_sha256 = sha256_of_file(pack)
    if expected_sha256 is not None and pack_sha256 != expected_sha256.strip().lower():
        raise ZooError(f"{pack.name} has SHA-256 {pack_sha256}, not the expected {expected_sha256}: "
                       f"it is not the pack you were given. Nothing was installed.")
    staging_root = zoo.home / ".staging"
    staging_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="pack-", dir=staging_root))
    try:
        try:
            index = _extract_verified(pack, staging)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
            raise ZooError(f"{pack.name} is not a readable model pack ({exc}); it may be truncated or damaged. "
                           f"Nothing was installed.") from None
        model_id = index["id"]
        _check_model(staging, index, pack.name)
        receipt = json.loads((staging / RECEIPT).read_text(encoding="utf-8"))
        receipt["pack"] = {"file": pack.name, "sha256": pack_sha256, "made_at": index.get("made_at"),
                           "installed_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        folder = zoo.model_folder(model_id)
        _keep_from_previous_install(folder, staging, log)
        write_receipt(staging / RECEIPT, receipt)
        _swap_in(staging, folder, staging_root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            staging_root.rmdir()  # only when empty: another install may be using it
    log(f"{model_id} installed from {pack.name} (pack SHA-256 {pack_sha256}) in {folder}")
    return zoo.installed(model_id)


def is_pack_argument(text: str) -> bool:
    """`zoo install` takes a model id or a pack file: a pack is named by its suffix or a path (ids are plain names)."""
    return text.endswith(PACK_SUFFIX) or "/" in text or os.sep in text or Path(text).is_file()


def bundled_packs_folder() -> Path | None:
    """Packs shipped with the application: $FORENSICS_APP_PACKS, or ``packs/`` beside a bundle's executable."""
    if os.environ.get(PACKS_ENV):
        return Path(os.environ[PACKS_ENV])
    if getattr(sys, "frozen", False):
        return Path(sys.executable).resolve().parent / "packs"
    return None


def install_bundled_packs(zoo: Zoo, log=lambda message: None) -> list[str]:
    """On a first start (no model installed), install the packs shipped with the application; their ids.

    A home that already has a model is left alone: the examiner decides what is installed there.
    """
    folder = bundled_packs_folder()
    if folder is None or not folder.is_dir() or zoo.installed_ids():
        return []
    return [install_pack(zoo, path, log=log).id for path in sorted(folder.glob(f"*{PACK_SUFFIX}"))]


# -- verification --------------------------------------------------------------------------------
_MEMBER = re.compile(r"(calibration/)?[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _extract_verified(pack: Path, staging: Path) -> dict:
    """Check pack.json and every member against it while extracting into ``staging``; the index."""
    with zipfile.ZipFile(pack) as archive:
        names = [i.filename for i in archive.infolist()]
        if INDEX not in names:
            raise ZooError(f"{pack.name} is not a model pack: it has no {INDEX}. Nothing was installed.")
        info = archive.getinfo(INDEX)
        _check_small(INDEX, info.file_size)
        try:
            index = json.loads(archive.read(INDEX).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ZooError(f"{pack.name}: {INDEX} is not valid JSON ({exc}). Nothing was installed.") from None
        _check_index(index, pack.name)
        files = index["files"]
        if len(names) != len(set(names)):
            raise ZooError(f"{pack.name} holds the same member twice. Nothing was installed.")
        unexpected = sorted(set(names) - set(files) - {INDEX})
        missing = sorted(set(files) - set(names))
        if unexpected or missing:
            raise ZooError(f"{pack.name} does not match its index (" + "; ".join(
                part for part in (f"not listed: {', '.join(unexpected)}" if unexpected else "",
                                  f"missing: {', '.join(missing)}" if missing else "") if part)
                + "). Nothing was installed.")
        for name, entry in files.items():
            member = archive.getinfo(name)
            if member.file_size != entry["size"]:
                raise ZooError(f"{pack.name}: {name} is {member.file_size} bytes, its index says {entry['size']}. "
                               f"Nothing was installed.")
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with archive.open(member) as source, open(target, "xb") as sink:
                while block := source.read(_CHUNK):
                    digest.update(block)
                    sink.write(block)
            if digest.hexdigest() != entry["sha256"]:
                raise ZooError(f"{pack.name}: {name} does not match its SHA-256 in the pack's index (the file was "
                               f"changed or damaged). Nothing was installed.")
    return index


def _check_index(index, where: str) -> None:
    if not isinstance(index, dict) or index.get("format") != PACK_FORMAT:
        found = index.get("format") if isinstance(index, dict) else type(index).__name__
        raise ZooError(f"{where} is not a model pack of format {PACK_FORMAT} (found {found!r}). "
                       f"Nothing was installed.")
    check_safe_name("Model id", index.get("id"))
    files = index.get("files")
    if not isinstance(files, dict) or not files:
        raise ZooError(f"{where}: {INDEX} lists no files. Nothing was installed.")
    for name, entry in files.items():
        if not isinstance(name, str) or not _MEMBER.fullmatch(name) or name == INDEX:
            raise ZooError(f"{where}: member name {name!r} is not allowed (plain names only). Nothing was installed.")
        if (not isinstance(entry, dict) or not isinstance(entry.get("size"), int) or entry["size"] < 0
                or not isinstance(entry.get("sha256"), str) or not re.fullmatch(r"[0-9a-f]{64}", entry["sha256"])):
            raise ZooError(f"{where}: the index entry of {name} has no valid size and SHA-256. Nothing was installed.")
        if not name.endswith(".onnx"):
            _check_small(name, entry["size"])
    for name in (MANIFEST, RECEIPT):
        if name not in files:
            raise ZooError(f"{where} has no {name}. Nothing was installed.")


def _check_model(staging: Path, index: dict, where: str) -> None:
    """The extracted files describe one consistent model: manifest, receipt, ONNX files, calibrations."""
    model_id = index["id"]
    manifest = parse_manifest((staging / MANIFEST).read_text(encoding="utf-8"), source=staging / MANIFEST)
    try:
        receipt = json.loads((staging / RECEIPT).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ZooError(f"{where}: {RECEIPT} is not valid JSON ({exc}). Nothing was installed.") from None
    if manifest.id != model_id or not isinstance(receipt, dict) or receipt.get("id") != model_id:
        raise ZooError(f"{where} names model {model_id!r} but holds files of another (manifest {manifest.id!r}). "
                       f"Nothing was installed.")
    if manifest.kind != "autoencoder":
        raise ZooError(f"{where} holds a {manifest.kind}; only autoencoders are installed from packs.")
    onnx = receipt.get("onnx")
    onnx_in_pack = {n for n in index["files"] if n.endswith(".onnx")}
    if not isinstance(onnx, dict) or set(onnx) != onnx_in_pack or not onnx:
        raise ZooError(f"{where}: the receipt names ONNX files {sorted(onnx or {})}, the pack holds "
                       f"{sorted(onnx_in_pack)}. Nothing was installed.")
    for name, entry in onnx.items():
        check_safe_name("ONNX file name", name)
        if not isinstance(entry, dict) or entry.get("sha256") != index["files"][name]["sha256"]:
            raise ZooError(f"{where}: {name} is not the file its install receipt names (SHA-256 differs). "
                           f"Nothing was installed.")
    if not (receipt.get("model_hash") == index.get("model_hash") == model_hash_of(manifest, receipt)):
        raise ZooError(f"{where}: the model hash of the receipt, the index and the files disagree. "
                       f"Nothing was installed.")
    published = shipped_manifests().get(model_id)
    if published is not None:
        pinned = {w.file: w.sha256 for w in published.weights if w.pinned}
        differs = [w.file for w in manifest.weights if w.file in pinned and w.sha256 != pinned[w.file]]
        if differs or not {w.file for w in manifest.weights} >= set(pinned):
            raise ZooError(f"{where} says it holds {model_id}, but its weights are not the ones the catalogue "
                           f"publishes for {model_id} ({', '.join(differs) or 'weight files differ'}). "
                           f"Nothing was installed.")
    from forensics_app.core.calibration import load_calibrations

    calibrations = sorted({LOCAL_CALIBRATION, manifest.calibration_file} & set(index["files"]))
    other = sorted(set(index["files"]) - {MANIFEST, RECEIPT} - set(onnx) - set(calibrations))
    if other:
        raise ZooError(f"{where} holds files a model pack does not have: {', '.join(other)}. Nothing was installed.")
    for name in calibrations:
        load_calibrations(staging / name)  # refuses a file of the wrong shape, naming it
    _check_onnx_loads(staging, sorted(onnx_in_pack), where)


def _check_onnx_loads(staging: Path, names: list[str], where: str) -> None:
    from forensics_app.core.runtime import RuntimeSettings, SessionCache

    sessions = SessionCache(RuntimeSettings(provider="cpu"))
    for name in names:
        try:
            sessions.get(staging / name)
        except Exception as exc:  # onnxruntime raises its own exception types for invalid graphs
            raise ZooError(f"{where}: {name} is not a model onnxruntime can load ({type(exc).__name__}). "
                           f"Nothing was installed.") from None


def _check_small(name: str, size: int) -> None:
    if size > _MAX_SMALL_FILE:
        raise ZooError(f"{name} is {size} bytes; a pack's {name} is at most {_MAX_SMALL_FILE} bytes. "
                       f"Nothing was installed.")


# -- installing ----------------------------------------------------------------------------------
def _keep_from_previous_install(folder: Path, staging: Path, log) -> None:
    """Copy what the pack does not replace: upstream weights with the pack's hashes (the deep check needs
    them) and a calibration made on this machine (the pack's own, when it has one, takes its place and the
    previous one is kept beside it)."""
    if not folder.is_dir():
        return
    manifest = parse_manifest((staging / MANIFEST).read_text(encoding="utf-8"))
    for weight in manifest.weights:
        old = folder / "weights" / weight.file
        if old.is_file() and not old.is_symlink() and sha256_of_file(old) == weight.sha256:
            (staging / "weights").mkdir(exist_ok=True)
            shutil.copy2(old, staging / "weights" / weight.file)
            log(f"{weight.file}: kept from the previous install (same SHA-256)")
    old_calibration = folder / LOCAL_CALIBRATION
    if old_calibration.is_file() and not old_calibration.is_symlink():
        new_calibration = staging / LOCAL_CALIBRATION
        new_calibration.parent.mkdir(exist_ok=True)
        if not new_calibration.exists():
            shutil.copy2(old_calibration, new_calibration)
        elif sha256_of_file(old_calibration) != sha256_of_file(new_calibration):
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            kept = new_calibration.with_name(f"calibration.replaced-{stamp}.json")
            shutil.copy2(old_calibration, kept)
            log(f"the pack's calibration replaces this machine's; the previous one is kept as {kept.name}")


def _swap_in(staging: Path, folder: Path, staging_root: Path) -> None:
    """Replace zoo/<id> by the verified folder with two renames; the previous folder is restored on failure."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    previous = None
    if folder.exists():
        if folder.is_symlink() or not folder.is_dir():
            raise ZooError(f"{folder} is not a model folder; it was left as it is and nothing was installed.")
        previous = Path(tempfile.mkdtemp(prefix="previous-", dir=staging_root)) / folder.name
        os.rename(folder, previous)
    try:
        os.rename(staging, folder)
    except BaseException:
        if previous is not None:
            os.rename(previous, folder)
        raise
    if previous is not None:
        shutil.rmtree(previous.parent, ignore_errors=True)
