"""Running the application on uvicorn: settings, the bind check, graceful shutdown.

On SIGTERM or SIGINT uvicorn stops accepting connections and waits for the requests in
flight; change-event streams would never finish on their own, so the signal also ends them
at once (``OfrepService.begin_shutdown``). Whatever is still running after
``GRACEFUL_SECONDS`` is cancelled, and the provider's poller is stopped (at most 2 s), so the
process exits within 5 s of the signal, with status 0: the drain the operator asked for is
done (uvicorn would re-raise the signal instead, and Kubernetes would report exit 143).
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
from leadctx.serve.settings import ServeSettings
from leadctx_flags.errors import ConfigurationError
from leadctx_flags.provider import LeadCtxProvider
from leadctx_flags.settings import RolloutSettings

__all__ = ["GRACEFUL_SECONDS", "ServeOptions", "is_loopback", "serve"]

GRACEFUL_SECONDS: Final = 3
"""How long in-flight requests may take to finish after a shutdown signal."""

CONFIGURATION_EXIT: Final = 2

_SHUTDOWN_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)

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
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

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
        access_log=False,  # an access log line holds paths and queries: input, not telemetry
        log_config=None,  # the leadctx command has set logging up
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        server_header=False,
    )
    server = _Server(config, service)
    server.run()
    return 0 if server.started else 1
