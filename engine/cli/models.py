"""srstudio models: every family/variant, its parameter count per scale, and installed weights."""

from __future__ import annotations

import argparse
import json

import torch

from engine.archs.registry import FAMILIES
from engine.checkpoints import count_params
from engine.library import installed_weights


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list networks, parameter counts and installed weights")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def model_table() -> list[dict]:
    weights = installed_weights()
    rows = []
    for family in FAMILIES:
        for variant in family.variants:
            params = {}
            for scale in family.scales:
                with torch.device("meta"):  # counts parameters without allocating them
                    params[str(scale)] = count_params(family.build(family.config(variant, scale)))
            found = [
                {"scale": w.scale, "origin": w.origin, "path": str(w.path)}
                for w in weights if (w.family, w.variant) == (family.name, variant)
            ]
            rows.append({"name": f"{family.name}-{variant}", "family": family.name,
                         "variant": variant, "params": params, "weights": found})
    return rows


def run(args: argparse.Namespace) -> int:
    rows = model_table()
    if args.json:
        print(json.dumps({"models": rows}, indent=2))
        return 0
    print(f"{'model':<14}{'x2':>12}{'x3':>12}{'x4':>12}  weights")
    for r in rows:
        p = r["params"]
        have = ", ".join(f"x{w['scale']} ({w['origin']})" for w in r["weights"]) or "none"
        print(f"{r['name']:<14}{p['2']:>12,}{p['3']:>12,}{p['4']:>12,}  {have}")
    return 0
