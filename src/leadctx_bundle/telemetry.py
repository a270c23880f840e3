"""The gate's telemetry: every span, attribute and metric name in one place, API only.

This module depends on ``opentelemetry-api`` alone. Without an SDK installed and configured
by the application, every call here is a no-op; with one, the spans, metrics and the log
record describe each context resolution by counts, names and reasons, never by content.

Names follow OpenTelemetry's conventions: the ``feature_flag.*`` attributes are those of the
feature-flag semantic conventions (a test compares them with
``opentelemetry-semantic-conventions``), everything of ours is under ``leadctx.``, metric
units are UCUM (``s``, ``{token}``). ``docs/telemetry.md`` lists them all.

Telemetry never raises into a pipeline: each recording helper catches what a broken tracer,
meter or log handler raises, and reports it once at DEBUG.

The gate hands this module values (a ``ContextResolution``, a build's outcome) and this module
records them: every span attribute is assembled here, in ``build_span``, ``record_build`` and
``record_resolution``, and nothing here imports the gate.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, Final

from opentelemetry import context, metrics, trace
from opentelemetry.trace import Span, Status, StatusCode

from leadctx_bundle.fallback import PROCESS_EXITS, SharedPathFailure, error_type_of
from leadctx_bundle.models import LeadContextBundle
from leadctx_bundle.resolution import ContextResolution, FlagOutcome
from leadctx_bundle.stats import SECTIONS, BundleStats, SectionName

__all__ = [
    "ATTR_BUNDLE_FALLBACK_REASON",
    "ATTR_BUNDLE_PATH",
    "ATTR_ERROR_TYPE",
    "ATTR_FEATURE_FLAG_CONTEXT_ID",
    "ATTR_FEATURE_FLAG_KEY",
    "ATTR_FEATURE_FLAG_PROVIDER_NAME",
    "ATTR_FEATURE_FLAG_RESULT_REASON",
    "ATTR_FEATURE_FLAG_RESULT_VALUE",
    "ATTR_FEATURE_FLAG_RESULT_VARIANT",
    "ATTR_FEATURE_FLAG_SET_ID",
    "ATTR_FEATURE_FLAG_VERSION",
    "ATTR_PIPELINE",
    "ATTR_SECTION",
    "ATTR_TOKENIZER_ENCODING",
    "ATTR_TOKENS_BUDGET",
    "ATTR_TOKENS_TOTAL",
    "INSTRUMENTATION_NAME",
    "METRIC_BUILD_DURATION",
    "METRIC_RESOLUTIONS",
    "METRIC_SECTION_ITEMS_DROPPED",
    "METRIC_SECTION_ITEMS_TRUNCATED",
    "METRIC_SECTION_TOKENS",
    "PENDING_BUILDS_BEFORE_COLLECTION",
    "PENDING_BUILDS_LIMIT",
    "RESOLUTION_LOGGER",
    "SECTION_FIELDS",
    "SPAN_BUNDLE_BUILD",
    "SPAN_CONTEXT_RESOLVE",
    "GateTelemetry",
    "error_type_of",
    "flag_attributes",
    "flag_reason_value",
    "log_resolution",
    "resolution_attributes",
    "resolve_attributes",
    "section_attribute",
    "stats_attributes",
]

logger = logging.getLogger(__name__)

RESOLUTION_LOGGER: Final = logging.getLogger("leadctx_bundle.gate")
"""The logger of the one INFO record per call: named for the gate, where pipelines look."""

INSTRUMENTATION_NAME: Final = "leadctx_bundle"
"""The instrumentation scope of every span and metric below."""

SPAN_CONTEXT_RESOLVE: Final = "leadctx.context.resolve"
"""One span per ``resolve_context`` call."""
SPAN_BUNDLE_BUILD: Final = "leadctx.bundle.build"
"""Child of the resolve span when the shared path runs: sources read and bundle built."""

# OpenTelemetry semantic conventions (feature flags, errors). Spelled here rather than
# imported: the conventions package is incubating and not a runtime dependency; a test
# checks every spelling against it.
ATTR_FEATURE_FLAG_KEY: Final = "feature_flag.key"
ATTR_FEATURE_FLAG_RESULT_VALUE: Final = "feature_flag.result.value"
ATTR_FEATURE_FLAG_RESULT_VARIANT: Final = "feature_flag.result.variant"
ATTR_FEATURE_FLAG_RESULT_REASON: Final = "feature_flag.result.reason"
ATTR_FEATURE_FLAG_PROVIDER_NAME: Final = "feature_flag.provider.name"
ATTR_FEATURE_FLAG_CONTEXT_ID: Final = "feature_flag.context.id"
ATTR_FEATURE_FLAG_SET_ID: Final = "feature_flag.set.id"
ATTR_FEATURE_FLAG_VERSION: Final = "feature_flag.version"
ATTR_ERROR_TYPE: Final = "error.type"

ATTR_PIPELINE: Final = "leadctx.pipeline"
ATTR_BUNDLE_PATH: Final = "leadctx.bundle.path"
ATTR_BUNDLE_FALLBACK_REASON: Final = "leadctx.bundle.fallback_reason"
ATTR_TOKENIZER_ENCODING: Final = "leadctx.tokenizer.encoding"
ATTR_TOKENS_TOTAL: Final = "leadctx.tokens.total"
ATTR_TOKENS_BUDGET: Final = "leadctx.tokens.budget"
ATTR_SECTION: Final = "leadctx.bundle.section"
"""Metric attribute: which section a data point counts."""

SECTION_FIELDS: Final[Mapping[str, str]] = {
    "tokens": "tokens",
    "budget": "budget",
    "items.included": "items_included",
    "items.truncated": "items_truncated",
    "items.dropped": "items_dropped",
    "tokens.truncated": "tokens_truncated",
}
"""Span attribute suffix (``leadctx.section.<name>.<suffix>``) → ``SectionStats`` field."""

METRIC_RESOLUTIONS: Final = "leadctx.context.resolutions"
"""Counter ``{resolution}``: by ``leadctx.pipeline``, ``leadctx.bundle.path`` and, on a
fallback, ``leadctx.bundle.fallback_reason``."""
METRIC_SECTION_TOKENS: Final = "leadctx.bundle.section.tokens"
"""Histogram ``{token}``: tokens of each section of each build, by pipeline and section."""
METRIC_SECTION_ITEMS_TRUNCATED: Final = "leadctx.bundle.section.items.truncated"
"""Counter ``{item}``: items cut short, by pipeline and section."""
METRIC_SECTION_ITEMS_DROPPED: Final = "leadctx.bundle.section.items.dropped"
"""Counter ``{item}``: items left out, by pipeline and section."""
METRIC_BUILD_DURATION: Final = "leadctx.bundle.build.duration"
"""Histogram ``s``: wall time of the shared path (sources and build) as the pipeline waited for
it, up to the deadline, by pipeline and, when it failed, ``error.type``."""

_DURATION_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_TOKEN_BUCKETS: Final = (0, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)

# OpenFeature's reasons in the conventions' lower-case spelling. Any other reason a provider
# invents is reported as "unknown": a free-form string is not a bounded attribute value.
_FLAG_REASONS: Final[frozenset[str]] = frozenset(
    {
        "static",
        "default",
        "targeting_match",
        "split",
        "cached",
        "disabled",
        "unknown",
        "stale",
        "error",
    }
)


def section_attribute(section: SectionName, suffix: str) -> str:
    """``leadctx.section.<section>.<suffix>``, e.g. ``leadctx.section.thread.items.dropped``.

    Args:
        section: A bundle section.
        suffix: One of the keys of ``SECTION_FIELDS``.
    """
    return f"leadctx.section.{section}.{suffix}"


def flag_reason_value(reason: object) -> str:
    """An OpenFeature reason as the conventions spell it: ``TARGETING_MATCH`` → ``targeting_match``.

    Args:
        reason: A ``Reason``, a string or ``None``; unknown values give ``unknown``.
    """
    if reason is None:
        return "unknown"
    folded = str(reason).lower()
    return folded if folded in _FLAG_REASONS else "unknown"


# Each section's span attribute names and the SectionStats fields they take, spelled once at
# import rather than formatted on every call.
_SECTION_ATTRIBUTE_KEYS: Final[tuple[tuple[SectionName, tuple[tuple[str, str], ...]], ...]] = tuple(
    (
        section,
        tuple(
            (section_attribute(section, suffix), field) for suffix, field in SECTION_FIELDS.items()
        ),
    )
    for section in SECTIONS
)


def stats_attributes(stats: BundleStats) -> dict[str, str | int]:
    """The span attributes of one build's stats: totals, encoding and each section's counts.

    Args:
        stats: The build's stats.
    """
    attributes: dict[str, str | int] = {
        ATTR_TOKENIZER_ENCODING: stats.encoding,
        ATTR_TOKENS_TOTAL: stats.tokens_total,
        ATTR_TOKENS_BUDGET: stats.budget_total,
    }
    sections = stats.sections
    for section, keys in _SECTION_ATTRIBUTE_KEYS:
        figures = sections[section]
        for name, field in keys:
            attributes[name] = getattr(figures, field)
    return attributes


def flag_attributes(flag: FlagOutcome, context_id: str) -> dict[str, str | bool]:
    """The feature-flag convention attributes of one evaluation.

    Args:
        flag: The evaluation's outcome.
        context_id: The evaluation context's targeting key (the client id).
    """
    return dict(_flag_attributes(flag, context_id))


@functools.lru_cache(maxsize=1024)
def _flag_attributes(flag: FlagOutcome, context_id: str) -> Mapping[str, str | bool]:
    """``flag_attributes``, kept per outcome and client: a client's evaluations repeat."""
    attributes: dict[str, str | bool] = {
        ATTR_FEATURE_FLAG_KEY: flag.key,
        ATTR_FEATURE_FLAG_RESULT_VALUE: flag.value,
        ATTR_FEATURE_FLAG_RESULT_REASON: flag_reason_value(flag.reason),
        ATTR_FEATURE_FLAG_CONTEXT_ID: context_id,
    }
    optional = {
        ATTR_FEATURE_FLAG_RESULT_VARIANT: flag.variant,
        ATTR_FEATURE_FLAG_PROVIDER_NAME: flag.provider,
        ATTR_FEATURE_FLAG_SET_ID: flag.set_id,
        ATTR_FEATURE_FLAG_VERSION: flag.version,
    }
    attributes.update({name: value for name, value in optional.items() if value is not None})
    if flag.error_code is not None:
        attributes[ATTR_ERROR_TYPE] = flag.error_code.lower()
    return MappingProxyType(attributes)


