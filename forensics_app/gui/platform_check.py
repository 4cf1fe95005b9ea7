"""Before Qt starts on Linux: are the system libraries of its X11 (xcb) platform plugin there?

Without them Qt aborts the process with "could not load the Qt platform plugin xcb", a message only Qt
developers can act on. This check names the missing libraries and the Debian/Ubuntu packages that
provide them, so the window can refuse to start with a message a user can act on.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

# what Qt 6's xcb platform plugin links against, beyond Qt itself: shared library -> Debian/Ubuntu package
XCB_LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-util.so.1": "libxcb-util1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
}


def _loads(library: str) -> str | None:
    """None when the shared library loads; else the name of the library that could not be found."""
    try:
        ctypes.CDLL(library)
    except OSError as exc:
        missing = re.match(r"([^:\s]+\.so[.\d]*): cannot open", str(exc))
        return missing.group(1) if missing else Path(library).name
    return None


def _xcb_plugin() -> Path | None:
    from PySide6.QtCore import QLibraryInfo

    plugin = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def uses_xcb(environ=os.environ) -> bool:
    """Whether Qt will start its X11 plugin: chosen by QT_QPA_PLATFORM, or by default outside Wayland."""
    chosen = environ.get("QT_QPA_PLATFORM", "")
    if chosen:
        return chosen.split(";")[0].split(":")[0] == "xcb"
    return not environ.get("WAYLAND_DISPLAY")


def missing_qt_libraries(loads: Callable[[str], str | None] = _loads, plugin: Path | None = None) -> list[str]:
    """Shared libraries Qt's xcb plugin needs that cannot be loaded (empty when all are there)."""
    missing = [library for library in XCB_LIBRARIES if loads(library) is not None]
    plugin = plugin or _xcb_plugin()
    if not missing and plugin is not None:  # anything the table does not know: loading the plugin names it
        first = loads(str(plugin))
        if first is not None and first != plugin.name:
            missing.append(first)
    return missing


def platform_problem(platform: str = sys.platform, environ=os.environ,
                     loads: Callable[[str], str | None] = _loads, plugin: Path | None = None) -> str | None:
    """A message for the user when the window cannot start on this Linux system; None when it can."""
    if not platform.startswith("linux") or not uses_xcb(environ):
        return None
    if not environ.get("DISPLAY"):
        return ("No display to open the window on ($DISPLAY is not set). Start it from a desktop session, or use "
                "the command line (forensics-app analyze FILES --pdf REPORT.pdf).")
    missing = missing_qt_libraries(loads, plugin)
    if not missing:
        return None
    packages = [XCB_LIBRARIES.get(library, library) for library in missing]
    return (f"The window cannot start: Qt needs system libraries that are missing: {', '.join(missing)}. "
            f"Install them (Debian/Ubuntu: sudo apt-get install {' '.join(packages)}; other distributions "
            f"name them differently, e.g. Fedora: xcb-util-cursor, xcb-util-wm, xcb-util-keysyms). "
            f"The command line works without them (forensics-app analyze FILES --pdf REPORT.pdf).")
