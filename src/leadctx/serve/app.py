"""The ASGI application of ``leadctx serve``: OFREP routes over one ``LeadCtxProvider``.

Routes (Starlette):

====  ==================================  ===========================================
POST  ``/ofrep/v1/evaluate/flags/{key}``   one flag for a context (server providers)
POST  ``/ofrep/v1/evaluate/flags``         every flag, ETag / 304, ``eventStreams``
GET   ``/ofrep/v1/events``                 change events (Server-Sent Events, ADR 0008)
GET   ``/healthz``                         the process is up
GET   ``/readyz``                          the provider can answer: 503 when not
====  ==================================  ===========================================

The two evaluation routes are the hot path: a POST to them goes from the application's entry
straight to its endpoint, a plain ASGI callable, past Starlette's middleware and router, which
serve everything else (docs/performance.md). Request telemetry wraps both.

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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, Final, NamedTuple
from urllib.parse import parse_qs, urlencode

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from opentelemetry import metrics
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadctx.serve.changes import FlagStateFeed, revision_of_tag
from leadctx.serve.events import EVENTS_PATH, EventStreams
from leadctx.serve.ofrep import (
    MAX_BODY_BYTES,
    EncodedAnswers,
    EncodedBulkAnswers,
    RequestError,
    encode,
    evaluation_context,
    failure,
    parse_body,
)
from leadctx.serve.settings import BODY_DEADLINE_SECONDS, ServeSettings
from leadctx.serve.telemetry import RequestTelemetry
from leadctx_flags.flags import KNOWN_FLAGS
from leadctx_flags.provider import LeadCtxProvider

__all__ = [
    "BODY_DEADLINE_SECONDS",
    "STALLED_STREAM_SECONDS",
    "BodyDeadlines",
    "OfrepService",
    "build_app",
]

logger = logging.getLogger(__name__)

STALLED_STREAM_SECONDS: Final = 30.0
"""Longest one write to a change-event stream may wait for its client to read; then it ends.