def resolve_attributes(
    path: str, pipeline: str | None, flag: FlagOutcome | None, context_id: str | None
) -> Mapping[str, str | bool]:
    """The resolve span's attributes known without a build: path, pipeline and the flag's.

    Args:
        path: ``leadctx.bundle.path``.
        pipeline: ``leadctx.pipeline``; ``None`` when the request did not validate.
        flag: The evaluation, or ``None`` when the flag was not asked.
        context_id: The evaluation's targeting key (with ``flag``).
    """
    return _resolve_attributes(path, pipeline, flag, context_id)


@functools.lru_cache(maxsize=1024)
def _resolve_attributes(
    path: str, pipeline: str | None, flag: FlagOutcome | None, context_id: str | None
) -> Mapping[str, str | bool]:
    attributes: dict[str, str | bool] = {ATTR_BUNDLE_PATH: path}
    if pipeline is not None:
        attributes[ATTR_PIPELINE] = pipeline
    if flag is not None and context_id is not None:
        attributes.update(_flag_attributes(flag, context_id))
    return MappingProxyType(attributes)


def resolution_attributes(resolution: ContextResolution) -> Mapping[str, Any]:
    """Every attribute of one call's resolve span: path, pipeline, the flag's, and on the
    shared path the stats, on a fallback its reason.

    Args:
        resolution: The call's outcome.
    """
    pipeline = resolution.pipeline
    # The part without stats repeats from call to call (path, pipeline, flag, client): kept.
    known = _resolve_attributes(
        resolution.path.value,
        None if pipeline is None else pipeline.value,
        None if resolution.client_id is None else resolution.flag,
        resolution.client_id,
    )
    stats = resolution.stats
    reason = resolution.fallback_reason
    if stats is None and reason is None:
        return known
    attributes: dict[str, Any] = dict(known)
    if stats is not None:
        attributes.update(stats_attributes(stats))
    if reason is not None:
        attributes[ATTR_BUNDLE_FALLBACK_REASON] = reason.value
    if resolution.error_type is not None:
        attributes[ATTR_ERROR_TYPE] = resolution.error_type
    return attributes


