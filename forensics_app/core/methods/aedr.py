"""AEDR: autoencoder double reconstruction, homogeneity-calibrated (methods.md §1).

x1 = R(x), x2 = R(x1) with R = decoder(encoder(.)); L1 = MSE(x1, x), L2 = MSE(x2, x1), in the model's
own pixel range. An image the decoder produced sits on its output manifold, so L1 is about as small
as L2; a real photo loses much more in the first reconstruction (L1 >> L2). LOW scores = consistent.

Smooth images reconstruct well through any autoencoder, which fools the raw ratio. The paper's fix
multiplies the ratio by the image's GLCM homogeneity h. We measured the alternatives on held-out
photos (benchmarks/attribution.py, table in the README) and use the ratio of the *high-pass*
residual energies instead: a decoder's own traces are fine-scale (upsampling, convolution
patterns), while content-level error is coarse, so removing each residual's 3x3 local mean keeps
the decoder-specific part and drops the content-dependent part. All forms stay computed and reported.

Where JPEG leaves a decoder's traces (``luma_chroma_detail``): JPEG keeps chroma at half resolution
(4:2:0) and quantises the finest luma scale hardest, so in a JPEG'd output the first residual's 3x3
RGB high-pass is partly JPEG's own noise, and after JPEG q90 the outputs of several demo AEs score
like photos. This form takes the luma residual minus its 5x5 local mean plus the chroma residual
averaged over 2x2 pixels minus its 3x3 local mean. Which scales survive depends on the decoder, so
each model is read and calibrated with the form its manifest names (``aedr_score_form``), chosen on
its calibration split alone (scripts/compare_score_forms.py, numbers in the README): TAEF2's traces
are at the finest luma scale, which the 5x5 window removes (its calibration outputs after JPEG
q90-94: 10% instead of 45% under its real threshold), so TAEF2 keeps ``highpass``.

Latent-grid phase: a decoder's traces sit on its latent grid (every ``spatial_factor`` pixels). An
output cropped off that grid (3 pixels off the left edge, say) no longer reconstructs as its own, and
scored at the stored grid it looks like a photo. Where the model's manifest sets
``phase_search_patch``, every grid phase is tried on a central patch of that side in one batched pass
(the first reconstruction's high-pass loss is smallest at the decoder's own phase), and the score is
the lower of the stored grid's and that phase's. The calibration scores its samples the same way, so
the false-attribution rate includes the search. The patch must hold the decoder's context: a 64 px
patch finds the phase of every demo AE's cropped outputs (8-10 of 10), but TAEF2's only 5 times in 10
(96 px: 10 of 10, at about 12 s per image on a CPU), so TAEF2 is scored at the stored grid only.

Grid check, for models scored at the stored grid only: a crop that moves the grid but keeps both sides
multiples of the factor (3 pixels off the top and the left, 5 off the bottom and the right) turned
TAEF2's own outputs into "not attributed" (5 of 6 tried). So every phase is still tried on a central
64 px patch (about 2 s on a CPU for TAEF2), only to measure how much better the best other phase
reconstructs than the stored one (``grid_offset_ratio``: best other loss / stored loss; added by
``complete``, which the analysis calls and the calibration does not). It never changes the score and
never attributes: where it is below GRID_OFFSET_LEVEL, the image may be this
model's output off its grid, and a rejection by this model is not informative (core/pipeline.py).
Measured on 11 calibration-split crops each: TAEF2 outputs shifted (3,3) or (1,5): 0.21-0.79 (all but
one below 0.75); the same after JPEG q90: 7 of 11 below 0.8; aligned outputs 0.94-1.46; real photos
0.51-1.14 (one below 0.75), real JPEG q80 0.53-0.98.
"""

from __future__ import annotations

import time

import numpy as np

from forensics_app.core.errors import ZooError
from forensics_app.core.imageprep import TilingSettings
from forensics_app.core.jobs import CancelToken, ProgressCallback, no_progress
from forensics_app.core.methods.base import MethodResult


