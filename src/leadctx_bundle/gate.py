"""The gate: the shared bundle where the flag says so, the pipeline's own context otherwise.

``resolve_context`` asks the OpenFeature client for ``shared_bundle.enabled`` (default off),
and when it is on, reads the sources and builds the bundle on a bounded worker pool under a
deadline. Whatever goes wrong on that path (a source raising or hanging, invalid rows, the
budget arithmetic, the tokenizer) the pipeline gets ``legacy()`` instead, at once, with the
reason recorded. Only ``legacy()`` itself may raise into the pipeline, unchanged.

Each call leaves one span ``leadctx.context.resolve`` (with a child ``leadctx.bundle.build``
when the shared path runs), metrics, one INFO log record, and ``ContextResolution.metadata()``
for ``AIInteraction.metadata``: counts, names and reasons only, never content.
``docs/telemetry.md`` has every name and the metadata's JSON shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol, runtime_checkable

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext

from leadctx_bundle.builder import build_bundle
from leadctx_bundle.deadline import (
    DeadlineExceeded,
    SharedPathPool,
    WorkerPoolSaturated,
    building,
    checkpoint,
    deadline_for,
    shared_path_pool,
)
from leadctx_bundle.fallback import (
    PROCESS_EXITS,
    SharedPathFailure,
    Stage,
    classify,
    error_type_of,
)
from leadctx_bundle.models import (
    BundleInput,
    BundleRequest,
    KnowledgeAsset,
    LeadContextBundle,
    LeadMemoryEntry,
    ThreadMessage,
)
from leadctx_bundle.profiles import BundleProfile
from leadctx_bundle.resolution import NOT_EVALUATED, ContextResolution, FlagOutcome
from leadctx_bundle.sources import ContextSource, Row, rows_of
from leadctx_bundle.telemetry import GateTelemetry
from leadctx_bundle.validation import parse_bundle_input
from leadctx_flags.context import CONTEXT_KIND
from leadctx_flags.flags import SHARED_BUNDLE_FLAG
from leadctx_flags.vocabulary import FallbackReason, ResolutionPath

__all__ = [
    "AsyncContextSource",
    "ContextResolution",
    "FlagOutcome",
    "build_traced",
    "resolve_context",
    "resolve_context_async",
]

logger = logging.getLogger(__name__)

_ROW_SECTIONS: Final = ("knowledge_assets", "lead_memory", "thread")
_YIELD_EVERY: Final = 256
"""Rows of an async iterable drained on the loop between two yields to it (``sleep(0)``)."""
_DEFAULT_TELEMETRY = GateTelemetry()
_DEADLINE_ERROR_TYPE: Final = error_type_of(DeadlineExceeded())

BuildOutcome = LeadContextBundle | SharedPathFailure
"""What one shared path ends in: the bundle, or why the pipeline falls back."""


@runtime_checkable
class AsyncContextSource(Protocol):
    """A ``ContextSource`` whose methods are coroutines (for ``resolve_context_async``)."""

    async def knowledge_assets(self, client_id: str) -> Iterable[KnowledgeAsset | Row]:
        """The client's knowledge assets."""
        ...

    async def lead_memory(self, lead_id: str) -> Iterable[LeadMemoryEntry | Row]:
        """The lead's memory entries."""
        ...

    async def thread(self, lead_id: str) -> Iterable[ThreadMessage | Row]:
        """The lead's thread; may be empty."""
        ...


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the caller's thread decided before any source is read."""

    request: BundleRequest | None
    data: BundleInput | Mapping[str, Any] | None
    flag: FlagOutcome
    deadline_s: float | None = None
    failure: SharedPathFailure | None = None

    @property
    def shared(self) -> bool:
        return self.failure is None and self.flag.value and self.flag.error_code is None


