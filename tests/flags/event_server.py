"""A change-event stream on 127.0.0.1 that the test writes frame by frame, and drops at will."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.loopback import LoopbackServer

CLOSE = b""
"""A frame that ends the current stream (the connection is closed, mid-event or not)."""


def refetch(event_id: str, revision: int) -> bytes:
    """One ``refetchEvaluation`` event as ``leadctx serve`` sends it."""
    data = f'{{"type":"refetchEvaluation","etag":"{event_id}","revision":{revision}}}'
    return f"id: {event_id}\nevent: message\ndata: {data}\n\n".encode()


@dataclass
class StreamLog:
    """What the server saw: one entry per stream request."""

    last_event_ids: list[str | None] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    opened: threading.Condition = field(default_factory=threading.Condition)

    def wait_streams(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` streams have been opened."""
        with self.opened:
            if not self.opened.wait_for(lambda: len(self.last_event_ids) >= count, timeout):
                raise AssertionError(f"{count} streams not opened within {timeout} s")


class EventStreamServer(LoopbackServer):
    """Serves ``/ofrep/v1/events``; each stream sends ``retry: 50`` then what ``send`` queues.

    Args:
        status: The status every stream request gets (200 streams; others answer empty).
    """

    def __init__(self, status: int = 200) -> None:
        self.log = StreamLog()
        self.frames: queue.Queue[bytes] = queue.Queue()
        self._released = threading.Event()
        log, frames, released = self.log, self.frames, self._released

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with log.opened:
                    log.last_event_ids.append(self.headers.get("Last-Event-ID"))
                    log.authorizations.append(self.headers.get("Authorization"))
                    log.opened.notify_all()
                if status != 200:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(b"retry: 50\n\n")
                self.wfile.flush()
                while not released.is_set():
                    try:
                        frame = frames.get(timeout=0.05)
                    except queue.Empty:
                        continue
                    if frame == CLOSE:
                        return
                    self.wfile.write(frame)
                    self.wfile.flush()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
                return

        super().__init__(ThreadingHTTPServer, Handler, "/ofrep/v1/events")

    def send(self, *frames: bytes) -> None:
        """Queue frames for the open stream (or the next one)."""
        for frame in frames:
            self.frames.put(frame)

    def release(self) -> None:
        """End every stream (the test is over)."""
        self._released.set()
