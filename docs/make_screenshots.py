"""Screenshots of the desktop app for the README, taken from the real window under Xvfb.

    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python docs/make_screenshots.py

Needs ../shared (Set5 and the A2F authors' x4 checkpoint). Uses throw-away settings and weights
folders, so it never touches the user's own. Writes docs/screenshots/{compare,batch,trainer}.png.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SRSTUDIO_SHARED", ROOT.parent / "shared"))
OUT = ROOT / "docs" / "screenshots"
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QPointF, QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def wait(app: QApplication, condition, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the app did not get there in time")
        app.processEvents()
        time.sleep(0.02)
    for _ in range(20):  # let layouts and repaints settle
        app.processEvents()
        time.sleep(0.01)


def grab(app: QApplication, window, name: str) -> None:
    wait(app, lambda: True)
    screen = window.screen()
    image = screen.grabWindow(window.winId()) if screen is not None else None
    if image is None or image.isNull() or image.width() < 100:
        image = window.grab()
    path = OUT / name
    image.save(str(path))
    print(f"wrote {path} ({image.width()}x{image.height()})")


def main() -> int:
    set5 = SHARED / "benchmarks" / "Set5" / "x4"
    weights = SHARED / "official-weights" / "a2f" / "AAF_SD_x4.pt"
    if not weights.is_file():
        print(f"needs {weights}", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="srstudio-shots-"))
    os.environ["SRSTUDIO_DATA_DIR"] = str(scratch / "data")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(scratch))
    app = QApplication(sys.argv)

    from app.jobs import ModelChoice, bicubic_choice
    from app.main_window import MainWindow
    from app.settings import AppSettings
    from app.theme import apply_theme

    apply_theme(app, "light")
    window = MainWindow(AppSettings(auto_run=False, tile_mode="whole", device="cpu"))
    window.resize(1640, 980)
    window.show()
    OUT.mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------- comparison
    tab = window.upscale
    network = ModelChoice("A2F", "SD", 4, str(weights))
    tab.panel.selector.add_choice(network)
    tab.panel.selector.set_current(network)
    tab.open_path(set5 / "LR" / "img_001.png")
    tab.load_reference(set5 / "HR" / "img_001.png")
    wait(app, lambda: tab.input is not None and tab.reference is not None)
    tab.compare([bicubic_choice(4), network])
    wait(app, lambda: len(tab.results) == 2 and not tab.busy and not tab.side_tasks)
    tab.canvas.select(network.label)
    wait(app, lambda: True)
    tab.canvas.state.set_view(2.2, QPointF(330, 250))  # the baby's eye
    grab(app, window, "compare.png")

    # ---------------------------------------------------------------- batch
    inputs = scratch / "photos"
    inputs.mkdir()
    for src in sorted((set5 / "LR").glob("*.png")):
        shutil.copy(src, inputs / src.name.replace("img_", "set5_"))
    truncated = (set5 / "LR" / "img_002.png").read_bytes()[:900]
    (inputs / "set5_006_truncated.png").write_bytes(truncated)
    batch = window.batch
    window.tabs.setCurrentWidget(batch)
    batch.output_dir.setText(str(scratch / "upscaled"))
    batch.selector.add_choice(network)
    batch.selector.set_current(network)
    batch.add_paths([str(inputs)])
    batch.start()
    wait(app, lambda: batch.report is not None and not batch.busy, timeout=300)
    window.message_bar.hide()
    grab(app, window, "batch.png")

    # ---------------------------------------------------------------- train
    if type(window.trainer).__name__ == "TrainerTab":
        window.tabs.setCurrentWidget(window.trainer)
        grab(app, window, "trainer.png")

    window.close()
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
