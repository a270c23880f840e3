"""The gate's spans, metrics and log record, and that telemetry never fails a pipeline."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.hook.opentelemetry import TracingHook
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.semconv._incubating.attributes import feature_flag_attributes as ff
from opentelemetry.semconv._incubating.attributes.feature_flag_attributes import (
    FeatureFlagResultReasonValues,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.trace import StatusCode

from leadctx_bundle import GateTelemetry, resolve_context
from leadctx_bundle import telemetry as names
from leadctx_flags import ResolutionPath
from tests.gate.conftest import Recorded, sample
from tests.gate.providers import NeverReadyProvider


class FailingSource:
    def knowledge_assets(self, client_id: str) -> Iterable[Any]:
        raise ConnectionError("connection to db-7 refused")

    def lead_memory(self, lead_id: str) -> Iterable[Any]:
        return []

    def thread(self, lead_id: str) -> Iterable[Any]:
        return []


def test_feature_flag_names_are_the_semantic_conventions() -> None:
    assert names.ATTR_FEATURE_FLAG_KEY == ff.FEATURE_FLAG_KEY
    assert names.ATTR_FEATURE_FLAG_RESULT_VALUE == ff.FEATURE_FLAG_RESULT_VALUE
    assert names.ATTR_FEATURE_FLAG_RESULT_VARIANT == ff.FEATURE_FLAG_RESULT_VARIANT
    assert names.ATTR_FEATURE_FLAG_RESULT_REASON == ff.FEATURE_FLAG_RESULT_REASON
    assert names.ATTR_FEATURE_FLAG_PROVIDER_NAME == ff.FEATURE_FLAG_PROVIDER_NAME
    assert names.ATTR_FEATURE_FLAG_CONTEXT_ID == ff.FEATURE_FLAG_CONTEXT_ID
    assert names.ATTR_FEATURE_FLAG_SET_ID == ff.FEATURE_FLAG_SET_ID
    assert names.ATTR_FEATURE_FLAG_VERSION == ff.FEATURE_FLAG_VERSION
    assert names.ATTR_ERROR_TYPE == ERROR_TYPE
    # Every OpenFeature reason maps to the conventions' lower-case value
    for value in FeatureFlagResultReasonValues:
        assert names.flag_reason_value(value.name) == value.value
    assert names.flag_reason_value("SOMETHING_A_PROVIDER_INVENTED") == "unknown"
    assert names.flag_reason_value(None) == "unknown"


def test_shared_path_span_tree_and_attributes(
    client: OpenFeatureClient, recorded: Recorded
) -> None:
    result = resolve_context(
        sample(), legacy=lambda: "legacy", client=client, telemetry=recorded.telemetry
    )
    (resolve,) = recorded.finished(names.SPAN_CONTEXT_RESOLVE)
    (build,) = recorded.finished(names.SPAN_BUNDLE_BUILD)
    # The build span is a child of the resolve span, in the same trace
    assert build.parent is not None
    assert build.parent.span_id == resolve.context.span_id
    assert build.context.trace_id == resolve.context.trace_id
    assert resolve.parent is None
    attributes = dict(resolve.attributes or {})
    assert result.stats is not None
    thread = result.stats.sections["thread"]
    assets = result.stats.sections["knowledge_assets"]
    assert {
        key: attributes[key]
        for key in (
            "feature_flag.key",
            "feature_flag.result.variant",
            "feature_flag.result.reason",
            "feature_flag.result.value",
            "feature_flag.provider.name",
            "feature_flag.context.id",
            "feature_flag.set.id",
            "leadctx.pipeline",
            "leadctx.bundle.path",
            "leadctx.tokenizer.encoding",
            "leadctx.tokens.total",
            "leadctx.tokens.budget",
            "leadctx.section.thread.tokens",
            "leadctx.section.thread.items.included",
            "leadctx.section.knowledge_assets.items.truncated",
            "leadctx.section.knowledge_assets.items.dropped",
            "leadctx.section.knowledge_assets.tokens.truncated",
            "leadctx.section.lead_memory.budget",
        )
    } == {
        "feature_flag.key": "shared_bundle.enabled",
        "feature_flag.result.variant": "on",
        "feature_flag.result.reason": "targeting_match",
        "feature_flag.result.value": True,
        "feature_flag.provider.name": "leadctx",
        "feature_flag.context.id": "acme",
        "feature_flag.set.id": "leadctx",
        "leadctx.pipeline": "draft",
        "leadctx.bundle.path": "shared",
        "leadctx.tokenizer.encoding": "o200k_base",
        "leadctx.tokens.total": result.stats.tokens_total,
        "leadctx.tokens.budget": result.stats.budget_total,
        "leadctx.section.thread.tokens": thread.tokens,
        "leadctx.section.thread.items.included": thread.items_included,
        "leadctx.section.knowledge_assets.items.truncated": assets.items_truncated,
        "leadctx.section.knowledge_assets.items.dropped": assets.items_dropped,
        "leadctx.section.knowledge_assets.tokens.truncated": assets.tokens_truncated,
        "leadctx.section.lead_memory.budget": result.stats.sections["lead_memory"].budget,
    }
    assert "leadctx.bundle.fallback_reason" not in attributes
    assert "error.type" not in attributes
    assert resolve.status.status_code is StatusCode.UNSET
    assert dict(build.attributes or {}) == {"leadctx.pipeline": "draft"}


def test_fallback_span_records_type_never_message(
    client: OpenFeatureClient, recorded: Recorded
) -> None:
    result = resolve_context(
        sample(),
        legacy=lambda: "legacy",
        client=client,
        source=FailingSource(),
        telemetry=recorded.telemetry,
    )
    assert result.path is ResolutionPath.FALLBACK
    (resolve,) = recorded.finished(names.SPAN_CONTEXT_RESOLVE)
    (build,) = recorded.finished(names.SPAN_BUNDLE_BUILD)
    for span in (resolve, build):
        assert dict(span.attributes or {})["error.type"] == "ConnectionError"
        assert span.status.status_code is StatusCode.ERROR
        assert span.events == ()  # no exception event, so no message
        assert "db-7" not in (span.status.description or "")
    assert resolve.status.description == "shared path failed (source_error); legacy context used"
    assert dict(resolve.attributes or {})["leadctx.bundle.fallback_reason"] == "source_error"


def test_flag_error_sets_error_type_to_the_error_code(recorded: Recorded) -> None:
    # A provider registered but not ready: OpenFeature answers PROVIDER_NOT_READY
    api.set_provider(NeverReadyProvider(), domain="never-ready-telemetry")
    client = api.get_client(domain="never-ready-telemetry")
    result = resolve_context(
        sample(), legacy=lambda: "legacy", client=client, telemetry=recorded.telemetry
    )
    assert (result.path, result.flag.error_code) == (ResolutionPath.LEGACY, "PROVIDER_NOT_READY")
    (resolve,) = recorded.finished(names.SPAN_CONTEXT_RESOLVE)
    attributes = dict(resolve.attributes or {})
    assert attributes["error.type"] == "provider_not_ready"
    assert attributes["feature_flag.result.reason"] == "error"


def test_metrics_names_units_and_attributes(client: OpenFeatureClient, recorded: Recorded) -> None:
    # Tight budgets: items are cut and dropped
    shared = resolve_context(
        sample(budgets={"total": 1500, "knowledge_assets": 700}),
        legacy=lambda: "legacy",
        client=client,
        telemetry=recorded.telemetry,
    )
    resolve_context(
        sample(client_id="globex"),
        legacy=lambda: "legacy",
        client=client,
        telemetry=recorded.telemetry,
    )
    resolve_context(
        sample(),
        legacy=lambda: "legacy",
        client=client,
        source=FailingSource(),
        telemetry=recorded.telemetry,
    )
    points = recorded.metric_points()
    units = recorded.metric_units()
    assert units == {
        "leadctx.context.resolutions": "{resolution}",
        "leadctx.bundle.section.tokens": "{token}",
        "leadctx.bundle.section.items.truncated": "{item}",
        "leadctx.bundle.section.items.dropped": "{item}",
        "leadctx.bundle.build.duration": "s",
    }
    resolutions = {
        tuple(sorted(dict(p.attributes).items())): p.value
        for p in points["leadctx.context.resolutions"]
    }
    assert resolutions == {
        (("leadctx.bundle.path", "shared"), ("leadctx.pipeline", "draft")): 1,
        (("leadctx.bundle.path", "legacy"), ("leadctx.pipeline", "draft")): 1,
        (
            ("leadctx.bundle.fallback_reason", "source_error"),
            ("leadctx.bundle.path", "fallback"),
            ("leadctx.pipeline", "draft"),
        ): 1,
    }
    assert shared.stats is not None
    tokens = {
        dict(p.attributes)["leadctx.bundle.section"]: p.sum
        for p in points["leadctx.bundle.section.tokens"]
    }
    assert tokens == {name: s.tokens for name, s in shared.stats.sections.items()}
    dropped = {
        dict(p.attributes)["leadctx.bundle.section"]: p.value
        for p in points["leadctx.bundle.section.items.dropped"]
    }
    assert dropped == {name: s.items_dropped for name, s in shared.stats.sections.items()}
    assert any(dropped.values())
    truncated = {
        dict(p.attributes)["leadctx.bundle.section"]: p.value
        for p in points["leadctx.bundle.section.items.truncated"]
    }
    assert truncated == {name: s.items_truncated for name, s in shared.stats.sections.items()}
    assert any(truncated.values())
    durations = {
        tuple(sorted(dict(p.attributes).items())): p.count
        for p in points["leadctx.bundle.build.duration"]
    }
    assert durations == {
        (("leadctx.pipeline", "draft"),): 1,
        (("error.type", "ConnectionError"), ("leadctx.pipeline", "draft")): 1,
    }


def test_one_info_record_per_call_with_stats(
    client: OpenFeatureClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="leadctx_bundle.gate"):
        result = resolve_context(sample(), legacy=lambda: "legacy", client=client)
    records = [r for r in caplog.records if r.name == "leadctx_bundle.gate"]
    assert len(records) == 1
    (record,) = records
    assert record.levelno == logging.INFO
    assert result.stats is not None
    message = record.getMessage()
    assert "path=shared" in message
    assert f"tokens={result.stats.tokens_total}/{result.stats.budget_total}" in message
    assert "thread=" in message
    extras = record.__dict__
    assert (extras["leadctx_path"], extras["leadctx_pipeline"]) == ("shared", "draft")
    assert extras["leadctx_stats"] == result.stats.model_dump(mode="json")
    assert extras["leadctx_flag"]["variant"] == "on"
    assert extras["leadctx_flag"] == result.metadata()["leadctx"]["flag"]
    assert (extras["leadctx_fallback_reason"], extras["leadctx_error_type"]) == (None, None)
    # It names where it comes from, as Logger.info would: the gate's telemetry
    assert (record.module, record.funcName) == ("telemetry", "log_resolution")
    assert Path(record.pathname) == Path(names.__file__)


class RaisingExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        raise RuntimeError("exporter down")

    def shutdown(self) -> None:
        return


class RaisingMeterProvider:
    def get_meter(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("meter down")


class RaisingInstrumentsMeterProvider:
    """A meter whose instruments raise on every record."""

    def get_meter(self, *args: Any, **kwargs: Any) -> Any:
        class Instrument:
            def add(self, *args: Any, **kwargs: Any) -> None:
                raise RuntimeError("instrument down")

            record = add

        class Meter:
            def __getattr__(self, name: str) -> Any:
                return lambda *_args, **_kwargs: Instrument()

        return Meter()


class RaisingHandler(logging.Handler):
    def handle(self, record: logging.LogRecord) -> bool:
        raise RuntimeError("log handler down")


class RaisingTracerProvider:
    def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
        class Tracer:
            def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
                raise RuntimeError("tracer down")

        return Tracer()


@pytest.mark.parametrize("meter_provider", [RaisingMeterProvider, RaisingInstrumentsMeterProvider])
@pytest.mark.parametrize("source", [None, FailingSource()])
def test_failing_telemetry_never_fails_the_pipeline(
    client: OpenFeatureClient, meter_provider: type, source: Any
) -> None:
    # Given an exporter, a meter and a log handler that all raise
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(RaisingExporter()))
    telemetry = GateTelemetry(tracer_provider=tracer_provider, meter_provider=meter_provider())
    gate_logger = logging.getLogger("leadctx_bundle.gate")
    handler = RaisingHandler()
    gate_logger.addHandler(handler)
    level = gate_logger.level
    gate_logger.setLevel(logging.INFO)
    sdk_logger = logging.getLogger("opentelemetry.sdk.trace.export")
    sdk_disabled = sdk_logger.disabled
    sdk_logger.disabled = True  # the SDK logs the exporter's failure with a traceback
    try:
        # When the pipeline resolves its context, shared and fallback
        result = resolve_context(
            sample(), legacy=lambda: "legacy", client=client, source=source, telemetry=telemetry
        )
    finally:
        gate_logger.removeHandler(handler)
        gate_logger.setLevel(level)
        sdk_logger.disabled = sdk_disabled
        tracer_provider.shutdown()
    # Then it gets its answer all the same
    expected = ResolutionPath.SHARED if source is None else ResolutionPath.FALLBACK
    assert result.path is expected
    assert result.text != ""


def test_a_raising_tracer_never_fails_the_pipeline(client: OpenFeatureClient) -> None:
    telemetry = GateTelemetry(tracer_provider=RaisingTracerProvider())  # type: ignore[arg-type]
    assert (
        resolve_context(sample(), legacy=lambda: "legacy", client=client, telemetry=telemetry).path
        is ResolutionPath.SHARED
    )


def test_tracing_hook_event_lands_in_the_resolve_span(
    client: OpenFeatureClient, recorded: Recorded
) -> None:
    # Given OpenFeature's own OpenTelemetry hook is installed
    api.add_hooks([TracingHook()])
    resolve_context(sample(), legacy=lambda: "legacy", client=client, telemetry=recorded.telemetry)
    (resolve,) = recorded.finished(names.SPAN_CONTEXT_RESOLVE)
    # Then its evaluation event is on our span, with the conventions' attributes
    (event,) = [e for e in resolve.events if e.name == "feature_flag.evaluation"]
    assert dict(event.attributes or {})["feature_flag.key"] == "shared_bundle.enabled"
    assert dict(event.attributes or {})["feature_flag.result.reason"] == "targeting_match"
    assert dict(event.attributes or {})["feature_flag.context.id"] == "acme"


class BlockedExporter(SpanExporter):
    """An exporter stuck on a collector that does not answer, until ``release`` is set."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(10)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def test_a_stuck_exporter_never_delays_the_pipeline(client: OpenFeatureClient) -> None:
    # Given a batch processor whose exporter hangs, with a queue of one span
    exporter = BlockedExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(
        BatchSpanProcessor(
            exporter, max_queue_size=1, max_export_batch_size=1, schedule_delay_millis=1
        )
    )
    telemetry = GateTelemetry(tracer_provider=tracer_provider)
    sdk_logger = logging.getLogger("opentelemetry.sdk.trace.export")
    sdk_disabled = sdk_logger.disabled
    sdk_logger.disabled = True  # the SDK reports the dropped spans
    try:
        first = resolve_context(
            sample(), legacy=lambda: "legacy", client=client, telemetry=telemetry
        )
        assert exporter.entered.wait(10)
        # When the pipeline goes on resolving while the exporter is stuck and the queue full
        later = [
            resolve_context(sample(), legacy=lambda: "legacy", client=client, telemetry=telemetry)
            for _ in range(5)
        ]
        # Then every call returned before the exporter was released
        assert not exporter.release.is_set()
        assert {r.path for r in [first, *later]} == {ResolutionPath.SHARED}
    finally:
        exporter.release.set()
        sdk_logger.disabled = sdk_disabled
        tracer_provider.shutdown()
