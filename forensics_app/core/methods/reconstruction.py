"""Single reconstruction loss: the older baseline that AEDR improves on.

Score = MSE(R(x), x) in the model's pixel range: LOW = consistent. Its weakness is that the loss
level depends on image content (smooth images reconstruct well through any autoencoder), which is
why it is shown for comparison and does not decide a verdict on its own.
"""

from __future__ import annotations

import time

import numpy as np

from forensics_app.core.imageprep import TilingSettings
from forensics_app.core.jobs import CancelToken, ProgressCallback, no_progress
from forensics_app.core.methods.aedr import mse_in_model_range
from forensics_app.core.methods.base import MethodResult


class SingleReconstruction:
    name = "reconstruction"
    version = "1"
    title = "Single reconstruction loss (baseline)"
    decisive = False
    runs_in_torch = False
    description = (
        "The image is passed once through the candidate's autoencoder and the mean squared change is "
        "measured. Low values suggest the candidate's decoder could have produced the image, but smooth "
        "content also gives low values, so this baseline is shown for comparison only.")
    parameters: dict = {}
    map_titles = {"first_reconstruction_error": "|x - R(x)|: where the reconstruction changed the image"}

    def run(self, rgb01: np.ndarray, model, tiling: TilingSettings, cancel: CancelToken,
            progress: ProgressCallback = no_progress) -> MethodResult:
        start = time.perf_counter()
        x1 = model.reconstruct(rgb01, tiling, cancel)
        loss, error_map = mse_in_model_range(x1, rgb01, model.manifest.pixel_range)
        return MethodResult(self.name, self.version, model.id, loss, {"L1": loss},
                            {"first_reconstruction_error": error_map}, provider=model.provider,
                            seconds=time.perf_counter() - start)


METHOD = SingleReconstruction()
