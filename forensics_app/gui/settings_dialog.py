"""Settings: zoo folder, execution provider, analysed-pixel limit, false-attribution rate, methods,
candidate generators, learned-fingerprint extractors."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, \
    QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from forensics_app.core.fingerprint import shipped_extractors
from forensics_app.core.methods import all_methods
from forensics_app.core.zoo.store import Zoo
from forensics_app.core.runtime import PROVIDER_CHOICES
from forensics_app.gui.preferences import Preferences


def _check_list(entries) -> tuple[dict[str, QCheckBox], QVBoxLayout]:
    """One checkbox per (key, label, tooltip, checked) entry, stacked; the boxes by key."""
    boxes, layout = {}, QVBoxLayout()
    for key, label, tooltip, checked in entries:
        box = QCheckBox(label)
        box.setToolTip(tooltip)
        box.setChecked(checked)
        boxes[key] = box
        layout.addWidget(box)
    return boxes, layout


class SettingsDialog(QDialog):
    def __init__(self, preferences: Preferences, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.home = QLineEdit(str(preferences.home))
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        home_row = QHBoxLayout()
        home_row.addWidget(self.home, 1)
        home_row.addWidget(browse)
        home_widget = QWidget()
        home_widget.setLayout(home_row)
        home_row.setContentsMargins(0, 0, 0, 0)
        self.provider = QComboBox()
        self.provider.addItems(PROVIDER_CHOICES)
        self.provider.setCurrentText(preferences.provider)
        self.provider.setToolTip("auto: CUDA when it really works on this machine, else CPU")
        self.max_megapixels = QDoubleSpinBox(decimals=1, minimum=0.1, maximum=400.0, suffix=" MP")
        self.max_megapixels.setValue(preferences.max_megapixels)
        self.max_megapixels.setToolTip("Larger images are analysed in a centred region of this many pixels "
                                       "(in tiles; pixels are never resized)")
        self.cpu_seconds = QDoubleSpinBox(decimals=0, minimum=0.0, maximum=3600.0, singleStep=10.0, suffix=" s")
        self.cpu_seconds.setSpecialValueText("no limit")
        self.cpu_seconds.setValue(preferences.cpu_seconds)
        self.cpu_seconds.setToolTip("On a CPU, a candidate whose check would take longer on a large image analyses "
                                    "a centred part of it (the findings say which); a GPU is not limited")
        self.alpha = QDoubleSpinBox(decimals=3, minimum=0.001, maximum=0.2, singleStep=0.005)
        self.alpha.setValue(preferences.alpha)
        self.alpha.setToolTip("How often a real photo may be wrongly attributed (0.01 = 1 in 100)")
        self.fixed_map_scale = QCheckBox("Fixed: 0 to")
        self.fixed_map_scale.setChecked(preferences.fixed_map_scale)
        self.map_scale_top = QDoubleSpinBox(decimals=3, minimum=0.001, maximum=1.0, singleStep=0.01)
        self.map_scale_top.setValue(preferences.map_scale_top)
        self.map_scale_top.setToolTip("Top of the colour scale, as a share of the model's pixel range "
                                      "(0.1 = a tenth of the range)")
        scale_row = QHBoxLayout()
        scale_row.setContentsMargins(0, 0, 0, 0)
        scale_row.addWidget(self.fixed_map_scale)
        scale_row.addWidget(self.map_scale_top)
        scale_row.addWidget(QLabel("of the pixel range, for every image (off: each map its own range)"), 1)
        self.methods, methods_box = _check_list(
            (name, method.title + ("" if method.decisive else " - baseline, does not vote"), "",
             name in preferences.methods) for name, method in sorted(all_methods().items()))
        zoo = Zoo(preferences.home)
        self.models, models_box = _check_list(
            (model_id, zoo.installed(model_id).manifest.display_name, "",
             not preferences.models or model_id in preferences.models) for model_id in zoo.installed_ids())
        if self.models:
            models_box.addWidget(QLabel("The rate holds for all candidates together: fewer candidates, more power "
                                        "for each."))
        self.extractors, extractors_box = _check_list(
            (name, f"{manifest.display_name} - shown, does not vote", manifest.description,
             name in preferences.extractors) for name, manifest in sorted(shipped_extractors().items()))
        form = QFormLayout()
        form.addRow("Application folder (zoo):", home_widget)
        form.addRow("Execution provider:", self.provider)
        form.addRow("Analyse at most:", self.max_megapixels)
        form.addRow("CPU time per candidate:", self.cpu_seconds)
        form.addRow("False-attribution rate:", self.alpha)
        form.addRow("Heat-map colour scale:", scale_row)
        form.addRow("Methods:", methods_box)
        if self.models:
            form.addRow("Candidate generators:", models_box)
        if self.extractors:
            form.addRow("Learned fingerprints:", extractors_box)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Application folder", self.home.text())
        if folder:
            self.home.setText(folder)

    def preferences(self) -> Preferences:
        methods = tuple(name for name, box in self.methods.items() if box.isChecked())
        return Preferences(home=Path(self.home.text()), provider=self.provider.currentText(),
                           max_megapixels=self.max_megapixels.value(), alpha=self.alpha.value(),
                           cpu_seconds=self.cpu_seconds.value(),
                           methods=methods or Preferences(home=Path()).methods,
                           extractors=tuple(name for name, box in self.extractors.items() if box.isChecked()),
                           models=self._chosen_models(), fixed_map_scale=self.fixed_map_scale.isChecked(),
                           map_scale_top=self.map_scale_top.value())

    def _chosen_models(self) -> tuple[str, ...]:
        """Empty when every installed model is chosen (or none): then models installed later join too."""
        chosen = tuple(model_id for model_id, box in self.models.items() if box.isChecked())
        return () if len(chosen) in (0, len(self.models)) else chosen
