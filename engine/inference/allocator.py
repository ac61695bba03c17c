"""Keeping glibc's malloc from handing each tile's memory back to the system.

A forward of one tile allocates a few hundred MB of activations and frees them at its end. With
glibc's defaults, blocks over the (dynamic, at most 32 MiB) mmap threshold are mmap'ed and unmapped
every time, and freed heap above the trim threshold is returned to the system: the next tile
faults the same memory in again, page by page. On the 12 MP photo of BENCHMARKS.md (A2F-SD x4) that
was ~97 million minor page faults and about half the run's CPU time spent in the kernel.

tune() raises both thresholds once per process (mallopt through ctypes), so the heap keeps its
pages from tile to tile: memory stays at the largest tile's need instead of growing. It also
limits glibc to one arena: with one heap per thread (torch's workers allocate too), each kept its
own freed memory and a 48 MP x4 run grew from 1.7 to over 2 GiB in ten minutes; with one arena
(measured with MALLOC_ARENA_MAX=1) it stayed at 1.6 GiB. It does
nothing where libc is not glibc (macOS, Windows, musl) or when SRSTUDIO_MALLOC_TUNING=0. The
values and their effect are measured in BENCHMARKS.md ("Streaming a 12 MP photo"). It runs when
this module is imported, which engine/__init__.py does first: glibc fixes its arena limit when a
second thread first needs an arena, so a later mallopt can come too late (a 48 MP run with the
setting applied at CLI start still grew past 1.8 GiB; with MALLOC_ARENA_MAX=1 in the
environment it stayed at 1.6). ./run also sets MALLOC_ARENA_MAX=1 for the app and the CLI.

Where `srstudio` runs with jemalloc preloaded (app/launcher.py, wherever libjemalloc2 is
installed) these settings go to glibc's malloc, which is then not used: harmless. Even tuned,
glibc's heap fragments between tiles (BENCHMARKS.md, "A2F channels-last, jemalloc").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENA_MAX = 1  # one heap for all threads (torch's workers, the read-ahead), not one each
MMAP_THRESHOLD = 512 << 20  # blocks up to this size come from the heap and are reused
TRIM_THRESHOLD = 1 << 30  # free heap kept before any is returned to the system

_done = False


def tune() -> bool:
    """Apply the settings once per process; True when they are in effect."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux") or os.environ.get("SRSTUDIO_MALLOC_TUNING") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    ok = mallopt(M_ARENA_MAX, ARENA_MAX) == 1
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and ok
    ok = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    log.info("malloc tuning %s", "applied" if ok else "refused by this libc")
    _done = ok
    return ok


tune()  # on import: engine/__init__.py imports this first, before torch starts any thread


def trim() -> bool:
    """Hand the heap's free memory back to the system now (glibc's malloc_trim), e.g. once the
    tiles are done and one large output image is to be made; True when libc did release some."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        malloc_trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return False
    malloc_trim.argtypes = (ctypes.c_size_t,)
    return bool(malloc_trim(0))
