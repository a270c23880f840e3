"""The deadline: a hung source never holds up the pipeline, and hung calls cannot pile up.

Timing is asserted by order of events, not by wall-clock bounds: the pipeline must have its
answer while the hung source is still blocked (it is released only afterwards). The latency
past the deadline is recorded (``-s`` prints it) and documented in ``docs/performance.md``
as a figure, not asserted tightly: a loaded CI machine may add its own delay.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from openfeature.client import OpenFeatureClient

from leadctx_bundle import (
    DEFAULT_DEADLINES,
    resolve_context,
    resolve_context_async,
)
from leadctx_bundle.deadline import SharedPathPool, deadline_for
from leadctx_flags import ConfigurationError, FallbackReason, Pipeline, ResolutionPath
from tests.gate.conftest import Recorded, sample

DEADLINE = 0.2
GENEROUS = 10.0  # seconds; only a broken gate comes near it


class HungSource:
    """A source whose assets read blocks until ``release`` is set."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def knowledge_assets(self, client_id: str) -> Iterable[Any]:
        self.entered.set()
        self.release.wait(GENEROUS)
        return []

    def lead_memory(self, lead_id: str) -> Iterable[Any]:
        return []

    def thread(self, lead_id: str) -> Iterable[Any]:
        return []


@pytest.fixture
def hung() -> Iterator[HungSource]:
    source = HungSource()
    yield source
    source.release.set()


def test_a_hung_source_gives_timeout_before_it_is_released(
    client: OpenFeatureClient, recorded: Recorded, hung: HungSource
) -> None:
    started = time.perf_counter()
    result = resolve_context(
        sample(),
        legacy=lambda: "legacy",
        client=client,
        source=hung,
        deadline_s=DEADLINE,
        telemetry=recorded.telemetry,
    )
    latency = time.perf_counter() - started
    # Then the pipeline has its legacy answer while the source is still hung
    assert hung.entered.is_set()
    assert not hung.release.is_set()
    assert (result.path, result.fallback_reason, result.text) == (
        ResolutionPath.FALLBACK,
        FallbackReason.TIMEOUT,
        "legacy",
    )
    assert result.error_type == "leadctx_bundle.deadline.DeadlineExceeded"
    # and it waited for the deadline, not less
    assert latency >= DEADLINE
    # A figure, not a bound: `pytest -s` shows it (docs/performance.md quotes it)
    sys.stdout.write(f"\nhung source: answer {1000 * (latency - DEADLINE):.1f} ms after deadline\n")
    (span,) = recorded.finished("leadctx.context.resolve")
    assert span.attributes is not None
    assert span.attributes["leadctx.bundle.fallback_reason"] == "timeout"
    # and the build span is already exported, ended at the deadline, not when the read returns
    assert not hung.release.is_set()
    (build,) = recorded.finished("leadctx.bundle.build")
    assert build.parent is not None
    assert build.parent.span_id == span.context.span_id
    assert build.attributes is not None
    assert build.attributes["error.type"] == "leadctx_bundle.deadline.DeadlineExceeded"
    assert build.status.description == "shared build failed: timeout"
    assert build.end_time is not None
    assert build.start_time is not None
    assert (build.end_time - build.start_time) / 1e9 >= DEADLINE
    # and so is its duration, with the error's type
    (duration,) = recorded.metric_points()["leadctx.bundle.build.duration"]
    assert duration.attributes["error.type"] == "leadctx_bundle.deadline.DeadlineExceeded"
    assert duration.count == 1
    assert duration.sum >= DEADLINE


def test_a_saturated_pool_falls_back_at_once(
    client: OpenFeatureClient, small_pool: SharedPathPool
) -> None:
    # Given both workers are stuck on hung sources
    sources = [HungSource(), HungSource()]
    try:
        for source in sources:
            first = resolve_context(
                sample(), legacy=lambda: "legacy", client=client, source=source, deadline_s=0.05
            )
            assert first.fallback_reason is FallbackReason.TIMEOUT
            assert source.entered.wait(GENEROUS)
        # When a third call comes, with a deadline far longer than any test
        third = HungSource()
        result = resolve_context(
            sample(), legacy=lambda: "legacy", client=client, source=third, deadline_s=GENEROUS
        )
        # Then it falls back without starting the source (and so without waiting for it)
        assert (result.path, result.fallback_reason, result.error_type) == (
            ResolutionPath.FALLBACK,
            FallbackReason.TIMEOUT,
            "leadctx_bundle.deadline.WorkerPoolSaturated",
        )
        assert not third.entered.is_set()
    finally:
        for source in sources:
            source.release.set()
    # And once the hung calls return, their workers serve again
    deadline = time.monotonic() + GENEROUS
    while not small_pool.try_acquire():
        assert time.monotonic() < deadline, "workers never came back"
        time.sleep(0.01)
    small_pool.release()
    ok = resolve_context(sample(), legacy=lambda: "legacy", client=client)
    assert ok.path is ResolutionPath.SHARED


