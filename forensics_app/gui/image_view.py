"""The image view: evidence with a per-pixel map overlaid, and optionally R(x) and the map side by side.

Every layer is placed at stored-image pixel coordinates (maps cover the analysed region only), so
zoom, pan and the three linked views always agree, whatever display level is shown.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from forensics_app.core.colormaps import inferno_lut
from forensics_app.core.methods import get_method
from forensics_app.gui.worker import AnalysedImage

DEFAULT_OPACITY = 0.6
EMPTY_MESSAGE = "Drop image files or folders anywhere on the window, or use File > Open"


def shared_colour_map() -> pg.ColorMap:
    """The colour map of core.colormaps, so the window, exported maps and the report look the same."""
    lut = inferno_lut()
    return pg.ColorMap(np.linspace(0.0, 1.0, len(lut)), lut)


def map_label(key: tuple[str, str, str]) -> str:
    model, method, name = key
    return f"{model} / {method}: {name.replace('_', ' ')}"


class ImagePanel(QWidget):
    fixed_scale_toggled = Signal(bool)  # the user switched between per-image and fixed colour scales

    def __init__(self, parent=None):
        super().__init__(parent)
        self.result: AnalysedImage | None = None
        self._image_title = ""
        self.fixed_scale: float | None = None  # top of a fixed colour scale, as a share of the pixel range
        self.map_choice = QComboBox()
        # short enough for a 1280 px screen; the whole name is in each entry's tooltip and the title
        self.map_choice.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.map_choice.setMinimumContentsLength(16)
        self.map_choice.setToolTip("Per-pixel evidence map to overlay")
        self.opacity = QSlider(Qt.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(round(DEFAULT_OPACITY * 100))
        self.opacity.setMinimumWidth(50)
        self.opacity.setMaximumWidth(120)
        self.opacity.setToolTip("Heat-map opacity (0 = evidence only)")
        self.side_by_side = QCheckBox("Side by side")
        self.side_by_side.setToolTip("Evidence, its reconstruction R(x) and the map side by side")
        self.same_scale = QCheckBox("Fixed scale")
        self.same_scale.setToolTip("One colour scale for every image (Settings sets its top), so maps of two "
                                   "images can be compared; off: each map from 0 to its own 99.5th percentile")
        fit = QPushButton("Fit")
        fit.setToolTip("Show the whole image (mouse wheel zooms, drag pans)")
        controls = QHBoxLayout()
        controls.setContentsMargins(4, 2, 4, 2)
        for widget in (QLabel("Map:"), self.map_choice, QLabel("Opacity:"), self.opacity, self.side_by_side,
                       self.same_scale, fit):
            controls.addWidget(widget)
        controls.setStretch(1, 1)  # the map list takes the room there is, and gives it back first

        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground("#202124")
        self.title = pg.LabelItem("", color="#e8eaed")
        self.views = [self._view() for _ in range(3)]  # evidence+overlay, R(x), map
        self.view_titles = [pg.LabelItem(text, color="#bdc1c6") for text in
                            ("Evidence", "Reconstruction R(x)", "Difference map")]
        self.image_item, self.overlay_item = pg.ImageItem(), pg.ImageItem()
        self.reconstruction_item, self.difference_item = pg.ImageItem(), pg.ImageItem()
        self.views[0].addItem(self.image_item)
        self.views[0].addItem(self.overlay_item)
        self.views[1].addItem(self.reconstruction_item)
        self.views[2].addItem(self.difference_item)
        for view in self.views[1:]:
            view.setXLink(self.views[0])
            view.setYLink(self.views[0])
        # no colour-map menu: the window must look like the report; the handles adjust the range
        self.colour_bar = pg.ColorBarItem(colorMap=shared_colour_map(), interactive=True, width=14, colorMapMenu=False)
        self.colour_bar.axis.enableAutoSIPrefix(False)  # real units, never a hidden milli- prefix
        # the unit goes in the title line, not on the bar's axis, where it ran into the tick labels
        self.colour_bar.setImageItem([self.overlay_item, self.difference_item])
        self._arrange()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.canvas, 1)

        self.map_choice.currentIndexChanged.connect(self._show_map)
        self.opacity.valueChanged.connect(lambda v: self.overlay_item.setOpacity(v / 100))
        self.side_by_side.toggled.connect(self._arrange)
        self.side_by_side.toggled.connect(self.fit)
        self.same_scale.toggled.connect(self.fixed_scale_toggled)
        fit.clicked.connect(self.fit)
        self.overlay_item.setOpacity(DEFAULT_OPACITY)
        self.clear(EMPTY_MESSAGE)

    @staticmethod
    def _view() -> pg.ViewBox:
        view = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        view.setDefaultPadding(0.01)
        return view

    def _arrange(self) -> None:
        self.canvas.ci.clear()
        shown = 3 if self.side_by_side.isChecked() else 1
        self.canvas.ci.addItem(self.title, row=0, col=0, colspan=shown + 1)
        for col in range(shown):
            self.canvas.ci.addItem(self.view_titles[col], row=1, col=col)
            self.canvas.ci.addItem(self.views[col], row=2, col=col)
        self.canvas.ci.addItem(self.colour_bar, row=2, col=shown)
        self.overlay_item.setVisible(shown == 1)  # side by side, the map has its own panel

    # -- content ---------------------------------------------------------------------------------
    def clear(self, message: str) -> None:
        self.result = None
        self._image_title = ""
        self.map_choice.clear()
        for item in (self.image_item, self.overlay_item, self.reconstruction_item, self.difference_item):
            item.clear()
        self.colour_bar.setVisible(False)  # no map, no legend
        self.title.setText(message)

    def set_colour_scale(self, fixed: float | None) -> None:
        """``fixed``: every map from 0 to this share of its model's pixel range; None: each map its own range."""
        self.fixed_scale = fixed
        self.same_scale.blockSignals(True)
        self.same_scale.setChecked(fixed is not None)
        self.same_scale.blockSignals(False)
        self._show_map()

    def map_levels(self, key: tuple[str, str, str]) -> tuple[float, float]:
        """The colour range of a map: fixed across images when chosen, else the map's own (as in the report)."""
        lo_hi = self.result.pixel_ranges.get(key[0]) if self.fixed_scale is not None else None
        if lo_hi is None:
            return self.result.display.map_ranges[key]
        return 0.0, self.fixed_scale * (lo_hi[1] - lo_hi[0])

    def show_result(self, result: AnalysedImage) -> None:
        self.result = result
        findings = result.findings
        facts = findings.facts
        self._image_title = (f"{facts['file_name']}  ({facts['width']} x {facts['height']} {facts['format']})"
                             + (f"  shown at 1/{result.display.step} size" if result.display.step > 1 else "")
                             + (f"  - {result.evidence_note}" if result.evidence_note else ""))
        self.title.setText(self._image_title)
        if result.display.original is None:
            self.image_item.clear()
        else:
            self.image_item.setImage(result.display.original, autoLevels=False, levels=(0, 255))
            self.image_item.setRect(QRectF(0, 0, facts["width"], facts["height"]))
        self.map_choice.blockSignals(True)
        self.map_choice.clear()
        # the top-ranked candidate's maps first: the map shown by default is the one the verdict rests on
        rank = {}
        for index, candidate in enumerate(findings.candidates):
            rank.setdefault((candidate.model, candidate.method), index)
        for key in sorted(result.display.maps, key=lambda k: rank.get(k[:2], len(rank))):
            self.map_choice.addItem(map_label(key), key)
            self.map_choice.setItemData(self.map_choice.count() - 1, get_method(key[1]).map_titles.get(key[2], ""),
                                        Qt.ToolTipRole)
        self.map_choice.blockSignals(False)
        self._show_map()
        self.fit()

    def _show_map(self) -> None:
        if self.result is None or self.map_choice.currentIndex() < 0:
            return
        model, method, name = key = self.map_choice.currentData()
        findings, display = self.result.findings, self.result.display
        # each candidate may have analysed its own part of the image (the CPU time policy)
        region = next((c.region for c in findings.candidates if (c.model, c.method) == (model, method) and c.region),
                      findings.region)
        rect = QRectF(region["x"], region["y"], region["width"], region["height"])
        shown = display.maps[key]
        levels = self.map_levels(key)
        for item in (self.overlay_item, self.difference_item):
            item.setImage(shown, autoLevels=False)
            item.setRect(rect)
        self.colour_bar.setVisible(True)
        self.colour_bar.rounding = levels[1] / 500  # handle steps fine enough for these values
        self.colour_bar.setLevels(levels)
        scale = "fixed scale" if self.fixed_scale is not None and model in self.result.pixel_ranges else "scale"
        self.title.setText(f"{self._image_title}  ·  colour {scale}: {self.result.map_units.get(model, '')}")
        self.view_titles[2].setText(name.replace("_", " "))
        reconstruction = display.reconstructions.get(model)
        if reconstruction is None:
            self.reconstruction_item.clear()
        else:
            self.reconstruction_item.setImage(reconstruction, autoLevels=False, levels=(0, 255))
            self.reconstruction_item.setRect(rect)

    def fit(self) -> None:
        self.canvas.ci.layout.activate()  # views just added or removed need their final size first
        self.views[0].autoRange(padding=0.01)