@functools.lru_cache(maxsize=16)
def _pipeline_only(pipeline: str) -> Mapping[str, str]:
    return MappingProxyType({ATTR_PIPELINE: pipeline})


Attributes = tuple[tuple[str, str], ...]
_SectionPoints = tuple[tuple[SectionName, dict[str, str], Attributes], ...]
_PendingBuild = tuple[
    dict[str, str], float, _SectionPoints, tuple[int, ...] | None, trace.SpanContext | None
]
"""One build's histogram measurements as kept until the next collection: the duration's
attributes and value, the sections' attributes and tokens (``None`` for a failed build) and
the build span's context (``None`` for a span that is not valid)."""


# Metric attribute sets, built once per pipeline (and section, path, reason or error type):
# the SDK hashes what it is given, it need not be rebuilt on every call. The arguments come
# from closed sets (pipelines, sections, paths, reasons, exception classes), so the caches stay
# small. Never mutated: the SDK may keep a reference to the first set it sees.
@functools.lru_cache(maxsize=256)
def _duration_point(pipeline: str, error_type: str | None) -> dict[str, str]:
    if error_type is None:
        return {ATTR_PIPELINE: pipeline}
    return {ATTR_PIPELINE: pipeline, ATTR_ERROR_TYPE: error_type}


@functools.lru_cache(maxsize=64)
def _section_points(pipeline: str) -> _SectionPoints:
    return tuple(
        (
            section,
            {ATTR_PIPELINE: pipeline, ATTR_SECTION: section},
            ((ATTR_PIPELINE, pipeline), (ATTR_SECTION, section)),
        )
        for section in SECTIONS
    )


