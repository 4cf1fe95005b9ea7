"""Expected failures: each carries a message written for the person using the tool.

Anything raised that is not a ForensicsError is a bug and is reported with a traceback.
"""


class ForensicsError(Exception):
    """An expected failure (bad input, missing model, ...) with a plain-language message."""


class EvidenceError(ForensicsError):
    """The file cannot be analysed as evidence (unreadable, not an image, too small, ...)."""


class ZooError(ForensicsError):
    """A model-zoo operation failed (unknown id, hash mismatch, unsafe weights, ...)."""


class ModelNotInstalled(ZooError):
    """The requested model is known but not installed."""


class Cancelled(ForensicsError):
    """The user cancelled the job; finished results are kept."""

    def __init__(self, message: str = "Cancelled by the user."):
        super().__init__(message)
