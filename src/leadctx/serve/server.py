"""Running the application on uvicorn: settings, the bind check, graceful shutdown.

On SIGTERM or SIGINT uvicorn stops accepting connections and waits for the requests in
flight; change-event streams would never finish on their own, so the signal also ends them
at once (``OfrepService.begin_shutdown``). Whatever is still running after
``GRACEFUL_SECONDS`` is cancelled, and the provider's poller is stopped (at most 2 s), so the
process exits within 5 s of the signal, with status 0: the drain the operator asked for is
done (uvicorn would re-raise the signal instead, and Kubernetes would report exit 143).

SIGHUP (``systemctl reload``, ``kill -HUP``) does not stop the server: it reads the overrides
document now (``LeadCtxProvider.refresh``), for a change that no watch or event reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Final

import uvicorn

from leadctx.serve.app import OfrepService, build_app
from leadctx.serve.settings import HEAD_DEADLINE_SECONDS, ServeSettings
from leadctx_flags.errors import ConfigurationError
from leadctx_flags.provider import LeadCtxProvider
from leadctx_flags.settings import RolloutSettings

__all__ = [
    "GRACEFUL_SECONDS",
    "HEAD_DEADLINE_SECONDS",
    "MAX_HEAD_BYTES",
    "ServeOptions",
    "is_loopback",
    "serve",
]

GRACEFUL_SECONDS: Final = 3
"""How long in-flight requests may take to finish after a shutdown signal."""

MAX_HEAD_BYTES: Final = 64 * 1024
"""The largest request line and headers accepted; a longer head is answered 431 and closed."""

CONFIGURATION_EXIT: Final = 2

_SHUTDOWN_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)
_RELOAD_SIGNAL: Final = getattr(signal, "SIGHUP", None)  # not on Windows

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What the command line says: where to listen, and whether an open bind is intended."""

    host: str = "127.0.0.1"
    port: int = 8016
    allow_unauthenticated: bool = False


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _http_protocol(
    head_deadline_seconds: float = HEAD_DEADLINE_SECONDS,
) -> type[asyncio.Protocol] | str:
    """uvicorn's httptools protocol with a size and a deadline on the request head, or h11.

    httptools keeps a request line and headers in memory until they end, with no limit of its
    own: one client sending a header that never ends would grow the process without bound
    (100 MB of ``If-None-Match`` held 137 MB). And uvicorn puts no deadline on a head: a
    connection that sends nothing, or a header a byte at a time, was held for ever, one file
    descriptor each (slowloris), until the process could accept no one, probes included.
    h11, uvicorn's fallback, refuses a head over 16 KiB by itself.

    Args:
        head_deadline_seconds: How long a head may take (``LEADCTX_SERVE_HEAD_DEADLINE_SECONDS``).
    """
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # noqa: PLC0415
    except ImportError:  # no httptools (the serve extra without uvicorn[standard])
        return "h11"

    head_late = _late_head(head_deadline_seconds)

    class BoundedHeadProtocol(HttpToolsProtocol):
        """A head over ``MAX_HEAD_BYTES`` is answered 431, one not whole within
        ``head_deadline_seconds`` (of the connection's opening, or of its first bytes) 408;
        then the connection is closed. Between requests, uvicorn's keep-alive timeout holds.
        """

        _head_bytes = 0
        _in_head = False
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_head_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_head_deadline()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head = True
            self._head_bytes = 0

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._disarm_head_deadline()
            super().on_headers_complete()

        def data_received(self, data: bytes) -> None:
            # Counted only for the chunks that arrive wholly inside a head: a head that began
            # in this chunk is bounded from the next one on, so no request under the bound is
            # refused, and memory stays within the bound plus one read. A head that arrives in
            # one chunk (nearly all) costs no timer.
            counting = self._in_head
            super().data_received(data)
            if not self._in_head:
                return
            if self._head_timer is None:
                self._arm_head_deadline()
            if counting:
                self._head_bytes += len(data)
                if self._head_bytes > MAX_HEAD_BYTES:
                    self._refuse_head(_HEAD_TOO_LARGE)

        def _arm_head_deadline(self) -> None:
            self._head_timer = self.loop.call_later(
                head_deadline_seconds, self._refuse_head, head_late
            )

        def _disarm_head_deadline(self) -> None:
            timer, self._head_timer = self._head_timer, None
            if timer is not None:
                timer.cancel()

        def _refuse_head(self, answer: bytes) -> None:
            self._in_head = False
            self._disarm_head_deadline()
            if not self.transport.is_closing():
                self.transport.write(answer)
                self.transport.close()

    return BoundedHeadProtocol


