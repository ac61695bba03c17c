"""A web JPEG upscaled x4 with the clean-up off and on, side by side in the real app under Xvfb.

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python docs/make_cleanup_screenshot.py

The photo: a 1024x768 ../shared/train/SunHays80 image (img_002), shrunk to half with MATLAB
bicubic and saved as JPEG at quality 70 with Pillow's defaults, as a picture from the web is.
A2F-SD x4 (the bundled weights, the app's default) runs on it through Compare models with "Each
with and without the clean-up"; the window shows the input (its JPEG quality and noise beside its
size) and both outputs, zoomed in. Throw-away settings
and data folders: the user's own are never touched. Writes
docs/screenshots/cleanup-WxH-{light,dark}.png (the screen's size).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SRSTUDIO_SHARED", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QPointF, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from docs.make_screenshots import OUT, grab_screen, wait  # noqa: E402
from engine.evaluate import make_lr  # noqa: E402

PHOTO = SHARED / "train" / "SunHays80" / "img_002.png"


def web_jpeg(path: Path) -> Path:
    hr = np.asarray(Image.open(PHOTO).convert("RGB"))
    hr = hr[: hr.shape[0] // 2 * 2, : hr.shape[1] // 2 * 2]
    Image.fromarray(make_lr(hr, 2)).save(path, "JPEG", quality=70)
    return path


def main() -> int:
    scratch = Path(tempfile.mkdtemp(prefix="srstudio-cleanup-shot-"))
    os.environ["SRSTUDIO_DATA_DIR"] = str(scratch / "data")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(scratch))
    app = QApplication(sys.argv)
    from app.jobs import ModelChoice
    from app.main_window import MainWindow
    from app.settings import AppSettings
    from app.theme import apply_theme

    photo = web_jpeg(scratch / "from-the-web.jpg")
    window = MainWindow(AppSettings(auto_run=False, device="cpu", family="A2F", variant="SD"))
    window.showMaximized()
    tab = window.upscale
    if tab.panel.current() != ModelChoice("A2F", "SD", 4):
        raise RuntimeError(f"expected A2F-SD x4, got {tab.panel.current().label}")
    tab.open_path(photo)
    wait(app, lambda: tab.input is not None)
    tab.compare([tab.panel.current()], both_cleanups=True)
    wait(app, lambda: len(tab.results) == 2 and not tab.busy, timeout=600)
    wait(app, lambda: not tab.side_tasks and tab.doc.source_quality is not None)
    tab.canvas.state.set_view(2.0, QPointF(600, 420))
    OUT.mkdir(parents=True, exist_ok=True)
    screen = QApplication.primaryScreen().size()
    for theme in ("light", "dark"):
        apply_theme(app, theme)
        window.message_bar.hide()
        grab_screen(app, f"cleanup-{screen.width()}x{screen.height()}-{theme}.png")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
