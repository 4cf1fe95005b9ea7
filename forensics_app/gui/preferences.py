"""User preferences kept with QSettings, and the AnalysisSettings they stand for."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings

from forensics_app.core.imageprep import TilingSettings
from forensics_app.core.methods import DEFAULT_METHODS
from forensics_app.core.pipeline import DEFAULT_ALPHA, AnalysisSettings
from forensics_app.core.runtime import RuntimeSettings
from forensics_app.core.zoo.store import HOME_ENV, app_home

ORGANISATION = APPLICATION = "forensics-app"


def default_qsettings() -> QSettings:
    return QSettings(ORGANISATION, APPLICATION)


@dataclass(frozen=True)
class Preferences:
    home: Path  # application data folder; the zoo lives in home/zoo
    provider: str = "auto"  # auto | cpu | cuda
    max_megapixels: float = TilingSettings().max_pixels / 1e6  # larger images: a centred region is analysed
    alpha: float = DEFAULT_ALPHA  # false-attribution rate
    methods: tuple[str, ...] = DEFAULT_METHODS
    extractors: tuple[str, ...] = ()  # learned-fingerprint extractors shown beside the methods (never vote)
    # candidate generators (empty = every installed one): each of k candidates is tested at alpha / k, so
    # asking about fewer generators keeps more power for them
    models: tuple[str, ...] = ()

    def analysis_settings(self) -> AnalysisSettings:
        # keep_reconstructions: the view shows R(x) beside the evidence
        return AnalysisSettings(methods=self.methods, alpha=self.alpha, extractors=self.extractors, models=self.models,
                                tiling=TilingSettings(max_pixels=int(self.max_megapixels * 1e6)),
                                runtime=RuntimeSettings(provider=self.provider), keep_reconstructions=True)

    @classmethod
    def load(cls, store: QSettings, home: Path | None = None) -> Preferences:
        """Stored values. The folder: --home, else $FORENSICS_APP_HOME, else the stored one, else the default."""
        default = cls(home=app_home())
        if home is None and os.environ.get(HOME_ENV):
            home = Path(os.environ[HOME_ENV])
        methods = store.value("analysis/methods", ",".join(default.methods))
        extractors = str(store.value("analysis/extractors", ""))
        models = str(store.value("analysis/models", ""))
        return cls(home=home or Path(store.value("zoo/home", str(default.home))),
                   provider=str(store.value("analysis/provider", default.provider)),
                   max_megapixels=float(store.value("analysis/max_megapixels", default.max_megapixels)),
                   alpha=float(store.value("analysis/alpha", default.alpha)),
                   methods=tuple(m for m in str(methods).split(",") if m) or default.methods,
                   extractors=tuple(e for e in extractors.split(",") if e),
                   models=tuple(m for m in models.split(",") if m))

    def save(self, store: QSettings) -> None:
        store.setValue("zoo/home", str(self.home))
        store.setValue("analysis/provider", self.provider)
        store.setValue("analysis/max_megapixels", self.max_megapixels)
        store.setValue("analysis/alpha", self.alpha)
        store.setValue("analysis/methods", ",".join(self.methods))
        store.setValue("analysis/extractors", ",".join(self.extractors))
        store.setValue("analysis/models", ",".join(self.models))
        store.sync()