def _refusal(status: bytes, details: str) -> bytes:
    body = b'{"errorCode":"PARSE_ERROR","errorDetails":"' + details.encode() + b'","key":""}'
    return (
        b"HTTP/1.1 " + status + b"\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + body
    )


_HEAD_TOO_LARGE: Final = _refusal(
    b"431 Request Header Fields Too Large", f"request line and headers over {MAX_HEAD_BYTES} bytes"
)


def _late_head(seconds: float) -> bytes:
    return _refusal(
        b"408 Request Timeout", f"request line and headers not received within {seconds:g} s"
    )


class _Server(uvicorn.Server):
    """uvicorn's server, telling the service first when a shutdown signal arrives."""

    def __init__(self, config: uvicorn.Config, service: OfrepService) -> None:
        super().__init__(config)
        self._service = service
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)  # type: ignore[arg-type]
        if self.started:
            host, port = self.config.host, self.config.port
            print(f"leadctx serve: listening on http://{host}:{port}", file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Handle SIGTERM and SIGINT while serving; restore the previous handlers after.

        uvicorn's own version re-raises the signal once the server has shut down, so that the
        process dies of it; a shutdown that completed is this command's success (exit 0).
        """
        if threading.current_thread() is not threading.main_thread():
            yield  # signals can only be handled on the main thread (an embedding test)
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _SHUTDOWN_SIGNALS}
        if _RELOAD_SIGNAL is not None:
            previous[_RELOAD_SIGNAL] = signal.signal(_RELOAD_SIGNAL, self.handle_reload)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def handle_reload(self, sig: int, frame: FrameType | None) -> None:
        """SIGHUP: read the overrides document now, on the loop (never in the handler)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._reload)

    def _reload(self) -> None:
        logger.info("SIGHUP: reading the overrides document now")
        self._service.provider.refresh()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            # A signal handler may interrupt the loop anywhere: hand over, never act here.
            loop.call_soon_threadsafe(self._service.begin_shutdown)


def serve(options: ServeOptions) -> int:
    """Serve OFREP until a shutdown signal; the exit code (2 for a configuration error).

    Args:
        options: Where to listen.
    """
    try:
        serve_settings = ServeSettings()
        rollout = RolloutSettings()
    except ConfigurationError as err:
        print(f"leadctx serve: {err}", file=sys.stderr)
        return CONFIGURATION_EXIT
    if not is_loopback(options.host) and serve_settings.token is None:
        if not options.allow_unauthenticated:
            print(
                f"leadctx serve: refusing to listen on {options.host} without "
                "LEADCTX_SERVE_TOKEN; set a token, or pass --allow-unauthenticated if the "
                "network in front of this server authenticates its callers",
                file=sys.stderr,
            )
            return CONFIGURATION_EXIT
        logger.warning("serving OFREP on %s without authentication", options.host)
    if not 0 < options.port < 65536:
        print("leadctx serve: --port must be from 1 to 65535", file=sys.stderr)
        return CONFIGURATION_EXIT
    provider = LeadCtxProvider(rollout)
    service = OfrepService(
        provider, serve_settings, refetch_wait_seconds=rollout.flag_overrides_poll_seconds + 1
    )
    config = uvicorn.Config(
        build_app(service),
        host=options.host,
        port=options.port,
        lifespan="on",
        http=_http_protocol(serve_settings.head_deadline_seconds),
        access_log=False,  # an access log line holds paths and queries: input, not telemetry
        log_config=None,  # the leadctx command has set logging up
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        server_header=False,
    )
    server = _Server(config, service)
    server.run()
    return 0 if server.started else 1
