"""A real socket server on 127.0.0.1 (a free port), served from a daemon thread for one test."""

from __future__ import annotations

import socketserver
import threading
from types import TracebackType
from typing import Self


class LoopbackServer:
    """``server_class`` bound to 127.0.0.1 on a free port, served until :meth:`stop`.

    Subclasses release whatever their handlers may be waiting on in :meth:`release`, which
    runs before the shutdown so that a handler held open does not hold up the test's end.

    Args:
        server_class: A TCP ``socketserver`` class, best a threading one (``ThreadingHTTPServer``).
        handler: The request handler class.
        path: The path :attr:`url` ends with.
    """

    def __init__(
        self,
        server_class: type[socketserver.TCPServer],
        handler: type[socketserver.BaseRequestHandler],
        path: str = "/",
    ) -> None:
        self._server = server_class(("127.0.0.1", 0), handler)
        if isinstance(self._server, socketserver.ThreadingMixIn):
            # A handler still held open at the end must not keep the test process alive.
            self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._path = path

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port><path>``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self._path}"

    def start(self) -> None:
        """Serve from a daemon thread."""
        self._thread.start()

    def release(self) -> None:
        """Let handlers that are waiting go (nothing here; subclasses that hold answers do)."""

    def stop(self) -> None:
        """Release the handlers, stop serving and close the socket."""
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