def _str_or_none(value: object) -> str | None:
    """A metadata value as a string; booleans and structures are not identifiers."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _evaluate_flag(client: OpenFeatureClient | None, request: BundleRequest) -> FlagOutcome:
    """Ask for the flag, always with default ``False``; never raises."""
    try:
        resolved = client if client is not None else api.get_client()
        details = resolved.get_boolean_details(
            SHARED_BUNDLE_FLAG,
            False,
            EvaluationContext(
                targeting_key=request.client_id,
                attributes={"kind": CONTEXT_KIND, "pipeline": request.pipeline.value},
            ),
        )
    except BaseException as exc:  # the OpenFeature client should not raise; if it does, flag off
        if isinstance(exc, PROCESS_EXITS):
            raise
        logger.debug("OpenFeature client raised %s; flag off", error_type_of(exc))
        return FlagOutcome(key=SHARED_BUNDLE_FLAG, value=False, error_code="GENERAL")
    provider: str | None
    try:
        provider = resolved.provider.get_metadata().name
    except BaseException as exc:  # a provider without metadata is still a provider
        if isinstance(exc, PROCESS_EXITS):
            raise
        provider = None
    metadata = details.flag_metadata or {}
    error_code = None if details.error_code is None else str(details.error_code)
    return _flag_outcome(
        (
            details.value is True and error_code is None,
            details.variant if isinstance(details.variant, str) else None,
            None if details.reason is None else str(details.reason),
            _str_or_none(metadata.get("source")),
            _str_or_none(metadata.get("version")),
            _str_or_none(metadata.get("flagSetId")),
            provider,
            error_code,
        )
    )


_Answer = tuple[
    bool, str | None, str | None, str | None, str | None, str | None, str | None, str | None
]


@functools.lru_cache(maxsize=256)
def _flag_outcome(answer: _Answer) -> FlagOutcome:
    """One ``FlagOutcome`` per distinct answer (value, variant, reason, source, version, set
    id, provider, error code): the answers repeat (a few rules, one revision at a time), and a
    kept instance is found by identity in telemetry's attribute caches."""
    value, variant, reason, source, version, set_id, provider, error_code = answer
    return FlagOutcome(
        key=SHARED_BUNDLE_FLAG,
        value=value,
        variant=variant,
        reason=reason,
        source=source,
        version=version,
        set_id=set_id,
        provider=provider,
        error_code=error_code,
    )


def _plan(
    request: BundleRequest | Mapping[str, Any],
    client: OpenFeatureClient | None,
    deadline_s: float | None,
) -> _Plan:
    data: BundleInput | Mapping[str, Any] | None = None
    try:
        if isinstance(request, BundleInput):
            parsed, data = request.request, request
        elif isinstance(request, BundleRequest):
            parsed = request
        else:
            data = request
            parsed = BundleRequest.model_validate(
                {key: request.get(key) for key in ("client_id", "lead_id", "pipeline")}
            )
    except BaseException as exc:  # a request that cannot be read is invalid data
        if isinstance(exc, PROCESS_EXITS):
            raise
        failure = SharedPathFailure(FallbackReason.INVALID_DATA, error_type_of(exc))
        return _Plan(None, None, NOT_EVALUATED, failure=failure)
    flag = _evaluate_flag(client, parsed)
    if not flag.value or flag.error_code is not None:
        return _Plan(parsed, data, flag)
    try:
        deadline = deadline_for(parsed.pipeline, deadline_s)
    except BaseException as exc:  # a bad deadline setting falls back, never raises
        if isinstance(exc, PROCESS_EXITS):
            raise
        return _Plan(
            parsed,
            data,
            flag,
            failure=SharedPathFailure(classify(exc, Stage.BUILD), error_type_of(exc)),
        )
    return _Plan(parsed, data, flag, deadline_s=deadline)


def _rows_from(data: BundleInput | Mapping[str, Any] | None) -> dict[str, Any]:
    if data is None:
        return {}
    if isinstance(data, BundleInput):
        return {key: getattr(data, key) for key in (*_ROW_SECTIONS, "budgets")}
    return {key: data[key] for key in (*_ROW_SECTIONS, "budgets") if key in data}


def _failure(exc: BaseException, stage: Stage) -> SharedPathFailure:
    """The fallback for ``exc``; ``KeyboardInterrupt`` and ``SystemExit`` are raised again."""
    if isinstance(exc, PROCESS_EXITS):
        raise exc
    return SharedPathFailure(classify(exc, stage), error_type_of(exc))


