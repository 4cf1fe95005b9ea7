"""analyse(file) -> ImageFindings: evidence, every (model, method) reading, calibration, verdict.

The same functions serve the CLI, the GUI worker and batch jobs: progress and cancellation are
plain callables/objects passed in, never Qt.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from forensics_app import __version__
from forensics_app.core.calibration import (Calibration, calibration_for, held_out_error_rates, load_calibrations,
                                            weights_sha256)
from forensics_app.core.calibrate import parameters_for
from forensics_app.core.errors import Cancelled, ForensicsError
from forensics_app.core.evidence import Evidence, IntakeLimits, load_evidence
from forensics_app.core.family import (FamilyRule, PairTest, family_rule, look_alikes, pair_test, profile_fit,
                                       wrong_generator_rates)
from forensics_app.core.findings import (CONSISTENT, REJECTED, UNDECIDED, CandidateFinding, FailedImage, ImageFindings,
                                         absolute_path)
from forensics_app.core.fingerprint import candidate_finding as fingerprint_candidate
from forensics_app.core.fingerprint import find_extractor
from forensics_app.core.imageprep import (MIN_REGION_PIXELS, Region, TilingSettings, analysis_region,
                                          cpu_pixel_budget)
from forensics_app.core.jobs import NEVER_CANCELLED, CancelToken, Progress, ProgressCallback, no_progress
from forensics_app.core.methods import DEFAULT_METHODS, get_method
from forensics_app.core.methods.aedr import GRID_OFFSET_LEVEL
from forensics_app.core.methods.base import MethodResult
from forensics_app.core.runtime import CPU, RuntimeSettings, SessionCache
from forensics_app.core.traces import JPEG_TRACES, pixel_traces
from forensics_app.core.verdict import DecisionContext, decide, rank, reading_status
from forensics_app.core.zoo.store import InstalledModel, Zoo

DEFAULT_ALPHA = 0.01


@dataclass(frozen=True)
class AnalysisSettings:
    methods: tuple[str, ...] = DEFAULT_METHODS
    models: tuple[str, ...] = ()  # empty = every installed autoencoder
    alpha: float = DEFAULT_ALPHA  # analysis-wide false-attribution rate (core/family.py)
    tiling: TilingSettings = TilingSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    intake: IntakeLimits = IntakeLimits()
    keep_reconstructions: bool = False  # the GUI shows R(x) side by side; the CLI does not need it
    extractors: tuple[str, ...] = ()  # learned-fingerprint extractors to add as non-decisive candidates

    def to_dict(self) -> dict:
        return {"methods": list(self.methods), "models": list(self.models), "alpha": self.alpha,
                "extractors": list(self.extractors),
                "tiling": dict(self.tiling.__dict__), "provider": self.runtime.provider}


@dataclass
class LoadedModel:
    installed: InstalledModel
    autoencoder: object  # OnnxAutoencoder
    calibrations: dict[str, Calibration]
    calibration_source: str

    @property
    def id(self) -> str:
        return self.installed.id


def load_model_calibrations(model: InstalledModel) -> tuple[dict[str, Calibration], str]:
    """Per method: the calibration made on this machine if any, else the default shipped with the manifest.

    A calibration that records other weight files than the manifest's was made for another model
    (the weights were replaced or retrained): it is ignored, and the source says so.
    """
    shipped_path = model.manifest.shipped_calibration
    local_path = model.calibration_folder() / "calibration.json"
    expected = weights_sha256(model.manifest)
    stale = []

    def matching(path: Path) -> dict[str, Calibration]:
        kept = {}
        for method, calibration in sorted(load_calibrations(path).items()):
            if calibration.data.get("weights_sha256", expected) == expected:  # older files do not record them
                kept[method] = calibration
            else:
                stale.append(f"{path.name} ({method})")
        return kept

    shipped = matching(shipped_path) if shipped_path is not None else {}
    local = matching(local_path) if local_path.exists() else {}
    sources = [f"ignored, made for other weights: {', '.join(stale)}"] if stale else []
    if local:
        sources.append(f"{local_path} ({', '.join(sorted(local))})")
    if set(shipped) - set(local):
        sources.append(f"shipped default {shipped_path.name} ({', '.join(sorted(set(shipped) - set(local)))})")
    return shipped | local, "; ".join(sources) or "none"


StoredResult = Callable[[str, LoadedModel, object, dict], MethodResult | None]


def no_stored_result(sha256: str, model: LoadedModel, method, region: dict) -> None:
    return None


class Engine:
    """Holds loaded models and sessions; analyses one file at a time."""

    def __init__(self, zoo: Zoo, settings: AnalysisSettings = AnalysisSettings()):
        from forensics_app.core.zoo.autoencoder import OnnxAutoencoder

        self.zoo = zoo
        self.settings = settings
        self.methods = [get_method(name) for name in settings.methods]
        ids = settings.models or tuple(i for i in zoo.installed_ids()
                                       if zoo.installed(i).manifest.kind == "autoencoder")
        sessions = SessionCache(settings.runtime)
        self.models: list[LoadedModel] = []
        for model_id in ids:
            installed = zoo.installed(model_id)
            if any(method.runs_in_torch for method in self.methods):
                from forensics_app.core.zoo.torch_models import check_ready

                check_ready(installed)  # before any image: no torch, or a pack install without weights
            calibrations, source = load_model_calibrations(installed)
            self.models.append(LoadedModel(installed, OnnxAutoencoder(installed, sessions), calibrations, source))
        self.extractors = [find_extractor(name, [zoo.home / "extractors"], sessions) for name in settings.extractors]
        # a look-alike may be a zoo generator that is not installed: reasons name it as the catalogue does
        self.display_names = {model_id: m.display_name for model_id, m in zoo.manifests().items()}

    def calibrations_in_use(self) -> dict[tuple[str, str], Calibration]:
        """The calibration each (model, method) reading is compared with (before the per-image condition)."""
        used = {}
        for loaded in self.models:
            for method in self.methods:
                cal = calibration_for(method, parameters_for(method, loaded.installed.manifest), loaded.calibrations)
                if cal is not None:
                    used[(loaded.id, method.name)] = cal
        return used

    def run_info(self) -> dict:
        import numpy
        import onnxruntime

        extractors = {"extractors": [{"id": e.id, "onnx_sha256": e.manifest.weights[0].sha256,
                                      "classes": list(e.classes), "open_set_threshold": e.threshold}
                                     for e in self.extractors]} if self.extractors else {}
        return extractors | {
            "software": {"forensics_app": __version__, "python": sys.version.split()[0], "numpy": numpy.__version__,
                         "onnxruntime": onnxruntime.__version__, "platform": platform.platform()},
            "settings": self.settings.to_dict(),
            "held_out_error_rates": held_out_error_rates(),
            "providers": sorted({m.autoencoder.provider for m in self.models}),
            "models": [{"id": m.id, "display_name": m.installed.manifest.display_name,
                        "model_hash": m.installed.model_hash, "weights": m.installed.receipt["weights"],
                        "onnx": m.autoencoder.onnx_record, "demonstration": m.installed.manifest.demonstration,
                        "calibration": m.calibration_source} for m in self.models],
            "methods": [{"name": m.name, "version": m.version, "title": m.title, "decisive": m.decisive,
                         "parameters": m.parameters} for m in self.methods],
        }

    def analyse_file(self, path: Path, progress: ProgressCallback = no_progress,
                     cancel: CancelToken = NEVER_CANCELLED) -> ImageFindings:
        evidence = load_evidence(path, self.settings.intake)
        return self.analyse_evidence(evidence, progress, cancel)

    def analyse_evidence(self, evidence: Evidence, progress: ProgressCallback = no_progress,
                         cancel: CancelToken = NEVER_CANCELLED,
                         stored_result: StoredResult = no_stored_result) -> ImageFindings:
        """``stored_result`` may hand back an earlier MethodResult for (evidence sha256, model, method, region),
        which is reused instead of running the method (the case file's cache); calibrated readings and
        the verdict are always worked out afresh from the current calibrations."""
        return self.conclude(evidence, self.score(evidence, progress, cancel, stored_result))

    def score(self, evidence: Evidence, progress: ProgressCallback = no_progress,
              cancel: CancelToken = NEVER_CANCELLED, stored_result: StoredResult = no_stored_result) -> Scored:
        """Every (model, method) result for this image, before any calibration."""
        results: list[tuple[LoadedModel, object, MethodResult]] = []
        maps, reconstructions, notes, regions = {}, {}, [], []
        steps = max(1, len(self.models) * len(self.methods))
        for i, loaded in enumerate(self.models):
            manifest = loaded.installed.manifest
            region, note = self.candidate_region(loaded, evidence.height, evidence.width)
            notes += [note] if note else []
            regions.append(region)
            image = evidence.rgb01(region)
            for j, method in enumerate(self.methods):
                cancel.raise_if_cancelled()
                step = i * len(self.methods) + j
                label = f"{manifest.display_name}: {method.title}"
                progress(Progress(step / steps, label))

                def method_progress(p: Progress, step=step, label=label) -> None:
                    progress(Progress((step + p.fraction) / steps, f"{label}: {p.message}"))

                result = stored_result(evidence.sha256, loaded, method, region.to_dict())
                if result is None:
                    result = method.run(image, loaded.autoencoder, self.settings.tiling, cancel, method_progress)
                    result.region = region.to_dict()
                if hasattr(method, "complete"):
                    method.complete(result, image, loaded.autoencoder, cancel)
                results.append((loaded, method, result))
                for name, array in result.maps.items():
                    maps[(loaded.id, method.name, name)] = array
            if self.settings.keep_reconstructions:
                reconstructions[loaded.id] = loaded.autoencoder.reconstruct(image, self.settings.tiling, cancel)
        progress(Progress(1.0, "done"))
        return Scored(results, maps, reconstructions, bounding(regions), notes)

    def candidate_region(self, loaded: LoadedModel, height: int, width: int) -> tuple[Region, str | None]:
        """The pixels this candidate analyses, and why they are fewer than the image's where they are.

        On a CPU the time policy (core/imageprep.py) may narrow the region to a centred part; on a GPU
        only the settings' pixel limit applies."""
        tiling, manifest = self.settings.tiling, loaded.installed.manifest
        on_cpu = loaded.autoencoder.provider == CPU and tiling.cpu_seconds_per_candidate is not None
        cost = loaded.installed.gflop_per_megapixel
        budget = cpu_pixel_budget(tiling, cost) if on_cpu else None
        region = analysis_region(height, width, manifest.spatial_factor, tiling, self.settings.intake.min_side, budget)
        whole = (height - height % manifest.spatial_factor) * (width - width % manifest.spatial_factor)
        if on_cpu and cost is None and whole > MIN_REGION_PIXELS:
            return region, (f"{manifest.display_name}: no CPU time limit applied (its cost per pixel was not recorded "
                            f"at install; reinstall it to record it)")
        if region.width * region.height >= whole:
            return region, None
        share = f"the central {region.width}x{region.height} pixels of {width}x{height}"
        if budget is not None and budget < tiling.max_pixels:
            seconds = cost * region.width * region.height / 1e6 / tiling.cpu_gflop_per_second
            return region, (f"{manifest.display_name}: analysed {share} (CPU time policy: at most "
                            f"{tiling.cpu_seconds_per_candidate:g} s per candidate at {tiling.cpu_gflop_per_second:g} "
                            f"GFLOP/s, estimated {seconds:.0f} s for {cost:,.0f} GFLOP per megapixel; the rest of the "
                            f"image was not examined by this candidate: analyse on a GPU or allow more seconds)")
        return region, (f"{manifest.display_name}: analysed {share} (limit of {tiling.max_pixels / 1e6:g} "
                        f"megapixels per image)")

    def conclude(self, evidence: Evidence, scored: Scored, models: Iterable[str] | None = None) -> ImageFindings:
        """Calibrated readings and the verdict; ``models`` narrows the candidates (the benchmarks' held-out sets)."""
        keep = set(models) if models is not None else {m.id for m in self.models}
        results = [r for r in scored.results if r[0].id in keep]
        maps, reconstructions, region = scored.maps, scored.reconstructions, scored.region
        traces = pixel_traces(evidence.rgb)
        candidates, context = calibrated_readings(results, self.settings.alpha, traces.condition,
                                                  (evidence.height, evidence.width))
        context.notes += scored.notes
        names = self.display_names | {m.id: m.installed.manifest.display_name for m in self.models if m.id in keep}
        verdict = decide(candidates, self.settings.alpha, names, evidence.jpeg_quality,
                         traces.condition == JPEG_TRACES, context, resampled=traces.resampled,
                         fine_detail=traces.fine_detail)
        # fingerprints are shown and ranked but never vote: they are added after the verdict
        candidates += [fingerprint_candidate(e, evidence.rgb01(), self.settings.alpha) for e in self.extractors]
        facts = evidence_facts(evidence) | {"pixel_traces": traces.to_dict()}
        return ImageFindings(path=evidence.path, sha256=evidence.sha256, facts=facts,
                             region=region.to_dict() if region else {}, verdict=verdict, candidates=rank(candidates),
                             metadata=evidence.metadata, maps=maps, reconstructions=reconstructions)


@dataclass
class Scored:
    """One image's method results before calibration (what conclude() turns into findings)."""

    results: list[tuple[LoadedModel, object, MethodResult]]
    maps: dict
    reconstructions: dict
    region: Region | None  # the smallest region holding every candidate's
    notes: list[str] = field(default_factory=list)  # why candidates analysed fewer pixels than the image's


def bounding(regions: list[Region]) -> Region | None:
    if not regions:
        return None
    x, y = min(r.x for r in regions), min(r.y for r in regions)
    return Region(x, y, max(r.x + r.width for r in regions) - x, max(r.y + r.height for r in regions) - y)


def calibrated_readings(results: list[tuple[LoadedModel, object, MethodResult]], alpha: float, condition: str,
                        image_size: tuple[int, int]) -> tuple[list[CandidateFinding], DecisionContext]:
    """Every (model, method) result with its p-values under the family-wise rule of its method."""
    context = DecisionContext()
    by_method: dict[str, dict[str, Calibration]] = {}
    for loaded, method, result in results:
        cal = calibration_for(method, ran_with(method, loaded.installed.manifest, result), loaded.calibrations)
        if cal is not None:
            by_method.setdefault(method.name, {})[loaded.id] = cal
    rules = {name: family_rule(cals, alpha, condition) for name, cals in by_method.items()}
    decisive = {method.name for _, method, _ in results if method.decisive}
    context.rules = {name: rule for name, rule in rules.items() if name in decisive}  # baselines never decide
    candidates = []
    for loaded, method, result in results:
        manifest = loaded.installed.manifest
        rule = rules.get(method.name)
        used = rule.calibrations.get(loaded.id) if rule else None
        p_own = used.p_own(result.score) if used is not None else None
        p_real = used.p_real(result.score) if used is not None else None
        critical = rule.critical_p if rule else None
        status = reading_status(p_own, p_real, critical, alpha)
        summary = None
        if used is not None:
            threshold = used.threshold(critical)
            summary = {"n_own": int(len(used.own_scores)), "n_real": int(len(used.real_scores)),
                       "condition": rule.condition, "rule": rule.to_dict(), "threshold": threshold,
                       "histogram": used.histogram(), "data": used.data, "created": used.created,
                       "wrong_generator": wrong_generator_rates(loaded.id, threshold, by_method[method.name],
                                                                 rule.condition),
                       "look_alikes": look_alikes(loaded.id, result.score, by_method[method.name], rule.condition)}
            why = (off_grid(manifest, result, image_size) or within_downscaled_reach(used, result.score)
                   if status == REJECTED else None)
            if why:
                status = UNDECIDED
                context.notes.append(f"{manifest.display_name}: {why}")
        candidates.append(CandidateFinding(
            model=loaded.id, model_name=manifest.display_name, method=method.name,
            method_title=method.title, method_version=method.version, decisive=method.decisive,
            score=result.score, components=result.components, p_value=p_own, p_real=p_real,
            threshold=summary["threshold"] if summary else None, status=status,
            provider=result.provider, parameters=result.parameters, seconds=result.seconds, calibration=summary,
            region=result.region))
    context.pair_tests = pair_tests(candidates, by_method, rules)
    for c in candidates:
        if c.status == CONSISTENT and c.decisive:
            scores = {other.model: other.score for other in candidates if other.method == c.method}
            fit = profile_fit(c.model, scores, by_method[c.method], rules[c.method].condition)
            c.calibration["profile"] = fit.to_dict() if fit else None
    return candidates, context


def ran_with(method, manifest, result: MethodResult) -> dict | None:
    """The run's values of the parameters that define the method's score for this model (a calibration must match
    them); what a run records besides (its region, how it stopped) does not. None for a run cut short by a safety cap,
    which no calibration describes."""
    if result.parameters.get("cut_short"):
        return None
    return {k: result.parameters.get(k) for k in parameters_for(method, manifest)}


def off_grid(manifest, result: MethodResult, image_size: tuple[int, int]) -> str | None:
    """Why a model scored at its stored grid only (no phase search) may have missed its own output cropped
    off that grid; None where nothing suggests it."""
    if result.components.get("phase_searched"):
        return None
    if any(side % manifest.spatial_factor for side in image_size):
        return (f"the image's size ({image_size[1]}x{image_size[0]}) is not a multiple of {manifest.spatial_factor}, "
                f"so it was cropped or resized after generation, and this model is scored at the stored grid only: "
                f"a crop off its latent grid would hide it")
    ratio = result.components.get("grid_offset_ratio")
    if ratio is not None and ratio < GRID_OFFSET_LEVEL:
        return (f"another phase of its {manifest.spatial_factor}-pixel latent grid reconstructs the image's centre "
                f"better than the stored one (loss ratio {ratio:.2f} < {GRID_OFFSET_LEVEL}): the image may be its "
                f"output cropped off that grid, which this model's score (at the stored grid) would miss")
    return None


def within_downscaled_reach(calibration: Calibration, score: float) -> str | None:
    """Why a rejection excludes nothing: the score is one the model's own outputs reach once downscaled,
    which leaves no trace the app sees (core/calibrate.py downscaled_own_ceiling); None where the
    calibration records no such ceiling or the score lies above it."""
    reach = calibration.data.get("downscaled_own")
    if not reach or score > reach["ceiling"]:
        return None
    low, high = reach["scales"]
    return (f"the score ({score:.3g}) is unlike its own outputs as they were made, but not unlike them once "
            f"downscaled ({low:g}-{high:g}x, antialiased, which leaves no trace this app sees: "
            f"{reach['quantile']:.0%} of {reach['n']} such outputs score up to {reach['ceiling']:.3g}): a downscaled "
            f"output of this model is not excluded")


def pair_tests(candidates: list[CandidateFinding], by_method: dict[str, dict[str, Calibration]],
               rules: dict[str, FamilyRule]) -> list[PairTest]:
    """Tests between every two models consistent under the same decisive method, on the samples of the
    condition its rule used."""
    tests = []
    for method, cals in by_method.items():
        readings = {c.model: c for c in candidates if c.method == method and c.decisive and c.status == CONSISTENT}
        scores = {m: c.score for m, c in readings.items()}
        models = sorted(readings)
        tests += [pair_test(a, b, scores, cals, rules[method].condition)
                  for i, a in enumerate(models) for b in models[i + 1:]]
    return tests


def evidence_facts(evidence: Evidence) -> dict:
    return {"file_name": evidence.path.name, "size_bytes": evidence.size_bytes, "format": evidence.format,
            "width": evidence.width, "height": evidence.height, "mode": evidence.mode,
            "jpeg_quality": evidence.jpeg_quality, "notes": list(evidence.notes)}


@dataclass
class BatchResult:
    results: list[ImageFindings | FailedImage] = field(default_factory=list)
    cancelled: bool = False

    @property
    def failures(self) -> list[FailedImage]:
        return [r for r in self.results if isinstance(r, FailedImage)]


def analyse_paths(engine: Engine, paths: Iterable[Path | FailedImage], progress: ProgressCallback = no_progress,
                  cancel: CancelToken = NEVER_CANCELLED,
                  on_result: Callable[[ImageFindings | FailedImage], None] = lambda r: None) -> BatchResult:
    """Analyse files one by one; expected failures are recorded per file, cancellation keeps what is done.
    Results name each file by its absolute path and keep the path as given beside it. A FailedImage
    among the paths (an input refused before analysis, e.g. a pipe met by the folder walk) is recorded
    as it is."""
    paths = list(paths)
    batch = BatchResult()
    for index, given in enumerate(paths):
        if isinstance(given, FailedImage):
            batch.results.append(given)
            on_result(given)
            continue
        path = absolute_path(given)

        def image_progress(p: Progress, index=index, path=path) -> None:
            progress(Progress((index + p.fraction) / len(paths), f"{path.name}: {p.message}"))

        try:
            result = engine.analyse_file(path, image_progress, cancel)
        except Cancelled:
            batch.cancelled = True
            break
        except ForensicsError as exc:
            result = FailedImage(path, str(exc))
        result.path_as_given = str(given)
        batch.results.append(result)
        on_result(result)
    return batch
