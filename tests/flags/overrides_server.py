"""A real HTTP server on 127.0.0.1 that serves overrides documents, or misbehaves on demand."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.loopback import LoopbackServer


@dataclass
class ServerBehaviour:
    """What the server answers; tests change it while providers poll.

    ``mode``: ``"serve"`` (the document, with an ETag and 304 on a match), ``"status"`` (an
    empty answer with ``status``), ``"hang"`` (accept, read the request, never answer until
    the test ends), ``"body"`` (``body`` verbatim with status 200).
    """

    mode: str = "serve"
    document: bytes = b""
    status: int = 200
    body: bytes = b""
    requests: int = 0
    authorizations: list[str | None] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self, document: bytes) -> None:
        with self.lock:
            self.mode, self.document = "serve", document


class OverridesServer(LoopbackServer):
    """Serves ``behaviour`` at ``/overrides.json``; tests change the behaviour as they go."""

    def __init__(self) -> None:
        self.behaviour = ServerBehaviour()
        behaviour = self.behaviour

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with behaviour.lock:
                    behaviour.requests += 1
                    behaviour.authorizations.append(self.headers.get("Authorization"))
                    mode, document = behaviour.mode, behaviour.document
                    status, body = behaviour.status, behaviour.body
                if mode == "hang":
                    behaviour.released.wait(30)
                    return
                if mode == "status":
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if mode == "body":
                    self._send(200, body, etag=None)
                    return
                etag = '"' + hashlib.sha256(document).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self._send(200, document, etag=etag)

            def _send(self, code: int, payload: bytes, *, etag: str | None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if etag:
                    self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
                return

        super().__init__(ThreadingHTTPServer, Handler, "/overrides.json")

    def release(self) -> None:
        """Let a hanging answer go."""
        self.behaviour.released.set()