def test_async_hung_sources_time_out_without_blocking_the_loop(
    client: OpenFeatureClient, recorded: Recorded, hung: HungSource
) -> None:
    class AsyncHung:
        cancelled = False

        async def knowledge_assets(self, client_id: str) -> Iterable[Any]:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                AsyncHung.cancelled = True
                raise
            return []

        async def lead_memory(self, lead_id: str) -> Iterable[Any]:
            return []

        async def thread(self, lead_id: str) -> Iterable[Any]:
            return []

    async def pipeline() -> tuple[Any, Any, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        sync_hung = await resolve_context_async(
            sample(),
            legacy=lambda: "legacy",
            client=client,
            source=hung,
            deadline_s=DEADLINE,
            telemetry=recorded.telemetry,
        )
        async_hung = await resolve_context_async(
            sample(),
            legacy=lambda: "legacy",
            client=client,
            source=AsyncHung(),
            deadline_s=DEADLINE,
            telemetry=recorded.telemetry,
        )
        await asyncio.sleep(0)
        ticking.cancel()
        return sync_hung, async_hung, ticks

    sync_hung, async_hung, ticks = asyncio.run(pipeline())
    assert not hung.release.is_set()
    assert (sync_hung.path, sync_hung.fallback_reason) == (
        ResolutionPath.FALLBACK,
        FallbackReason.TIMEOUT,
    )
    assert (async_hung.path, async_hung.fallback_reason) == (
        ResolutionPath.FALLBACK,
        FallbackReason.TIMEOUT,
    )
    assert AsyncHung.cancelled
    # The loop kept running while the sync source blocked a worker thread
    assert ticks >= 2
    # Both build spans ended at the deadline, each under its own resolve span, while the sync
    # source is still blocked
    assert not hung.release.is_set()
    resolves = recorded.finished("leadctx.context.resolve")
    builds = recorded.finished("leadctx.bundle.build")
    assert len(resolves) == len(builds) == 2
    for resolve, build in zip(resolves, builds, strict=True):
        assert build.parent is not None
        assert build.parent.span_id == resolve.context.span_id
        assert build.attributes is not None
        assert build.attributes["error.type"] == "leadctx_bundle.deadline.DeadlineExceeded"


def test_async_shared_path_with_async_source_and_async_legacy(client: OpenFeatureClient) -> None:
    class AsyncSource:
        async def knowledge_assets(self, client_id: str) -> Iterable[Any]:
            rows: list[Any] = sample()["knowledge_assets"]
            return rows

        async def lead_memory(self, lead_id: str) -> Iterable[Any]:
            return []

        async def thread(self, lead_id: str) -> Iterable[Any]:
            return []

        async def failing(self) -> None:
            raise OSError("down")

    async def legacy() -> str:
        return "async legacy"

    async def run() -> tuple[Any, Any]:
        shared = await resolve_context_async(
            {"client_id": "acme", "lead_id": "l", "pipeline": "draft"},
            legacy=legacy,
            client=client,
            source=AsyncSource(),
        )
        off = await resolve_context_async(
            {"client_id": "globex", "lead_id": "l", "pipeline": "draft"},
            legacy=legacy,
            client=client,
            source=AsyncSource(),
        )
        return shared, off

    shared, off = asyncio.run(run())
    assert shared.path is ResolutionPath.SHARED
    assert shared.stats is not None
    assert shared.stats.sections["knowledge_assets"].items_total == 8
    assert (off.path, off.text) == (ResolutionPath.LEGACY, "async legacy")


def test_deadline_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert deadline_for(Pipeline.DRAFT) == DEFAULT_DEADLINES[Pipeline.DRAFT] == 1.5
    assert deadline_for(Pipeline.PROPOSED_TIMES) == 0.5
    monkeypatch.setenv("LEADCTX_BUNDLE_DEADLINE_SECONDS", "3")
    assert deadline_for(Pipeline.DRAFT) == 3.0
    monkeypatch.setenv("LEADCTX_BUNDLE_DEADLINE_SECONDS_DRAFT", "0.25")
    assert deadline_for(Pipeline.DRAFT) == 0.25
    assert deadline_for(Pipeline.OVERSEER) == 3.0
    assert deadline_for(Pipeline.DRAFT, 0.1) == 0.1


@pytest.mark.parametrize("raw", ["0", "-1", "nan", "inf", "soon"])
def test_bad_deadline_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("LEADCTX_BUNDLE_DEADLINE_SECONDS_AUTO_SEND", raw)
    with pytest.raises(ConfigurationError, match="LEADCTX_BUNDLE_DEADLINE_SECONDS_AUTO_SEND"):
        deadline_for(Pipeline.AUTO_SEND)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_a_bad_deadline_argument_falls_back(client: OpenFeatureClient, bad: float) -> None:
    result = resolve_context(sample(), legacy=lambda: "legacy", client=client, deadline_s=bad)
    assert (result.path, result.fallback_reason) == (
        ResolutionPath.FALLBACK,
        FallbackReason.BUDGET_ERROR,
    )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_forked_child_gets_its_own_pool(client: OpenFeatureClient) -> None:
    # Given the parent's pool has worker threads (which a child does not inherit)
    assert resolve_context(sample(), legacy=lambda: "legacy", client=client).path is (
        ResolutionPath.SHARED
    )
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a threaded process may deadlock: that is the point.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: resolve on a pool of its own, report by exit code
        code = 1
        try:
            result = resolve_context(
                sample(), legacy=lambda: "legacy", client=client, deadline_s=GENEROUS
            )
            code = 0 if result.path is ResolutionPath.SHARED else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.01)
    assert os.waitstatus_to_exitcode(status) == 0
