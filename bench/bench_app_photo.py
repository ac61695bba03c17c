"""A real photo upscaled in the app's window, against the same job in the CLI: time and peak memory.

Run: .venv/bin/python bench/bench_app_photo.py [--models A2F-SD] [--scale 4] [--size 4000x3000]
     .venv/bin/python bench/bench_app_photo.py --models A2F-SD RNAN-tiny CRAN-tiny --scale 2

The photo is bench/bench_photo.py's (four SunHays80 images in one JPEG, quality 95; --size
8000x6000 for 24-48 MP). The app: a fresh process opens the real MainWindow offscreen
(QT_QPA_PLATFORM=offscreen), opens the photo, and runs the models one after the other as Compare
does (one run, its panes side by side), saving nothing; its wall time from pressing Upscale to
the last result, its peak RSS, user/system CPU seconds and minor page faults from os.wait4 (and
the RSS sampled every 0.1 s, its peak in each phase: opening, running, drawing). The
CLI: `srstudio upscale` of the same photo with the first model, as bench_photo.py runs it, in the
same run; the ratios app/CLI are printed (time: the app's network time against the CLI process's
whole time, which also reads and writes the file).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_photo import make_photo, run_upscale  # noqa: E402

APP = r"""
import json, sys, time
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.jobs import ModelChoice
from app.main_window import MainWindow
from app.settings import AppSettings
photo, scale, models = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
settings = AppSettings()
settings.auto_run = False  # opening only opens: the run below is the one timed
win = MainWindow(settings)
win.resize(1366, 768)
win.show()
tab = win.upscale
def wait(condition, seconds=3600):
    end = time.monotonic() + seconds
    while not condition():
        app.processEvents()
        time.sleep(0.01)
        if time.monotonic() > end:
            raise SystemExit("timed out")
print("phase open", time.time(), flush=True)
tab.open_path(photo)
wait(lambda: tab.input_pixels is not None and not tab.side_tasks and not tab.busy)
tab.doc.clear_outputs()
print("phase run", time.time(), flush=True)
choices = [ModelChoice(m.rsplit("-", 1)[0], m.rsplit("-", 1)[1], scale) for m in models]
start = time.perf_counter()
tab.run(choices)
wait(lambda: not tab.busy)
seconds = time.perf_counter() - start
print("phase shown", time.time(), flush=True)
wait(lambda: not tab.side_tasks)
app.processEvents()
win.grab()  # the panes drawn once, as a user would see them
print("phase end", time.time(), flush=True)
print(json.dumps({"seconds": seconds, "results": len(tab.results)}))
win.close()
"""


def _sample_rss(pid: int, found: list[tuple[float, int]], stop: threading.Event) -> None:
    """(time, RSS in KiB) of the process every 0.1 s, while it runs."""
    status = Path(f"/proc/{pid}/status")
    while not stop.is_set():
        try:
            text = status.read_text()
        except OSError:
            return
        kib = next((int(v.split()[1]) for v in text.splitlines() if v.startswith("VmRSS")), 0)
        found.append((time.time(), kib))
        stop.wait(0.1)


def run_app(photo: Path, scale: int, models: list[str]) -> dict[str, float]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.setdefault("SRSTUDIO_CACHE_DIR", tempfile.mkdtemp(prefix="srstudio-bench-cache-"))
    cmd = [sys.executable, "-c", APP, str(photo), str(scale), *models]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_rss, args=(proc.pid, samples, stop), daemon=True)
    sampler.start()
    out = proc.stdout.read() if proc.stdout else ""
    stop.set()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the app's run failed (exit status {os.waitstatus_to_exitcode(status)})")
    phases = [line.split() for line in out.splitlines() if line.startswith("phase ")]
    marks = [(name, float(t)) for _, name, t in phases]
    for (name, start), (_, end) in zip(marks, [*marks[1:], ("exit", float("inf"))], strict=True):
        inside = [kib for t, kib in samples if start <= t < end] or [0]
        print(f"  {name}: peak RSS sampled {max(inside) / 1024:.0f} MiB", flush=True)
    found = json.loads(next(line for line in reversed(out.splitlines()) if line.startswith("{")))
    if found["results"] != len(models):
        raise SystemExit(f"the app made {found['results']} of {len(models)} results")
    return {
        "seconds": found["seconds"],
        "process_seconds": wall,
        "rss_mib": usage.ru_maxrss / 1024,
        "user": usage.ru_utime,
        "system": usage.ru_stime,
        "minflt": usage.ru_minflt,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["A2F-SD"])
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--size", default="4000x3000", help="the photo's size (WxH, 2x2 parts)")
    p.add_argument("--workdir", type=Path, help="where the photo and outputs go (default: temp)")
    args = p.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="srstudio-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.split("x"))
    photo = make_photo(work / f"photo-{args.size}.jpg", (width // 2, height // 2))
    print(f"photo {width}x{height}, x{args.scale}, models {' '.join(args.models)}", flush=True)
    app = run_app(photo, args.scale, args.models)
    cli = run_upscale(args.models[0], args.scale, photo, work / "cli", None, {})
    print("| run | seconds | peak RSS | user s | system s | minor faults |")
    print("|---|---|---|---|---|---|")
    for name, r in (("app (window, offscreen)", app), (f"CLI, {args.models[0]}", cli)):
        print(
            f"| {name} | {r['seconds']:.1f} | {r['rss_mib']:.0f} MiB | {r['user']:.0f} | "
            f"{r['system']:.0f} | {r['minflt'] / 1e6:.2f} M |"
        )
    if len(args.models) == 1:
        print(f"app / CLI: time {app['seconds'] / cli['seconds']:.2f}x, ", end="")
    print(f"peak RSS app {app['rss_mib'] / 1024:.2f} GiB, CLI {cli['rss_mib'] / 1024:.2f} GiB")


if __name__ == "__main__":
    main()
