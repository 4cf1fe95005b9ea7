"""Input reverse-engineering (RONAN / LatentTracer, methods.md §2): can the decoder reproduce the image?

For the candidate's own outputs a latent z with D(z) ~= x exists and gradient descent finds it from the
encoder's guess z0 = E(x); for photos and other generators' images the loss stays high. We minimise
MSE(clip(D(z)), x) in the model's pixel range over z with Adam, starting from E(x) (the LatentTracer
variant for autoencoder-based generators). The score is the lowest loss reached divided by the loss
at the start (``relative`` form): the absolute loss depends on image content (textures stay hard for
any decoder, smooth images are easy), while the share of the loss the optimisation removes does not;
benchmarks/inversion.py measures both forms. LOW = consistent.

Cost is tens of decoder forward+backward passes, so this is the on-demand "deep check": it reports
progress per step, checks cancellation each step, stops early when the loss stops improving, and has
a wall-clock cap. It runs in torch on the weights the ONNX was exported from (autograd is needed), on
one thread: on a busy 2-core machine two torch threads were 4x slower than one (they wait on each
other), and a fixed thread count keeps results reproducible to the last digit.
Images larger than ``max_side`` on a side are analysed on their centred ``max_side`` square (tiles
would multiply the cost); the region is recorded with the result and the map is zero outside it.

Generators without an encoder (GANs) have no E(x) to start from: the optimisation then starts from
``restarts`` seeded draws of the prior z ~ N(0, I) (latent channels read from the decoder's first
layer, spatial size from the model's factor) and keeps the best restart (RONAN). With a random start
the initial loss only measures the draw, so that path's score is the final loss itself. ``start``
chooses: "auto" (the encoder when the model has one), "encoder" or "random" (which the benchmark also
runs on autoencoders, to measure what the no-encoder path costs and loses).
"""

from __future__ import annotations

import contextlib
import time

import numpy as np

from forensics_app.core.imageprep import TilingSettings, to_model_range
from forensics_app.core.jobs import CancelToken, Progress, ProgressCallback, no_progress
from forensics_app.core.methods.base import MethodResult


@contextlib.contextmanager
def torch_settings(threads: int):
    """Few threads (the app runs beside other work) and deterministic kernels; restored afterwards."""
    import torch

    threads_before, deterministic_before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(threads_before)
        torch.use_deterministic_algorithms(deterministic_before)


def centred_square(height: int, width: int, max_side: int, factor: int) -> tuple[int, int, int, int]:
    """(y, x, h, w) of the analysed region: the whole image, or its centred max_side square at most."""
    h = min(height, max_side // factor * factor)
    w = min(width, max_side // factor * factor)
    return (height - h) // 2 // factor * factor, (width - w) // 2 // factor * factor, h, w


# Score forms measured by benchmarks/inversion.py; the product uses SCORE_FORM.
SCORE_FORMS = {"final": lambda c: c["final_loss"], "relative": lambda c: c["relative_loss"]}
SCORE_FORM = "relative"  # from the encoder's start
RANDOM_START_SCORE_FORM = "final"  # a random start's initial loss measures only the draw
STARTS = ("auto", "encoder", "random")


def latent_channels(decoder) -> int:
    """Channels the decoder takes: those of its first convolution."""
    from torch import nn

    first = next((m for m in decoder.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))), None)
    if first is None:
        raise ValueError("the decoder has no convolution to read its latent channels from")
    return first.in_channels


