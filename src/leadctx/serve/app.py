"""The ASGI application of ``leadctx serve``: OFREP routes over one ``LeadCtxProvider``.

Routes (Starlette):

====  ==================================  ===========================================
POST  ``/ofrep/v1/evaluate/flags/{key}``   one flag for a context (server providers)
POST  ``/ofrep/v1/evaluate/flags``         every flag, ETag / 304, ``eventStreams``
GET   ``/ofrep/v1/events``                 change events (Server-Sent Events, ADR 0008)
GET   ``/healthz``                         the process is up
GET   ``/readyz``                          the provider can answer: 503 when not
====  ==================================  ===========================================

This layer only parses, checks and serialises: every decision is the provider's
``resolve_boolean_details``. Evaluation is lock-free and does no I/O, so handlers call it on
the event loop. The lifespan owns the provider: it initialises it (first fetch of the
overrides document) before the first request and shuts it down after the last.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final
from urllib.parse import urlencode

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from opentelemetry import metrics
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from leadctx.serve.changes import FlagStateFeed, revision_of_tag
from leadctx.serve.events import EVENTS_PATH, EventStreams
from leadctx.serve.ofrep import (
    MAX_BODY_BYTES,
    RequestError,
    answer_for,
    encode,
    evaluation_context,
    failure,
    parse_body,
)
from leadctx.serve.settings import ServeSettings
from leadctx.serve.telemetry import RequestTelemetry
from leadctx_flags.flags import KNOWN_FLAGS
from leadctx_flags.provider import LeadCtxProvider

__all__ = ["BODY_DEADLINE_SECONDS", "OfrepService", "build_app"]

logger = logging.getLogger(__name__)

BODY_DEADLINE_SECONDS: Final = 10.0
"""A request body must arrive whole within this long (a dripping client is answered 408)."""

REFETCH_WAIT_CAP_SECONDS: Final = 10.0
"""Longest a re-fetch waits for the state an event announced before answering 503."""

_JSON: Final = "application/json"
_BULK_KEY: Final = ""  # failures of a bulk request name no flag


class _Refusal(Exception):  # noqa: N818 - a response to send, not an error of the server
    def __init__(self, status: int, code: ErrorCode, details: str) -> None:
        super().__init__(details)
        self.status = status
        self.code = code
        self.details = details


class OfrepService:
    """What the routes share: the provider, its state feed, the streams and the settings.

    Args:
        provider: The process's one provider (not yet initialised).
        settings: The transport settings.
        refetch_wait_seconds: Longest a re-fetch waits for the state an event announced
            (the provider's poll interval, capped at 10 s, is a good value).
    """

    def __init__(
        self, provider: LeadCtxProvider, settings: ServeSettings, *, refetch_wait_seconds: float
    ) -> None:
        self.provider = provider
        self.settings = settings
        self.feed = FlagStateFeed(provider)
        self.streams = EventStreams(
            self.feed,
            max_streams=settings.max_streams,
            heartbeat_seconds=settings.heartbeat_seconds,
        )
        self.refetch_wait_seconds = min(refetch_wait_seconds, REFETCH_WAIT_CAP_SECONDS)
        self.draining = False
        token = settings.token
        self._token = None if token is None else token.get_secret_value().encode()
        # What the event stream's URL carries instead of the token: a browser's EventSource
        # cannot send headers. It grants change notifications only, never an evaluation.
        self._stream_access = (
            None
            if self._token is None
            else hmac.new(self._token, b"leadctx-serve-events", hashlib.sha256).hexdigest()[:32]
        )

    def begin_shutdown(self) -> None:
        """Stop being ready and end every change-event stream (runs on the event loop)."""
        self.draining = True
        self.streams.close()

    def authorized(self, request: Request, *, stream: bool = False) -> bool:
        """Whether ``request`` carries the token (always, when no token is configured)."""
        if self._token is None:
            return True
        offered = request.headers.get("x-api-key")
        if offered is None:
            scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() == "bearer":
                offered = credentials.strip()
        if offered is not None:
            return hmac.compare_digest(offered.encode(), self._token)
        access = request.query_params.get("access")
        if stream and access is not None and self._stream_access is not None:
            return hmac.compare_digest(access.encode(), self._stream_access.encode())
        return False

    def events_uri(self, since: str) -> str:
        """The ``requestUri`` of the change-event stream for a client at state ``since``."""
        query = {"since": since}
        if self._stream_access is not None:
            query["access"] = self._stream_access
        return f"{EVENTS_PATH}?{urlencode(query)}"

    def ready(self) -> tuple[bool, str]:
        """Whether the provider can answer as configured, and why not."""
        if self.draining:
            return False, "shutting down"
        state = self.provider.state
        if state.configuration_error is not None:
            return False, "configuration error"
        if state.overrides_required and state.document is None:
            return False, "overrides document required and not loaded"
        if self.feed.stale:
            return False, "overrides source failing (stale)"
        return True, "ready"


def _guarded(
    handler: Callable[[OfrepService, Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """The route for ``handler``: refusals in the spec's shape, and never a traceback."""

    async def route(request: Request) -> Response:
        service: OfrepService = request.app.state.service
        key = request.path_params.get("key", _BULK_KEY)
        try:
            return await handler(service, request)
        except _Refusal as refusal:
            headers = {"WWW-Authenticate": "Bearer"} if refusal.status == 401 else None
            return JSONResponse(
                failure(key, refusal.code, refusal.details), refusal.status, headers=headers
            )
        except Exception as err:  # noqa: BLE001 - a transport error must never leak a traceback
            logger.error("OFREP request failed: %s", type(err).__name__)  # noqa: TRY400 - no traceback: it may hold values
            return JSONResponse(failure(key, ErrorCode.GENERAL, "internal error"), 500)

    return route


async def _context_of(service: OfrepService, request: Request) -> EvaluationContext:
    if not service.authorized(request):
        raise _Refusal(401, ErrorCode.GENERAL, "unauthorized: send Authorization: Bearer <token>")
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != _JSON and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise _Refusal(415, ErrorCode.PARSE_ERROR, "content type must be application/json")
    raw = await _read_body(request)
    try:
        return evaluation_context(parse_body(raw))
    except RequestError as err:
        raise _Refusal(400, err.code, err.details) from None


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise _Refusal(413, ErrorCode.PARSE_ERROR, f"request body over {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(BODY_DEADLINE_SECONDS):
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise _Refusal(
                        413, ErrorCode.PARSE_ERROR, f"request body over {MAX_BODY_BYTES} bytes"
                    )
                chunks.append(chunk)
    except TimeoutError:
        raise _Refusal(
            408,
            ErrorCode.PARSE_ERROR,
            f"request body not received within {BODY_DEADLINE_SECONDS:g} s",
        ) from None
    return b"".join(chunks)


async def _evaluate_one(service: OfrepService, request: Request) -> Response:
    key: str = request.path_params["key"]
    context = await _context_of(service, request)
    answer = answer_for(key, service.provider.resolve_boolean_details(key, False, context))
    return Response(encode(answer.body), answer.status, media_type=_JSON)


async def _evaluate_all(service: OfrepService, request: Request) -> Response:
    context = await _context_of(service, request)
    announced = request.query_params.get("flagConfigEtag")
    if announced is not None:
        await _catch_up(service, announced)
    tag = service.feed.tag
    flags = []
    set_metadata: dict[str, Any] = {}
    for key in sorted(KNOWN_FLAGS):
        details = service.provider.resolve_boolean_details(key, False, context)
        flags.append(answer_for(key, details).body)
        set_metadata = {
            name: value
            for name, value in details.flag_metadata.items()
            if name in {"flagSetId", "version"}
        }
    body = {
        "flags": flags,
        "metadata": set_metadata,
        "eventStreams": [{"type": "sse", "endpoint": {"requestUri": service.events_uri(str(tag))}}],
    }
    encoded = encode(body)
    # A hash of the answer, as flagd does: it covers the context and the state alike, so a
    # client keeping its ETag across a context change still gets the new context's flags.
    etag = '"' + hashlib.sha256(encoded).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(encoded, 200, media_type=_JSON, headers=headers)


async def _catch_up(service: OfrepService, announced: str) -> None:
    """Wait (bounded) until this replica is at the revision an event announced.

    Behind a load balancer the event may come from a replica that polled first; answering
    from an older document would leave the client on it until the next change.
    """
    wanted = revision_of_tag(announced)
    if wanted is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + service.refetch_wait_seconds
    while service.feed.tag.revision < wanted:
        remaining = deadline - loop.time()
        if remaining <= 0 or service.draining:
            raise _Refusal(
                503, ErrorCode.GENERAL, "this server has not yet loaded the announced revision"
            )
        await service.feed.wait_for_change(min(remaining, 0.5))


def _matches(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip().removeprefix("W/")
        if tag in {"*", etag}:
            return True
    return False


async def _events(service: OfrepService, request: Request) -> Response:
    if not service.authorized(request, stream=True):
        raise _Refusal(401, ErrorCode.GENERAL, "unauthorized: send Authorization: Bearer <token>")
    if not service.streams.reserve():
        return JSONResponse(
            failure(_BULK_KEY, ErrorCode.GENERAL, "too many open event streams"),
            503,
            headers={"Retry-After": "5"},
        )
    since = request.headers.get("last-event-id") or request.query_params.get("since")
    return _EventStreamResponse(service.streams, since)


class _EventStreamResponse(StreamingResponse):
    """A change-event stream that gives its place back however it ends."""

    def __init__(self, streams: EventStreams, since: str | None) -> None:
        super().__init__(
            streams.stream(since),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._streams = streams

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._streams.release()


async def _healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _readyz(request: Request) -> Response:
    service: OfrepService = request.app.state.service
    ready, why = service.ready()
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "reason": why}, 200 if ready else 503
    )


def build_app(
    service: OfrepService, *, meter_provider: metrics.MeterProvider | None = None
) -> Starlette:
    """The ASGI application serving ``service``; its lifespan initialises the provider.

    Args:
        service: What the routes serve.
        meter_provider: Where request metrics go (default: the global meter provider).
    """

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        service.feed.start(asyncio.get_running_loop())
        # initialize() may wait for the first fetch (its deadline): off the event loop.
        await asyncio.to_thread(service.provider.initialize, EvaluationContext())
        service.feed.refresh()
        try:
            yield
        finally:
            service.begin_shutdown()
            service.feed.stop()
            await asyncio.to_thread(service.provider.shutdown)

    app = Starlette(
        routes=[
            Route("/ofrep/v1/evaluate/flags", _guarded(_evaluate_all), methods=["POST"]),
            Route("/ofrep/v1/evaluate/flags/{key:path}", _guarded(_evaluate_one), methods=["POST"]),
            Route(EVENTS_PATH, _guarded(_events), methods=["GET"]),
            Route("/healthz", _healthz, methods=["GET"]),
            Route("/readyz", _readyz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(RequestTelemetry, meter_provider=meter_provider)
    return app
