"""What the Linux, Windows and macOS PyInstaller specs share: the entry script, data files, hidden
imports, excluded modules and the pruning of files the bundle never uses. The specs put this
folder on sys.path and import it (a spec is exec'd by PyInstaller, not imported)."""

from __future__ import annotations

import fnmatch
import os
import re
import sys
from pathlib import Path

from PyInstaller.utils.hooks import collect_data_files, collect_submodules, copy_metadata

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ENTRY = str(HERE / "srstudio_entry.py")
NAME = "srstudio"
APP_NAME = "SR Studio"
BUNDLE_ID = "org.srstudio.SRStudio"

# Never imported by SR Studio (checked by running the CLI's upscale and train without them):
# pulled in only through optional imports in torch, numpy or qtpy.
EXCLUDES = [
    "tkinter",
    "matplotlib",
    "IPython",
    "pandas",
    "scipy",
    "networkx",
    "jinja2",
    "tensorboard",
    "torch.utils.tensorboard",
    "triton",
    "onnx",
    "onnxruntime",
    # The optional OpenVINO backend is not bundled (packaging/build.sh installs only [gui]; this
    # keeps a build from a fuller venv the same): the bundle runs PyTorch, under jemalloc.
    "openvino",
    "pytest",
    "_pytest",
    "pytestqt",
    "pyqtgraph",
    "PyQt5",
    "PyQt6",
    "PySide2",
    # Qt modules the app does not use (it needs QtCore, QtGui, QtWidgets; qtpy adds QtOpenGL*).
    "PySide6.QtQml",
    "PySide6.QtQuick",
    "PySide6.QtQuickWidgets",
    "PySide6.QtQuickControls2",
    "PySide6.QtNetwork",
    "PySide6.QtSql",
    "PySide6.QtTest",
    "PySide6.QtDesigner",
    "PySide6.QtUiTools",
    "PySide6.QtHelp",
    "PySide6.QtXml",
    "PySide6.QtConcurrent",
    "PySide6.QtPrintSupport",
    "PySide6.QtWebEngineCore",
    "PySide6.QtWebEngineWidgets",
    "PySide6.Qt3DCore",
    "PySide6.QtMultimedia",
    "PySide6.QtCharts",
    "PySide6.QtPdf",
]

# Files the hooks collect that SR Studio never uses: C++ headers and CMake files, torch's test
# programs and test libraries, and Qt's translations (the app installs no QTranslator).
PRUNE = [
    "torch/include/*",
    "torch/share/*",
    "torch/lib/*.lib",  # Windows import libraries, for linking C++ extensions only
    "torch/test/*",
    "torch/lib/libjitbackend_test*",
    "torch/lib/libtorchbind_test*",
    "torch/lib/libbackend_with_compiler*",
    "torch/lib/libaoti_custom_ops*",
    "torch/lib/jitbackend_test*",
    "torch/lib/torchbind_test*",
    "torch/lib/backend_with_compiler*",
    "torch/lib/aoti_custom_ops*",
    "torch/bin/*test*",
    "torch/bin/*Test",
    "torch/bin/protoc*",
    "torch/bin/*.pt",
    "torch/bin/*.ptl",
    "torch/bin/upgrader_models/*",
    "PySide6/Qt/translations/*",
    # Qt's GTK3 platform theme (the app draws with Fusion) and the GTK libraries PyInstaller
    # copies from the build machine for it alone, which could clash with the user's GTK.
    "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
    *(
        f"{lib}.so*"
        for lib in (
            "libatk-1.0",
            "libgdk_pixbuf-2.0",
            "libcairo",
            "libcairo-gobject",
            "libpango-1.0",
            "libpangocairo-1.0",
            "libpangoft2-1.0",
            "libfribidi",
            "libthai",
            "libdatrie",
            "libpixman-1",
            "libharfbuzz",
            "libgraphite2",
            "libgio-2.0",
            "libgmodule-2.0",
            "libgobject-2.0",
            "libmount",
            "libblkid",
            "libselinux",
            "libXext",
            "libXrender",
        )
    ),
    # The VNC platform and TUIO touch plugins, the only users of QtNetwork (and of Kerberos).
    "PySide6/Qt/plugins/platforms/libqvnc.so",
    "PySide6/Qt/plugins/generic/libqtuiotouchplugin.so",
    "PySide6/Qt/lib/libQt6Network.so*",
    "libQt6Network.so*",
    *(
        f"{lib}.so*"
        for lib in (
            "libgssapi_krb5",
            "libkrb5",
            "libk5crypto",
            "libkrb5support",
            "libcom_err",
            "libkeyutils",
        )
    ),
]


