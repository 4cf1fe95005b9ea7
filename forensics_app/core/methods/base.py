"""The protocol every attribution method follows, and the result it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from forensics_app.core.imageprep import TilingSettings
from forensics_app.core.jobs import CancelToken, ProgressCallback, no_progress


@dataclass
class MethodResult:
    """What one method says about one image for one candidate model.

    ``score`` is the method's attribution statistic, oriented so that LOW means "consistent with
    the model". Calibration turns it into p-values; the method itself never decides.
    """

    method: str
    method_version: str
    model: str
    score: float
    components: dict[str, float]  # the measured quantities the score is made of (losses, homogeneity)
    maps: dict[str, np.ndarray] = field(repr=False)  # name -> (H, W) float32 per-pixel evidence
    provider: str = ""
    parameters: dict = field(default_factory=dict)
    seconds: float = 0.0
    region: dict = field(default_factory=dict)  # the analysed pixels (x, y, width, height of the stored image)


class Method(Protocol):
    name: str  # short id used on the command line and in files, e.g. "aedr"
    version: str  # bumped whenever the score's computation changes (invalidates cached results)
    title: str  # one line for tables and reports
    description: str  # plain-language paragraph for the report's methods section
    map_titles: dict[str, str]  # map name -> what it shows, in words
    decisive: bool  # False for baselines shown for comparison, which never decide a verdict
    runs_in_torch: bool  # needs torch and the model's weights (the ONNX-only bundle cannot run it)
    parameters: dict  # everything that changes the score; stored with calibrations and results

    def run(self, rgb01: np.ndarray, model, tiling: TilingSettings, cancel: CancelToken,
            progress: ProgressCallback = no_progress) -> MethodResult:
        """Score an (H, W, 3) image in [0, 1], already cropped to the model's spatial factor.

        Long methods report ``progress`` (fraction of this run) and check ``cancel`` between steps.
        """
        ...

    # Optional: complete(result, rgb01, model, cancel) adds measurements that only the verdict uses (never
    # the score) to a fresh or stored result; the analysis calls it, the calibration does not.
