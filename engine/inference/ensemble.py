"""x8 self-ensemble: run the network on the 8 flips/rotations of its input and average the
outputs, each transformed back (the "+" results of the papers)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Forward = Callable[[Tensor], Tensor]
TRANSFORMS = tuple((rot, flip) for flip in (False, True) for rot in range(4))


def _apply(x: Tensor, rot: int, flip: bool) -> Tensor:
    if flip:
        x = x.flip(-1)
    return torch.rot90(x, rot, dims=(-2, -1)) if rot else x


def _undo(y: Tensor, rot: int, flip: bool) -> Tensor:
    if rot:
        y = torch.rot90(y, -rot, dims=(-2, -1))
    return y.flip(-1) if flip else y


def ensemble(forward: Callable[[Tensor, int], Tensor], x: Tensor) -> Tensor:
    """The mean of forward(t(x), i), each transformed back, over the 8 transforms t (i their
    index). The input keeps its dtype (the tiler's precision choice); the outputs are averaged in
    float32 and the result is float32."""
    total: Tensor | None = None
    for index, (rot, flip) in enumerate(TRANSFORMS):
        y = _undo(forward(_apply(x, rot, flip).contiguous(), index), rot, flip)
        # a copy first: the forward's output may be a tensor it still uses (or its input)
        total = y.to(torch.float32, copy=True) if total is None else total.add_(y)
    assert total is not None
    return total.div_(len(TRANSFORMS))


def ensemble_forward(forward: Forward) -> Forward:
    """forward wrapped into its x8 self-ensemble."""
    return lambda x: ensemble(lambda t, _: forward(t), x)
