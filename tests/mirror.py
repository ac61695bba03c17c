"""A loopback HTTP mirror of shared/official-weights for the download tests (engine and app).

It serves files with Range support and can misbehave on request; nothing leaves 127.0.0.1."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HOLD_AFTER = 128 * 1024  # with a gate: bytes sent before the body waits for it


@dataclass
class Mirror:
    root: Path
    url: str = ""
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    corrupt: bool = False  # flip one byte of every file
    drop_after: int | None = None  # next response: hang up after this many body bytes
    ignore_range: bool = False  # answer 200 with the whole file, as some servers do
    gate: threading.Event | None = None  # hold each body after HOLD_AFTER bytes until it is set


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        mirror: Mirror = self.server.mirror  # type: ignore[attr-defined]
        rng = self.headers.get("Range")
        mirror.requests.append((self.path, rng))
        path = mirror.root / self.path.lstrip("/")
        if ".." in self.path or not path.is_file():
            self.send_error(404)
            return
        data = bytearray(path.read_bytes())
        if mirror.corrupt:
            data[len(data) // 2] ^= 0xFF
        start = 0
        if rng and not mirror.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = bytes(data[start:])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mirror.drop_after is not None:
            body, mirror.drop_after = body[: mirror.drop_after], None
        try:
            if mirror.gate is not None:
                self.wfile.write(body[:HOLD_AFTER])
                self.wfile.flush()
                mirror.gate.wait(20)
                body = body[HOLD_AFTER:]
            self.wfile.write(body)
        except OSError:  # the client hung up (a cancelled download)
            pass

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve_mirror(root: Path) -> Iterator[Mirror]:
    mirror = Mirror(root)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.mirror = mirror  # type: ignore[attr-defined]
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    mirror.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield mirror
    finally:
        if mirror.gate is not None:
            mirror.gate.set()
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def unreachable_url() -> Iterator[str]:
    """A loopback URL whose port is bound but never listening: connections are refused."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{closed.getsockname()[1]}"
