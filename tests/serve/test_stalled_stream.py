"""A change-event stream whose client stopped reading ends within its bound and frees its place."""

from __future__ import annotations

import asyncio
import time

from starlette.types import Message

from leadctx.serve.app import OfrepService, build_app
from leadctx.serve.settings import ServeSettings
from leadctx_flags.provider import LeadCtxProvider
from leadctx_flags.settings import RolloutSettings

STALL = 0.5


def events_scope() -> dict[str, object]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/ofrep/v1/events",
        "raw_path": b"/ofrep/v1/events",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "server": ("127.0.0.1", 8016),
        "client": ("127.0.0.1", 50000),
    }


def test_a_stream_whose_client_stopped_reading_ends_and_gives_its_place_back() -> None:
    # Given a server with one stream place, heartbeats every 50 ms (the floor), a 0.5 s stall bound
    provider = LeadCtxProvider(RolloutSettings(shared_bundle_clients=("acme",)))
    service = OfrepService(
        provider,
        ServeSettings(max_streams=1, heartbeat_seconds=0.05),
        refetch_wait_seconds=0.3,
    )
    service.stall_seconds = STALL
    app = build_app(service)
    sent: list[Message] = []
    never = asyncio.Event()

    async def receive() -> Message:  # the client is still connected: no disconnect comes
        await never.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if len(sent) > 2:  # the connection's buffers are full: the client reads no more
            await never.wait()

    async def run() -> float:
        started = time.monotonic()
        # When the client opens a stream and then stops reading
        await asyncio.wait_for(app(events_scope(), receive, send), timeout=STALL * 10)
        return time.monotonic() - started

    elapsed = asyncio.run(run())
    # Then the stream ends within its bound and its place is free for the next subscriber
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 200
    assert elapsed < STALL * 4
    assert service.streams.open == 0
