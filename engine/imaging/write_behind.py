"""Encoding behind the network: each band of output rows is encoded on a worker thread while the
tiles of the next band run on the calling thread.

Why: zlib (PNG, TIFF) and libjpeg (Pillow) release the GIL, so a band's encoding can use a core
the network leaves idle (its Python glue, the tiler's blending, or a GPU doing the work) instead
of adding its time to the run's. One band is encoded at a time, in order, and the next is handed
over only once it is done: the band handed over is a copy (the maker reuses its memory), so the
write costs one band of 8-bit rows, not a growing queue. The automatic tile size keeps a band
near 100 MB whatever the photo (96 MB for 12 MP at x4, 92 MB for 48 MP: wider outputs get
flatter tiles); a band over MAX_BAND_BYTES (a large tile asked for by hand) is written on the
calling thread instead. Measured (BENCHMARKS.md): the 12 MP photo at x4 written as PNG took
133.6 s against 143.5 s and peaked at 1441 MiB against 1227 MiB; as JPEG no change in memory.

What the sequential loop guaranteed still holds: write() sees the bands in order; what it raises
(a full disk) is raised on the calling thread, before the next band is asked for, and the bands
are left unconsumed; what making a band raises (Cancelled) is raised after the write in progress
has finished, so nothing writes to the file once the caller is told (engine.atomic then removes
it). No thread outlives the call. WRITE_BEHIND = False (SRSTUDIO_WRITE_BEHIND=0 in the
environment, for bench/bench_photo.py's --env) writes on the calling thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

WRITE_BEHIND = os.environ.get("SRSTUDIO_WRITE_BEHIND") != "0"
MAX_BAND_BYTES = 256 << 20  # larger bands are written on the calling thread


def write_all(bands: Iterable[np.ndarray], write: Callable[[np.ndarray], object]) -> None:
    """write(band) for each band, in order; on a worker thread while the next band is made."""
    if not WRITE_BEHIND:
        for band in bands:
            write(band)
        return
    pending: Future | None = None
    # leaving the block, for any reason, waits for the write in progress
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="srstudio-write") as pool:
        for band in bands:
            if pending is not None:
                pending.result()  # raises what the last write raised; one band in flight
                pending = None
            if band.nbytes > MAX_BAND_BYTES:
                write(band)  # a copy would cost more memory than the overlap is worth
            else:
                pending = pool.submit(write, np.array(band))  # the maker reuses the band
        if pending is not None:
            pending.result()
