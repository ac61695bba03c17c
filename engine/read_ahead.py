"""Read-ahead for batches: decode the next file on a worker thread while this one is upscaled.

Why: in a batch, reading a file (Pillow's decode, EXIF orientation, conversion to float) is time
the network waits for. Decoding file k+1 while file k is in the network hides it. Only one file
is read ahead: a 12 MP photo is about 140 MiB as float32, and the automatic tile size assumes the
rest of memory is free.

What the sequential loop guaranteed still holds:
- take(k) returns file k's image or raises exactly what reading it raised, on the calling thread;
  files are taken in order, so failures are reported in file order.
- The worker never calls the caller's callbacks. While take() waits for a read the caller's
  should_stop() is polled on the calling thread; once it is True (or the `with` block is left,
  for any reason) the worker's read is told to stop at its next block (read_image raises
  Cancelled), and leaving the block joins the thread: none outlives it.
- threaded=False reads on the calling thread with the caller's should_stop: the sequential loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Generic, TypeVar

from engine.errors import StopFn

T = TypeVar("T")
POLL_SECONDS = 0.05  # how often should_stop() is asked while waiting for a read

Reader = Callable[[Path, StopFn], T]  # read(path, should_stop)


class ReadAhead(Generic[T]):
    """Reads paths[k + 1] on one worker thread once paths[k] has been taken."""

    def __init__(
        self,
        paths: Sequence[Path],
        read: Reader[T],
        should_stop: StopFn,
        *,
        threaded: bool = True,
    ) -> None:
        self._paths = list(paths)
        self._read = read
        self._should_stop = should_stop
        self._stop = threading.Event()  # the worker's should_stop
        self._pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="srstudio-read-ahead")
            if threaded
            else None
        )
        self._next: tuple[int, Future[T]] | None = None

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop a read in progress, drop one not begun, and join the worker."""
        self._stop.set()
        self._next = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def take(self, k: int) -> T:
        """File k's image, or what reading it raised; file k + 1 is read from now on."""
        if self._pool is None:
            return self._read(self._paths[k], self._should_stop)
        ahead, self._next = self._next, None
        future = ahead[1] if ahead is not None and ahead[0] == k else self._submit(k)
        try:
            return self._wait(future)
        finally:
            if k + 1 < len(self._paths) and not self._stop.is_set():
                self._next = (k + 1, self._submit(k + 1))

    def _submit(self, k: int) -> Future[T]:
        assert self._pool is not None
        return self._pool.submit(self._read, self._paths[k], self._stop.is_set)

    def _wait(self, future: Future[T]) -> T:
        while not future.done():
            done, _ = wait([future], timeout=POLL_SECONDS)
            if not done and not self._stop.is_set() and self._should_stop():
                self._stop.set()  # the read raises Cancelled at its next block
        return future.result()
