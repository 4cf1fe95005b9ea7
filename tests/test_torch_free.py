"""The ONNX-only runtime: analysis, reports, cases and the window work with torch and diffusers unimportable.

The desktop bundle leaves both out (about 2 GB); they are needed only to export, calibrate new models from
their weights, train, and for the deep check. Each test runs a fresh interpreter whose import system refuses
them, so a module-level `import torch` anywhere on these paths fails the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import real_crop, save_png
from forensics_app.core.calibrate import CalibrationPlan, own_output
from forensics_app.core.zoo.pack import install_pack, make_pack
from forensics_app.core.zoo.store import Zoo

BLOCKER = textwrap.dedent('''
    import sys

    class RefuseTorch:
        """Plays an installation without torch and diffusers."""
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in ("torch", "diffusers"):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
            return None

    sys.meta_path.insert(0, RefuseTorch())
''')


def run_without_torch(code: str, tmp_path: Path, home: Path) -> subprocess.CompletedProcess:
    script = tmp_path / "torch_free.py"
    script.write_text(BLOCKER + textwrap.dedent(code) + "\nassert 'torch' not in sys.modules and "
                      "'diffusers' not in sys.modules, 'torch was imported'\n")
    root = Path(__file__).resolve().parents[1]
    # the script's own folder comes first on sys.path: name this checkout so that its code is the one tested
    env = dict(os.environ, FORENSICS_APP_HOME=str(home), QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])]))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, env=env,
                          cwd=root)


@pytest.fixture(scope="module")
def pack_home(installed_zoo, tmp_path_factory) -> Path:
    """A home with TAEF2 installed from a pack, as a desk without torch has it."""
    folder = tmp_path_factory.mktemp("torch-free")
    pack = make_pack(installed_zoo, "taef2", folder / "taef2.fapack").path
    install_pack(Zoo(folder / "home"), pack)
    return folder / "home"


def test_analysis_report_case_and_window_run_without_torch(pack_home, taef2, tmp_path):
    own = own_output(taef2, real_crop("zebra.png"), False, CalibrationPlan(), np.random.default_rng(0))
    images = [save_png(own, tmp_path / "taef2_output.png"), save_png(real_crop("baboon.png"), tmp_path / "photo.png")]
    result = run_without_torch(f'''
        from pathlib import Path
        from forensics_app.cli import main

        images = {[str(p) for p in images]!r}
        out = Path({str(tmp_path)!r})
        assert main(["case", "new", str(out / "case.fcase"), "--name", "N", "--examiner", "E"]) == 0
        assert main(["analyze", *images, "--json", str(out / "findings.json"), "--case", str(out / "case.fcase")]) == 0
        assert main(["report", "make", str(out / "case.fcase"), "--pdf", str(out / "report.pdf")]) == 0
        assert main(["case", "show", str(out / "case.fcase")]) == 0
        assert main(["zoo", "verify"]) == 0

        import forensics_app
        assert Path(forensics_app.__file__).parent.parent == Path.cwd(), forensics_app.__file__
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication
        from forensics_app.gui.app import configure_pyqtgraph
        from forensics_app.gui.main_window import MainWindow
        from forensics_app.gui.preferences import Preferences

        app = QApplication([])
        configure_pyqtgraph()
        window = MainWindow(Preferences(home=Path({str(pack_home)!r})),
                            QSettings(str(out / "gui.ini"), QSettings.IniFormat))
        window.show()
        app.processEvents()
        window.close()
    ''', tmp_path, pack_home)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads((tmp_path / "findings.json").read_text())
    assert [image["candidates"][0]["model"] for image in doc["images"]] == ["taef2", "taef2"]
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")


def test_without_torch_installing_from_source_and_the_deep_check_say_what_to_do(pack_home, tmp_path):
    image = save_png(real_crop(side=96), tmp_path / "photo.png")
    result = run_without_torch(f'''
        from forensics_app.cli import main

        assert main(["--home", {str(tmp_path / "empty")!r}, "zoo", "install", "taef2"]) == 2
        assert main(["analyze", {str(image)!r}, "--method", "aedr,inversion"]) == 2
        assert main(["fingerprint", "train", "--data", {str(tmp_path)!r}, "--out", "fp-x",
                     "--into", {str(tmp_path / "extractors")!r}]) == 2
    ''', tmp_path, pack_home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Install a model pack instead: forensics-app zoo install FILE.fapack" in result.stderr
    assert "the deep check (inversion) optimises through the decoder with torch" in result.stderr
    assert "error: this command needs torch, which this installation does not include" in result.stderr
    assert "Traceback" not in result.stderr
