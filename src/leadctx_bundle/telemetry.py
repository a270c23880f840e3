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
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import context, metrics, trace
from opentelemetry.trace import Span, Status, StatusCode

from leadctx_bundle.stats import SECTIONS, BundleStats, SectionName

if TYPE_CHECKING:
    from leadctx_bundle.gate import ContextResolution, FlagOutcome

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
    "SECTION_FIELDS",
    "SPAN_BUNDLE_BUILD",
    "SPAN_CONTEXT_RESOLVE",
    "GateTelemetry",
    "error_type_of",
    "flag_attributes",
    "flag_reason_value",
    "log_resolution",
    "section_attribute",
    "stats_attributes",
]

logger = logging.getLogger(__name__)

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
"""Histogram ``s``: wall time of the shared path (sources and build), by pipeline and, when
it failed, ``error.type``."""

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


def error_type_of(exc: BaseException) -> str:
    """``error.type`` of an exception: its class, module-qualified unless a builtin.

    Only the class: an exception's message may quote a lead's data and never leaves here.

    Args:
        exc: The exception.
    """
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


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
    for section in SECTIONS:
        figures = stats.sections[section]
        for suffix, field in SECTION_FIELDS.items():
            attributes[section_attribute(section, suffix)] = getattr(figures, field)
    return attributes


def flag_attributes(flag: FlagOutcome, context_id: str) -> dict[str, str | bool]:
    """The feature-flag convention attributes of one evaluation.

    Args:
        flag: The evaluation's outcome.
        context_id: The evaluation context's targeting key (the client id).
    """
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
    return attributes


Attributes = tuple[tuple[str, str], ...]


class _Tally:
    """Cumulative counts per attribute set, read by observable counters at collection time.

    A counter measurement through the SDK costs several microseconds (attribute hashing,
    locks, aggregation); the gate adds up to seven per call. Adding to a dict under a lock
    costs a fraction of that, and the SDK reads the sums only when it exports.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[Attributes, int] = {}

    def add(self, value: int, attributes: Attributes) -> None:
        with self._lock:
            self._counts[attributes] = self._counts.get(attributes, 0) + value

    def observe(self, options: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
        with self._lock:
            counts = list(self._counts.items())
        return [metrics.Observation(value, dict(attributes)) for attributes, value in counts]


class _Instruments:
    """The gate's metric instruments, created once from one meter."""

    def __init__(self, meter: metrics.Meter) -> None:
        self.resolutions = _Tally()
        self.items_truncated = _Tally()
        self.items_dropped = _Tally()
        meter.create_observable_counter(
            METRIC_RESOLUTIONS,
            callbacks=[self.resolutions.observe],
            unit="{resolution}",
            description="Context resolutions",
        )
        meter.create_observable_counter(
            METRIC_SECTION_ITEMS_TRUNCATED,
            callbacks=[self.items_truncated.observe],
            unit="{item}",
            description="Items cut short",
        )
        meter.create_observable_counter(
            METRIC_SECTION_ITEMS_DROPPED,
            callbacks=[self.items_dropped.observe],
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
        except Exception:  # noqa: BLE001 - a broken tracer provider must not break the gate
            _ignore_failure("tracer")
        try:
            meter = metrics.get_meter(INSTRUMENTATION_NAME, meter_provider=meter_provider)
            self._instruments = _Instruments(meter)
        except Exception:  # noqa: BLE001 - a broken meter provider must not break the gate
            _ignore_failure("meter")

    @contextlib.contextmanager
    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Span]:
        """A current span named ``name`` that records no exception message.

        An exception escaping the block is neither recorded (its message may be content) nor
        turned into a status: callers set ``error.type`` and the status themselves. A tracer
        that raises gives a non-recording span instead.

        Args:
            name: ``SPAN_CONTEXT_RESOLVE`` or ``SPAN_BUNDLE_BUILD``.
            attributes: Attributes known at the start.
        """
        try:
            span = self._tracer.start_span(name, attributes=attributes)
            token = context.attach(trace.set_span_in_context(span))
        except Exception:  # noqa: BLE001 - telemetry never raises into the pipeline
            _ignore_failure("span start")
            yield trace.INVALID_SPAN
            return
        try:
            yield span
        finally:
            try:
                context.detach(token)
                span.end()
            except Exception:  # noqa: BLE001 - telemetry never raises into the pipeline
                _ignore_failure("span end")

    @staticmethod
    def is_recording(span: Span) -> bool:
        """Whether ``span`` keeps attributes (``False`` for no-op spans, or if it raises).

        Args:
            span: The span.
        """
        try:
            return span.is_recording()
        except Exception:  # noqa: BLE001 - telemetry never raises into the pipeline
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
        except Exception:  # noqa: BLE001 - telemetry never raises into the pipeline
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
            span.set_status(Status(StatusCode.ERROR, description))
        except Exception:  # noqa: BLE001 - telemetry never raises into the pipeline
            _ignore_failure("span status")

    def record_build(
        self, pipeline: str, duration_s: float, stats: BundleStats | None, error_type: str | None
    ) -> None:
        """Record one shared-path run: its duration and, when it built, per-section counts.

        Args:
            pipeline: The pipeline that asked.
            duration_s: Wall time of sources and build, in seconds.
            stats: The build's stats; ``None`` when it failed.
            error_type: ``error.type`` of the failure, ``None`` on success.
        """
        instruments = self._instruments
        if instruments is None:
            return
        try:
            attributes = {ATTR_PIPELINE: pipeline}
            if error_type is not None:
                attributes[ATTR_ERROR_TYPE] = error_type
            instruments.build_duration.record(duration_s, attributes)
            if stats is None:
                return
            for section in SECTIONS:
                figures = stats.sections[section]
                point = {ATTR_PIPELINE: pipeline, ATTR_SECTION: section}
                instruments.section_tokens.record(figures.tokens, point)
                key = ((ATTR_PIPELINE, pipeline), (ATTR_SECTION, section))
                instruments.items_truncated.add(figures.items_truncated, key)
                instruments.items_dropped.add(figures.items_dropped, key)
        except Exception:  # noqa: BLE001 - telemetry never raises into the pipeline
            _ignore_failure("build metrics")

    def record_resolution(self, resolution: ContextResolution) -> None:
        """Count one resolution by pipeline, path and fallback reason.

        Args:
            resolution: The result the pipeline got.
        """
        instruments = self._instruments
        if instruments is None:
            return
        try:
            key: Attributes = ((ATTR_BUNDLE_PATH, resolution.path.value),)
            if resolution.pipeline is not None:
                key += ((ATTR_PIPELINE, resolution.pipeline.value),)
            if resolution.fallback_reason is not None:
                key += ((ATTR_BUNDLE_FALLBACK_REASON, resolution.fallback_reason.value),)
            instruments.resolutions.add(1, key)
        except Exception:  # noqa: BLE001 - telemetry never raises into the pipeline
            _ignore_failure("resolution metrics")


