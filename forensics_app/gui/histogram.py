"""Score histogram: a candidate's calibration distributions (own outputs vs real photos, log x),
with this image's score and the decision threshold marked."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from forensics_app.gui.worker import AnalysedImage

OWN_COLOUR, REAL_COLOUR, SCORE_COLOUR, THRESHOLD_COLOUR = "#f5a524", "#5b8def", "#e8eaed", "#9aa0a6"


def fingerprint_note(candidate) -> str:
    """A learned fingerprint has class probabilities instead of calibration histograms: say them."""
    probabilities = sorted(candidate.components.items(), key=lambda kv: -kv[1])[:4]
    listed = ", ".join(f"{name[2:-1]} {p:.2f}" for name, p in probabilities)  # keys are "p(class)"
    return (f"{candidate.method_title} ({candidate.extractor}, "
            f"{candidate.parameters['patches']} patches): {listed}. A generator is named only when its "
            f"probability reaches {candidate.parameters['open_set_threshold']:.2f}; fingerprints are shown "
            f"for comparison and never decide the verdict.")


class ScoreHistogram(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.result: AnalysedImage | None = None
        self.candidate_choice = QComboBox()
        self.candidate_choice.setToolTip("Candidate generator and method whose calibration is shown")
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.plot = pg.PlotWidget(background="#202124")
        self.plot.setLogMode(x=True, y=False)
        self.plot.setLabel("bottom", "score (log scale; low = fits the generator)")
        self.plot.setLabel("left", "calibration samples")
        self.plot.setMouseEnabled(x=True, y=False)
        # the legend is a line of text above the plot: inside a small plot it covered the markers' labels
        self.legend = QLabel(f'<span style="color:{OWN_COLOUR}">&#9632;</span> generator\'s own outputs &nbsp; '
                             f'<span style="color:{REAL_COLOUR}">&#9632;</span> real photos &nbsp; '
                             f'<b>|</b> this image &nbsp; <span style="color:{THRESHOLD_COLOUR}">&#166;</span> '
                             'threshold')
        self.legend.setWordWrap(True)
        self.own_curve = self.plot.plot([0, 1], [0], stepMode="center", fillLevel=0,
                                        pen=pg.mkPen(OWN_COLOUR, width=2), brush=pg.mkBrush(OWN_COLOUR + "60"))
        self.real_curve = self.plot.plot([0, 1], [0], stepMode="center", fillLevel=0,
                                         pen=pg.mkPen(REAL_COLOUR, width=2), brush=pg.mkBrush(REAL_COLOUR + "60"))
        # pyqtgraph's log mode transforms curves, not lines: line positions are log10 values
        # labels sit to the right of their line, below the legend, on a dark backing so bars never hide them
        label_style = {"anchors": [(0, 0.5), (0, 0.5)], "fill": (32, 33, 36, 210)}
        self.score_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(SCORE_COLOUR, width=2), label="this image",
                                          labelOpts={"position": 0.62, "color": SCORE_COLOUR, **label_style})
        self.threshold_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(THRESHOLD_COLOUR, width=1, dash=[4, 4]),
                                              label="threshold", labelOpts={"position": 0.45, "color": THRESHOLD_COLOUR,
                                                                            **label_style})
        self.plot.addItem(self.score_line)
        self.plot.addItem(self.threshold_line)
        self.candidate_choice.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.candidate_choice.setMinimumContentsLength(10)  # long names elide: the dock can be narrow
        self.plot.setMinimumHeight(120)
        top = QHBoxLayout()
        top.addWidget(QLabel("Calibration of:"))
        top.addWidget(self.candidate_choice, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.legend)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.note)
        self.candidate_choice.currentIndexChanged.connect(self._draw)
        self.clear()

    def clear(self, message: str = "No calibration to show: select an analysed image.") -> None:
        """No result: no axes either (empty axes would suggest a distribution that is not there)."""
        self.result = None
        self.candidate_choice.clear()
        self._show_curves(False)
        self.plot.setVisible(False)
        self.note.setText(message)

    def show_result(self, result: AnalysedImage) -> None:
        self.result = result
        self.candidate_choice.blockSignals(True)
        self.candidate_choice.clear()
        for c in result.findings.candidates:
            self.candidate_choice.addItem(f"{c.model_name} - {c.method_title}")
        self.candidate_choice.blockSignals(False)
        self.select_candidate(0)

    def select_candidate(self, index: int) -> None:
        if self.candidate_choice.currentIndex() == index:
            self._draw()
        else:
            self.candidate_choice.setCurrentIndex(index)

    @property
    def marked_score(self) -> float | None:
        """The score where the marker stands (None when hidden)."""
        return 10 ** self.score_line.value() if self.score_line.isVisible() else None

    def _show_curves(self, visible: bool) -> None:
        for item in (self.own_curve, self.real_curve, self.score_line, self.threshold_line, self.legend):
            item.setVisible(visible)

    def _draw(self) -> None:
        index = self.candidate_choice.currentIndex()
        if self.result is None or index < 0:
            return
        candidate = self.result.findings.candidates[index]
        # the samples this reading was compared with, as the finding carries them (fingerprints have none)
        calibration = None if candidate.extractor else candidate.calibration
        self.plot.setVisible(calibration is not None)  # an empty plot would suggest a distribution exists
        if calibration is None:
            self._show_curves(False)
            self.note.setText(fingerprint_note(candidate) if candidate.extractor else
                              f"No valid calibration for {candidate.method} on {candidate.model_name}: "
                              "calibrate the model (forensics-app zoo calibrate) to get p-values.")
            return
        histogram = calibration["histogram"]
        edges = np.asarray(histogram["edges"])
        self.own_curve.setData(edges, histogram["own"])
        self.real_curve.setData(edges, histogram["real"])
        self._show_curves(True)
        # a score of zero or below has no place on a log axis: pin it to the left edge and say so
        marker = candidate.score if candidate.score > 0 else edges[0]
        self.score_line.setValue(math.log10(marker))
        self.score_line.label.setFormat(f"this image: {candidate.score:.4g}")
        threshold = candidate.threshold
        self.threshold_line.setVisible(threshold is not None and threshold > 0)
        if threshold is not None and threshold > 0:
            self.threshold_line.setValue(math.log10(threshold))
            critical = calibration["rule"]["critical_p"]
            self.threshold_line.label.setFormat(f"threshold (p_real <= {critical:.2g})")
        self.note.setText(f"{calibration['n_own']} own outputs vs {calibration['n_real']} real photos "
                          f"({calibration['condition'] or 'all conditions'}); "
                          f"score {candidate.score:.4g}, p_own {candidate.p_own_text()}, p_real {candidate.p_real_text()}"
                          + ("" if candidate.score > 0 else " (score <= 0 shown at the left edge)"))
        # the x range always includes the marker, even for a score far outside both distributions
        low, high = math.log10(min(edges[0], marker)), math.log10(max(edges[-1], marker))
        pad = 0.05 * (high - low)
        self.plot.setXRange(low - pad, high + pad, padding=0)
        self.plot.enableAutoRange(axis="y")
        # labels go on the side of their line that has room
        for line in (self.score_line, self.threshold_line):
            right_half = line.value() > (low + high) / 2
            line.label.anchors = [(1, 0.5), (1, 0.5)] if right_half else [(0, 0.5), (0, 0.5)]
            line.label.updatePosition()