def _read_section(source: object, section: str, key: str) -> object:
    # The method is looked up here, on the worker: a missing or raising attribute is the
    # source's failure, never the caller's exception.
    return getattr(source, section)(key)


def _source_calls(source: object, request: BundleRequest) -> dict[str, Callable[[], object]]:
    """Each section's read, not yet made (nor its method looked up): the worker makes it."""
    return {
        "knowledge_assets": functools.partial(
            _read_section, source, "knowledge_assets", request.client_id
        ),
        "lead_memory": functools.partial(_read_section, source, "lead_memory", request.lead_id),
        "thread": functools.partial(_read_section, source, "thread", request.lead_id),
    }


def _read_and_build(
    request: BundleRequest,
    data: BundleInput | Mapping[str, Any] | None,
    reads: Mapping[str, Callable[[], object]] | None,
) -> BuildOutcome:
    """Read each section and build: the shared path's work, run on a pool worker.

    ``reads`` gives each section's rows when called: a source's method, or (from the event
    loop) what an async method returned. Either way the rows are materialised here, off the
    loop: a lazy cursor that blocks per row blocks only this worker, under the deadline.

    It records no telemetry: the caller opened the build span (current here, so a source's own
    instrumentation nests under it) and records the outcome on its own thread in one burst. A
    failure is returned, not raised: unwinding it through the worker and raising it again in
    the caller would cost more than the fallback's own work.
    """
    rows: dict[str, Any] = {}
    if reads is not None:
        try:
            rows = {
                section: rows_of(section, read(), checkpoint) for section, read in reads.items()
            }
        except BaseException as exc:  # noqa: BLE001 - returned to the caller, which falls back
            return _failure(exc, Stage.SOURCE)
    try:
        # Native code (pydantic-core, tiktoken) runs here: exit waits for it, see ``deadline``.
        with building():
            payload = {**request.model_dump(), **_rows_from(data), **rows}
            bundle_input = parse_bundle_input(payload)
            checkpoint()
            return build_bundle(bundle_input)
    except BaseException as exc:  # noqa: BLE001 - returned to the caller, which falls back
        return _failure(exc, Stage.BUILD)


def _fallback_from(exc: BaseException) -> SharedPathFailure:
    """The failure behind an exception raised while waiting for the shared path.

    ``KeyboardInterrupt`` and ``SystemExit`` (a Ctrl-C while the caller waits) are raised again.
    """
    if isinstance(exc, TimeoutError):
        # Ours (a saturated pool) or the future's wait running out: both are the deadline.
        name = error_type_of(exc) if isinstance(exc, DeadlineExceeded) else _DEADLINE_ERROR_TYPE
        return SharedPathFailure(FallbackReason.TIMEOUT, name)
    return _failure(exc, Stage.BUILD)


def _run_shared(
    telemetry: GateTelemetry, plan: _Plan, source: ContextSource | None
) -> BuildOutcome:
    """The shared path under its deadline, inside a ``leadctx.bundle.build`` span.

    The span and the metrics are the caller's: a source that hangs past the deadline still
    gets its span ended (``timeout``) and its duration recorded now, not when (or if) the
    abandoned read returns.
    """
    assert plan.request is not None  # noqa: S101 - only called when the plan is shared
    assert plan.deadline_s is not None  # noqa: S101 - same
    request = plan.request
    started = time.perf_counter()
    with telemetry.build_span(request.pipeline.value) as span:
        reads = None if source is None else _source_calls(source, request)
        try:
            outcome = shared_path_pool().run(
                functools.partial(_read_and_build, request, plan.data, reads), plan.deadline_s
            )
        except BaseException as exc:  # noqa: BLE001 - every shared-path failure falls back
            outcome = _fallback_from(exc)
        telemetry.record_build(span, outcome, time.perf_counter() - started, request.pipeline.value)
        return outcome


