"""``ChangeEventSubscriber``: a ``leadctx serve`` change-event stream that wakes the poller.

``LEADCTX_FLAG_OVERRIDES_EVENTS`` names the Server-Sent Events stream of a server that follows
the same overrides document (OFREP ADR 0008: ``refetchEvaluation`` events, ids that are the
server's state tags). The subscriber parses no document and trusts no event with a decision:
every event, and every (re)connection, only wakes the poller, whose fetch of
``LEADCTX_FLAG_OVERRIDES`` (conditional, validated, subject to the replay rule) does the rest.
An event for a revision the poll already applied costs one ``304 Not Modified``.

The stream runs on its own daemon thread and event loop; evaluations never wait for it. When
it drops, it is reopened with ``Last-Event-ID`` (the server then replays the newest state at
once if it changed) after the server's ``retry`` delay, doubled after each failed attempt up
to ``MAX_RECONNECT_SECONDS``, with jitter so that a fleet does not reconnect in step. While it
is down the poll alone delivers, at its interval. An event received twice (a replayed id) wakes
the poller once. ``shutdown()`` cancels the stream at once and joins the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Final

import httpx
from httpx_sse import SSEError, aconnect_sse

from leadctx_flags.overrides_sources import check_url

__all__ = [
    "EVENTS_VARIABLE",
    "MAX_EVENT_BYTES",
    "MAX_RECONNECT_SECONDS",
    "READ_TIMEOUT",
    "SHUTDOWN_TIMEOUT",
    "ChangeEventSubscriber",
]

EVENTS_VARIABLE: Final = "LEADCTX_FLAG_OVERRIDES_EVENTS"
REFETCH: Final = "refetchEvaluation"

DEFAULT_RETRY_SECONDS: Final = 1.0
"""Reconnection delay until the server names one (``retry:``)."""

MAX_RECONNECT_SECONDS: Final = 30.0
"""Longest wait between two attempts, however many failed."""

CONNECT_TIMEOUT: Final = 2.0
READ_TIMEOUT: Final = 60.0
"""A stream silent this long is reopened (``leadctx serve`` sends a heartbeat every 15 s)."""

SHUTDOWN_TIMEOUT: Final = 0.2
"""Seconds ``shutdown()`` waits for the thread after cancelling the stream."""

HEALTHY_STREAM_SECONDS: Final = 5.0
"""A stream open this long counts as working. One that ends sooner, however it ends (a proxy
that answers 200 and closes, a server sending ``retry: 0``), is a failed attempt: its
reconnections back off like refusals instead of waking the poller ten times a second."""

MAX_EVENT_BYTES: Final = 64 * 1024
"""Longest event read (its lines together, or one unfinished line); ``leadctx serve``'s are
about 150 bytes. A longer one ends the stream as a failed attempt: nothing a server sends is
buffered without bound."""

_LINE_END: Final = re.compile(rb"\r\n|\r|\n")

logger = logging.getLogger(__name__)


class ChangeEventSubscriber:
    """Follows one change-event stream; calls ``on_change`` for each event and connection.

    Args:
        url: The stream (``https://host/ofrep/v1/events``; ``http://`` only to loopback).
        on_change: Called on the subscriber's thread; quick, must not raise (the poller's
            ``wake``).
        token: Bearer token (``LEADCTX_FLAG_OVERRIDES_EVENTS_TOKEN``); never logged.
        name: The thread's name.

    Raises:
        ConfigurationError: The URL is not https, or http to a host that is not loopback.
    """

    def __init__(
        self,
        url: str,
        on_change: Callable[[], object],
        *,
        token: str | None = None,
        name: str = "leadctx-overrides-events",
    ) -> None:
        self._description = check_url(url, variable=EVENTS_VARIABLE)
        self._url = url
        self._on_change = on_change
        self._token = token
        self._name = name
        self._headers = {"User-Agent": "leadctx-flags"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._last_event_id: str | None = None
        self._retry = DEFAULT_RETRY_SECONDS
        self._failures = 0
        self._opened_at: float | None = None  # when the stream open now (or last) was opened
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._lifecycle = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.connections = 0
        """Streams opened so far (each one wakes the poller once, to catch up)."""
        self.events = 0
        """``refetchEvaluation`` events that woke the poller (replayed ids not counted)."""

    @property
    def description(self) -> str:
        """The stream's URL without credentials or query string."""
        return self._description

    @property
    def connected(self) -> bool:
        """Whether a stream is open now."""
        return self._connected.is_set()

    @property
    def last_event_id(self) -> str | None:
        """The id of the last event received, sent as ``Last-Event-ID`` on reconnection."""
        return self._last_event_id

    def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a stream to be open; whether one is."""
        return self._connected.wait(timeout)

    def start(self) -> None:
        """Start the thread (once); returns at once, connected or not."""
        with self._lifecycle:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Close the stream and join the thread within about ``timeout`` s. Idempotent."""
        with self._lifecycle:
            self._stop.set()
            thread, loop, task = self._thread, self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(task.cancel)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.warning(
                    "change events from %s still closing after %.1f s", self._description, timeout
                )

    def successor(self) -> ChangeEventSubscriber:
        """A new, unstarted subscriber to the same stream, for the child after ``os.fork()``.

        The child must not read the parent's connection (the socket is shared); it opens its
        own, resuming from the last event id the parent had.
        """
        child = ChangeEventSubscriber(
            self._url, self._on_change, token=self._token, name=self._name
        )
        child._last_event_id = self._last_event_id
        return child

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            task = loop.create_task(self._follow())
            with self._lifecycle:
                self._loop, self._task = loop, task
                stopped = self._stop.is_set()
            if stopped:  # shutdown() came before the task existed
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(task)
        finally:
            with self._lifecycle:
                self._loop = self._task = None
            self._connected.clear()
            loop.close()

    async def _follow(self) -> None:
        timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
        # No proxy or netrc from the environment, no redirects: as for the document itself.
        async with httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, trust_env=False
        ) as client:
            while not self._stop.is_set():
                try:
                    await self._stream(client)
                except (httpx.HTTPError, SSEError, _StreamRefusedError, _EventTooLargeError) as err:
                    self._forget_failures_if_healthy()
                    self._record_failure(err)
                else:  # the server ended the stream (a restart, say): reconnect promptly
                    if self._forget_failures_if_healthy():
                        logger.info("change events from %s ended; reconnecting", self._description)
                    else:
                        self._record_failure(_StreamEndedEarlyError())
                finally:
                    self._connected.clear()
                await asyncio.sleep(self._next_delay())

    async def _stream(self, client: httpx.AsyncClient) -> None:
        headers = dict(self._headers)
        if self._last_event_id:
            headers["Last-Event-ID"] = self._last_event_id
        async with aconnect_sse(client, "GET", self._url, headers=headers) as source:
            status = source.response.status_code
            if status != httpx.codes.OK:
                raise _StreamRefusedError(status)
            content_type = source.response.headers.get("content-type", "")
            if "text/event-stream" not in content_type:
                raise SSEError("the response is not an event stream")
            if self._failures:
                logger.debug(
                    "change events from %s open again after %d failed attempts",
                    self._description,
                    self._failures,
                )
            self._opened_at = time.monotonic()
            self.connections += 1
            self._connected.set()
            # What changed while no stream was open is fetched now, whatever the server replays.
            self._wake()
            async for event in _read_events(source.response):
                if event.retry is not None:
                    self._retry = min(max(event.retry / 1000, 0.1), MAX_RECONNECT_SECONDS)
                if not event.data or not _is_refetch(event.data):
                    continue
                if event.id and event.id == self._last_event_id:
                    logger.debug("change event %s received again; already handled", event.id)
                    continue
                if event.id:
                    self._last_event_id = event.id
                self.events += 1
                self._wake()

    def _forget_failures_if_healthy(self) -> bool:
        """After a stream: whether it stayed open long enough to count as working.

        If it did, earlier failures are forgotten (a later drop reconnects promptly).
        """
        opened, self._opened_at = self._opened_at, None
        if opened is None or time.monotonic() - opened < HEALTHY_STREAM_SECONDS:
            return False
        if self._failures:
            logger.info(
                "change events from %s flowed again after %d failed attempts",
                self._description,
                self._failures,
            )
        self._failures = 0
        return True

    def _next_delay(self) -> float:
        if self._failures == 0:
            return self._retry
        backoff = min(self._retry * (1 << min(self._failures, 10)), MAX_RECONNECT_SECONDS)
        return backoff * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography

    def _record_failure(self, err: Exception) -> None:
        self._failures += 1
        refused = isinstance(
            err, _StreamRefusedError | _EventTooLargeError | _StreamEndedEarlyError
        )
        kind = str(err) if refused else type(err).__name__
        if self._failures == 1:
            logger.warning(
                "change events from %s unavailable (%s); following the document by polling "
                "until the stream is back",
                self._description,
                kind,
            )
        else:
            logger.debug(
                "change events from %s unavailable (%s), %d attempts in a row",
                self._description,
                kind,
                self._failures,
            )

    def _wake(self) -> None:
        try:
            self._on_change()
        except Exception:  # a bug in the callback must not end the stream
            logger.exception("change event callback failed")


