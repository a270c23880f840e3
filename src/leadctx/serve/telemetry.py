"""Per-request telemetry of ``leadctx serve``: OpenTelemetry's HTTP server conventions.

One histogram, ``http.server.request.duration`` (seconds), with ``http.request.method``,
``http.route`` (the route's template, never the path: a flag key in a path is input),
``http.response.status_code``, ``url.scheme`` and, for a 5xx or an exception, ``error.type``.
Nothing from a request's body, query or headers is recorded. The OpenTelemetry API is a no-op
until the application installs the SDK (``OTEL_*``, see docs/telemetry.md).
"""

from __future__ import annotations

import time
from typing import Final

from opentelemetry import metrics
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["REQUEST_DURATION", "RequestTelemetry", "route_of"]

REQUEST_DURATION: Final = "http.server.request.duration"

# The semantic conventions' advice for this histogram's buckets (seconds).
_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)

_ROUTES: Final = {
    "/ofrep/v1/evaluate/flags": "/ofrep/v1/evaluate/flags",
    "/ofrep/v1/events": "/ofrep/v1/events",
    "/healthz": "/healthz",
    "/readyz": "/readyz",
}
_SINGLE_PREFIX: Final = "/ofrep/v1/evaluate/flags/"


def route_of(path: str) -> str | None:
    """The route template that serves ``path``, or ``None`` for a path no route serves."""
    if path.startswith(_SINGLE_PREFIX):
        return _SINGLE_PREFIX + "{key}"
    return _ROUTES.get(path)


class RequestTelemetry:
    """ASGI middleware recording ``http.server.request.duration`` for every HTTP request.

    Args:
        app: The application it wraps.
        meter_provider: Where the histogram comes from (default: the global one).
    """

    def __init__(self, app: ASGIApp, meter_provider: metrics.MeterProvider | None = None) -> None:
        self._app = app
        # One attribute set per (method, status, scheme, route, error): a handful in practice.
        self._attribute_sets: dict[
            tuple[str, int, str, str | None, str | None], dict[str, str | int]
        ] = {}
        meter = metrics.get_meter("leadctx.serve", meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            REQUEST_DURATION,
            unit="s",
            description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=list(_BUCKETS),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request through the wrapped app, timing it."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        error_type: str | None = None

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, send_and_note)
        except BaseException as err:
            error_type = type(err).__qualname__
            raise
        finally:
            method: str = scope.get("method", "_OTHER")
            route = route_of(scope.get("path", ""))
            scheme: str = scope.get("scheme", "http")
            if error_type is None and status >= 500:
                error_type = str(status)
            identity = (method, status, scheme, route, error_type)
            attributes = self._attribute_sets.get(identity)
            if attributes is None:
                attributes = _attributes(*identity)
                if len(self._attribute_sets) < 256:
                    self._attribute_sets[identity] = attributes
            self._duration.record(time.perf_counter() - started, attributes)


def _attributes(
    method: str, status: int, scheme: str, route: str | None, error_type: str | None
) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {
        "http.request.method": method,
        "http.response.status_code": status,
        "url.scheme": scheme,
    }
    if route is not None:
        attributes["http.route"] = route
    if error_type is not None:
        attributes["error.type"] = error_type
    return attributes
