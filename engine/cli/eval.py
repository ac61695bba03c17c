"""srstudio eval: PSNR/SSIM of a model on a benchmark folder by the papers' protocol."""

from __future__ import annotations

import argparse
import json

from engine.cli.common import ProgressBar, add_model_options, resolve_model, upscale_options
from engine.errors import SRStudioError
from engine.evaluate import Pair, UpscaleFn, evaluate, load_pairs
from engine.imaging.color import uint8_to_tensor
from engine.imaging.io import ImageData, read_image
from engine.inference.upscaler import Upscaler


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="PSNR/SSIM on HR (and LR) folders, paper protocol")
    add_model_options(p)
    p.add_argument("--hr", required=True, help="folder of HR images")
    p.add_argument(
        "--lr",
        help="folder of LR images, paired with the HR images by name without the extension "
        "(baboon.jpg or baboonx4.png for baboon.png; default: made from HR with MATLAB bicubic)",
    )
    p.add_argument("--y-round", action="store_true", help="round Y to integers (HPINet protocol)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    desc = resolve_model(args)
    if args.scale is None and args.model and args.model.lower() == "bicubic":
        raise SRStudioError("bicubic needs --scale")
    upscaler = Upscaler(desc, upscale_options(args))
    pairs = load_pairs(args.hr, args.lr, desc.scale)

    def choose(pair: Pair) -> tuple[UpscaleFn, str]:
        """The clean-up decision for the LR file as a user's file (its JPEG tables, noise)."""
        img = read_image(pair.lr_path) if pair.lr_path else ImageData(uint8_to_tensor(pair.lr)[0])
        decision = upscaler.cleanup_decision(img)
        return upscaler.for_image(img).upscale_tensor, decision.describe()

    result = evaluate(
        upscaler.upscale_tensor,
        pairs,
        desc.scale,
        model=desc.label,
        device=str(upscaler.device),
        y_round=args.y_round,
        on_progress=ProgressBar(f"eval {desc.label}"),
        choose=None if args.clean_up == "off" or desc.family == "Bicubic" else choose,
        cleanup=args.clean_up,
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    for s in result.images:
        note = f"  {s.cleanup}" if s.cleanup.startswith("clean-up on") else ""
        print(f"{s.name:<20} PSNR {s.psnr:7.3f} dB  SSIM {s.ssim:.4f}  {s.seconds:6.2f} s{note}")
    y = "rounded Y" if args.y_round else "float Y"
    print(
        f"{desc.label} on {len(pairs)} images ({y}, shave {desc.scale}): "
        f"PSNR {result.psnr:.3f} dB  SSIM {result.ssim:.4f}  "
        f"{result.seconds:.1f} s on {result.device}"
    )
    return 0