A write waits only once the connection's buffers (the kernel's and uvicorn's 64 KiB) are
full: the client has stopped reading. Ended, the stream gives its place back and the client,
if it ever reads again, reconnects and is sent the current state.
"""

REFETCH_WAIT_CAP_SECONDS: Final = 10.0
"""Longest a re-fetch waits for the state an event announced before answering 503."""

_BULK_KEY: Final = ""  # failures of a bulk request name no flag
_FLAGS: Final = tuple(sorted(KNOWN_FLAGS))


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
        self.answers = EncodedAnswers()
        self.bulk_answers = EncodedBulkAnswers()
        self.deadlines = BodyDeadlines(settings.body_deadline_seconds)
        self.refetch_wait_seconds = min(refetch_wait_seconds, REFETCH_WAIT_CAP_SECONDS)
        self.stall_seconds = STALLED_STREAM_SECONDS
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

    def authorized(self, headers: Iterable[tuple[bytes, bytes]], access: str | None = None) -> bool:
        """Whether a request carries the token (always, when no token is configured).

        A credential header sent twice is refused: which one counts would depend on the order
        (a proxy may check the first while a server takes the last), so none does.

        Args:
            headers: The request's headers as received, names in lower case.
            access: The event stream's ``access`` query parameter, for the stream only.
        """
        if self._token is None:
            return True
        api_key: list[bytes] = []
        authorization: list[bytes] = []
        for name, value in headers:
            if name == b"x-api-key":
                api_key.append(value)
            elif name == b"authorization":
                authorization.append(value)
        if len(api_key) > 1 or len(authorization) > 1:
            return False
        offered = api_key[0] if api_key else None
        if offered is None and authorization:
            scheme, _, credentials = authorization[0].partition(b" ")
            if scheme.lower() == b"bearer":
                offered = credentials.strip()
        if offered is not None:
            return hmac.compare_digest(offered, self._token)
        if access is not None and self._stream_access is not None:
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


_UNAUTHORIZED: Final = "unauthorized: send Authorization: Bearer <token> or X-API-Key"
_JSON_HEADERS: Final = [(b"content-type", b"application/json")]


class _Answer(NamedTuple):
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]]


class _OfrepEndpoint:
    """One OFREP route as a plain ASGI app: the hot path, so no Request or Response objects.

    It parses the few headers it needs, reads the body under its cap and deadline, calls the
    handler, and turns a refusal or any unexpected exception into the spec's failure shape
    (never a traceback: the log line names the exception's type only).
    """

    def __init__(
        self,
        service: OfrepService,
        handler: Callable[[OfrepService, _Call], Awaitable[_Answer]],
    ) -> None:
        self._service = service
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = self._service
        key: str = scope.get("path_params", {}).get("key", _BULK_KEY)
        call = _Call(scope, receive, key, service.deadlines)
        try:
            answer = await self._handler(service, call)
        except _Refusal as refusal:
            headers = list(_JSON_HEADERS)
            if refusal.status == 401:
                headers.append((b"www-authenticate", b"Bearer"))
            if refusal.status == 503:
                headers.append((b"retry-after", b"1"))
            answer = _Answer(
                refusal.status, encode(failure(key, refusal.code, refusal.details)), headers
            )
        except Exception as err:  # noqa: BLE001 - a transport error must never leak a traceback
            logger.error("OFREP request failed: %s", type(err).__name__)  # noqa: TRY400 - no traceback: it may hold values
            answer = _Answer(
                500, encode(failure(key, ErrorCode.GENERAL, "internal error")), _JSON_HEADERS
            )
        headers = [(b"content-length", str(len(answer.body)).encode()), *answer.headers]
        if not call.body_read:
            # Answered before the whole body came in (413, 408, 401, 415): close rather than
            # read (and discard) the rest of a 10 MB paste or wait on a dripping client.
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})


class _Call:
    """What a handler reads of one request: headers (lower-case names), query, body, key.

    ``body_read`` says whether the whole body has been received (else the answer closes the
    connection).
    """

    __slots__ = ("body_read", "deadlines", "headers", "key", "query", "raw_headers", "receive")

    def __init__(self, scope: Scope, receive: Receive, key: str, deadlines: BodyDeadlines) -> None:
        self.deadlines = deadlines
        self.raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        self.headers: dict[bytes, bytes] = dict(self.raw_headers)
        raw_query: bytes = scope.get("query_string", b"")
        self.query = parse_qs(raw_query.decode("latin-1")) if raw_query else {}
        self.receive = receive
        self.key = key
        self.body_read = False

    def parameter(self, name: str) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else None


async def _context_of(service: OfrepService, call: _Call) -> EvaluationContext:
    if not service.authorized(call.raw_headers):
        raise _Refusal(401, ErrorCode.GENERAL, _UNAUTHORIZED)
    media_type = call.headers.get(b"content-type", b"").partition(b";")[0].strip().lower()
    if media_type != b"application/json" and not (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    ):
        raise _Refusal(415, ErrorCode.PARSE_ERROR, "content type must be application/json")
    raw = await _read_body(call)
    try:
        return evaluation_context(parse_body(raw))
    except RequestError as err:
        raise _Refusal(400, err.code, err.details) from None


_TOO_LARGE: Final = f"request body over {MAX_BODY_BYTES} bytes"


class BodyDeadlines:
    """The deadline of every body being read, kept by one watchdog task instead of a timer each.

    A request registers its task on entry and leaves on exit (a dict entry: the hot path pays
    no timer); once a tick the watchdog cancels the tasks past their deadline, marking them
    so that the reader turns the cancellation into a 408. A deadline is thus kept within one
    tick.

    Args:
        seconds: The deadline (``BODY_DEADLINE_SECONDS`` unless configured).
        tick: How often the watchdog looks (by default once a second, or four times per
            deadline when the deadline is under 4 s).
    """

    def __init__(self, seconds: float = BODY_DEADLINE_SECONDS, tick: float | None = None) -> None:
        self.seconds = seconds
        self._tick = min(1.0, seconds / 4) if tick is None else tick
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._watchdog: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the watchdog on the running loop."""
        self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        """Stop the watchdog."""
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog

    def arm(self) -> asyncio.Task[Any] | None:
        """Put the running task under the deadline: the task, or ``None`` without a watchdog.

        Each armed task is ``disarm``-ed when its block ends; a ``CancelledError`` it gets
        meanwhile is its deadline's when ``expired`` says so. The hot path's form of
        ``bounded()``: a dict entry, no context manager.
        """
        task = asyncio.current_task()
        if task is None or self._watchdog is None:
            return None
        self._deadlines[task] = task.get_loop().time() + self.seconds
        return task

    def disarm(self, task: asyncio.Task[Any]) -> None:
        """Take ``task`` from under the deadline."""
        self._deadlines.pop(task, None)

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """Whether the cancellation ``task`` got is its deadline's (it is then uncancelled)."""
        if task not in self._expired:
            return False
        self._expired.discard(task)
        task.uncancel()
        return True

    @contextlib.asynccontextmanager
    async def bounded(self) -> AsyncIterator[None]:
        """Run the block under the deadline; ``TimeoutError`` when it is passed."""
        task = self.arm()
        if task is None:  # no watchdog (no lifespan): a timer each
            async with asyncio.timeout(self.seconds):
                yield
            return
        try:
            yield
        except asyncio.CancelledError:
            if not self.expired(task):
                raise
            raise TimeoutError from None
        finally:
            self.disarm(task)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._tick)
            now = loop.time()
            for task, deadline in list(self._deadlines.items()):
                if deadline <= now and task not in self._expired:
                    self._expired.add(task)
                    task.cancel()