@functools.lru_cache(maxsize=256)
def _resolution_key(path: str, pipeline: str | None, reason: str | None) -> Attributes:
    key: Attributes = ((ATTR_BUNDLE_PATH, path),)
    if pipeline is not None:
        key += ((ATTR_PIPELINE, pipeline),)
    if reason is not None:
        key += ((ATTR_BUNDLE_FALLBACK_REASON, reason),)
    return key


class _Tally:
    """Cumulative counts per attribute set, read by observable counters at collection time.

    A counter measurement through the SDK costs several microseconds (attribute hashing,
    locks, aggregation); the gate adds up to seven per call. Adding to a dict under a lock
    costs a fraction of that, and the SDK reads the sums only when it exports.
    """

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._counts: dict[Attributes, int] = {}

    def add(self, value: int, attributes: Attributes) -> None:
        with self._lock:
            self._counts[attributes] = self._counts.get(attributes, 0) + value

    def add_locked(self, value: int, attributes: Attributes) -> None:
        """``add`` for a caller that holds the lock (one acquisition for several counts)."""
        counts = self._counts
        counts[attributes] = counts.get(attributes, 0) + value

    def observe(self, options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
        with self._lock:
            counts = list(self._counts.items())
        return [metrics.Observation(value, dict(attributes)) for attributes, value in counts]


PENDING_BUILDS_LIMIT: Final = 4096
"""Builds whose histogram measurements wait for the meter's next collection, at most.

Enough for 68 builds a second per process at the SDK's default export interval (60 s); a
build beyond it records at once, in the call, as if nothing waited. Until a collection has
come once (no SDK installed, or none collected yet), at most ``PENDING_BUILDS_BEFORE_COLLECTION``.
"""
PENDING_BUILDS_BEFORE_COLLECTION: Final = 64

_NO_SPAN: Final = trace.set_span_in_context(trace.INVALID_SPAN, context.Context())
"""The context of a waiting measurement whose build span was not valid (no exemplar). Not
empty: the SDK takes an empty context for none and reads the recording thread's."""


class _Instruments:
    """The gate's metric instruments, created once from one meter.

    Counts are tallied in process (``_Tally``). A build's histogram measurements (its duration,
    its sections' tokens) are kept too, as they are, and handed to the SDK when the meter
    collects: the SDK prices each measurement at several microseconds (its attributes are
    cleaned, hashed and aggregated under a lock), four per build, and a pipeline waits for
    them if they are recorded in the call. The observable counters' callbacks, which the SDK
    runs at the start of every collection before it reads its storage, record them first:
    every collection, the last one at shutdown included, reads what happened before it, the
    same values with the same attributes, and the exemplars of the same spans.
    """

    def __init__(self, meter: metrics.Meter) -> None:
        # One lock for the three: a build adds six counts under a single acquisition.
        self.lock = threading.Lock()
        self.resolutions = _Tally(self.lock)
        self.items_truncated = _Tally(self.lock)
        self.items_dropped = _Tally(self.lock)
        self.pending: collections.deque[_PendingBuild] = collections.deque()
        self.pending_limit = PENDING_BUILDS_BEFORE_COLLECTION
        meter.create_observable_counter(
            METRIC_RESOLUTIONS,
            callbacks=[self._collecting(self.resolutions)],
            unit="{resolution}",
            description="Context resolutions",
        )
        meter.create_observable_counter(
            METRIC_SECTION_ITEMS_TRUNCATED,
            callbacks=[self._collecting(self.items_truncated)],
            unit="{item}",
            description="Items cut short",
        )
        meter.create_observable_counter(
            METRIC_SECTION_ITEMS_DROPPED,
            callbacks=[self._collecting(self.items_dropped)],
            unit="{item}",
            description="Items left out",
        )
        self.section_tokens = meter.create_histogram(
            METRIC_SECTION_TOKENS,
            unit="{token}",
            description="Tokens of each section of a shared bundle",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self.build_duration = meter.create_histogram(
            METRIC_BUILD_DURATION,
            unit="s",
            description="Duration of the shared path: sources read and bundle built",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )

    def _collecting(
        self, tally: _Tally
    ) -> Callable[[metrics.CallbackOptions], Iterable[metrics.Observation]]:
        """``tally``'s callback, which first hands the waiting measurements to the SDK."""

        def observe(options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
            self.record_pending()
            return tally.observe(options)

        return observe

    def defer(self, build: _PendingBuild) -> None:
        """Keep ``build``'s measurements for the next collection, or record them now when
        ``pending_limit`` builds already wait."""
        if len(self.pending) < self.pending_limit:
            self.pending.append(build)
        else:
            self.record(build)

    def record_pending(self) -> None:
        """Record every waiting build's measurements (in a collection's callback)."""
        self.pending_limit = PENDING_BUILDS_LIMIT
        pending = self.pending
        while True:
            try:
                build = pending.popleft()
            except IndexError:
                return
            try:
                self.record(build)
            except BaseException as exc:  # noqa: BLE001 - telemetry never raises
                _reraise_process_exit(exc)
                _ignore_failure("build metrics")

    def record(self, build: _PendingBuild) -> None:
        """Hand one build's measurements to the SDK, in the context of its span (exemplars)."""
        duration_point, duration_s, points, tokens, span_context = build
        # An explicit context, never the collecting thread's: a collection asked for inside
        # another span must not lend it the exemplar.
        when = (
            _NO_SPAN
            if span_context is None
            else trace.set_span_in_context(trace.NonRecordingSpan(span_context), context.Context())
        )
        self.build_duration.record(duration_s, duration_point, context=when)
        if tokens is None:
            return
        record = self.section_tokens.record
        for (_, point, _), count in zip(points, tokens, strict=True):
            record(count, point, context=when)


_instruments_by_provider: weakref.WeakKeyDictionary[object, _Instruments] = (
    weakref.WeakKeyDictionary()
)
_global_instruments: list[_Instruments] = []
_instruments_lock = threading.Lock()


def _shared_instruments(meter_provider: metrics.MeterProvider | None) -> _Instruments:
    """The one set of instruments, tallies and waiting measurements per meter provider.

    A meter provider gives every ``GateTelemetry`` on it the same meter, and a meter that is
    asked again for an instrument of the same name returns the first one, with the first
    one's callbacks: a second set of tallies would never be read. So every ``GateTelemetry``
    on one provider (the global one included, whether it was asked for by ``None`` or by
    itself) shares one set and its counts add up, as its sync instruments' do.
    """
    with _instruments_lock:
        current = metrics.get_meter_provider()
        if meter_provider is None or meter_provider is current:
            with contextlib.suppress(TypeError):  # the global one, already asked for by itself
                if current in _instruments_by_provider:
                    return _instruments_by_provider[current]
            if not _global_instruments:
                meter = metrics.get_meter(INSTRUMENTATION_NAME, meter_provider=current)
                _global_instruments.append(_Instruments(meter))
            return _global_instruments[0]
        try:
            instruments = _instruments_by_provider.get(meter_provider)
        except TypeError:  # a provider that cannot be weakly referenced: its own set
            return _Instruments(
                metrics.get_meter(INSTRUMENTATION_NAME, meter_provider=meter_provider)
            )
        if instruments is None:
            instruments = _Instruments(
                metrics.get_meter(INSTRUMENTATION_NAME, meter_provider=meter_provider)
            )
            _instruments_by_provider[meter_provider] = instruments
        return instruments


class _SpanScope:
    """``with``: start a span and make it current; on exit detach and end it, never raising.

    A class rather than a ``contextlib.contextmanager`` generator: every call opens one or two
    of these, and a generator's set-up and tear-down cost more than the no-op span itself.
    """

    __slots__ = ("_attributes", "_name", "_span", "_token", "_tracer")

    def __init__(
        self, tracer: trace.Tracer, name: str, attributes: Mapping[str, Any] | None
    ) -> None:
        self._tracer = tracer
        self._name = name
        self._attributes = attributes
        self._span: Span | None = None
        self._token: object = None

    def __enter__(self) -> Span:
        try:
            span = self._tracer.start_span(self._name, attributes=self._attributes)
        except BaseException as exc:  # noqa: BLE001 - telemetry never raises into the pipeline
            _reraise_process_exit(exc)
            _ignore_failure("span start")
            return trace.INVALID_SPAN
        try:
            self._token = context.attach(trace.set_span_in_context(span))
        except BaseException as exc:  # noqa: BLE001 - telemetry never raises into the pipeline
            _reraise_process_exit(exc)
            _ignore_failure("span start")
            with contextlib.suppress(Exception):
                span.end()
            return trace.INVALID_SPAN
        self._span = span
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span = self._span
        if span is None:
            return
        try:
            context.detach(self._token)  # type: ignore[arg-type]
            span.end()
        except BaseException as failure:  # noqa: BLE001 - telemetry never raises into the pipeline
            _reraise_process_exit(failure)
            _ignore_failure("span end")


def _reraise_process_exit(exc: BaseException) -> None:
    """Telemetry swallows every failure but the two that stop the process (``fallback``)."""
    if isinstance(exc, PROCESS_EXITS):
        raise exc


def _set_error_status(span: Span, description: str) -> None:
    """Status ERROR with a fixed sentence (never an exception's message), never raising."""
    try:
        span.set_status(Status(StatusCode.ERROR, description))
    except BaseException as exc:  # noqa: BLE001 - telemetry never raises into the pipeline
        _reraise_process_exit(exc)
        _ignore_failure("span status")


def _ignore_failure(what: str) -> None:
    """Report a telemetry failure at DEBUG, once more guarded: logging itself may be broken."""
    with contextlib.suppress(Exception):
        logger.debug("leadctx telemetry failed (%s); the pipeline is not affected", what)


class GateTelemetry:
    """Where the gate's spans, metrics and log records go.

    Args:
        tracer_provider: The tracer provider; ``None`` uses the global one (a no-op until the
            application installs an SDK, which it may do later: the global tracer follows).
        meter_provider: The meter provider; ``None`` uses the global one, likewise.

    Every method swallows what the tracer, meter or a log handler raises: telemetry cannot
    fail a pipeline. A broken meter leaves the gate without metrics, nothing else.
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self._tracer: trace.Tracer = trace.NoOpTracer()
        self._instruments: _Instruments | None = None
        try:
            self._tracer = trace.get_tracer(INSTRUMENTATION_NAME, tracer_provider=tracer_provider)
        except BaseException as exc:  # noqa: BLE001 - a broken tracer provider must not break the gate
            _reraise_process_exit(exc)
            _ignore_failure("tracer")
        try:
            self._instruments = _shared_instruments(meter_provider)
        except BaseException as exc:  # noqa: BLE001 - a broken meter provider must not break the gate
            _reraise_process_exit(exc)
            _ignore_failure("meter")

    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> _SpanScope:
        """A current span named ``name`` that records no exception message.

        An exception escaping the block is neither recorded (its message may be content) nor
        turned into a status: callers set ``error.type`` and the status themselves. A tracer
        that raises gives a non-recording span instead.

        Args:
            name: ``SPAN_CONTEXT_RESOLVE`` or ``SPAN_BUNDLE_BUILD``.
            attributes: Attributes known at the start.
        """
        return _SpanScope(self._tracer, name, attributes)

    @staticmethod
    def is_recording(span: Span) -> bool:
        """Whether ``span`` keeps attributes (``False`` for no-op spans, or if it raises).

        Args:
            span: The span.
        """
        try:
            return span.is_recording()
        except BaseException as exc:  # noqa: BLE001 - telemetry never raises into the pipeline
            _reraise_process_exit(exc)
            _ignore_failure("span is_recording")
            return False

    @staticmethod
    def set_attributes(span: Span, attributes: Mapping[str, Any]) -> None:
        """Set ``attributes`` on ``span``, ignoring failures.

        Args:
            span: The span.
            attributes: Names from this module, values that are counts or fixed names.
        """
        try:
            span.set_attributes(attributes)
        except BaseException as exc:  # noqa: BLE001 - telemetry never raises into the pipeline
            _reraise_process_exit(exc)
            _ignore_failure("span attributes")

    @staticmethod
    def mark_failed(span: Span, error_type: str, description: str) -> None:
        """Set ``error.type`` and status ERROR; ``description`` must be a fixed sentence.

        Args:
            span: The span.
            error_type: From ``error_type_of``: a class name, never a message.
            description: Why, in words chosen here (``"shared build failed: timeout"``).
        """
        try:
            span.set_attribute(ATTR_ERROR_TYPE, error_type)
        except BaseException as exc:  # noqa: BLE001 - telemetry never raises into the pipeline
            _reraise_process_exit(exc)
            _ignore_failure("span status")
        _set_error_status(span, description)

    def resolve_span(self) -> _SpanScope:
        """The ``leadctx.context.resolve`` span of one call; its attributes come at the end,
        from ``record_resolution``."""
        return _SpanScope(self._tracer, SPAN_CONTEXT_RESOLVE, None)

    def build_span(self, pipeline: str | None) -> _SpanScope:
        """The ``leadctx.bundle.build`` span of one shared path, current while it runs, so a
        source's own instrumentation nests under it.

        Args:
            pipeline: ``leadctx.pipeline``, when known before the build starts.
        """
        return _SpanScope(
            self._tracer, SPAN_BUNDLE_BUILD, None if pipeline is None else _pipeline_only(pipeline)
        )

    def record_build(
        self,
        span: Span,
        outcome: LeadContextBundle | SharedPathFailure,
        duration_s: float,
        pipeline: str,
        *,
        standalone: bool = False,
    ) -> None:
        """Record one shared-path run on its build span and in the build metrics.

        A failure sets ``error.type`` and status ERROR on the span. The stats of a build
        under the gate go on the resolve span (``record_resolution``: set once, where
        operators search); a ``standalone`` build (no resolve span around it) carries its
        pipeline, path and stats on the build span itself.

        Args:
            span: The build span (from ``build_span``).
            outcome: The bundle, or why the shared path failed.
            duration_s: Wall time of sources and build as the caller waited, in seconds.
            pipeline: The pipeline that asked (``unknown`` if its input did not validate).
            standalone: Whether the build ran outside the gate (``leadctx bundle build``).
        """
        if isinstance(outcome, SharedPathFailure):
            self.mark_failed(span, outcome.error_type, f"shared build failed: {outcome.reason}")
            stats, error_type = None, outcome.error_type
        else:
            stats, error_type = outcome.stats, None
        if standalone:
            attributes: dict[str, Any] = {ATTR_PIPELINE: pipeline}
            if stats is not None:
                attributes[ATTR_BUNDLE_PATH] = "shared"
                attributes.update(stats_attributes(stats))
            self.set_attributes(span, attributes)
        self._record_build_metrics(span, pipeline, duration_s, stats, error_type)

    def _record_build_metrics(
        self,
        span: Span,
        pipeline: str,
        duration_s: float,
        stats: BundleStats | None,
        error_type: str | None,
    ) -> None:
        instruments = self._instruments
        if instruments is None:
            return
        try:
            points = _section_points(pipeline)
            tokens: tuple[int, ...] | None = None
            if stats is not None:
                sections = stats.sections
                tokens = tuple(sections[section].tokens for section, _, _ in points)
                with instruments.lock:
                    for section, _, key in points:
                        figures = sections[section]
                        instruments.items_truncated.add_locked(figures.items_truncated, key)
                        instruments.items_dropped.add_locked(figures.items_dropped, key)
            span_context = span.get_span_context()
            instruments.defer(
                (
                    _duration_point(pipeline, error_type),
                    duration_s,
                    points,
                    tokens,
                    span_context if span_context.is_valid else None,
                )
            )
        except BaseException as exc:  # noqa: BLE001 - telemetry never raises into the pipeline
            _reraise_process_exit(exc)
            _ignore_failure("build metrics")

    def record_resolution(self, span: Span, resolution: ContextResolution) -> None:
        """Record one call's outcome: the resolve span's attributes and status, the
        resolutions counter and the INFO log record, all from ``resolution``.

        Args:
            span: The resolve span (from ``resolve_span``).
            resolution: What the pipeline gets.
        """
        if self.is_recording(span):
            # Built only for a span that keeps them: without an SDK this costs nothing.
            self.set_attributes(span, resolution_attributes(resolution))
            if resolution.error_type is not None:
                _set_error_status(
                    span, f"shared path failed ({resolution.fallback_reason}); legacy context used"
                )
        self._count_resolution(resolution)
        log_resolution(RESOLUTION_LOGGER, resolution)

    def record_legacy_failure(self, span: Span, exc: BaseException) -> None:
        """Mark the resolve span failed by ``legacy()``'s own exception (its class only).

        No metric and no log record: the call did not resolve, and the exception is the
        pipeline's to report.

        Args:
            span: The resolve span.
            exc: What ``legacy()`` raised.
        """
        self.mark_failed(span, error_type_of(exc), "legacy context assembly raised")

    def _count_resolution(self, resolution: ContextResolution) -> None:
        instruments = self._instruments
        if instruments is None:
            return
        try:
            instruments.resolutions.add(
                1,
                _resolution_key(
                    resolution.path.value,
                    None if resolution.pipeline is None else resolution.pipeline.value,
                    None
                    if resolution.fallback_reason is None
                    else resolution.fallback_reason.value,
                ),
            )
        except BaseException as exc:  # noqa: BLE001 - telemetry never raises into the pipeline
            _reraise_process_exit(exc)
            _ignore_failure("resolution metrics")


_RESOLUTION_MESSAGE: Final = (
    "context resolved: pipeline=%s path=%s fallback_reason=%s error_type=%s "
    "flag=%s/%s/%s tokens=%s/%s sections=%s"
)


def log_resolution(target: logging.Logger, resolution: ContextResolution) -> None:
    """Write the one INFO record of a resolution: counts in the message and as ``extra``.

    ``extra`` fields (for JSON log formatters): ``leadctx_pipeline``, ``leadctx_path``,
    ``leadctx_fallback_reason``, ``leadctx_error_type``, ``leadctx_flag`` (the flag fields of
    ``metadata()``), ``leadctx_stats`` (``BundleStats`` as JSON data, or ``None``).

    The record names this function as its origin (``pathname``, ``funcName``, ``lineno``), as
    ``Logger.info`` would, without walking the stack for it: it is made with the logger's
    ``makeRecord`` and given to its ``handle``, the two steps ``Logger.info`` ends in.

    Args:
        target: The gate's logger.
        resolution: The result the pipeline got.
    """
    try:
        if not target.isEnabledFor(logging.INFO):
            return
        stats = resolution.stats
        flag = resolution.flag
        pipeline = resolution.pipeline
        reason = resolution.fallback_reason
        summary = "none"
        stats_json = None
        if stats is not None:
            summary = " ".join(
                f"{name}={s.tokens}/{s.budget}:{s.items_included}/{s.items_total}"
                f"+{s.items_truncated}cut"
                for name, s in stats.sections.items()
            )
            stats_json = stats.to_json()
        record = target.makeRecord(
            target.name,
            logging.INFO,
            _RECORD_ORIGIN.co_filename,
            _RECORD_ORIGIN.co_firstlineno,
            _RESOLUTION_MESSAGE,
            (
                pipeline,
                resolution.path,
                reason or "none",
                resolution.error_type or "none",
                flag.variant,
                flag.reason,
                flag.source,
                None if stats is None else stats.tokens_total,
                None if stats is None else stats.budget_total,
                summary,
            ),
            None,
            _RECORD_ORIGIN.co_name,
            {
                "leadctx_pipeline": str(pipeline),
                "leadctx_path": resolution.path.value,
                "leadctx_fallback_reason": None if reason is None else str(reason),
                "leadctx_error_type": resolution.error_type,
                "leadctx_flag": flag.to_json(),
                "leadctx_stats": stats_json,
            },
        )
        target.handle(record)
    except BaseException as exc:  # noqa: BLE001 - a broken log handler must not fail the pipeline
        _reraise_process_exit(exc)
        _ignore_failure("log record")


_RECORD_ORIGIN: Final = log_resolution.__code__
"""Where each resolution record says it comes from."""
