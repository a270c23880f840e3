"""A dripping or stalled client: its body has a deadline, kept by one watchdog, answered 408."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import pytest

from leadctx.serve.app import BodyDeadlines, OfrepService, build_app
from leadctx.serve.settings import ServeSettings
from leadctx_flags.flags import SHARED_BUNDLE_FLAG
from leadctx_flags.provider import LeadCtxProvider
from leadctx_flags.settings import RolloutSettings


def test_a_block_past_its_deadline_raises_timeout_error() -> None:
    async def scenario() -> float:
        deadlines = BodyDeadlines(seconds=0.2, tick=0.05)
        deadlines.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            with pytest.raises(TimeoutError):
                async with deadlines.bounded():
                    await asyncio.Event().wait()  # a body that never comes
            return loop.time() - started
        finally:
            await deadlines.stop()

    elapsed = asyncio.run(scenario())
    assert 0.2 <= elapsed < 1.0


def test_a_cancellation_from_outside_is_still_a_cancellation() -> None:
    async def scenario() -> None:
        deadlines = BodyDeadlines(seconds=10, tick=0.05)
        deadlines.start()
        started = asyncio.Event()

        async def reader() -> None:
            async with deadlines.bounded():
                started.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(reader())
        await started.wait()
        task.cancel()  # the server shutting down, say
        try:
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await deadlines.stop()

    asyncio.run(scenario())


@pytest.mark.parametrize("client", ["stalled", "dripping"])
def test_a_slow_body_is_answered_408_in_the_specs_shape_and_closed(client: str) -> None:
    async def scenario() -> list[dict[str, Any]]:
        provider = LeadCtxProvider(RolloutSettings())
        service = OfrepService(provider, ServeSettings(), refetch_wait_seconds=1)
        service.deadlines = BodyDeadlines(seconds=0.2, tick=0.05)
        app = build_app(service)
        service.feed.start(asyncio.get_running_loop())
        service.deadlines.start()
        path = f"/ofrep/v1/evaluate/flags/{SHARED_BUNDLE_FLAG}"
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        }  # fmt: skip
        parts = iter([{"type": "http.request", "body": b'{"context": ', "more_body": True}])
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            if client == "dripping":  # one byte every 20 ms, for ever: never the whole body
                await asyncio.sleep(0.02)
                return {"type": "http.request", "body": b" ", "more_body": True}
            part = next(parts, None)
            if part is None:
                await asyncio.Event().wait()  # the rest of the body never comes
            assert part is not None
            return part

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(dict(message))

        try:
            await asyncio.wait_for(app(scope, receive, send), timeout=5)
        finally:
            await service.deadlines.stop()
        return sent

    start, body = asyncio.run(scenario())
    assert start["status"] == 408
    assert (b"connection", b"close") in start["headers"]
    assert json.loads(body["body"])["errorCode"] == "PARSE_ERROR"
