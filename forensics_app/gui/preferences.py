"""User preferences kept with QSettings, and the AnalysisSettings they stand for."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings

from forensics_app.core.imageprep import TilingSettings
from forensics_app.core.methods import DEFAULT_METHODS
from forensics_app.core.pipeline import DEFAULT_ALPHA, AnalysisSettings
from forensics_app.core.runtime import PROVIDER_CHOICES, RuntimeSettings
from forensics_app.core.zoo.store import HOME_ENV, app_home

ORGANISATION = APPLICATION = "forensics-app"
DEFAULT_MAP_SCALE_TOP = 0.2  # of the pixel range: a TAEF2 output's map peaks near 0.08, a photo's near 0.25


def default_qsettings() -> QSettings:
    return QSettings(ORGANISATION, APPLICATION)


@dataclass(frozen=True)
class Preferences:
    home: Path  # application data folder; the zoo lives in home/zoo
    provider: str = "auto"  # auto | cpu | cuda
    max_megapixels: float = TilingSettings().max_pixels / 1e6  # larger images: a centred region is analysed
    alpha: float = DEFAULT_ALPHA  # false-attribution rate
    # CPU time policy (core/imageprep.py): seconds per candidate on a CPU, 0 = no limit
    cpu_seconds: float = TilingSettings().cpu_seconds_per_candidate
    methods: tuple[str, ...] = DEFAULT_METHODS
    extractors: tuple[str, ...] = ()  # learned-fingerprint extractors shown beside the methods (never vote)
    # candidate generators (empty = every installed one): each of k candidates is tested at alpha / k, so
    # asking about fewer generators keeps more power for them
    models: tuple[str, ...] = ()
    # heat maps: one colour scale for every image (0 to this share of the model's pixel range), so two images'
    # maps can be compared; off, each map runs from 0 to its own 99.5th percentile (as in the report)
    fixed_map_scale: bool = False
    map_scale_top: float = DEFAULT_MAP_SCALE_TOP

    @property
    def colour_scale(self) -> float | None:
        """The fixed scale's top as a share of the pixel range, None for per-image scales."""
        return self.map_scale_top if self.fixed_map_scale else None

    def analysis_settings(self) -> AnalysisSettings:
        # keep_reconstructions: the view shows R(x) beside the evidence
        return AnalysisSettings(methods=self.methods, alpha=self.alpha, extractors=self.extractors, models=self.models,
                                tiling=TilingSettings(max_pixels=int(self.max_megapixels * 1e6),
                                                      cpu_seconds_per_candidate=self.cpu_seconds or None),
                                runtime=RuntimeSettings(provider=self.provider), keep_reconstructions=True)

    @classmethod
    def load(cls, store: QSettings, home: Path | None = None) -> Preferences:
        """Stored values. The folder: --home, else $FORENSICS_APP_HOME, else the stored one, else the default.
        A stored value that is missing, of the wrong type or out of range (a hand-edited or damaged
        settings file) gives the default: the window always opens."""
        default = cls(home=app_home())
        if home is None and os.environ.get(HOME_ENV):
            home = Path(os.environ[HOME_ENV])

        def names(key: str, fallback: tuple[str, ...]) -> tuple[str, ...]:
            raw = store.value(key)
            if raw is None:
                return fallback
            parts = raw if isinstance(raw, list) else str(raw).split(",")  # hand-written INI: a list
            return tuple(p.strip() for p in parts if isinstance(p, str) and p.strip())

        return cls(home=home or _stored(store, "zoo/home", default.home, lambda v: Path(str(v)) if v else None),
                   provider=_stored(store, "analysis/provider", default.provider, str,
                                    lambda v: v in PROVIDER_CHOICES),
                   max_megapixels=_stored(store, "analysis/max_megapixels", default.max_megapixels, float,
                                          lambda v: 0 < v < float("inf")),
                   alpha=_stored(store, "analysis/alpha", default.alpha, float, lambda v: 0 < v < 1),
                   cpu_seconds=_stored(store, "analysis/cpu_seconds", default.cpu_seconds, float,
                                       lambda v: 0 <= v < float("inf")),
                   methods=names("analysis/methods", default.methods) or default.methods,
                   extractors=names("analysis/extractors", ()),
                   models=names("analysis/models", ()),
                   fixed_map_scale=_stored(store, "view/fixed_map_scale", default.fixed_map_scale, _boolean,
                                           lambda v: v is not None),
                   map_scale_top=_stored(store, "view/map_scale_top", default.map_scale_top, float,
                                         lambda v: 0 < v <= 1))

    def save(self, store: QSettings) -> None:
        store.setValue("zoo/home", str(self.home))
        store.setValue("analysis/provider", self.provider)
        store.setValue("analysis/max_megapixels", self.max_megapixels)
        store.setValue("analysis/alpha", self.alpha)
        store.setValue("analysis/cpu_seconds", self.cpu_seconds)
        store.setValue("analysis/methods", ",".join(self.methods))
        store.setValue("analysis/extractors", ",".join(self.extractors))
        store.setValue("analysis/models", ",".join(self.models))
        store.setValue("view/fixed_map_scale", "true" if self.fixed_map_scale else "false")
        store.setValue("view/map_scale_top", self.map_scale_top)
        store.sync()


def _stored(store: QSettings, key: str, default, convert, valid=lambda value: True):
    """The value stored under `key` converted, or `default` when it is missing, unconvertible or not valid."""
    raw = store.value(key)
    if raw is None or isinstance(raw, (list, dict)):  # an INI line with commas reads back as a list
        return default
    try:
        value = convert(raw)
    except (TypeError, ValueError):
        return default
    return value if value is not None and valid(value) else default


def _boolean(raw) -> bool | None:
    """QSettings gives booleans back as text from INI files: "true" / "false" (anything else is invalid)."""
    if isinstance(raw, bool):
        return raw
    return {"true": True, "false": False}.get(str(raw).strip().lower())
