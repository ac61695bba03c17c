"""A 3000x2000 photo upscaled x4 in the real app under Xvfb: the output filling in, then at fit and
at 100% beside the input, the wipe, and a heat-map (issue 32).

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python docs/make_big_photo_screenshots.py

The photo: bench/bench_photo.py's, four ../shared/train/SunHays80 images in one JPEG (quality 95),
here 3000x2000. A2F-SD x4 (bundled) makes the 12000x8000 output; the heat-map needs a reference,
so its shot simulates x4 from the same photo (the photo as HR, its MATLAB-bicubic LR as input).
Throw-away settings, data and cache folders. Writes docs/screenshots/big-photo-WxH-THEME-STEP.png.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_photo import make_photo  # noqa: E402
from PySide6.QtCore import QPointF, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from docs.make_screenshots import grab_screen, wait  # noqa: E402


def main() -> int:
    scratch = Path(tempfile.mkdtemp(prefix="srstudio-big-shot-"))
    os.environ["SRSTUDIO_DATA_DIR"] = str(scratch / "data")
    os.environ["SRSTUDIO_CACHE_DIR"] = str(scratch / "cache")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(scratch))
    app = QApplication(sys.argv)
    from app.jobs import ModelChoice
    from app.main_window import MainWindow
    from app.panels.upscale_tab import RUNNING_KEY
    from app.settings import AppSettings
    from app.theme import apply_theme

    photo = make_photo(scratch / "photo-3000x2000.jpg", (1500, 1000))
    window = MainWindow(AppSettings(auto_run=False, device="cpu", family="A2F", variant="SD"))
    window.showMaximized()
    tab = window.upscale
    if tab.panel.current() != ModelChoice("A2F", "SD", 4):
        raise RuntimeError(f"expected A2F-SD x4, got {tab.panel.current().label}")
    screen = QApplication.primaryScreen().size()
    size = f"{screen.width()}x{screen.height()}"

    def shoot(step: str) -> None:
        for theme in ("light", "dark"):
            apply_theme(app, theme)
            window.message_bar.hide()
            grab_screen(app, f"big-photo-{size}-{theme}-{step}.png")

    tab.open_path(photo)
    wait(app, lambda: tab.input is not None and not tab.side_tasks)
    tab.run()
    running = tab.doc

    def a_third_made() -> bool:
        filling = running.running
        return filling is not None and filling.pyramid.rows_ready >= 8000 // 3

    wait(app, a_third_made, timeout=600)
    tab.canvas.fit()
    shoot("filling")
    wait(app, lambda: not tab.busy and RUNNING_KEY not in tab.canvas.contents, timeout=900)
    tab.canvas.fit()
    shoot("fit")
    tab.canvas.state.set_view(1.0, QPointF(4200, 2900))
    shoot("100")
    tab.actions["wipe"].setChecked(True)
    shoot("wipe")
    tab.actions["wipe"].setChecked(False)
    tab.simulate_check.setChecked(True)  # the photo as HR: a reference for the heat-map
    wait(app, lambda: tab.doc.simulated_scale == 4 and not tab.side_tasks, timeout=300)
    tab.run()
    wait(app, lambda: len(tab.results) == 1 and not tab.busy and not tab.side_tasks, timeout=900)
    tab.actions["heatmap"].setChecked(True)
    tab.canvas.fit()
    shoot("heatmap")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
