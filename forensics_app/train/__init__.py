"""Training code (torch): demonstration generators and fingerprint extractors. Never imported by the app at run time."""

from pathlib import Path

# The project's shared assets (photos, generated samples, the zoo mirror) live in ../shared beside the
# checkout: resolved from the repository root, never from a machine-specific absolute path.
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