def version() -> str:
    """The project's version, from pyproject.toml (for the macOS Info.plist)."""
    found = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    return found.group(1) if found else "0.0.0"


def datas() -> list[tuple[str, str]]:
    """weights/ and resources/ at the bundle's root (where engine.library and app.theme look
    under sys._MEIPASS), qtawesome's icon fonts, and srstudio's metadata for --version."""
    weights = sorted((ROOT / "weights").glob("*.safetensors"))  # not scripts or resume states
    found = [(str(path), "weights") for path in weights + [ROOT / "weights" / "README.md"]]
    found.append((str(ROOT / "resources"), "resources"))
    found += collect_data_files("qtawesome")
    found += copy_metadata(NAME)
    return found


def hiddenimports() -> list[str]:
    # engine.cli imports its subcommands by name (importlib), which PyInstaller cannot see.
    return collect_submodules("engine") + collect_submodules("app")


def binaries() -> list[tuple[str, str]]:
    """Linux: the build machine's libjemalloc.so.2 at the bundle's root, which app.launcher
    preloads (a large photo's tiles take less memory under it than under glibc's malloc); none
    where the build machine has none (the bundle then runs on glibc's malloc, as before)."""
    if not sys.platform.startswith("linux"):
        return []
    sys.path.insert(0, str(ROOT))
    from app.launcher import find_jemalloc

    found = find_jemalloc()
    return [(found, ".")] if found else []


def analysis_options() -> dict:
    return {
        "scripts": [ENTRY],
        "pathex": [str(ROOT)],
        "binaries": binaries(),
        "datas": datas(),
        "hiddenimports": hiddenimports(),
        "excludes": EXCLUDES,
        "noarchive": False,
    }


def _pruned(dest: str) -> bool:
    dest = dest.replace(os.sep, "/")
    return any(fnmatch.fnmatch(dest, pattern) for pattern in PRUNE)


def prune(analysis) -> None:
    """Drop the PRUNE files from an Analysis' binaries and datas (in place)."""
    before = len(analysis.binaries) + len(analysis.datas)
    analysis.binaries = [entry for entry in analysis.binaries if not _pruned(entry[0])]
    analysis.datas = [entry for entry in analysis.datas if not _pruned(entry[0])]
    dropped = before - len(analysis.binaries) - len(analysis.datas)
    print(f"spec_common: pruned {dropped} files", file=sys.stderr)


def icon_png(size: int = 512) -> str | None:
    """resources/icons/srstudio.svg rendered to a PNG in build/ (PyInstaller turns it into the
    .ico / .icns it needs, with Pillow); None when Qt cannot render it here."""
    out = ROOT / "build" / "pyinstaller" / "srstudio-icon.png"
    try:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from PySide6.QtCore import Qt
        from PySide6.QtGui import QGuiApplication, QImage, QPainter
        from PySide6.QtSvg import QSvgRenderer

        app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 (kept alive)
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        QSvgRenderer(str(ROOT / "resources" / "icons" / "srstudio.svg")).render(painter)
        painter.end()
        out.parent.mkdir(parents=True, exist_ok=True)
        return str(out) if image.save(str(out)) else None
    except Exception as exc:  # an icon must never stop a build
        print(f"spec_common: no icon ({exc})", file=sys.stderr)
        return None
