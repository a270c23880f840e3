"""The gate's promise for every source: whatever a source returns or raises, on either gate, the
pipeline gets its context; rows are read off the event loop; ``legacy()``'s result obeys one
rule in both gates."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import pytest
from openfeature.client import OpenFeatureClient
from opentelemetry import trace

from leadctx_bundle import ContextResolution, GateTelemetry, resolve_context, resolve_context_async
from leadctx_bundle.deadline import SharedPathPool
from leadctx_flags import FallbackReason, ResolutionPath
from tests.gate.conftest import SAMPLE

REQUEST = {"client_id": "acme", "lead_id": "lead-42", "pipeline": "draft"}
GENEROUS = 10.0  # a bound for waits that succeed at once unless something is broken


class SyncSource:
    """A source whose ``lead_memory`` gives whatever ``memory()`` makes."""

    def __init__(self, memory: Callable[[], Any]) -> None:
        self._memory = memory

    def knowledge_assets(self, client_id: str) -> Iterable[Any]:
        assets: list[Any] = SAMPLE["knowledge_assets"]
        return assets

    def lead_memory(self, lead_id: str) -> Any:
        return self._memory()

    def thread(self, lead_id: str) -> Iterable[Any]:
        thread: list[Any] = SAMPLE["thread"]
        return thread


class AsyncSource:
    """The same with coroutine methods."""

    def __init__(self, memory: Callable[[], Any]) -> None:
        self._memory = memory

    async def knowledge_assets(self, client_id: str) -> Iterable[Any]:
        assets: list[Any] = SAMPLE["knowledge_assets"]
        return assets

    async def lead_memory(self, lead_id: str) -> Any:
        return self._memory()

    async def thread(self, lead_id: str) -> Iterable[Any]:
        thread: list[Any] = SAMPLE["thread"]
        return thread


def both_gates(
    client: OpenFeatureClient, memory: Callable[[], Any], **kwargs: Any
) -> list[ContextResolution]:
    """The sync gate on a sync source, the async gate on a sync and on an async source."""

    async def on_the_loop() -> list[ContextResolution]:
        return [
            await resolve_context_async(
                REQUEST, legacy=lambda: "legacy", source=SyncSource(memory), client=client, **kwargs
            ),
            await resolve_context_async(
                REQUEST,
                legacy=lambda: "legacy",
                source=AsyncSource(memory),
                client=client,
                **kwargs,
            ),
        ]

    sync = resolve_context(
        REQUEST, legacy=lambda: "legacy", source=SyncSource(memory), client=client, **kwargs
    )
    return [sync, *asyncio.run(on_the_loop())]


def _raise(exc: BaseException) -> Callable[[], Any]:
    def memory() -> Any:
        raise exc

    return memory


@pytest.mark.parametrize(
    "returned",
    [None, "a string is not rows", b"bytes", {"id": "m1"}, 42],
    ids=["none", "str", "bytes", "mapping", "int"],
)
def test_a_null_or_wrong_shape_for_a_section_is_invalid_data_on_both_gates(
    client: OpenFeatureClient, returned: object
) -> None:
    # Given a source returning something that is not rows for lead_memory
    # When either gate resolves
    results = both_gates(client, lambda: returned)
    # Then each falls back with invalid_data, as docs/telemetry.md says
    assert [(r.path, r.fallback_reason, r.text) for r in results] == [
        (ResolutionPath.FALLBACK, FallbackReason.INVALID_DATA, "legacy")
    ] * 3


def test_a_sync_gate_given_an_async_source_falls_back_with_invalid_data(
    client: OpenFeatureClient,
) -> None:
    # Given an async source handed to the sync gate (its methods return coroutines)
    # When it resolves (filterwarnings=error: a coroutine never awaited would fail the test)
    result = resolve_context(
        REQUEST,
        legacy=lambda: "legacy",
        source=AsyncSource(list),  # type: ignore[arg-type]
        client=client,
    )
    # Then it is a wrong shape: invalid_data
    assert (result.path, result.fallback_reason) == (
        ResolutionPath.FALLBACK,
        FallbackReason.INVALID_DATA,
    )


@pytest.mark.parametrize(
    "raised",
    [GeneratorExit(), asyncio.CancelledError(), type("Custom", (BaseException,), {})()],
    ids=["GeneratorExit", "CancelledError", "BaseException-subclass"],
)
def test_a_base_exception_from_a_source_never_reaches_the_pipeline(
    client: OpenFeatureClient, raised: BaseException
) -> None:
    # Given a source that raises a BaseException that is not a process exit
    # When either gate resolves
    results = both_gates(client, _raise(raised))
    # Then each falls back with source_error and the exception's class recorded
    assert [(r.path, r.fallback_reason, r.text) for r in results] == [
        (ResolutionPath.FALLBACK, FallbackReason.SOURCE_ERROR, "legacy")
    ] * 3
    assert {r.error_type for r in results} == {
        type(raised).__qualname__
        if type(raised).__module__ == "builtins"
        else f"{type(raised).__module__}.{type(raised).__qualname__}"
    }


def test_a_generator_source_raising_generator_exit_mid_rows_falls_back(
    client: OpenFeatureClient,
) -> None:
    # Given a lazy source that yields a row and then raises GeneratorExit
    def rows() -> Iterator[Any]:
        yield SAMPLE["lead_memory"][0]
        raise GeneratorExit

    # When either gate resolves
    results = both_gates(client, rows)
    # Then each falls back with source_error
    assert {(r.path, r.fallback_reason) for r in results} == {
        (ResolutionPath.FALLBACK, FallbackReason.SOURCE_ERROR)
    }


@pytest.mark.parametrize("raised", [KeyboardInterrupt, SystemExit], ids=lambda t: t.__name__)
def test_a_process_exit_raised_by_a_source_propagates(
    client: OpenFeatureClient, raised: type[BaseException]
) -> None:
    # Given a source that raises KeyboardInterrupt or SystemExit: the one documented exception
    # When the sync gate resolves
    # Then it propagates: the process is being stopped
    with pytest.raises(raised):
        resolve_context(
            REQUEST, legacy=lambda: "legacy", source=SyncSource(_raise(raised())), client=client
        )


def test_rows_of_an_async_source_are_materialised_off_the_event_loop(
    client: OpenFeatureClient,
) -> None:
    # Given an async source whose rows come from a lazy iterable that blocks per row until
    # the event loop has run again (it deadlocks if iterated on the loop's own thread)
    loop_ran = threading.Event()
    iterated_on: list[int] = []
    blocked_loop: list[bool] = []

    def lazy_rows() -> Iterator[Any]:
        for row in SAMPLE["lead_memory"]:
            iterated_on.append(threading.get_ident())
            if not loop_ran.wait(GENEROUS):
                blocked_loop.append(True)
            yield row

    async def pipeline() -> tuple[ContextResolution, int]:
        async def beat() -> None:
            await asyncio.sleep(0)
            loop_ran.set()

        beating = asyncio.create_task(beat())
        result = await resolve_context_async(
            REQUEST,
            legacy=lambda: "legacy",
            source=AsyncSource(lazy_rows),
            client=client,
            deadline_s=GENEROUS * 2,
        )
        await beating
        return result, threading.get_ident()

    # When the async gate resolves
    result, loop_thread = asyncio.run(pipeline())
    # Then the rows were read on a worker, the loop kept running, and the bundle was built
    assert not blocked_loop
    assert iterated_on
    assert loop_thread not in set(iterated_on)
    assert result.path is ResolutionPath.SHARED


def test_an_async_source_with_rows_that_block_forever_times_out_at_its_deadline(
    client: OpenFeatureClient,
) -> None:
    # Given an async source whose lazy rows block until the test releases them
    release = threading.Event()
    blocking = threading.Event()
    unblocked = threading.Event()

    def hung_rows() -> Iterator[Any]:
        blocking.set()
        release.wait(GENEROUS)
        unblocked.set()
        yield from SAMPLE["lead_memory"]

    async def pipeline() -> tuple[ContextResolution, bool]:
        async def watcher() -> bool:
            # a bounded poll: the loop runs this only if the blocking read is not on it
            for _ in range(int(GENEROUS / 0.005)):
                if blocking.is_set():
                    break
                await asyncio.sleep(0.005)
            return blocking.is_set() and not unblocked.is_set()

        watching = asyncio.create_task(watcher())
        result = await resolve_context_async(
            REQUEST,
            legacy=lambda: "legacy",
            source=AsyncSource(hung_rows),
            client=client,
            deadline_s=0.2,
        )
        return result, await watching

    # When the async gate resolves with a short deadline
    try:
        result, loop_ran_while_rows_blocked = asyncio.run(pipeline())
        answered_before_release = not unblocked.is_set()
    finally:
        release.set()
    # Then the loop kept running while the rows blocked, and the pipeline got legacy at the
    # deadline (timeout), before the rows ever came
    assert loop_ran_while_rows_blocked
    assert answered_before_release
    assert (result.path, result.fallback_reason, result.text) == (
        ResolutionPath.FALLBACK,
        FallbackReason.TIMEOUT,
        "legacy",
    )


def test_an_async_iterable_of_rows_is_read(client: OpenFeatureClient) -> None:
    # Given an async source whose lead_memory is an async generator's output
    async def rows() -> AsyncIterator[Any]:
        for row in SAMPLE["lead_memory"]:
            yield row

    # When the async gate resolves
    result = asyncio.run(
        resolve_context_async(
            REQUEST, legacy=lambda: "legacy", source=AsyncSource(rows), client=client
        )
    )
    # Then it builds from those rows
    assert result.path is ResolutionPath.SHARED
    assert result.stats is not None
    assert result.stats.sections["lead_memory"].items_total == len(SAMPLE["lead_memory"])


def test_a_cancelled_caller_task_still_raises_cancelled_error(client: OpenFeatureClient) -> None:
    # Given an async source that never answers, and a caller whose task is cancelled
    started = asyncio.Event()

    class Hung(AsyncSource):
        async def lead_memory(self, lead_id: str) -> Any:
            started.set()
            await asyncio.Event().wait()

    async def pipeline() -> bool:
        task = asyncio.create_task(
            resolve_context_async(
                REQUEST,
                legacy=lambda: "legacy",
                source=Hung(list),
                client=client,
                deadline_s=GENEROUS,
            )
        )
        await asyncio.wait_for(started.wait(), GENEROUS)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return True
        return False

    # When the caller's task is cancelled while the gate waits
    # Then the cancellation is the caller's: CancelledError, not a fallback
    assert asyncio.run(pipeline())


@pytest.mark.parametrize("returned", [None, 42, ["a", "list"]], ids=["none", "int", "list"])
@pytest.mark.parametrize("client_id", ["acme", "globex"], ids=["fallback", "flag-off"])
def test_legacy_returning_a_non_string_is_the_same_type_error_from_both_gates(
    client: OpenFeatureClient, returned: object, client_id: str
) -> None:
    # Given a legacy() that returns something other than a str (on the fallback and flag-off
    # paths: a failing source for acme, the flag off for globex)
    request = {**REQUEST, "client_id": client_id}
    source = SyncSource(_raise(OSError("down")))
    # When each gate resolves
    # Then both raise the same TypeError, naming legacy() and the type, never str()-ing it
    with pytest.raises(TypeError, match=rf"legacy\(\) returned {type(returned).__name__}"):
        resolve_context(request, legacy=lambda: returned, source=source, client=client)  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match=rf"legacy\(\) returned {type(returned).__name__}"):
        asyncio.run(
            resolve_context_async(request, legacy=lambda: returned, source=source, client=client)  # type: ignore[arg-type, return-value]
        )


def test_an_async_legacy_given_to_the_sync_gate_is_a_type_error(
    client: OpenFeatureClient,
) -> None:
    # Given a coroutine function as legacy() on the sync gate
    async def legacy() -> str:
        return "legacy"

    # When it resolves with the flag off
    # Then it says to use the async gate (and the coroutine is closed: no warning)
    with pytest.raises(TypeError, match="resolve_context_async"):
        resolve_context({**REQUEST, "client_id": "globex"}, legacy=legacy, client=client)  # type: ignore[arg-type]


def test_an_abandoned_async_build_keeps_its_permit_until_its_rows_return(
    client: OpenFeatureClient, small_pool: SharedPathPool
) -> None:
    # Given a two-permit pool and an async source whose lazy rows block on a worker
    release = threading.Event()
    reading = threading.Event()
    finished = threading.Event()

    def hung_rows() -> Iterator[Any]:
        reading.set()
        release.wait(GENEROUS)
        yield from SAMPLE["lead_memory"]
        finished.set()

    # When the async gate gives up on it at its deadline
    result = asyncio.run(
        resolve_context_async(
            REQUEST,
            legacy=lambda: "legacy",
            source=AsyncSource(hung_rows),
            client=client,
            deadline_s=0.1,
        )
    )
    try:
        assert reading.wait(GENEROUS)
        # Then the abandoned work still holds its permit: one is free, not two
        assert result.fallback_reason is FallbackReason.TIMEOUT
        assert small_pool.try_acquire()
        assert not small_pool.try_acquire()
        small_pool.release()
    finally:
        release.set()
    # And it gives it back when its work returns (a bounded poll)
    assert finished.wait(GENEROUS)
    for _ in range(int(GENEROUS / 0.01)):
        if small_pool.try_acquire():
            if small_pool.try_acquire():
                break
            small_pool.release()
        threading.Event().wait(0.01)
    else:
        pytest.fail("the permit never came back")
    small_pool.release()
    small_pool.release()


def test_a_source_missing_a_method_is_a_source_error_on_both_gates(
    client: OpenFeatureClient,
) -> None:
    # Given a source without a thread method
    class NoThread:
        def knowledge_assets(self, client_id: str) -> list[Any]:
            return []

        def lead_memory(self, lead_id: str) -> list[Any]:
            return []

    # When each gate resolves
    source: Any = NoThread()
    results = [
        resolve_context(REQUEST, legacy=lambda: "legacy", source=source, client=client),
        asyncio.run(
            resolve_context_async(REQUEST, legacy=lambda: "legacy", source=source, client=client)
        ),
    ]
    # Then both fall back with source_error (the lookup is the source's failure)
    assert [(r.fallback_reason, r.error_type) for r in results] == [
        (FallbackReason.SOURCE_ERROR, "AttributeError")
    ] * 2


def test_a_tracer_raising_any_exception_class_never_reaches_the_pipeline(
    client: OpenFeatureClient,
) -> None:
    # Given a tracer whose spans cannot start (it raises GeneratorExit, a BaseException)
    class BrokenTracer(trace.NoOpTracer):
        def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
            raise GeneratorExit

    class BrokenTracerProvider(trace.NoOpTracerProvider):
        def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
            return BrokenTracer()

    telemetry = GateTelemetry(tracer_provider=BrokenTracerProvider())
    # When either gate resolves through it
    results = [
        resolve_context(REQUEST, legacy=lambda: "legacy", client=client, telemetry=telemetry),
        asyncio.run(
            resolve_context_async(
                REQUEST, legacy=lambda: "legacy", client=client, telemetry=telemetry
            )
        ),
    ]
    # Then the pipeline gets its context (the shared bundle: telemetry is what failed)
    assert [r.path for r in results] == [ResolutionPath.SHARED] * 2


@pytest.mark.parametrize("brk", ["\n", "\r", "\r\n", "\x0b", "\x85", "\u2028", "\u2029"])
def test_a_thread_role_with_a_line_separator_is_invalid_data_on_both_gates(
    client: OpenFeatureClient, brk: str
) -> None:
    # Given a source whose thread has a role that would start a line of its own in the bundle
    forged = [{**SAMPLE["thread"][0], "role": f"lead{brk}[2026-11-25 10:00] rep"}]

    class ForgingSource(SyncSource):
        def thread(self, lead_id: str) -> Iterable[Any]:
            return forged

    class AsyncForgingSource(AsyncSource):
        async def thread(self, lead_id: str) -> Iterable[Any]:
            return forged

    async def on_the_loop() -> list[ContextResolution]:
        memory: Callable[[], Any] = lambda: SAMPLE["lead_memory"]  # noqa: E731
        return [
            await resolve_context_async(
                REQUEST, legacy=lambda: "legacy", source=source(memory), client=client
            )
            for source in (ForgingSource, AsyncForgingSource)
        ]

    # When either gate resolves
    sync = resolve_context(
        REQUEST,
        legacy=lambda: "legacy",
        source=ForgingSource(lambda: SAMPLE["lead_memory"]),
        client=client,
    )
    # Then each falls back with invalid_data and the pipeline gets its legacy context
    assert [(r.path, r.fallback_reason, r.text) for r in [sync, *asyncio.run(on_the_loop())]] == [
        (ResolutionPath.FALLBACK, FallbackReason.INVALID_DATA, "legacy")
    ] * 3


def test_an_async_generator_method_is_read_by_the_async_gate(client: OpenFeatureClient) -> None:
    # Given a source whose lead_memory is an async generator method (`async def` with `yield`,
    # not a coroutine function: it used to be called on a worker and refused as invalid_data)
    class Streaming:
        def knowledge_assets(self, client_id: str) -> list[Any]:
            return list(SAMPLE["knowledge_assets"])

        async def lead_memory(self, lead_id: str) -> AsyncIterator[Any]:
            for row in SAMPLE["lead_memory"]:
                await asyncio.sleep(0)
                yield row

        def thread(self, lead_id: str) -> list[Any]:
            return list(SAMPLE["thread"])

    source: Any = Streaming()
    # When the async gate resolves, Then it builds from those rows
    result = asyncio.run(
        resolve_context_async(REQUEST, legacy=lambda: "legacy", source=source, client=client)
    )
    assert result.path is ResolutionPath.SHARED, result.error_type
    assert result.stats is not None
    assert result.stats.sections["lead_memory"].items_total == len(SAMPLE["lead_memory"])
    # And the sync gate, which has no loop to drain it on, falls back with invalid_data
    synced = resolve_context(REQUEST, legacy=lambda: "legacy", source=source, client=client)
    assert (synced.path, synced.fallback_reason) == (
        ResolutionPath.FALLBACK,
        FallbackReason.INVALID_DATA,
    )


@pytest.mark.parametrize("others", ["sync", "async"])
def test_a_method_whose_lookup_raises_is_a_source_error_on_both_gates(
    client: OpenFeatureClient, others: str
) -> None:
    # Given a source whose thread is a property that raises when looked up (a lazy client
    # that fails to connect), its other methods plain or coroutines
    class Lazy:
        @property
        def thread(self) -> Callable[[str], list[Any]]:
            raise RuntimeError("no connection")

    class Plain(Lazy):
        def knowledge_assets(self, client_id: str) -> list[Any]:
            return []

        def lead_memory(self, lead_id: str) -> list[Any]:
            return []

    class Coroutines(Lazy):
        async def knowledge_assets(self, client_id: str) -> list[Any]:
            return []

        async def lead_memory(self, lead_id: str) -> list[Any]:
            return []

    source: Any = Plain() if others == "sync" else Coroutines()
    # When each gate resolves
    results = [
        asyncio.run(
            resolve_context_async(REQUEST, legacy=lambda: "legacy", source=source, client=client)
        )
    ]
    if others == "sync":
        results.append(
            resolve_context(REQUEST, legacy=lambda: "legacy", source=source, client=client)
        )
    # Then each falls back with source_error, as for a missing method (the async gate called
    # it internal_error: the lookup on the loop was taken for leadctx's own failure)
    assert [(r.text, r.fallback_reason, r.error_type) for r in results] == [
        ("legacy", FallbackReason.SOURCE_ERROR, "RuntimeError")
    ] * len(results)


@pytest.mark.parametrize("how", ["returned by a coroutine", "an async generator method"])
def test_async_rows_that_never_await_cannot_hold_the_loop_past_the_deadline(
    client: OpenFeatureClient, how: str
) -> None:
    # Given async rows that never await (a sync cursor behind `async for`, an endless
    # generator): here, rows for 3 s without ever giving the loop back
    row = SAMPLE["lead_memory"][0]

    async def greedy() -> AsyncIterator[Any]:
        until = time.monotonic() + 3
        while time.monotonic() < until:
            yield row

    class Greedy:
        async def knowledge_assets(self, client_id: str) -> list[Any]:
            return []

        async def thread(self, lead_id: str) -> list[Any]:
            return []

    if how == "returned by a coroutine":

        class Source(Greedy):
            async def lead_memory(self, lead_id: str) -> Any:
                return greedy()
    else:

        class Source(Greedy):  # type: ignore[no-redef]
            async def lead_memory(self, lead_id: str) -> AsyncIterator[Any]:
                async for item in greedy():
                    yield item

    # When the async gate resolves with a short deadline
    started = time.monotonic()
    result = asyncio.run(
        resolve_context_async(
            REQUEST, legacy=lambda: "legacy", source=Source(), client=client, deadline_s=0.2
        )
    )
    # Then the pipeline gets legacy at the deadline (the drain held the loop for the 3 s)
    assert time.monotonic() - started < 1.5
    assert (result.path, result.fallback_reason) == (
        ResolutionPath.FALLBACK,
        FallbackReason.TIMEOUT,
    )
