"""Render screenshots of the main window's states into docs/screenshots/*.png, at a laptop's 1366 x 768.

    xvfb-run -s "-screen 0 1366x768x24" python scripts/screenshots.py --home APP_HOME --photos FOLDER

(without a display the offscreen platform draws them, with Qt's plain fallback style and fonts).
APP_HOME must hold an installed, calibrated TAEF2 (forensics-app zoo install / calibrate); only TAEF2 is
a candidate, so the verdicts decide. From the photos folder the script crops two photos and makes one
TAEF2 output (decode(encode(crop))), adds a text file named .png, creates a case, analyses them into it
in the real window and grabs: empty (with the first-start offer of a home without models), analysing,
result with heat map, side by side, findings with histogram (attributed and not attributed), a
learned-fingerprint reading (fp-repmix), refused file, notes, the export dialog, and the zoo manager
and settings dialogs. PNGs are palette-quantised to stay small.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QEventLoop, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication, QDockWidget  # noqa: E402

from forensics_app.core.calibrate import CalibrationPlan, own_output  # noqa: E402
from forensics_app.core.zoo.autoencoder import OnnxAutoencoder  # noqa: E402
from forensics_app.core.zoo.store import Zoo  # noqa: E402
from forensics_app.gui.app import configure_pyqtgraph  # noqa: E402
from forensics_app.gui.evidence_list import DONE, QUEUED, RUNNING  # noqa: E402
from forensics_app.gui.main_window import MainWindow  # noqa: E402
from forensics_app.gui.preferences import Preferences  # noqa: E402

WINDOW_SIZE = (1366, 768)
CROP = 256


def wait_until(app: QApplication, condition, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not reach the expected state")
        app.processEvents(QEventLoop.AllEvents, 50)
        time.sleep(0.02)


def settle(app: QApplication) -> None:
    """Let layouts and pyqtgraph repaint before grabbing."""
    for _ in range(10):
        app.processEvents(QEventLoop.AllEvents, 20)


def save(widget, path: Path) -> None:
    image = widget.grab().toImage()
    tmp = path.with_suffix(".raw.png")
    image.save(str(tmp))
    Image.open(tmp).convert("RGB").quantize(colors=192, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    tmp.unlink()
    print(f"{path}  {path.stat().st_size // 1024} KB")


def make_evidence(zoo: Zoo, photos: Path, folder: Path) -> dict[str, Path]:
    def crop(name: str) -> np.ndarray:
        rgb = np.asarray(Image.open(photos / name).convert("RGB"))
        return rgb[:CROP, :CROP].copy()

    autoencoder = OnnxAutoencoder(zoo.installed("taef2"))
    files = {"taef2": folder / "taef2_decoded_zebra.png", "photo": folder / "photo_baboon.png",
             "photo2": folder / "photo_lenna.png", "refused": folder / "notes_not_an_image.png"}
    Image.fromarray(own_output(autoencoder, crop("zebra.png"), False, CalibrationPlan(),
                               np.random.default_rng(0))).save(files["taef2"])
    Image.fromarray(crop("baboon.png")).save(files["photo"])
    Image.fromarray(crop("lenna.png")).save(files["photo2"])
    files["refused"].write_text("meeting notes, saved with the wrong name\n")
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True, help="application folder with TAEF2 installed and calibrated")
    parser.add_argument("--photos", required=True, help="folder with baboon.png, lenna.png, zebra.png (e.g. Set14)")
    parser.add_argument("--alpha", type=float, default=0.01, help="false-attribution rate shown")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "screenshots"))
    parser.add_argument("--report-page", help="also export the case's report and render its first item page "
                        "to this PNG (needs pdftoppm), e.g. docs/report-page.png")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    configure_pyqtgraph()
    with tempfile.TemporaryDirectory() as tmp:
        files = make_evidence(Zoo(Path(args.home)), Path(args.photos), Path(tmp))
        settings = lambda: QSettings(str(Path(tmp) / "gui.ini"), QSettings.IniFormat)  # noqa: E731

        first = MainWindow(Preferences(home=Path(tmp) / "no-models"), settings())
        first.resize(*WINDOW_SIZE)
        first.show()
        wait_until(app, lambda: first.first_model_offer is not None)
        settle(app)
        save(first.first_model_offer, out / "first_start.png")
        first.first_model_offer.reject()
        first.close()

        preferences = Preferences(home=Path(args.home), alpha=args.alpha, methods=("aedr", "reconstruction"),
                                  extractors=("fp-repmix",), models=("taef2",))
        window = MainWindow(preferences, settings())
        window.resize(*WINDOW_SIZE)
        window.show()
        settle(app)
        save(window, out / "empty.png")

        window.create_case(Path(tmp) / "harbour.case", "Harbour fire", "J. Doe")
        window.add_paths([files["taef2"], files["photo"], files["photo2"], files["refused"]])
        status = lambda: [item.status for item in window.evidence.items]  # noqa: E731
        wait_until(app, lambda: status()[:2] == [DONE, RUNNING])
        settle(app)
        save(window, out / "analysing.png")

        wait_until(app, lambda: not (window.evidence.count(QUEUED) or window.evidence.count(RUNNING)))
        window.select_item(window.evidence.items[0].item_id)
        settle(app)
        save(window, out / "result_heatmap.png")

        window.image_panel.side_by_side.setChecked(True)
        settle(app)
        save(window, out / "side_by_side.png")
        window.image_panel.side_by_side.setChecked(False)

        window.select_item(window.evidence.items[1].item_id)
        settle(app)
        save(window, out / "not_attributed.png")
        save(window.findChild(QDockWidget, "Findings"), out / "findings_histogram.png")
        candidates = window.evidence.items[1].result.findings.candidates
        window.histogram.select_candidate(next(i for i, c in enumerate(candidates) if c.extractor))
        settle(app)
        save(window.findChild(QDockWidget, "Findings"), out / "findings_fingerprint.png")

        window.select_item(window.evidence.items[3].item_id)
        settle(app)
        save(window, out / "refused.png")

        window.select_item(window.evidence.items[0].item_id)
        window.bottom_tabs.setCurrentWidget(window.notes)
        window.notes.editor.setPlainText("Received from the claimant by e-mail on 3 March; original file name kept.")
        window.notes.add_button.click()
        settle(app)
        save(window, out / "case_notes.png")

        export = window.export_report()
        settle(app)
        save(export, out / "export_report.png")
        export.reject()
        if args.report_page:  # the exported PDF's first item page, as the README shows it
            pdf = Path(tmp) / "report.pdf"
            window.write_report(pdf, None)
            wait_until(app, lambda: window.task is None)
            subprocess.run(["pdftoppm", "-png", "-r", "90", "-f", "3", "-l", "3", "-singlefile", str(pdf),
                            str(Path(args.report_page).with_suffix(""))], check=True)
            print(args.report_page)

        for name, dialog in (("zoo_manager.png", window.open_zoo_manager()), ("settings.png", window.open_settings())):
            settle(app)
            save(dialog, out / name)
            dialog.reject()
        window.close()
        window.deleteLater()
        settle(app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
