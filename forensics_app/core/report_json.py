"""Findings as JSON (versioned schema, documented in docs/findings-schema.md)."""

from __future__ import annotations

from datetime import datetime, timezone

from forensics_app.core.findings import FINDINGS_SCHEMA


def batch_to_json(batch, run_info: dict) -> dict:
    return {
        "schema": FINDINGS_SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run": run_info,
        "cancelled": batch.cancelled,
        "images": [r.to_dict() for r in batch.results],
    }
