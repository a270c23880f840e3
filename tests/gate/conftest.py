"""Fixtures of the gate's tests: SDK providers passed in (never the global ones), a provider
that turns the flag on for ``acme``, a sample request, and a small worker pool."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from leadctx_bundle import GateTelemetry, environment_profiles
from leadctx_bundle import deadline as deadline_module
from leadctx_bundle.deadline import SharedPathPool
from leadctx_flags import LeadCtxProvider, RolloutSettings

DOMAIN = "leadctx-gate-tests"

SAMPLE: dict[str, Any] = {
    "client_id": "acme",
    "lead_id": "lead-42",
    "pipeline": "draft",
    "knowledge_assets": [
        {"id": f"a{n}", "title": f"Asset {n}", "content": "Plans start at 49 EUR. " * 40, "rank": n}
        for n in range(8)
    ],
    "lead_memory": [
        {
            "id": f"m{n}",
            "content": "Asked about pricing. " * 30,
            "created_at": f"2026-11-{10 + n}T10:00:00Z",
        }
        for n in range(6)
    ],
    "thread": [
        {"role": "lead", "content": "Thursday works. " * 20, "sent_at": f"2026-11-24T0{n}:00:00Z"}
        for n in range(5)
    ],
}


def sample(**changes: Any) -> dict[str, Any]:
    """A deep copy of ``SAMPLE`` with ``changes`` applied."""
    return {**copy.deepcopy(SAMPLE), **changes}


@dataclass
class Recorded:
    """What one test's telemetry recorded."""

    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    telemetry: GateTelemetry
    tracer_provider: TracerProvider

    def finished(self, name: str | None = None) -> list[ReadableSpan]:
        spans = list(self.spans.get_finished_spans())
        return [span for span in spans if name is None or span.name == name]

    def metric_points(self) -> dict[str, list[Any]]:
        """Metric name → its data points (attributes and values)."""
        data = self.reader.get_metrics_data()
        points: dict[str, list[Any]] = {}
        if data is None:
            return points
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    points.setdefault(metric.name, []).extend(metric.data.data_points)
        return points

    def metric_units(self) -> dict[str, str]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return {
            metric.name: metric.unit or ""
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        }


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    telemetry = GateTelemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    yield Recorded(spans, reader, telemetry, tracer_provider)
    tracer_provider.shutdown()
    meter_provider.shutdown()


@pytest.fixture
def client() -> OpenFeatureClient:
    """A client whose provider turns the shared bundle on for ``acme`` only."""
    api.set_provider_and_wait(
        LeadCtxProvider(RolloutSettings(shared_bundle_clients="acme")), domain=DOMAIN
    )
    return api.get_client(domain=DOMAIN)


@pytest.fixture(autouse=True)
def _fresh_profiles() -> Iterator[None]:
    """Profiles are read once per process; tests that change the environment re-read them."""
    environment_profiles.cache_clear()
    yield
    environment_profiles.cache_clear()


@pytest.fixture
def small_pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[SharedPathPool]:
    """A two-worker pool in place of the process's pool, for saturation tests."""
    pool = SharedPathPool(2, name="leadctx-test-pool")
    monkeypatch.setattr(deadline_module, "_pool", pool)
    yield pool
    pool.shutdown()