class _StreamRefusedError(Exception):
    """The server answered the stream's request with another status than 200."""

    def __init__(self, status: int) -> None:
        hint = " (check LEADCTX_FLAG_OVERRIDES_EVENTS_TOKEN)" if status in {401, 403} else ""
        super().__init__(f"HTTP {status}{hint}")


class _StreamEndedEarlyError(Exception):
    """The server ended the stream within ``HEALTHY_STREAM_SECONDS`` of opening it."""

    def __init__(self) -> None:
        super().__init__(f"stream ended within {HEALTHY_STREAM_SECONDS:g} s")


class _EventTooLargeError(Exception):
    """The server sent an event (or a line) longer than ``MAX_EVENT_BYTES``."""

    def __init__(self) -> None:
        super().__init__(f"event over {MAX_EVENT_BYTES} bytes")


@dataclass(frozen=True, slots=True)
class _Event:
    data: str
    id: str | None
    retry: int | None


async def _read_events(response: httpx.Response) -> AsyncIterator[_Event]:
    """The events of an SSE stream (the WHATWG rules), each at most ``MAX_EVENT_BYTES``.

    ``httpx_sse`` buffers a line, and an event's lines, however long they grow: a server
    sending a 10 MB line, or data lines without the blank line that ends an event, would
    grow the process for as long as the stream lasts.

    Raises:
        _EventTooLargeError: An event, or an unfinished line, went over the cap.
    """
    pending = b""  # an unfinished line
    size = 0  # bytes of the event being read
    data: list[str] = []
    event_id: str | None = None  # the last event id: it carries over to later events
    retry: int | None = None
    seen = False  # a field of the event being read
    async for chunk in response.aiter_bytes():
        pending += chunk
        start = 0
        for match in _LINE_END.finditer(pending):
            if match.group() == b"\r" and match.end() == len(pending):
                break  # maybe the first half of "\r\n": wait for the next chunk
            line, start = pending[start : match.start()], match.end()
            if not line:
                if seen:
                    yield _Event("\n".join(data), event_id, retry)
                data, retry, size, seen = [], None, 0, False
                continue
            if line.startswith(b":"):  # a comment: the server's heartbeat
                continue
            name, _, value = line.partition(b":")
            text = value.removeprefix(b" ").decode("utf-8", "replace")
            if name == b"data":
                size += len(line) + 1
                if size > MAX_EVENT_BYTES:
                    raise _EventTooLargeError
                data.append(text)
                seen = True
            elif name == b"id" and "\0" not in text:
                event_id, seen = text, True
            elif name == b"retry" and text.isascii() and text.isdigit() and len(text) < 10:
                retry, seen = int(text), True
        pending = pending[start:]
        if len(pending) + size > MAX_EVENT_BYTES:
            raise _EventTooLargeError


def _is_refetch(data: str) -> bool:
    try:
        payload = json.loads(data)
    except ValueError:
        return False
    return isinstance(payload, dict) and payload.get("type") == REFETCH
