"""A network as one static graph, for the backends that compile one (OpenVINO) and for ONNX
export: torch.export at a fixed input shape.

The trace runs with autograd on, so each network takes its reference (autograd) path: A2F's
CPU inference path writes block outputs into a buffer in place and runs its ResBlocks in Python-
sized stripes of rows, which a graph converter would either get wrong or unroll. The parameters
are frozen first, so nothing is recorded for a backward pass. Image-wide pooling
(engine.archs.pooling) sees only the traced input: a converted network pools per tile.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
from torch import nn

MAX_SIDE = 1 << 15  # the largest side a graph with dynamic height and width is traced for


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Tracing and the converters (torch.export, torch.onnx, OpenVINO) warn about their own
    internals and deprecations: noise to a user, who can do nothing about it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def export_program(
    model: nn.Module, example: torch.Tensor, *, dynamic: bool = False
) -> torch.export.ExportedProgram:
    """`model` traced at `example`'s shape (1, 3, H, W) float32 on the CPU; with `dynamic`, for
    any height and width (the family's Family.dynamic_graph says whether it can be)."""
    model = model.eval()
    shapes = None
    if dynamic:
        dim = torch.export.Dim
        shapes = ({2: dim("height", max=MAX_SIDE), 3: dim("width", max=MAX_SIDE)},)
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        with torch.enable_grad(), quiet():
            return torch.export.export(model, (example,), dynamic_shapes=shapes)
    finally:
        for p in frozen:
            p.requires_grad_(True)