class Inversion:
    name = "inversion"
    version = "1"
    title = "Input reverse-engineering (latent inversion)"
    decisive = True
    runs_in_torch = True
    description = (
        "Starting from the candidate encoder's latent for the image, the latent is adjusted step by step "
        "so that the candidate's decoder reproduces the image as closely as possible. An image that this "
        "decoder produced can be reproduced almost exactly; a photograph or another generator's image "
        "cannot. The score is the smallest mean squared difference reached, as a share of the difference at "
        "the start: low for the candidate's own outputs. It costs tens of decoder passes, so it is run on "
        "request as a deep check.")
    map_titles = {"inversion_residual": "|D(z*) - x|: what the best latent found could not reproduce"}

    def __init__(self, steps: int = 20, learning_rate: float = 0.03, stop_window: int = 10,
                 stop_tolerance: float = 0.01, max_side: int = 512, max_seconds: float = 600.0, threads: int = 1,
                 start: str = "auto", restarts: int = 4, seed: int = 0):
        if start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}")
        self.steps = steps  # decoder evaluations per start, the first at the start latent
        self.learning_rate = learning_rate
        self.stop_window = stop_window  # early stop: relative loss drop over this many steps ...
        self.stop_tolerance = stop_tolerance  # ... below this
        self.max_side = max_side
        self.max_seconds = max_seconds  # safety cap; a capped run says so in its parameters
        self.threads = threads
        self.start = start
        self.restarts = restarts  # random starts only
        self.seed = seed  # of the random starts

    @property
    def parameters(self) -> dict:
        """What changes the score (calibrations must match it); time cap and threads do not, unless hit."""
        random_start = ({"restarts": self.restarts, "seed": self.seed, "random_start_score_form": RANDOM_START_SCORE_FORM}
                        if self.start != "encoder" else {})
        return {"score_form": SCORE_FORM, "steps": self.steps, "learning_rate": self.learning_rate, "optimizer": "adam",
                "start": self.start, "stop_window": self.stop_window, "stop_tolerance": self.stop_tolerance,
                "max_side": self.max_side, "large_images": "centred max_side square"} | random_start

    def run(self, rgb01: np.ndarray, model, tiling: TilingSettings, cancel: CancelToken,
            progress: ProgressCallback = no_progress) -> MethodResult:
        import torch

        from forensics_app.core.zoo.torch_models import torch_autoencoder

        started = time.perf_counter()
        manifest = model.manifest
        lo, hi = manifest.pixel_range
        height, width = rgb01.shape[:2]
        y, x, h, w = centred_square(height, width, self.max_side, manifest.spatial_factor)
        encoder, decoder = torch_autoencoder(model.model)
        start = self.start if self.start != "auto" else ("encoder" if encoder is not None else "random")
        if start == "encoder" and encoder is None:
            raise ValueError(f"{manifest.id} has no encoder: inversion can only start from random latents")
        with torch_settings(self.threads):
            target = torch.from_numpy(to_model_range(rgb01[y:y + h, x:x + w], (lo, hi)))
            target = target.contiguous(memory_format=torch.channels_last)
            if start == "encoder":
                with torch.no_grad():
                    starts = [encoder(target)]
            else:
                draws = torch.Generator().manual_seed(self.seed)
                shape = (1, latent_channels(decoder), h // manifest.spatial_factor, w // manifest.spatial_factor)
                starts = [torch.randn(shape, generator=draws) for _ in range(self.restarts)]
            runs = []
            for index, latent in enumerate(starts):
                def start_progress(p: Progress, index=index) -> None:
                    progress(Progress((index + p.fraction) / len(starts),
                                      p.message if len(starts) == 1 else f"start {index + 1}/{len(starts)}, {p.message}"))

                runs.append(self._descend(latent, decoder, target, (lo, hi), started, cancel, start_progress))
        losses, best_loss, best_output, stopped_by = min(runs, key=lambda r: r[1])
        residual = np.zeros((height, width), np.float32)
        residual[y:y + h, x:x + w] = (best_output - target).abs().mean(dim=1)[0].numpy()
        components = {"initial_loss": losses[0], "final_loss": best_loss,
                      "relative_loss": best_loss / max(losses[0], 1e-12), "steps_run": float(len(losses))}
        form = SCORE_FORM if start == "encoder" else RANDOM_START_SCORE_FORM
        parameters = self.parameters | {"region": {"x": x, "y": y, "width": w, "height": h}, "start_used": start,
                                        "score_form": form, "stopped_by": stopped_by, "max_seconds": self.max_seconds,
                                        # a start cut short by the time cap: no calibration applies
                                        "cut_short": any(run[3] == "time cap" for run in runs)}
        return MethodResult(self.name, self.version, model.id, SCORE_FORMS[form](components), components,
                            {"inversion_residual": residual}, provider="torch CPU", parameters=parameters,
                            seconds=time.perf_counter() - started)

    def _descend(self, latent, decoder, target, pixel_range, started: float, cancel: CancelToken,
                 progress: ProgressCallback) -> tuple[list[float], float, object, str]:
        """Adam on one start latent: (losses per step, lowest loss, its output, why it stopped)."""
        import torch

        latent = latent.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([latent], lr=self.learning_rate)
        losses: list[float] = []
        best_loss, best_output, stopped_by = float("inf"), None, "steps"
        for step in range(self.steps):
            cancel.raise_if_cancelled()
            output = decoder(latent).clamp(*pixel_range)  # clipped, as any saved image of the generator is
            loss = torch.mean((output - target) ** 2)
            losses.append(loss.item())
            if losses[-1] < best_loss:
                best_loss, best_output = losses[-1], output.detach()
            progress(Progress((step + 1) / self.steps, f"step {step + 1}/{self.steps}, loss {losses[-1]:.3g}"))
            if self._stalled(losses):
                stopped_by = "no further improvement"
                break
            if time.perf_counter() - started > self.max_seconds:
                stopped_by = "time cap"
                break
            if step == self.steps - 1:
                break  # a last update would never be evaluated
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return losses, best_loss, best_output, stopped_by

    def _stalled(self, losses: list[float]) -> bool:
        if len(losses) <= self.stop_window:
            return False
        before = min(losses[:-self.stop_window])
        return (before - min(losses)) / max(before, 1e-12) < self.stop_tolerance


METHOD = Inversion()
