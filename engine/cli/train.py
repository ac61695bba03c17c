"""srstudio train: train or fine-tune a network on folders of images (also under torchrun)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from engine.cli.common import ProgressBar, StopOnSignal
from engine.errors import SRStudioError
from engine.library import cleanup_weights
from engine.training import (
    DEGRADATIONS,
    SCHEDULES,
    LogEvent,
    LossEvent,
    TrainConfig,
    ValidationEvent,
    train,
)
from engine.training.config import PRECISIONS
from engine.training.distributed import from_env
from engine.training.real_degradation import parse_range


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train or fine-tune a network on your images",
        description="Train a network from scratch (--model) or fine-tune weights (--base). "
        "Ctrl-C stops after the current iteration and saves a state to --resume from. "
        "Under `torchrun --nproc_per_node N` the processes share the work (DDP).",
    )
    d = TrainConfig.__dataclass_fields__
    p.add_argument(
        "--model", help="network to train from scratch, e.g. A2F-SD, HPINet-S, RNAN-light"
    )
    p.add_argument(
        "--scale", type=int, choices=(1, 2, 3, 4), help="upscaling factor (1: the clean-up network)"
    )
    p.add_argument(
        "--base",
        "--weights",
        dest="base",
        help="start from these weights: a file, or an installed model name",
    )
    p.add_argument(
        "--init",
        metavar="WEIGHTS",
        help="with --model: start from the tensors of these weights whose names and shapes "
        "match, e.g. x2 weights for a x3/x4 network",
    )
    p.add_argument(
        "--hr",
        action="append",
        required=True,
        metavar="DIR",
        help="folder of HR training images (repeat for several)",
    )
    p.add_argument(
        "--lr-dir",
        action="append",
        metavar="DIR",
        help="folder of paired LR images, one per --hr (default: made on the fly)",
    )
    p.add_argument(
        "--degradation",
        choices=DEGRADATIONS,
        default=d["degradation"].default,
        help="BI bicubic, BD blur then bicubic, DN bicubic then noise, real: blur, resize, "
        "noise and JPEG as photos from phones and the web are made (default BI)",
    )
    p.add_argument(
        "--noise",
        metavar="SIGMA|LOW-HIGH",
        help="DN: its noise level on the 0..255 scale (default 30); real: the range of noise "
        "sigmas (default 1-15)",
    )
    p.add_argument(
        "--jpeg",
        metavar="LOW-HIGH",
        help="real: the range of JPEG qualities (default 40-95)",
    )
    p.add_argument(
        "--behind-cleanup",
        action="store_true",
        help="real: train the upscaler on what the installed clean-up network makes of each LR "
        "patch, for `--clean-up` to run it behind that network",
    )
    p.add_argument("--patch", type=int, default=d["patch_size"].default, help="LR patch side")
    p.add_argument(
        "--batch",
        type=int,
        default=d["batch_size"].default,
        help="patches per iteration (per process under torchrun)",
    )
    p.add_argument("--iterations", type=int, default=d["iterations"].default)
    p.add_argument(
        "--learning-rate",
        type=float,
        help="Adam step size (default 1e-4 from scratch, 2e-5 fine-tuning)",
    )
    p.add_argument("--schedule", choices=SCHEDULES, default=d["schedule"].default)
    p.add_argument("--warmup", type=int, help="warm-up iterations (default iterations / 20)")
    p.add_argument("--step-every", type=int, help="step schedule: halve every N iterations")
    p.add_argument("--grad-clip", type=float, default=0.0, help="max gradient norm (0: off)")
    p.add_argument(
        "--ema",
        type=float,
        default=d["ema"].default,
        help="decay of the weight average that is validated and saved (0: off)",
    )
    p.add_argument("--val", metavar="DIR", help="folder of HR validation images")
    p.add_argument("--val-lr", metavar="DIR", help="folder of paired LR validation images")
    p.add_argument(
        "--val-split",
        type=float,
        default=0.0,
        help="hold out this fraction (or, >= 1, this many) of the HR images instead",
    )
    p.add_argument("--val-every", type=int, default=d["val_every"].default)
    p.add_argument(
        "--val-max",
        type=int,
        default=d["val_max_images"].default,
        help="validate on at most this many images",
    )
    p.add_argument(
        "--checkpoint-every", type=int, help="write the resume state every N (default: --val-every)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--output",
        help="weights file to write (.safetensors; default: a new file in "
        "the library's trained/ folder)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run that wrote --output")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=d["precision"].default,
        help="CPU arithmetic of the forward: auto (default) bf16 autocast where the CPU computes "
        "bf16 natively (AVX512-BF16, AMX), else fp32; bf16 forces it (emulated and several times "
        "slower without native support); loss, gradients, Adam and EMA stay fp32",
    )
    p.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=d["channels_last"].default,
        help="NHWC tensors for the network and its input (default: off, measured no faster "
        "on a 2-core AVX2 CPU)",
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(run=run)


def _noise_options(args: argparse.Namespace) -> dict[str, Any]:
    """--noise is one level for DN and a range for real; --jpeg a range for real."""
    options: dict[str, Any] = {}
    if args.degradation == "real":
        if args.noise is not None:
            options["noise_range"] = parse_range(args.noise, what="--noise", integer=False)
        if args.jpeg is not None:
            options["jpeg"] = parse_range(args.jpeg, what="--jpeg", integer=True)
        return options
    if args.jpeg is not None:
        raise SRStudioError("--jpeg goes with --degradation real")
    if args.noise is not None:
        try:
            options["noise_level"] = float(args.noise)
        except ValueError:
            raise SRStudioError(f"--noise must be a number for {args.degradation}") from None
    return options


def _cleanup_path() -> str:
    entry = cleanup_weights()
    if entry is None:
        raise SRStudioError("no clean-up network is installed to train behind")
    return str(entry.path)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        model=args.model,
        scale=args.scale,
        base=args.base,
        init=args.init,
        hr_dirs=tuple(args.hr),
        lr_dirs=tuple(args.lr_dir) if args.lr_dir else None,
        degradation=args.degradation,
        **_noise_options(args),
        behind=_cleanup_path() if args.behind_cleanup else None,
        patch_size=args.patch,
        batch_size=args.batch,
        iterations=args.iterations,
        lr=args.learning_rate,
        schedule=args.schedule,
        warmup=args.warmup,
        step_every=args.step_every,
        grad_clip=args.grad_clip,
        ema=args.ema,
        val_dir=args.val,
        val_lr_dir=args.val_lr,
        val_split=args.val_split,
        val_every=args.val_every,
        val_max_images=args.val_max,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        output=args.output,
        resume=args.resume,
        device=args.device,
        amp=not args.no_amp,
        precision=args.precision,
        channels_last=args.channels_last,
    )


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    main_rank = from_env().is_main
    bar = ProgressBar("train")

    def progress(done: int, total: int) -> None:
        if main_rank:
            bar(done, total)

    def on_event(event: object) -> None:
        if isinstance(event, LossEvent):
            bar.label = f"train loss {event.loss:.4f}"
            return
        text = event.text if isinstance(event, LogEvent) else None
        if isinstance(event, ValidationEvent):
            return  # reported by its LogEvent
        if text:
            prefix = "\r\033[K" if bar.interactive else ""
            print(prefix + text, file=sys.stderr, flush=True)

    with StopOnSignal("stopping after this iteration (again to abort)...") as stop:
        result = train(config, on_progress=progress, should_stop=stop, on_event=on_event)
    if not main_rank:
        return 0
    if args.json:
        print(json.dumps({k: v for k, v in vars(result).items()}, indent=2))
    else:
        best = f", best validation PSNR {result.best_psnr:.3f} dB" if result.best_psnr else ""
        print(f"{result.output} ({result.iterations} iterations{best}, {result.seconds:.1f} s)")
    if result.stopped:
        print(
            f"stopped; continue with: srstudio train --resume --output {result.output} ...",
            file=sys.stderr,
        )
        return 130
    return 0
