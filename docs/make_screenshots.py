"""Screenshots of the desktop app for the README, taken from the real window under Xvfb.

    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python docs/make_screenshots.py
    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python docs/make_screenshots.py --tour

Needs ../shared (Set5/Set14 and the authors' checkpoints, served to the Models dialog from a
loopback mirror: nothing is fetched from the internet). Uses throw-away settings and weights
folders, so it never touches the user's own. Writes docs/screenshots/{compare,batch,trainer,
models}.png; the trainer one after a real 60-iteration run (A2F-SD x2 from scratch on a few
Set14 images, validated on two Set5 images every 20 iterations; about a minute on 2 CPU cores).

--tour: the whole screen, with the window as a fresh profile opens it, for every tab and the
Models dialog in both themes: docs/screenshots/tour-WxH-{light,dark}-{upscale,batch,train,
models}.png (no training run; a few seconds of upscaling).
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
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


def times_shown(picker) -> bool:
    """Every entry of a model picker has its estimated time (none still pending)."""
    model = picker.model
    return all(model.seconds.get(e.key) != "pending" for e in model.entries)


def grab(app: QApplication, window, name: str) -> None:
    wait(app, lambda: True)
    screen = window.screen()
    image = screen.grabWindow(window.winId()) if screen is not None else None
    if image is None or image.isNull() or image.width() < 100:
        image = window.grab()
    path = OUT / name
    image.save(str(path))
    print(f"wrote {path} ({image.width()}x{image.height()})")


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def serve_mirror(root: Path) -> ThreadingHTTPServer:
    """shared/official-weights over loopback HTTP, laid out as the releases' mirror paths."""
    handler = functools.partial(QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def download(app: QApplication, dialog, name: str) -> None:
    if not dialog.select_release(name) or dialog.download_selected() is None:
        raise RuntimeError(f"cannot start the download of {name}")
    wait(app, lambda: not dialog.busy, timeout=120)
    if f"Installed {name}" not in dialog.message_bar.text():
        raise RuntimeError(f"{name}: {dialog.message_bar.text()}")


def grab_screen(app: QApplication, name: str) -> None:
    """The whole screen: shows whether the window fits in it."""
    wait(app, lambda: True)
    image = QApplication.primaryScreen().grabWindow(0)
    path = OUT / name
    image.save(str(path))
    print(f"wrote {path} ({image.width()}x{image.height()})")


def tour(app: QApplication, scratch: Path, official: Path) -> None:
    """Every tab and the Models dialog in both themes, the window placed as on a first start."""
    from app.jobs import ModelChoice, bicubic_choice
    from app.main_window import MainWindow
    from app.settings import AppSettings
    from app.theme import apply_theme

    set5 = SHARED / "benchmarks" / "Set5" / "x4"
    screen = QApplication.primaryScreen().size()
    size = f"{screen.width()}x{screen.height()}"
    window = MainWindow(AppSettings(auto_run=False, device="cpu"))
    window.show()
    dialog = window.show_models()
    download(app, dialog, "A2F-SD-x4")
    dialog.hide()
    tab = window.upscale
    network = ModelChoice("A2F", "SD", 4)
    tab.open_path(set5 / "LR" / "img_002.png")
    tab.load_reference(set5 / "HR" / "img_002.png")
    wait(app, lambda: tab.input is not None and tab.reference is not None)
    tab.compare([bicubic_choice(4), network])
    wait(app, lambda: len(tab.results) == 2 and not tab.busy and not tab.side_tasks)
    tab.canvas.select(network.label)
    wait(app, lambda: times_shown(tab.panel.selector))  # the picker's times for this image
    batch = window.batch
    batch.add_paths([str(set5 / "LR")])
    window.trainer.add_hr_folder(str(SHARED / "benchmarks" / "Set14" / "x2" / "HR"))
    for theme in ("light", "dark"):
        apply_theme(app, theme)
        window.message_bar.hide()
        for key, page in (("upscale", tab), ("batch", batch), ("train", window.trainer)):
            window.tabs.setCurrentWidget(page)
            if key == "batch":  # its picker's times for the queued images
                wait(app, lambda: times_shown(batch.selector))
            grab_screen(app, f"tour-{size}-{theme}-{key}.png")
        dialog = window.show_models()
        dialog.select_release("A2F-SD-x4")
        grab_screen(app, f"tour-{size}-{theme}-models.png")
        dialog.hide()
    apply_theme(app, "light")
    window.close()


def main() -> int:
    set5 = SHARED / "benchmarks" / "Set5" / "x4"
    official = SHARED / "official-weights"
    if not (official / "a2f" / "AAF_SD_x4.pt").is_file():
        print(f"needs {official}", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="srstudio-shots-"))
    os.environ["SRSTUDIO_DATA_DIR"] = str(scratch / "data")
    mirror = serve_mirror(official)
    os.environ["SRSTUDIO_RELEASES_URL"] = f"http://127.0.0.1:{mirror.server_address[1]}"
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(scratch))
    app = QApplication(sys.argv)
    OUT.mkdir(parents=True, exist_ok=True)
    if "--tour" in sys.argv:
        tour(app, scratch, official)
        mirror.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)
        return 0

    from app.jobs import ModelChoice, bicubic_choice
    from app.main_window import MainWindow
    from app.settings import AppSettings
    from app.theme import apply_theme

    apply_theme(app, "light")
    window = MainWindow(AppSettings(auto_run=False, tile_mode="whole", device="cpu"))
    window.resize(1640, 980)
    window.show()
    OUT.mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------- models (download)
    dialog = window.show_models()
    download(app, dialog, "A2F-SD-x4")  # selects it in the model panel, as a user would get
    dialog.hide()

    # ---------------------------------------------------------------- comparison
    tab = window.upscale
    network = ModelChoice("A2F", "SD", 4)
    if tab.panel.current() != network:
        raise RuntimeError(f"the download did not select {network.label}")
    tab.open_path(set5 / "LR" / "img_001.png")
    tab.load_reference(set5 / "HR" / "img_001.png")
    wait(app, lambda: tab.input is not None and tab.reference is not None)
    tab.compare([bicubic_choice(4), network])
    wait(app, lambda: len(tab.results) == 2 and not tab.busy and not tab.side_tasks)
    tab.canvas.select(network.label)
    wait(app, lambda: True)
    tab.canvas.state.set_view(2.2, QPointF(330, 250))  # the baby's eye
    wait(app, lambda: times_shown(tab.panel.selector))
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
        train_shot(app, window, scratch)

    # ---------------------------------------------------------------- models dialog
    dialog = window.show_models()
    dialog.resize(940, 660)
    download(app, dialog, "HPINet-M-x4")
    dialog.select_release("HPINet-M-x4")
    grab(app, dialog, "models.png")

    window.close()
    mirror.shutdown()
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


