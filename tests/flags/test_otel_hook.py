"""Compatibility with ``openfeature-hooks-opentelemetry``'s ``TracingHook``.

The hook adds a ``feature_flag.evaluation`` event to the span that is current when a flag is
evaluated. It finds that span through the OpenTelemetry context, not through the global tracer
provider, so these tests build their own SDK ``TracerProvider`` with an ``InMemorySpanExporter``
and never touch the global one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest
from openfeature import api
from openfeature.contrib.hook.opentelemetry import OTEL_EVENT_NAME, TracingHook
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer
from opentelemetry.util.types import AttributeValue

from leadctx_flags import (
    PROVIDER_NAME,
    SHARED_BUNDLE_FLAG,
    LeadCtxProvider,
    RolloutSettings,
    client_context,
)

DOMAIN = "leadctx-otel"


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="module")
def tracer(exporter: InMemorySpanExporter) -> Iterator[Tracer]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer(__name__)
    provider.shutdown()


@pytest.fixture(autouse=True)
def finished_spans_cleared(exporter: InMemorySpanExporter) -> None:
    exporter.clear()


def evaluate_in_span(
    tracer: Tracer,
    exporter: InMemorySpanExporter,
    settings: RolloutSettings | None,
    client_id: str,
) -> list[Mapping[str, AttributeValue]]:
    """Evaluate through the OpenFeature client inside a span; the events it received."""
    api.add_hooks([TracingHook()])
    api.set_provider_and_wait(LeadCtxProvider(settings), domain=DOMAIN)
    client = api.get_client(domain=DOMAIN)
    with tracer.start_as_current_span("leadctx.context.resolve"):
        client.get_boolean_details(SHARED_BUNDLE_FLAG, False, client_context(client_id))
    (span,) = exporter.get_finished_spans()
    return [dict(event.attributes or {}) for event in span.events if event.name == OTEL_EVENT_NAME]


@pytest.mark.parametrize(
    ("settings", "client_id", "expected"),
    [
        pytest.param(
            {"shared_bundle_clients": "acme"},
            "acme",
            ("true", "on", "targeting_match"),
            id="allowlist",
        ),
        pytest.param(
            {"shared_bundle_clients": "acme"},
            "globex",
            ("false", "off", "static"),
            id="env-default",
        ),
        pytest.param(
            {"shared_bundle_clients": "acme", "shared_bundle_kill": True},
            "acme",
            ("false", "off", "disabled"),
            id="kill",
        ),
    ],
)
def test_evaluation_event_carries_provider_variant_and_reason(
    tracer: Tracer,
    exporter: InMemorySpanExporter,
    settings: dict[str, object],
    client_id: str,
    expected: tuple[str, str, str],
) -> None:
    # When the flag is evaluated inside a span with the TracingHook registered
    (event,) = evaluate_in_span(tracer, exporter, RolloutSettings(**settings), client_id)

    # Then the span's evaluation event names our provider and carries the result
    assert event["feature_flag.provider.name"] == PROVIDER_NAME
    assert event["feature_flag.key"] == SHARED_BUNDLE_FLAG
    assert event["feature_flag.context.id"] == client_id
    assert (
        event["feature_flag.result.value"],
        event["feature_flag.result.variant"],
        event["feature_flag.result.reason"],
    ) == expected
    assert "error.type" not in event


def test_configuration_error_is_an_error_event_with_the_variant_off(
    tracer: Tracer, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an environment the provider cannot load: it fails closed
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_ENABLED", "maybe")

    # When evaluated inside a span
    (event,) = evaluate_in_span(tracer, exporter, None, "acme")

    # Then the event says error (code general), still names our provider and the off variant
    assert event["feature_flag.provider.name"] == PROVIDER_NAME
    assert event["feature_flag.result.reason"] == "error"
    assert event["error.type"] == "general"
    assert event["feature_flag.result.value"] == "false"
    assert event["feature_flag.result.variant"] == "off"


def test_an_evaluation_outside_any_span_leaves_no_event_on_a_later_span(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    # Given the hook registered and no span current
    api.add_hooks([TracingHook()])
    api.set_provider_and_wait(
        LeadCtxProvider(RolloutSettings(shared_bundle_clients="acme")), domain=DOMAIN
    )
    assert not trace.get_current_span().get_span_context().is_valid

    # When the flag is evaluated there, and then again inside a span started afterwards
    client = api.get_client(domain=DOMAIN)
    outside = client.get_boolean_details(SHARED_BUNDLE_FLAG, False, client_context("acme"))
    with tracer.start_as_current_span("leadctx.context.resolve"):
        client.get_boolean_details(SHARED_BUNDLE_FLAG, False, client_context("globex"))

    # Then the evaluation outside worked, and the span holds only the evaluation made in it
    assert (outside.value, outside.reason, outside.error_code) == (True, "TARGETING_MATCH", None)
    (span,) = exporter.get_finished_spans()
    events = [dict(event.attributes or {}) for event in span.events]
    assert [event["feature_flag.context.id"] for event in events] == ["globex"]