def build_traced(
    data: BundleInput | Mapping[str, Any],
    *,
    profile: BundleProfile | None = None,
    telemetry: GateTelemetry | None = None,
) -> LeadContextBundle:
    """``build_bundle`` inside a ``leadctx.bundle.build`` span, with its build metrics.

    For callers that build without the gate (``leadctx bundle build``). Exceptions propagate
    unchanged; the span records only their type.

    Args:
        data: As for ``build_bundle``.
        profile: As for ``build_bundle``.
        telemetry: Where spans and metrics go; ``None``: OpenTelemetry's global providers.

    Raises:
        BundleInputError: As ``build_bundle``.
        ConfigurationError: As ``build_bundle``.
        EncodingDataError: As ``build_bundle``.
    """
    tel = telemetry if telemetry is not None else _DEFAULT_TELEMETRY
    started = time.perf_counter()
    with tel.build_span(None) as span:
        pipeline = "unknown"
        try:
            bundle_input = parse_bundle_input(data)
            pipeline = bundle_input.pipeline.value
            bundle = build_bundle(bundle_input, profile=profile)
        except Exception as exc:
            failure = _failure(exc, Stage.BUILD)
            tel.record_build(
                span, failure, time.perf_counter() - started, pipeline, standalone=True
            )
            raise
        tel.record_build(span, bundle, time.perf_counter() - started, pipeline, standalone=True)
        return bundle


def _resolution(plan: _Plan, text: str, outcome: BuildOutcome | None) -> ContextResolution:
    """The call's one outcome: what the pipeline gets and telemetry records."""
    request = plan.request
    bundle = outcome if isinstance(outcome, LeadContextBundle) else None
    failure = outcome if isinstance(outcome, SharedPathFailure) else None
    if bundle is not None:
        path = ResolutionPath.SHARED
    elif failure is not None:
        path = ResolutionPath.FALLBACK
    else:
        path = ResolutionPath.LEGACY
    return ContextResolution(
        text=text,
        path=path,
        fallback_reason=None if failure is None else failure.reason,
        stats=None if bundle is None else bundle.stats,
        flag=plan.flag,
        pipeline=None if request is None else request.pipeline,
        error_type=None if failure is None else failure.error_type,
        client_id=None if request is None else request.client_id,
    )


def _legacy_text(produced: object) -> str:
    """``legacy()``'s result as the context, the same rule in both gates: a ``str``, as is.

    Anything else is the pipeline's own bug, raised to it at once as ``TypeError`` on every
    path that calls ``legacy()`` (flag off included, so the first test of the pipeline shows
    it), never turned into text: ``str(None)`` in a prompt is worse than an error.
    """
    if isinstance(produced, str):
        return produced
    if inspect.iscoroutine(produced):
        produced.close()  # it will never run: say so once, without a "never awaited" warning
        raise TypeError(
            "legacy() returned a coroutine; resolve_context needs a str "
            "(use resolve_context_async for an async legacy())"
        )
    raise TypeError(f"legacy() returned {type(produced).__name__}; expected str")


def resolve_context(
    request: BundleRequest | Mapping[str, Any],
    *,
    legacy: Callable[[], str],
    source: ContextSource | None = None,
    client: OpenFeatureClient | None = None,
    deadline_s: float | None = None,
    telemetry: GateTelemetry | None = None,
) -> ContextResolution:
    """The context for one pipeline call: the shared bundle if the flag is on, else ``legacy()``.

    Args:
        request: A ``BundleRequest`` (or ``BundleInput``), or a mapping with ``client_id``,
            ``lead_id``, ``pipeline`` and optionally inline rows (``knowledge_assets``,
            ``lead_memory``, ``thread``) and ``budgets``, as ``build_bundle`` takes them.
        legacy: The pipeline's current context assembly. Called when the flag is off or
            cannot be evaluated (path ``legacy``) or the shared path fails (``fallback``).
            Its exceptions propagate unchanged.
        source: Where rows come from; rows it returns replace inline rows of the same
            section. ``None``: the request's inline rows only.
        client: The OpenFeature client; ``None``: ``openfeature.api.get_client()``.
        deadline_s: Seconds the shared path may take; ``None``: the pipeline's deadline from
            the environment or the defaults (see ``leadctx_bundle.deadline``).
        telemetry: Where spans and metrics go; ``None``: OpenTelemetry's global providers.

    Returns:
        The context and how it was had. Never raises but for ``legacy()``'s own exceptions:
        an invalid request, a flag error, a failing or hanging source, bad rows, a budget or
        tokenizer error all end in ``legacy()`` with the reason recorded.
    """
    tel = telemetry if telemetry is not None else _DEFAULT_TELEMETRY
    with tel.resolve_span() as span:
        plan = _plan(request, client, deadline_s)
        outcome = _run_shared(tel, plan, source) if plan.shared else plan.failure
        if isinstance(outcome, LeadContextBundle):
            text = outcome.text
        else:
            try:
                text = _legacy_text(legacy())
            except BaseException as exc:
                tel.record_legacy_failure(span, exc)
                raise
        resolution = _resolution(plan, text, outcome)
        tel.record_resolution(span, resolution)
        return resolution