def train_shot(app: QApplication, window, scratch: Path) -> None:
    """A2F-SD x2 from scratch, 60 iterations, validated every 20: grabbed when it has ended."""
    train_dir, val_dir = scratch / "train-hr", scratch / "val-hr"
    train_dir.mkdir()
    val_dir.mkdir()
    for i in (3, 4, 5, 6, 8, 12):
        shutil.copy(SHARED / "benchmarks" / "Set14" / "x2" / "HR" / f"img_{i:03d}.png", train_dir)
    for i in (2, 3):
        shutil.copy(SHARED / "benchmarks" / "Set5" / "x2" / "HR" / f"img_{i:03d}.png", val_dir)
    tab = window.trainer
    window.tabs.setCurrentWidget(tab)
    tab.model_combo.setCurrentText("A2F-SD")
    tab.scale_combo.setCurrentIndex(tab.scale_combo.findData(2))
    tab.add_hr_folder(str(train_dir))
    tab.batch_spin.setValue(8)
    tab.iterations_spin.setValue(60)
    tab.lr_edit.setText("5e-4")
    tab.ema_spin.setValue(0)
    tab.val_edit.setText(str(val_dir))
    tab.val_every_spin.setValue(20)
    tab.device_combo.setCurrentIndex(max(0, tab.device_combo.findData("cpu")))
    tab.start()
    wait(app, lambda: tab.last_result is not None and not tab.running, timeout=600)
    window.message_bar.hide()
    grab(app, window, "trainer.png")


if __name__ == "__main__":
    sys.exit(main())
