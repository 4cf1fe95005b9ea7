"""What the zoo knows, one plain dict per entry: for ``zoo list`` (table and JSON) and other front ends."""

from __future__ import annotations

from forensics_app.core.errors import ForensicsError
from forensics_app.core.zoo.manifest import Manifest, WeightFile
from forensics_app.core.zoo.store import Zoo

PINNED = "pinned"
RECORDED = "recorded, not pinned"  # hash taken at this machine's first install; the source publishes none
UNPINNED = "not pinned (recorded at first install)"


def catalogue(zoo: Zoo) -> list[dict]:
    installed = set(zoo.installed_ids())
    return [_entry(zoo, manifest, model_id in installed) for model_id, manifest in sorted(zoo.manifests().items())]


def _entry(zoo: Zoo, manifest: Manifest, is_installed: bool) -> dict:
    weights = {w.file: w for w in manifest.weights}
    calibrated, calibration = None, None
    if is_installed:
        try:
            model = zoo.installed(manifest.id)
            weights = {w.file: w for w in model.manifest.weights}  # with the hashes recorded at install
            calibrated, calibration = calibration_state(model)
        except ForensicsError as exc:  # a damaged install is listed, and says why it cannot be used
            calibrated, calibration = False, f"unusable: {exc}"
    hub = manifest.hub
    return {
        "id": manifest.id, "display_name": manifest.display_name, "family": manifest.family,
        "used_by": list(manifest.used_by), "kind": manifest.kind, "demonstration": manifest.demonstration,
        "licence": manifest.licence, "installed": is_installed, "calibrated": calibrated,
        "calibration": calibration,
        "architecture": manifest.architecture.get("class") or manifest.architecture.get("builder"),
        "spatial_factor": manifest.spatial_factor,
        "source": {
            "hub_repository": hub.repo if hub else None, "revision": hub.revision if hub else None,
            "revision_pinned": hub.pinned if hub else None, "gated": hub.gated if hub else False,
            "urls": manifest.source_urls(), "size": manifest.extra.get("source_size"),
        },
        "weights": [{"file": w.file, "role": w.role, "sha256": w.sha256, "hash": _hash_status(w)}
                    for w in weights.values()],
    }


def _hash_status(weight: WeightFile) -> str:
    if weight.pinned:
        return PINNED
    return RECORDED if weight.sha256 else UNPINNED


def calibration_state(model) -> tuple[bool, str]:
    from forensics_app.core.pipeline import load_model_calibrations

    calibrations, source = load_model_calibrations(model)
    if calibrations:
        return True, source
    return False, (f"NOT calibrated: its readings cannot decide anything. Run: forensics-app zoo calibrate "
                   f"{model.id} --real DIR")


def status_text(entry: dict) -> str:
    """One short cell for the table: installed or not, and whether it can decide."""
    if entry["kind"] == "extractor":
        return "shipped (no install)"
    if not entry["installed"]:
        return "not installed"
    return "installed, calibrated" if entry["calibrated"] else "installed, NOT CALIBRATED"
