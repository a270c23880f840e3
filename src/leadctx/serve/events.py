"""Change events (OFREP ADR 0008): one Server-Sent Events stream per subscriber.

Wire format (``GET /ofrep/v1/events``, ``text/event-stream``), one event per change of the
flag state, heartbeats in between::

    retry: 1000

    id: 12-3f2a9c0d41b7e6a5
    event: message
    data: {"type":"refetchEvaluation","etag":"12-3f2a9c0d41b7e6a5","revision":12}

    : heartbeat

The event ``id`` and ``etag`` are the state tag (``<revision>-<hash>``): every replica that
follows the same document gives the same ids, so a client may resume on any of them. A
subscriber that names the state it last saw (``Last-Event-ID``, or the ``since`` query
parameter that the bulk response's ``eventStreams`` carries) is sent the current state at
once when it differs: only the newest state matters, so missed events are replayed as one.
A stream ends when the server shuts down.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Final

from leadctx.serve.changes import FlagStateFeed, StateTag

__all__ = ["EVENTS_PATH", "RETRY_MILLISECONDS", "EventStreams", "refetch_event"]

EVENTS_PATH: Final = "/ofrep/v1/events"
"""Where change events are served (named in the bulk response as ``endpoint.requestUri``)."""

RETRY_MILLISECONDS: Final = 1000
"""The reconnection delay a client is asked to use after a dropped stream."""

_HEARTBEAT: Final = b": heartbeat\n\n"


def refetch_event(tag: StateTag) -> bytes:
    """One ``refetchEvaluation`` event announcing the state ``tag``."""
    data = json.dumps(
        {"type": "refetchEvaluation", "etag": str(tag), "revision": tag.revision},
        separators=(",", ":"),
    )
    return f"id: {tag}\nevent: message\ndata: {data}\n\n".encode()


class EventStreams:
    """The open change-event streams of one process, at most ``max_streams`` at once.

    Args:
        feed: The flag state the streams report.
        max_streams: ``LEADCTX_SERVE_MAX_STREAMS``.
        heartbeat_seconds: ``LEADCTX_SERVE_HEARTBEAT_SECONDS``.
    """

    def __init__(self, feed: FlagStateFeed, *, max_streams: int, heartbeat_seconds: float) -> None:
        self._feed = feed
        self._max = max_streams
        self._heartbeat = heartbeat_seconds
        self._open = 0
        self._closing = False

    @property
    def open(self) -> int:
        """How many streams are open (reserved) now."""
        return self._open

    def reserve(self) -> bool:
        """Take a place for a new stream; ``False`` when the bound is reached or shutting down.

        Every successful ``reserve`` is matched by one ``release``.
        """
        if self._closing or self._open >= self._max:
            return False
        self._open += 1
        return True

    def release(self) -> None:
        """Give back the place of a stream that ended."""
        self._open -= 1

    def close(self) -> None:
        """End every stream now (shutdown): each sends what it has and returns."""
        self._closing = True
        self._feed.wake_all()

    def _ended(self) -> bool:
        # A method, not the attribute: the flag changes while a stream awaits.
        return self._closing

    async def stream(self, since: str | None) -> AsyncIterator[bytes]:
        """The bytes of one stream, from its opening to the server's shutdown.

        Args:
            since: The state tag the subscriber last saw, if it says.
        """
        yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
        tag = self._feed.tag
        if since is not None and since != str(tag):
            yield refetch_event(tag)
        while not self._ended():
            changed = await self._feed.wait_for_change(self._heartbeat)
            if self._ended():
                return
            current = self._feed.tag
            if changed and current != tag:
                tag = current
                yield refetch_event(tag)
            else:
                yield _HEARTBEAT