def _given(rows: object) -> object:
    return rows


def _is_async_method(source: object, section: str) -> bool:
    """Whether the async gate reads ``section`` on the loop: a coroutine method, or an async
    generator method (``async def`` with ``yield``, a natural way to stream rows).

    A lookup that fails (a missing method, a property that raises) is not decided here: the
    worker looks the method up again, and its failure is the source's (``source_error``), as
    in the sync gate.
    """
    try:
        method = getattr(source, section)
    except BaseException as exc:  # the worker looks it up again and reports it as the source's
        if isinstance(exc, PROCESS_EXITS):
            raise
        return False
    return inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method)


async def _rows_on_the_loop(read: Callable[[], object]) -> object:
    """An async method's rows: its coroutine awaited, an async iterable drained (here, where it
    can cooperate); rows of any other kind go to the worker as they are (a lazy iterable is
    materialised there)."""
    produced = read()
    if inspect.isawaitable(produced):
        produced = await produced
    if not isinstance(produced, AsyncIterable):
        return produced
    rows: list[object] = []
    async for row in produced:
        rows.append(row)
        if len(rows) % _YIELD_EVERY == 0:
            # An async iterator that never awaits (rows from a sync cursor, an endless
            # generator) would otherwise hold the loop for ever: the deadline could not fire.
            await asyncio.sleep(0)
    return rows


async def _await_reads(
    source: AsyncContextSource | ContextSource, request: BundleRequest
) -> dict[str, Callable[[], object]]:
    """Each section's read for the worker: async methods read here, on the loop
    (``_rows_on_the_loop``); plain methods left for the worker to call."""
    reads = _source_calls(source, request)
    awaited = [section for section in reads if _is_async_method(source, section)]
    coroutines: list[Awaitable[object]] = [_rows_on_the_loop(reads[section]) for section in awaited]
    results: list[object] = list(await asyncio.gather(*coroutines))
    for section, rows in zip(awaited, results, strict=True):
        reads[section] = functools.partial(_given, rows)
    return reads


class _Permit:
    """A pool permit taken on the loop: given back when the task ends, unless the task handed
    it to a worker (which gives it back when its work returns: an abandoned build keeps it)."""

    __slots__ = ("handed_over", "pool")

    def __init__(self, pool: SharedPathPool) -> None:
        self.pool = pool
        self.handed_over = False

    def task_done(self, _: object) -> None:
        # A done callback, so it runs even for a task cancelled before its first step.
        if not self.handed_over:
            self.pool.release()


async def _read_and_build_async(
    permit: _Permit,
    request: BundleRequest,
    data: BundleInput | Mapping[str, Any] | None,
    source: AsyncContextSource | ContextSource,
) -> BuildOutcome:
    """Await the async reads on the loop, then materialise and build on a pool worker, under
    the permit the caller took."""
    try:
        reads = await _await_reads(source, request)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # the gate's deadline or the caller's cancellation: not the source's
        return _failure(asyncio.CancelledError(), Stage.SOURCE)
    except BaseException as exc:  # noqa: BLE001 - returned to the caller, which falls back
        return _failure(exc, Stage.SOURCE)
    future = permit.pool.hand_over(functools.partial(_read_and_build, request, data, reads))
    permit.handed_over = True
    return await asyncio.wrap_future(future)