async def _read_body(call: _Call) -> bytes:
    declared = call.headers.get(b"content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise _Refusal(413, ErrorCode.PARSE_ERROR, _TOO_LARGE)
    deadlines = call.deadlines
    task = deadlines.arm()
    try:
        if task is None:
            async with deadlines.bounded():
                return await _receive_whole(call)
        return await _receive_whole(call)
    except asyncio.CancelledError:
        if task is None or not deadlines.expired(task):
            raise
        raise _late(call) from None
    except TimeoutError:
        raise _late(call) from None
    finally:
        if task is not None:
            deadlines.disarm(task)


def _late(call: _Call) -> _Refusal:
    return _Refusal(
        408, ErrorCode.PARSE_ERROR, f"request body not received within {call.deadlines.seconds:g} s"
    )


async def _receive_whole(call: _Call) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await call.receive()
        if message["type"] == "http.disconnect":
            raise _Refusal(400, ErrorCode.PARSE_ERROR, "client went away")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _Refusal(413, ErrorCode.PARSE_ERROR, _TOO_LARGE)
        chunks.append(chunk)
        if not message.get("more_body", False):
            call.body_read = True
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _evaluate_one(service: OfrepService, call: _Call) -> _Answer:
    context = await _context_of(service, call)
    status, body = service.answers.encoded(
        call.key, service.provider.resolve_boolean_details(call.key, False, context)
    )
    return _Answer(status, body, _JSON_HEADERS)


async def _evaluate_all(service: OfrepService, call: _Call) -> _Answer:
    context = await _context_of(service, call)
    announced = call.parameter("flagConfigEtag")
    if announced is not None:
        await _catch_up(service, announced)
    tag = service.feed.tag
    resolutions = [
        (key, service.provider.resolve_boolean_details(key, False, context)) for key in _FLAGS
    ]
    etag, encoded = service.bulk_answers.encoded(resolutions, service.events_uri(str(tag)))
    headers = [(b"etag", etag), (b"cache-control", b"no-cache")]
    if _matches(call.headers.get(b"if-none-match"), etag):
        return _Answer(304, b"", headers)
    return _Answer(200, encoded, [*_JSON_HEADERS, *headers])


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


def _matches(if_none_match: bytes | None, etag: bytes) -> bool:
    if if_none_match is None:
        return False
    for candidate in if_none_match.split(b","):
        tag = candidate.strip().removeprefix(b"W/")
        if tag in {b"*", etag}:
            return True
    return False


async def _events(request: Request) -> Response:
    service: OfrepService = request.app.state.service
    if not service.authorized(request.scope["headers"], request.query_params.get("access")):
        return JSONResponse(
            failure(_BULK_KEY, ErrorCode.GENERAL, _UNAUTHORIZED),
            401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not service.streams.reserve():
        return JSONResponse(
            failure(_BULK_KEY, ErrorCode.GENERAL, "too many open event streams"),
            503,
            headers={"Retry-After": "5"},
        )
    since = request.headers.get("last-event-id") or request.query_params.get("since")
    return _EventStreamResponse(service.streams, since, stall_seconds=service.stall_seconds)


class _EventStreamResponse(StreamingResponse):
    """A change-event stream that gives its place back however it ends.

    Each write is bounded (``stall_seconds``): a client that stops reading would otherwise
    hold its place, and a coroutine blocked on the full connection, until TCP gives up.
    """

    def __init__(self, streams: EventStreams, since: str | None, *, stall_seconds: float) -> None:
        super().__init__(
            streams.stream(since),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._streams = streams
        self._stall_seconds = stall_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._streams.release()

    async def stream_response(self, send: Send) -> None:
        async def bounded_send(message: Message) -> None:
            async with asyncio.timeout(self._stall_seconds):
                await send(message)

        try:
            await super().stream_response(bounded_send)
        except TimeoutError:
            # Ended unfinished: the server closes the connection (uvicorn logs that it did).
            logger.warning("ended a change-event stream whose client stopped reading")


async def _healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _readyz(request: Request) -> Response:
    service: OfrepService = request.app.state.service
    ready, why = service.ready()
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "reason": why}, 200 if ready else 503
    )


_SINGLE_PREFIX: Final = "/ofrep/v1/evaluate/flags/"
_BULK_PATH: Final = "/ofrep/v1/evaluate/flags"


class _OfrepFirst:
    """ASGI: an OFREP evaluation goes straight to its endpoint, everything else to Starlette.

    The two evaluation routes are the hot path; Starlette's middleware stack and router cost
    about as much again as the evaluation itself (docs/performance.md, ``leadctx serve``).
    The endpoints catch every exception themselves, so what the skipped layers would add (a
    500 for an exception, a path match) they already do. The same endpoints are Starlette's
    routes too: a request this class does not recognise (another method, a ``root_path``) is
    still answered by them, or by Starlette's 404 / 405.
    """

    def __init__(self, app: Starlette, single: _OfrepEndpoint, bulk: _OfrepEndpoint) -> None:
        self._app = app
        self._single = single
        self._bulk = bulk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            path: str = scope["path"]
            if path.startswith(_SINGLE_PREFIX):
                scope["path_params"] = {"key": path[len(_SINGLE_PREFIX) :]}
                await self._single(scope, receive, send)
                return
            if path == _BULK_PATH:
                await self._bulk(scope, receive, send)
                return
        await self._app(scope, receive, send)


def build_app(
    service: OfrepService, *, meter_provider: metrics.MeterProvider | None = None
) -> ASGIApp:
    """The ASGI application serving ``service``; its lifespan initialises the provider.

    Args:
        service: What the routes serve.
        meter_provider: Where request metrics go (default: the global meter provider).
    """

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        service.feed.start(asyncio.get_running_loop())
        service.deadlines.start()
        # initialize() may wait for the first fetch (its deadline): off the event loop.
        await asyncio.to_thread(service.provider.initialize, EvaluationContext())
        service.feed.refresh()
        try:
            yield
        finally:
            service.begin_shutdown()
            service.feed.stop()
            await service.deadlines.stop()
            await asyncio.to_thread(service.provider.shutdown)

    single = _OfrepEndpoint(service, _evaluate_one)
    bulk = _OfrepEndpoint(service, _evaluate_all)
    app = Starlette(
        routes=[
            Route(_SINGLE_PREFIX + "{key:path}", single, methods=["POST"]),
            Route(_BULK_PATH, bulk, methods=["POST"]),
            Route(EVENTS_PATH, _events, methods=["GET"]),
            Route("/healthz", _healthz, methods=["GET"]),
            Route("/readyz", _readyz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.service = service
    return RequestTelemetry(_OfrepFirst(app, single, bulk), meter_provider=meter_provider)
