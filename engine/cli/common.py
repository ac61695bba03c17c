"""Pieces the subcommands share: model options, model resolution and a text progress bar."""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
from types import FrameType
from typing import TextIO

from engine.checkpoints import load_model
from engine.descriptor import ModelDescriptor
from engine.errors import SRStudioError
from engine.inference.backends import BACKENDS
from engine.inference.cleanup_choice import AUTO_JPEG_BELOW, CLEANUP_MODES
from engine.inference.upscaler import UpscaleOptions
from engine.library import recommended_weights
from engine.progress import Eta, format_seconds

DEFAULT_SCALE = 4  # what the app starts on, and what a photo upscale usually wants


def add_model_options(parser: argparse.ArgumentParser, *, default_model: str | None = None) -> None:
    parser.add_argument(
        "--model",
        default=default_model,
        help="model name (e.g. A2F-SD, HPINet-M), a family (A2F: its best installed weights) or "
        "'bicubic'; default: the recommended installed weights (see `srstudio models`)",
    )
    parser.add_argument(
        "--weights", help="weights file (.safetensors, .pt, .pth); implies the model"
    )
    parser.add_argument(
        "--scale", type=int, choices=(2, 3, 4), help=f"upscaling factor (default {DEFAULT_SCALE})"
    )
    parser.add_argument(
        "--tile",
        default="auto",
        help="LR tile side in pixels, 'auto' (from free memory) or 0 (whole image)",
    )
    parser.add_argument("--tile-overlap", type=int, help="LR pixels of overlap between tiles")
    parser.add_argument("--ensemble", action="store_true", help="x8 self-ensemble")
    parser.add_argument(
        "--exact-tiles",
        action="store_true",
        help="two passes so every tile sees the image-wide pooling of A2F/RNAN/CRAN (the output "
        "equals the whole-image one); default: large tiles pool on their own, in one pass",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "fp16", "bf16"),
        help="arithmetic of the network: fp32 (default); fp16 or bf16 on CUDA GPUs (faster, "
        "a tile whose output is not finite is redone in fp32); bf16 on CPUs that compute it "
        "natively (elsewhere it is emulated, several times slower)",
    )
    parser.add_argument(
        "--backend",
        default="torch",
        choices=BACKENDS,
        help="what runs the network: torch (PyTorch, the reference; default), openvino (CPU, "
        "needs pip install srstudio[openvino]) or auto (OpenVINO where it can run the network)",
    )

    parser.add_argument(
        "--clean-up",
        dest="clean_up",
        default="auto",
        choices=CLEANUP_MODES,
        help="remove JPEG artifacts and noise before upscaling: auto (default: for JPEGs saved "
        f"below quality {AUTO_JPEG_BELOW} and noisy images; clean PNG/TIFF input is left as it "
        "is), on or off",
    )


def parse_tile(text: str) -> int | None:
    """'auto' -> None, '0' -> 0 (whole image), 'N' -> N."""
    if text == "auto":
        return None
    try:
        tile = int(text)
    except ValueError:
        raise SRStudioError(f"--tile must be 'auto' or a number of pixels, got {text!r}") from None
    if tile < 0 or 0 < tile < 8:
        raise SRStudioError(f"--tile must be 0 (whole image) or at least 8, got {tile}")
    return tile


def upscale_options(args: argparse.Namespace, **extra: object) -> UpscaleOptions:
    """UpscaleOptions from the options add_model_options registered (plus `extra` fields)."""
    return UpscaleOptions(
        tile=parse_tile(args.tile),
        tile_overlap=args.tile_overlap,
        ensemble=args.ensemble,
        exact_tiles=args.exact_tiles,
        device=args.device,
        precision=args.precision,
        backend=args.backend,
        cleanup=args.clean_up,
        **extra,
    )


def resolve_model(args: argparse.Namespace) -> ModelDescriptor:
    if args.weights:
        desc = load_model(args.weights)
        if args.scale and args.scale != desc.scale:
            raise SRStudioError(f"{args.weights} is a x{desc.scale} model, not x{args.scale}")
        if args.model and args.model.lower() not in (desc.name.lower(), desc.family.lower()):
            raise SRStudioError(f"{args.weights} holds {desc.name}, not {args.model}")
        return desc
    if not args.model:
        scale = args.scale or DEFAULT_SCALE
        entry = recommended_weights(scale)
        if entry is None:
            raise SRStudioError(f"no weights installed for x{scale}: give --model or --weights")
        print(
            f"using {entry.name} x{scale} ({entry.origin}), the recommended installed weights "
            "(choose with --model)",
            file=sys.stderr,
        )
        return load_model(entry.path)
    named_scale = re.search(r"[- ]x\d$", args.model.strip(), re.IGNORECASE)
    return load_model(args.model, scale=args.scale or (None if named_scale else DEFAULT_SCALE))


class ProgressBar:
    """A one-line text progress bar with ETA on stderr (quiet when not a terminal)."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label, self.width = label, width
        self.stream = stream or sys.stderr
        self.eta = Eta(from_start=True)
        self.interactive = self.stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        if total <= 0:
            return
        eta = self.eta.update(done, total)
        filled = int(self.width * done / total)
        line = (
            f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} "
            f"{format_seconds(self.eta.elapsed)} ETA {format_seconds(eta)}"
        )
        if self.interactive:
            self.stream.write("\r" + line + ("\n" if done >= total else ""))
        elif done >= total:
            self.stream.write(line + "\n")
        self.stream.flush()


class StopOnSignal:
    """First Ctrl+C or SIGTERM (what `kill`, schedulers and torchrun send): ask the work to
    stop at its next check, which leaves no partial file and still writes the report. A second
    one interrupts at once. Callable as should_stop(). Outside the main thread (where Python
    cannot install handlers) it only stops when stop() is called."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, message: str = "stopping after the current step (again to abort)") -> None:
        self.message = message
        self.event = threading.Event()
        self.previous: dict[int, object] = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self.previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)  # type: ignore[arg-type]

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()
        print(f"\n{self.message}", file=sys.stderr)

    def stop(self) -> None:
        self.event.set()

    def __call__(self) -> bool:
        return self.event.is_set()
