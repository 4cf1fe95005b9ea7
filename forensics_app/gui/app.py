"""Starting the desktop application (``forensics-app`` or ``forensics-app gui [FILES...]``)."""

from __future__ import annotations

import sys
from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[2] / "resources"  # source checkout; bundles copy it alongside


def configure_pyqtgraph() -> None:
    import pyqtgraph as pg

    pg.setConfigOptions(imageAxisOrder="row-major")  # numpy (H, W) arrays, as the engine makes them


def install_first_start_packs(home: Path) -> None:
    """A bundle carries model packs (TAEF2) so that its window works offline the first time it starts."""
    from forensics_app.core.errors import ForensicsError
    from forensics_app.core.zoo.pack import install_bundled_packs
    from forensics_app.core.zoo.store import Zoo

    try:
        install_bundled_packs(Zoo(home), log=lambda line: print(line, file=sys.stderr, flush=True))
    except ForensicsError as exc:  # the window still opens; its zoo manager shows what is installed
        print(f"error: the packs shipped with the application were not installed: {exc}", file=sys.stderr)


def run(paths: list[Path], home: Path | None = None) -> int:
    from forensics_app.core.errors import ForensicsError
    from forensics_app.gui.platform_check import platform_problem

    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None:  # before Qt aborts the process with a message about plugins
        problem = platform_problem()
        if problem:
            raise ForensicsError(problem)
    from PySide6.QtGui import QIcon

    from forensics_app.gui.main_window import MainWindow
    from forensics_app.gui.preferences import APPLICATION, ORGANISATION, Preferences, default_qsettings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setDesktopFileName("forensics-app")
    icon = RESOURCES / "forensics-app.svg"
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    configure_pyqtgraph()
    store = default_qsettings()
    preferences = Preferences.load(store, home)
    install_first_start_packs(preferences.home)
    window = MainWindow(preferences, store)
    window.show()
    window.add_paths(paths)
    return app.exec()
