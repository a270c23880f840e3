"""The gate's metrics as a collection reads them: build measurements wait for it and none is
lost, every collection reads what happened before it, and every ``GateTelemetry`` on one
meter provider is counted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from openfeature.client import OpenFeatureClient
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from leadctx_bundle import GateTelemetry, resolve_context
from leadctx_bundle import telemetry as names
from leadctx_bundle.gate import build_traced
from tests.gate.conftest import sample


def points(reader: MetricReader | InMemoryMetricReader, name: str) -> list[Any]:
    """The data points of metric ``name`` in one collection by ``reader``."""
    assert isinstance(reader, InMemoryMetricReader)
    data = reader.get_metrics_data()
    if data is None:
        return []
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def duration_count(reader: InMemoryMetricReader) -> int:
    return sum(p.count for p in points(reader, names.METRIC_BUILD_DURATION))


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def test_every_build_before_a_collection_is_in_it_however_many_wait() -> None:
    # Given a meter no collection has read yet, and more builds than wait before the first
    reader = InMemoryMetricReader(preferred_temporality={Histogram: AggregationTemporality.DELTA})
    provider = MeterProvider(metric_readers=[reader])
    telemetry = GateTelemetry(meter_provider=provider)
    try:
        first = names.PENDING_BUILDS_BEFORE_COLLECTION + 6
        for _ in range(first):
            build_traced(sample(), telemetry=telemetry)
        # Then the first collection reads them all, with their sections' tokens
        assert duration_count(reader) == first
        # And builds after it are in the next one (delta: each collection its own)
        for _ in range(3):
            build_traced(sample(), telemetry=telemetry)
        tokens = points(reader, names.METRIC_SECTION_TOKENS)
        assert {dict(p.attributes)[names.ATTR_SECTION] for p in tokens} == {
            "knowledge_assets",
            "lead_memory",
            "thread",
        }
        assert {p.count for p in tokens} == {3}
        assert duration_count(reader) == 0
    finally:
        provider.shutdown()


def test_what_waits_stays_bounded_when_nothing_collects() -> None:
    # Given a meter provider whose reader never collects
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    telemetry = GateTelemetry(meter_provider=provider)
    try:
        builds = names.PENDING_BUILDS_BEFORE_COLLECTION * 3
        for _ in range(builds):
            build_traced(sample(), telemetry=telemetry)
        # Then at most the bound waits (the rest was recorded at once), and nothing is lost
        instruments = telemetry._instruments  # the bound is the point
        assert instruments is not None
        assert len(instruments.pending) == names.PENDING_BUILDS_BEFORE_COLLECTION
        assert duration_count(reader) == builds
        assert not instruments.pending
    finally:
        provider.shutdown()


def test_every_reader_gets_every_build() -> None:
    # Given two readers on one provider, the second collecting first
    first, second = InMemoryMetricReader(), InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[first, second])
    telemetry = GateTelemetry(meter_provider=provider)
    try:
        for _ in range(4):
            build_traced(sample(), telemetry=telemetry)
        # Then both read all four builds
        assert duration_count(second) == 4
        assert duration_count(first) == 4
    finally:
        provider.shutdown()


def test_a_build_measurement_keeps_its_spans_exemplar(
    client: OpenFeatureClient, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    # Given the SDK's default exemplar filter (measurements in a sampled span keep its ids)
    tracer_provider, exporter = spans
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    telemetry = GateTelemetry(tracer_provider=tracer_provider, meter_provider=provider)
    try:
        resolve_context(sample(), legacy=lambda: "legacy", client=client, telemetry=telemetry)
        # Then the duration's exemplar names the call's build span, though recorded later
        (build,) = [s for s in exporter.get_finished_spans() if s.name == names.SPAN_BUNDLE_BUILD]
        assert build.context is not None
        (duration,) = points(reader, names.METRIC_BUILD_DURATION)
        assert [(e.trace_id, e.span_id) for e in duration.exemplars] == [
            (build.context.trace_id, build.context.span_id)
        ]
    finally:
        provider.shutdown()


def test_every_gate_telemetry_on_one_meter_provider_is_counted(client: OpenFeatureClient) -> None:
    # Given two GateTelemetry on one meter provider (a meter returns its first instruments)
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    one, other = GateTelemetry(meter_provider=provider), GateTelemetry(meter_provider=provider)
    try:
        # When each resolves a context twice
        for telemetry in (one, other, one, other):
            resolve_context(sample(), legacy=lambda: "legacy", client=client, telemetry=telemetry)
        # Then the counter counts all four, as the histogram does
        (resolutions,) = points(reader, names.METRIC_RESOLUTIONS)
        assert resolutions.value == 4
        (duration,) = points(reader, names.METRIC_BUILD_DURATION)
        assert duration.count == 4
    finally:
        provider.shutdown()


def test_the_global_provider_asked_for_by_none_or_by_itself_is_counted_once_per_call(
    client: OpenFeatureClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an SDK meter provider installed as the global one, a GateTelemetry on the global
    # provider (None) and one on the same provider by name
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    monkeypatch.setattr(metrics, "get_meter_provider", lambda: provider)
    monkeypatch.setattr(names, "_global_instruments", [])
    implicit, explicit = GateTelemetry(), GateTelemetry(meter_provider=provider)
    try:
        for telemetry in (implicit, explicit, explicit):
            resolve_context(sample(), legacy=lambda: "legacy", client=client, telemetry=telemetry)
        (resolutions,) = points(reader, names.METRIC_RESOLUTIONS)
        assert resolutions.value == 3
    finally:
        provider.shutdown()


class CapturingExporter(MetricExporter):
    """Keeps what each export is given."""

    def __init__(self) -> None:
        super().__init__()
        self.exported: list[MetricsData] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.exported.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return


def test_the_last_collection_at_shutdown_reads_the_builds_that_waited() -> None:
    # Given a periodic reader whose interval never comes within the test
    exporter = CapturingExporter()
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader])
    telemetry = GateTelemetry(meter_provider=provider)
    for _ in range(3):
        build_traced(sample(), telemetry=telemetry)
    # When the application shuts its meter provider down (as the SDK does at exit)
    provider.shutdown()
    # Then the one export has the three builds
    counts = [
        point.count
        for data in exporter.exported
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == names.METRIC_BUILD_DURATION
        for point in metric.data.data_points
        if isinstance(point, HistogramDataPoint)
    ]
    assert counts == [3]


def test_a_collection_inside_another_span_lends_it_no_exemplar(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    # Given a build without a span of its own (no tracer), waiting for the collection
    tracer_provider, _ = spans
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    telemetry = GateTelemetry(tracer_provider=trace.NoOpTracerProvider(), meter_provider=provider)
    try:
        build_traced(sample(), telemetry=telemetry)
        # When the application collects inside a sampled span of its own
        with tracer_provider.get_tracer("app").start_as_current_span("app.request"):
            (duration,) = points(reader, names.METRIC_BUILD_DURATION)
        # Then the build's measurement names no span: it was recorded in none
        assert duration.count == 1
        assert list(duration.exemplars) == []
    finally:
        provider.shutdown()


def test_no_build_is_lost_or_counted_twice_while_collections_run_beside_the_calls() -> None:
    # Given four threads building while another collects, again and again
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    telemetry = GateTelemetry(meter_provider=provider)
    stop = threading.Event()

    def collect() -> None:
        while not stop.wait(0.002):
            reader.get_metrics_data()

    def build() -> None:
        for _ in range(25):
            build_traced(sample(), telemetry=telemetry)

    collector = threading.Thread(target=collect)
    collector.start()
    builders = [threading.Thread(target=build) for _ in range(4)]
    try:
        for thread in builders:
            thread.start()
        for thread in builders:
            thread.join(60)
    finally:
        stop.set()
        collector.join(10)
    try:
        # Then the cumulative count is every build, once
        assert duration_count(reader) == 100
        assert {p.count for p in points(reader, names.METRIC_SECTION_TOKENS)} == {100}
    finally:
        provider.shutdown()
