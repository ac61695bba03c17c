"""What a pane draws an image from: its full resolution and a pyramid of halvings (numpy only).

Level 0 is the image itself: an HxWx3 uint8 array, or rows made on demand (an engine OutputStore
on disk read a region at a time, or a heat-map computed from one). Level k+1 is the 2x2 area
mean of level k (rounded; an odd last row or column is the mean of what is there), kept in
memory down to a level no larger than MIN_SIDE: a third of level 0's pixels in all, the cost of
showing a 192-megapixel output at any zoom without holding it. A view asks for the level that
suits its zoom (level_for) and the region it shows.

Levels are built as rows arrive (add_rows, top to bottom), so an output still being made can be
shown with the rows finished so far; rows not yet made are black. The worker thread that makes
the output calls add_rows while the GUI thread reads regions: each level's rows are written once,
before `rows_ready` says they are there.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable

import numpy as np

from engine import Cancelled, OutputStore

Rows = Callable[[int, int], np.ndarray]  # rows [top, bottom) of level 0, (n, width, 3) uint8
MIN_SIDE = 256  # the smallest level's longer side is at most this
_MADE: dict[int, tuple[weakref.ref, Pyramid]] = {}  # Pyramid.of's, by the array's id


def _halve(rows: np.ndarray) -> np.ndarray:
    """2x2 means of (2k or 2k-1 rows, W, 3) uint8: (k, ceil(W/2), 3), an odd edge replicated."""
    if rows.shape[0] % 2:
        rows = np.concatenate([rows, rows[-1:]], axis=0)
    if rows.shape[1] % 2:
        rows = np.concatenate([rows, rows[:, -1:]], axis=1)
    wide = rows.astype(np.uint16)
    total = wide[0::2, 0::2] + wide[1::2, 0::2] + wide[0::2, 1::2] + wide[1::2, 1::2]
    return ((total + 2) >> 2).astype(np.uint8)


class Pyramid:
    def __init__(
        self, height: int, width: int, base: np.ndarray | OutputStore | Rows | None = None
    ) -> None:
        """An image `height` x `width`; `base` its pixels: an array (taken whole at once), a
        store or a function of rows (read again whenever level 0 is drawn; their rows are
        given to add_rows as they are made), or None for rows given only to add_rows (kept)."""
        self.height, self.width = height, width
        self.store = base if isinstance(base, OutputStore) else None
        self.rows: Rows | None = None
        if self.store is not None:
            store = self.store
            self.rows = lambda top, bottom: store.rgb8(store.read(top, bottom))
        elif callable(base):
            self.rows = base
        self.levels: list[np.ndarray] = []  # levels 1.. (and 0 when it is an array)
        self.base: np.ndarray | None = None
        count = max(0, math.ceil(math.log2(max(height, width, 1) / MIN_SIDE)))
        h, w = height, width
        for _ in range(count):
            h, w = -(-h // 2), -(-w // 2)
            self.levels.append(np.zeros((h, w, 3), np.uint8))
        self._pending: list[np.ndarray | None] = [None] * len(self.levels)  # odd rows held back
        self._made = [0] * len(self.levels)  # rows of each level made so far
        self.rows_ready = 0
        if isinstance(base, np.ndarray):
            self.base = np.ascontiguousarray(base[..., :3])
            self.add_rows(self.base)
        elif base is None:
            self.base = np.zeros((height, width, 3), np.uint8)

    @staticmethod
    def bytes_for(height: int, width: int) -> int:
        """Memory the levels above 0 take for an image of this size (a third of its RGB)."""
        return height * width  # 3 bytes a pixel x (1/4 + 1/16 + ...) < 1

    @classmethod
    def made_from(
        cls,
        height: int,
        width: int,
        rows: Rows,
        strip: int = 512,
        should_stop: Callable[[], bool] | None = None,
    ) -> Pyramid:
        """The pyramid of rows made on demand, its levels built now a strip at a time (raises
        engine.Cancelled between strips once `should_stop` says so)."""
        pyramid = cls(height, width, rows)
        for top in range(0, height, strip):
            if should_stop is not None and should_stop():
                raise Cancelled()
            pyramid.add_rows(rows(top, min(height, top + strip)))
        return pyramid

    @classmethod
    def of(cls, pixels: np.ndarray) -> Pyramid:
        """The pyramid of an array, made once while the array lives (panes are made anew on
        every change of the view; their images mostly are not)."""
        found = _MADE.get(id(pixels))
        if found is not None and found[0]() is pixels:
            return found[1]
        pyramid = cls(pixels.shape[0], pixels.shape[1], pixels)
        key = id(pixels)
        forget = _MADE.pop  # bound now: at exit the module's globals may be gone first
        _MADE[key] = (weakref.ref(pixels, lambda _: forget(key, None)), pyramid)
        return pyramid

    @property
    def count(self) -> int:
        """Levels there are, level 0 included."""
        return 1 + len(self.levels)

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    def add_rows(self, rows: np.ndarray) -> None:
        """The next rows of level 0, (n, width, 3) uint8 (already in the store, if there is
        one; copied into level 0 when it is an array this pyramid owns)."""
        added = rows.shape[0]
        if self.base is not None and rows is not self.base:
            self.base[self.rows_ready : self.rows_ready + added] = rows
        last = self.rows_ready + added == self.height
        for k in range(len(self.levels)):
            held = self._pending[k]
            if held is not None:
                rows = np.concatenate([held, rows], axis=0)
            keep = rows.shape[0] % 2 if not last else 0
            self._pending[k] = rows[rows.shape[0] - keep :].copy() if keep else None
            rows = rows[: rows.shape[0] - keep]
            if rows.shape[0] == 0:
                break
            rows = _halve(rows)
            top = self._made[k]
            self.levels[k][top : top + rows.shape[0]] = rows
            self._made[k] = top + rows.shape[0]
        self.rows_ready += added

    def level_for(self, image_per_screen: float) -> int:
        """The level to draw from when one screen pixel covers `image_per_screen` pixels of
        level 0: the smallest that still has at least one pixel per screen pixel."""
        if image_per_screen <= 1:
            return 0
        return min(len(self.levels), int(math.floor(math.log2(image_per_screen))))

    def region(self, level: int, top: int, left: int, bottom: int, right: int) -> np.ndarray:
        """Rows [top, bottom) and columns [left, right) of `level`, (rows, cols, 3) uint8."""
        if level > 0:
            return self.levels[level - 1][top:bottom, left:right]
        if self.base is not None:
            return self.base[top:bottom, left:right]
        assert self.rows is not None
        made = self.rows(top, min(bottom, self.rows_ready))[:, left:right]
        if made.shape[0] == bottom - top:
            return made
        out = np.zeros((bottom - top, made.shape[1] if made.size else right - left, 3), np.uint8)
        out[: made.shape[0]] = made  # rows not made yet: black
        return out

    def pixel(self, y: int, x: int) -> tuple[int, ...]:
        return tuple(int(v) for v in self.region(0, y, x, y + 1, x + 1)[0, 0])

    def level_shape(self, level: int) -> tuple[int, int]:
        if level == 0:
            return self.height, self.width
        h, w = self.levels[level - 1].shape[:2]
        return h, w

    def whole(self) -> np.ndarray:
        """Level 0 in memory (for the clipboard): the array, or its rows read whole."""
        if self.base is not None:
            return self.base
        return self.region(0, 0, 0, self.height, self.width)
