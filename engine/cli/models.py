"""srstudio models: every family/variant, its parameter count per scale, installed weights, the
authors' releases and the weights files skipped as broken (with the reason);
`models download NAME` and `models import PATH` install weights; `models export NAME` writes
a model as ONNX (engine.export)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from engine.archs.registry import FAMILIES, get_family
from engine.cli.common import DEFAULT_SCALE, ProgressBar, resolve_model
from engine.errors import SRStudioError
from engine.library import (
    ORIGIN_RANK,
    WeightsEntry,
    cleanup_weights,
    installed_weights,
    recommended_weights,
    scan_weights,
)
from engine.params import param_count
from engine.releases import RELEASES, find_releases, format_size


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models",
        help="list networks and weights; download, import or export weights",
        description="Without an action: list networks, parameter counts, installed weights and "
        "the authors' releases.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    d = actions.add_parser(
        "download",
        help="download the authors' released weights",
        description="Download, verify (sha256) and install released weights "
        "into the user data directory. Set SRSTUDIO_RELEASES_URL to use a "
        "mirror laid out like official-weights/.",
    )
    d.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="release (A2F-SD-x2), or a model (A2F-SD) for all its scales",
    )
    d.add_argument("--all", action="store_true", help="every release")
    d.add_argument("--timeout", type=float, default=30.0, help="network timeout in seconds")
    d.set_defaults(run=run_download)
    i = actions.add_parser("import", help="install a local .pt/.pth/.safetensors weights file")
    i.add_argument("paths", nargs="+", metavar="PATH")
    i.set_defaults(run=run_import)
    e = actions.add_parser(
        "export",
        help="write a model as ONNX, for ONNX Runtime or chaiNNer",
        description="Write a bundled or installed model as an ONNX file (float32 RGB in [0, 1], "
        "NCHW; output (1, 3, H*S, W*S)), checked in ONNX Runtime against the torch output. "
        "It takes any height and width where the network allows (A2F, RNAN, CRAN), otherwise "
        "one fixed N x N input (HPINet: --tile). Needs pip install 'srstudio[onnx]'.",
    )
    e.add_argument("model", metavar="NAME", help="model (A2F-SD, HPINet-T-x2) or weights file")
    e.add_argument("--format", default="onnx", choices=("onnx",), help="file format (onnx)")
    e.add_argument(
        "--scale", type=int, choices=(2, 3, 4), help=f"upscaling factor (default {DEFAULT_SCALE})"
    )
    e.add_argument(
        "--tile",
        type=int,
        metavar="N",
        help="input side for a network that cannot take any height and width: the file then "
        "takes exactly N x N pixels (default 256)",
    )
    e.add_argument("-o", "--output", metavar="PATH", help="file or folder (default: NAME-xS.onnx)")
    e.add_argument("--force", action="store_true", help="replace an existing file")
    e.set_defaults(run=run_export, weights=None)


def model_table(weights: list[WeightsEntry] | None = None) -> list[dict]:
    weights = installed_weights() if weights is None else weights
    rows = []
    for family in FAMILIES:
        for variant in family.variants:
            params = {}
            for scale in family.scales:
                params[str(scale)] = param_count(family.name, variant, scale)
            mine = sorted(
                (w for w in weights if (w.family, w.variant) == (family.name, variant)),
                key=lambda w: (w.scale, ORIGIN_RANK.get(w.origin, 9)),
            )
            found = [{"scale": w.scale, "origin": w.origin, "path": str(w.path)} for w in mine]
            best = {}
            for w in mine:  # sorted best first within each scale
                best.setdefault(str(w.scale), {"origin": w.origin, "path": str(w.path)})
            rows.append(
                {
                    "name": f"{family.name}-{variant}",
                    "family": family.name,
                    "variant": variant,
                    "params": params,
                    "weights": found,
                    "best": best,
                }
            )
    return rows


def release_table(weights: list[WeightsEntry] | None = None) -> list[dict]:
    weights = installed_weights() if weights is None else weights
    installed = {w.metadata.get("release") for w in weights}
    return [
        {
            "name": r.name,
            "family": r.family,
            "variant": r.variant,
            "scale": r.scale,
            "size": r.size,
            "sha256": r.sha256,
            "url": r.url,
            "installed": r.name in installed,
        }
        for r in RELEASES
    ]


def run(args: argparse.Namespace) -> int:
    scan = scan_weights()
    rows, releases = model_table(scan.entries), release_table(scan.entries)
    broken = [{"path": str(b.path), "reason": b.reason} for b in scan.broken]
    recommended = {}
    for scale in (2, 3, 4):
        entry = recommended_weights(scale)
        recommended[scale] = f"{entry.name} ({entry.origin})" if entry else None
    if args.json:
        listing = {"models": rows, "releases": releases, "broken": broken}
        print(json.dumps({**listing, "recommended": recommended}, indent=2))
        return 0
    print(f"{'model':<12}{'good for':<40}{'params x4':>10}  weights (best first)")
    for r in rows:
        have = ", ".join(f"x{w['scale']} ({w['origin']})" for w in r["weights"])
        if not have:
            offered = [x["name"] for x in releases if x["name"].startswith(r["name"] + "-x")]
            have = "none: " + (
                f"srstudio models download {' '.join(offered)}"
                if offered
                else "no release exists; train them with `srstudio train`"
            )
        chosen = [
            f"x{s}" for s, name in recommended.items() if name and name.startswith(r["name"] + " ")
        ]
        if chosen:
            have += f"  <- recommended at {', '.join(chosen)}"
        summary = get_family(r["family"]).summary_of(r["variant"])
        print(f"{r['name']:<12}{summary:<40}{r['params']['4']:>10,}  {have}")
    print("\nrecommended (used when no --model is given):")
    for scale, name in recommended.items():
        print(f"  x{scale}: {name or 'nothing installed'}")
    cleanup = cleanup_weights()
    where = f"{cleanup.name} ({cleanup.origin})" if cleanup else "none installed"
    print(f"\nclean-up before upscaling, for JPEGs and noisy photos (--clean-up): {where}")
    print("\nreleased weights, the authors' own (srstudio models download NAME):")
    for r in releases:
        mark = "installed" if r["installed"] else format_size(r["size"])
        print(f"  {r['name']:<14}{mark}")
    missing = [r for r in releases if not r["installed"]]
    if missing:
        size = format_size(sum(r["size"] for r in missing))
        print(f"  sharper than the bundled weights: srstudio models download --all ({size})")
    if broken:
        print("\nbroken weights files, skipped (replace or remove them):")
        for b in broken:
            print(f"  {b['path']}\n    {b['reason']}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from engine.downloads import download_release

    if args.all:
        chosen = list(RELEASES)
    elif args.names:
        chosen = [r for name in args.names for r in find_releases(name)]
    else:
        raise SRStudioError("give a release NAME (see `srstudio models`) or --all")
    for release in dict.fromkeys(chosen):
        path = download_release(
            release, on_progress=ProgressBar(release.name), timeout=args.timeout
        )
        print(f"{release.name}: {path}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from engine.downloads import import_weights

    for path in args.paths:
        entry = import_weights(path)
        print(f"{path}: {entry.family}-{entry.variant} x{entry.scale} -> {entry.path}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from engine.export import export_onnx

    if Path(args.model).is_file():  # a weights file: its scale is its own, --scale a check
        args.weights, args.model = args.model, None
    desc = resolve_model(args)
    default_name = f"{desc.name}-x{desc.scale}.onnx"
    path = Path(args.output or default_name)
    if path.is_dir() or (args.output or "").endswith(("/", os.sep)):
        path = path / default_name
    result = export_onnx(desc, path, tile=args.tile, overwrite=args.force)
    if result.dynamic:
        shape = "any height and width"
    else:
        side = "x".join(map(str, result.input_shape))
        shape = f"fixed input {side} only ({desc.family} cannot take any size; --tile sets it)"
    print(f"{desc.label}: {path} ({shape}; ONNX opset {result.opset}, {result.seconds:.0f} s)")
    return 0