def glcm_homogeneity(rgb01: np.ndarray) -> float:
    """GLCM homogeneity of the grey image at 32 levels, distance 1, angle 0, symmetric, normalised."""
    from skimage.feature import graycomatrix, graycoprops

    rgb8 = np.round(rgb01 * 255.0)
    grey = rgb8 @ np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma, as OpenCV's RGB2GRAY
    levels = (np.clip(np.round(grey), 0, 255).astype(np.uint8) // 8)
    glcm = graycomatrix(levels, distances=[1], angles=[0], levels=32, symmetric=True, normed=True)
    return float(graycoprops(glcm, "homogeneity")[0, 0])


def highpass(residual: np.ndarray) -> np.ndarray:
    """Residual minus its 3x3 local mean, per channel (edges replicated)."""
    from scipy.ndimage import uniform_filter

    return residual - uniform_filter(residual, size=(3, 3, 1), mode="nearest")


LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as JPEG's YCbCr


def luma_chroma_detail(residual: np.ndarray) -> float:
    """Energy of a residual's detail at the scales JPEG keeps: luma minus its 5x5 local mean (JPEG
    quantises the finest luma scale hardest), plus chroma averaged over 2x2 pixels (JPEG's 4:2:0
    subsampling keeps chroma at half resolution only) minus its 3x3 local mean there."""
    from scipy.ndimage import uniform_filter

    luma = residual @ LUMA_WEIGHTS
    chroma = residual - luma[..., None]
    h, w = chroma.shape[0] // 2 * 2, chroma.shape[1] // 2 * 2
    chroma = chroma[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    luma_detail = luma - uniform_filter(luma, size=5, mode="nearest")
    return float(np.mean(luma_detail ** 2) + np.mean(highpass(chroma) ** 2))


def mse_in_model_range(a: np.ndarray, b: np.ndarray, pixel_range: tuple[float, float]) -> tuple[float, np.ndarray]:
    """MSE in the model's pixel range, and the per-pixel |a - b| map (channel mean, model range)."""
    span = pixel_range[1] - pixel_range[0]
    diff = (a - b) * np.float32(span)
    return float(np.mean(diff * diff)), np.abs(diff).mean(axis=2).astype(np.float32)


# Score forms measured by benchmarks/attribution.py; a model uses the one its manifest names.
SCORE_FORMS = {
    "ratio": lambda c: c["L1"] / c["L2"],
    "homogeneity": lambda c: c["L1"] * c["homogeneity"] / c["L2"],
    "highpass": lambda c: c["L1_highpass"] / c["L2_highpass"],
    "highpass_homogeneity": lambda c: c["L1_highpass"] * c["homogeneity"] / c["L2_highpass"],
    "luma_chroma_detail": lambda c: c["L1_luma_chroma_detail"] / c["L2_luma_chroma_detail"],
}
_EPS = 1e-12  # guards a division by an exactly-zero second loss (a constant image)
GRID_CHECK_PATCH = 64
GRID_OFFSET_LEVEL = 0.75  # another phase reconstructing 25% better than the stored grid: possibly off-grid


class AEDR:
    name = "aedr"
    version = "2"
    title = "AEDR (autoencoder double reconstruction)"
    decisive = True
    runs_in_torch = False
    description = (
        "The image is passed through the candidate's autoencoder twice. An image that the candidate's "
        "decoder produced barely changes in the first pass (its first loss L1 is about as small as the "
        "second, L2), while a photograph or another generator's image loses detail in the first pass. "
        "The score is the ratio of the fine-scale parts of the two losses: low for the candidate's own "
        "outputs. Using only the fine-scale part keeps smooth images, which any autoencoder reconstructs "
        "well, from looking consistent with every candidate. Which fine scales are used (the score form) "
        "is set per candidate: the scales where its decoder's traces survive JPEG compression.")
    parameters = {"highpass_window": 3, "glcm_levels": 32}
    map_titles = {"first_reconstruction_error": "|x - R(x)|: where the first reconstruction changed the image",
                  "second_reconstruction_error": "|R(x) - R(R(x))|: change in the second reconstruction"}

    def components(self, rgb01: np.ndarray, model, tiling: TilingSettings, cancel: CancelToken):
        pixel_range = model.manifest.pixel_range
        x1 = model.reconstruct(rgb01, tiling, cancel)
        x2 = model.reconstruct(x1, tiling, cancel)
        l1, map1 = mse_in_model_range(x1, rgb01, pixel_range)
        l2, map2 = mse_in_model_range(x2, x1, pixel_range)
        span2 = np.float32((pixel_range[1] - pixel_range[0]) ** 2)
        parts = {"L1": l1, "L2": max(l2, _EPS), "homogeneity": glcm_homogeneity(rgb01),
                 "L1_highpass": float(np.mean(highpass(x1 - rgb01) ** 2) * span2),
                 "L2_highpass": max(float(np.mean(highpass(x2 - x1) ** 2) * span2), _EPS),
                 "L1_luma_chroma_detail": luma_chroma_detail(x1 - rgb01) * float(span2),
                 "L2_luma_chroma_detail": max(luma_chroma_detail(x2 - x1) * float(span2), _EPS)}
        maps = {"first_reconstruction_error": map1, "second_reconstruction_error": map2}
        return parts, maps, x1

    def run(self, rgb01: np.ndarray, model, tiling: TilingSettings, cancel: CancelToken,
            progress: ProgressCallback = no_progress) -> MethodResult:
        start = time.perf_counter()
        parts, maps, _ = self.components(rgb01, model, tiling, cancel)
        form = SCORE_FORMS[score_form(model.manifest)]
        score = float(form(parts))
        phase = best_grid_phase(rgb01, model, cancel)
        parts["score_at_stored_grid"] = score
        parts["phase_searched"] = float(phase is not None)
        parts["phase_y"], parts["phase_x"] = phase or (0, 0)
        if phase is not None and phase != (0, 0):
            shifted = on_grid(rgb01, phase, model.manifest.spatial_factor)
            if min(shifted.shape[:2]) >= model.manifest.spatial_factor * 4:
                shifted_parts, shifted_maps, _ = self.components(shifted, model, tiling, cancel)
                shifted_score = float(form(shifted_parts))
                parts["score_at_found_phase"] = shifted_score
                if shifted_score < score:
                    score = shifted_score
                    maps = {name: placed(m, rgb01.shape[:2], phase) for name, m in shifted_maps.items()}
        return MethodResult(self.name, self.version, model.id, score, parts, maps, provider=model.provider,
                            parameters=self.parameters_for(model.manifest), seconds=time.perf_counter() - start)

    def complete(self, result: MethodResult, rgb01: np.ndarray, model, cancel: CancelToken) -> None:
        """Add the grid check to a result that lacks it (a fresh run, or one stored before the check existed).
        The analysis calls this, the calibration does not: the check never changes the score."""
        if model.manifest.phase_search_patch or "grid_offset_ratio" in result.components:
            return
        losses = phase_losses(rgb01, model, GRID_CHECK_PATCH, cancel)
        if losses is not None:
            stored = max(losses[(0, 0)], _EPS)
            result.components["grid_offset_ratio"] = min(v for k, v in losses.items() if k != (0, 0)) / stored

    def parameters_for(self, manifest) -> dict:
        """Everything that changes this model's score: a calibration made with other values is stale."""
        return dict(self.parameters, score_form=score_form(manifest), phase_search_patch=manifest.phase_search_patch)


def score_form(manifest) -> str:
    """The score form this model is read with; a manifest naming one this version lacks is an error,
    never a silent fallback (its calibration was made with that form)."""
    if manifest.aedr_score_form not in SCORE_FORMS:
        raise ZooError(f"Model {manifest.id}: its manifest names the AEDR score form "
                       f"'{manifest.aedr_score_form}', which this version does not know "
                       f"(known: {', '.join(SCORE_FORMS)}). Update the application or reinstall the model.")
    return manifest.aedr_score_form


def on_grid(rgb01: np.ndarray, phase: tuple[int, int], factor: int) -> np.ndarray:
    """The image from ``phase`` on, trimmed to whole multiples of the spatial factor."""
    view = rgb01[phase[0]:, phase[1]:]
    h, w = view.shape[0] // factor * factor, view.shape[1] // factor * factor
    return view[:h, :w]


def placed(values: np.ndarray, shape: tuple[int, int], phase: tuple[int, int]) -> np.ndarray:
    """A map of the shifted image in the full image's coordinates; the strip of fewer than ``factor``
    pixels it does not cover (the phase offset and the trimmed remainder) is 0: nothing was measured."""
    out = np.zeros(shape, dtype=np.float32)
    out[phase[0]:phase[0] + values.shape[0], phase[1]:phase[1] + values.shape[1]] = values
    return out


def best_grid_phase(rgb01: np.ndarray, model, cancel: CancelToken) -> tuple[int, int] | None:
    """The latent-grid phase at which a central patch reconstructs best; None where the search is not run."""
    losses = phase_losses(rgb01, model, model.manifest.phase_search_patch, cancel)
    return None if losses is None else min(losses, key=losses.get)


def phase_losses(rgb01: np.ndarray, model, side: int, cancel: CancelToken) -> dict[tuple[int, int], float] | None:
    """Per latent-grid phase (dy, dx): the first reconstruction's high-pass loss on a central patch of
    ``side`` pixels started at that phase, all phases in one batched pass; None where the image is too
    small (or side is 0)."""
    factor = model.manifest.spatial_factor
    if not side or min(rgb01.shape[:2]) < side + 2 * factor:
        return None
    from forensics_app.core.imageprep import from_model_range, to_model_range

    pixel_range = model.manifest.pixel_range
    cy = (rgb01.shape[0] - side - factor) // 2 // factor * factor
    cx = (rgb01.shape[1] - side - factor) // 2 // factor * factor
    phases = [(dy, dx) for dy in range(factor) for dx in range(factor)]
    patches = [rgb01[cy + dy:cy + dy + side, cx + dx:cx + dx + side] for dy, dx in phases]
    batch = np.concatenate([to_model_range(p, pixel_range) for p in patches])
    decoded = model.decode(model.encode(batch, cancel), cancel)
    edge = factor  # the patch border reconstructs worse at every phase; compare the inside
    return {phase: float(np.mean(highpass(from_model_range(decoded[i:i + 1], pixel_range) - p)[edge:-edge, edge:-edge] ** 2))
            for i, (phase, p) in enumerate(zip(phases, patches))}


METHOD = AEDR()