async def _await_shared(
    plan: _Plan, source: ContextSource | AsyncContextSource | None
) -> BuildOutcome:
    assert plan.request is not None  # noqa: S101 - only called when the plan is shared
    assert plan.deadline_s is not None  # noqa: S101 - same
    pool = shared_path_pool()
    task: asyncio.Future[BuildOutcome]
    if source is not None and any(_is_async_method(source, section) for section in _ROW_SECTIONS):
        if not pool.try_acquire():
            raise WorkerPoolSaturated(f"all {pool.workers} shared-path workers are busy")
        permit = _Permit(pool)
        task = asyncio.ensure_future(_read_and_build_async(permit, plan.request, plan.data, source))
        task.add_done_callback(permit.task_done)
    else:
        reads = None if source is None else _source_calls(source, plan.request)
        task = asyncio.wrap_future(
            pool.submit(functools.partial(_read_and_build, plan.request, plan.data, reads))
        )
    try:
        # asyncio.wait, not wait_for: a source that ignores cancellation must not hold us up.
        done, _ = await asyncio.wait({task}, timeout=plan.deadline_s)
    except asyncio.CancelledError:
        # The caller's task is cancelled: so is its shared path; the cancellation is theirs.
        task.cancel()
        task.add_done_callback(_consume)
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_consume)
        raise DeadlineExceeded("shared path exceeded its deadline")
    if task.cancelled():
        # Not by us (we cancel only past the deadline): something the source awaited was.
        return _failure(asyncio.CancelledError(), Stage.SOURCE)
    error = task.exception()
    if error is not None:
        return _fallback_from(error)
    return task.result()


async def _run_shared_async(
    telemetry: GateTelemetry, plan: _Plan, source: ContextSource | AsyncContextSource | None
) -> BuildOutcome:
    """``_run_shared`` for the event loop: the span and metrics on the loop, as there."""
    assert plan.request is not None  # noqa: S101 - only called when the plan is shared
    pipeline = plan.request.pipeline.value
    started = time.perf_counter()
    with telemetry.build_span(pipeline) as span:
        try:
            outcome = await _await_shared(plan, source)
        except asyncio.CancelledError:
            raise  # the caller's task was cancelled: theirs to handle
        except BaseException as exc:  # noqa: BLE001 - every shared-path failure falls back
            outcome = _fallback_from(exc)
        telemetry.record_build(span, outcome, time.perf_counter() - started, pipeline)
        return outcome


def _consume(task: asyncio.Future[Any]) -> None:
    # Read the abandoned task's outcome so asyncio does not log "exception never retrieved".
    with contextlib.suppress(BaseException):
        task.exception()


async def resolve_context_async(
    request: BundleRequest | Mapping[str, Any],
    *,
    legacy: Callable[[], str | Awaitable[str]],
    source: ContextSource | AsyncContextSource | None = None,
    client: OpenFeatureClient | None = None,
    deadline_s: float | None = None,
    telemetry: GateTelemetry | None = None,
) -> ContextResolution:
    """``resolve_context`` for asyncio pipelines; never blocks the event loop on a source.

    Args:
        request: As for ``resolve_context``.
        legacy: The pipeline's current assembly: a function returning the text or an
            awaitable of it. Its exceptions propagate unchanged.
        source: A ``ContextSource`` (run on the worker pool, so a blocking read never stalls
            the loop) or an ``AsyncContextSource`` (awaited; cancelled at the deadline).
        client: The OpenFeature client; ``None``: ``openfeature.api.get_client()``. Flag
            evaluation runs on the loop: OpenFeature providers answer from memory.
        deadline_s: As for ``resolve_context``.
        telemetry: As for ``resolve_context``.

    Returns:
        As ``resolve_context``.
    """
    tel = telemetry if telemetry is not None else _DEFAULT_TELEMETRY
    with tel.resolve_span() as span:
        plan = _plan(request, client, deadline_s)
        outcome = await _run_shared_async(tel, plan, source) if plan.shared else plan.failure
        if isinstance(outcome, LeadContextBundle):
            text = outcome.text
        else:
            try:
                produced = legacy()
                if inspect.isawaitable(produced):
                    produced = await produced
                text = _legacy_text(produced)
            except BaseException as exc:
                tel.record_legacy_failure(span, exc)
                raise
        resolution = _resolution(plan, text, outcome)
        tel.record_resolution(span, resolution)
        return resolution