def log_resolution(target: logging.Logger, resolution: ContextResolution) -> None:
    """Write the one INFO record of a resolution: counts in the message and as ``extra``.

    ``extra`` fields (for JSON log formatters): ``leadctx_pipeline``, ``leadctx_path``,
    ``leadctx_fallback_reason``, ``leadctx_error_type``, ``leadctx_flag`` (the flag fields of
    ``metadata()``), ``leadctx_stats`` (``BundleStats`` as JSON data, or ``None``).

    Args:
        target: The gate's logger.
        resolution: The result the pipeline got.
    """
    try:
        if not target.isEnabledFor(logging.INFO):
            return
        payload = resolution.metadata()["leadctx"]
        stats = resolution.stats
        summary = "none"
        if stats is not None:
            summary = " ".join(
                f"{name}={s.tokens}/{s.budget}:{s.items_included}/{s.items_total}"
                f"+{s.items_truncated}cut"
                for name, s in stats.sections.items()
            )
        target.info(
            "context resolved: pipeline=%s path=%s fallback_reason=%s error_type=%s "
            "flag=%s/%s/%s tokens=%s/%s sections=%s",
            resolution.pipeline,
            resolution.path,
            resolution.fallback_reason or "none",
            resolution.error_type or "none",
            resolution.flag.variant,
            resolution.flag.reason,
            resolution.flag.source,
            None if stats is None else stats.tokens_total,
            None if stats is None else stats.budget_total,
            summary,
            extra={
                "leadctx_pipeline": str(resolution.pipeline),
                "leadctx_path": payload["path"],
                "leadctx_fallback_reason": payload["fallback_reason"],
                "leadctx_error_type": payload["error_type"],
                "leadctx_flag": payload["flag"],
                "leadctx_stats": payload["stats"],
            },
        )
    except Exception:  # noqa: BLE001 - a broken log handler must not fail the pipeline
        _ignore_failure("log record")
