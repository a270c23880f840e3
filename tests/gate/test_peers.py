"""The gate against real peers: an OTLP/HTTP receiver, and the flag served by every provider.

The same ``pipeline_context`` function, unchanged, runs under ``LeadCtxProvider``, the flagd
provider (FILE resolver, loaded from ``export_flagd``'s output), LaunchDarkly's provider fed
by ``TestData``, and providers that raise, never become ready, or fail for good.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext
from openfeature.provider import FeatureProvider, ProviderStatus
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from leadctx.telemetry import configure_telemetry
from leadctx_bundle import ContextResolution, GateTelemetry, resolve_context
from leadctx_flags import (
    FLAG_SET_ID,
    SHARED_BUNDLE_FLAG,
    FlagOverride,
    LeadCtxProvider,
    OverridesDocument,
    ResolutionPath,
    RolloutSettings,
    export_flagd,
)
from tests.gate.conftest import sample
from tests.gate.providers import FatalProvider, NeverReadyProvider, RaisingProvider

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from launchdarkly_migration import offline_launchdarkly_provider, shared_bundle_flag
from ldclient.integrations.test_data import TestData

pytestmark = pytest.mark.integration

DOMAIN = "leadctx-gate-peers"


def pipeline_context(client_id: str, telemetry: GateTelemetry | None = None) -> ContextResolution:
    """What a pipeline writes: nothing provider-specific."""
    return resolve_context(
        sample(client_id=client_id),
        legacy=lambda: "legacy",
        client=api.get_client(domain=DOMAIN),
        telemetry=telemetry,
    )


# --- OTLP over the wire -------------------------------------------------------------------


class OtlpReceiver:
    """An OTLP/HTTP receiver on 127.0.0.1 decoding requests with the official proto classes."""

    def __init__(self) -> None:
        self.traces: list[ExportTraceServiceRequest] = []
        self.metrics: list[ExportMetricsServiceRequest] = []
        self.got_traces = threading.Event()
        self.got_metrics = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path == "/v1/traces":
                    request = ExportTraceServiceRequest()
                    request.ParseFromString(body)
                    receiver.traces.append(request)
                    receiver.got_traces.set()
                elif self.path == "/v1/metrics":
                    metrics_request = ExportMetricsServiceRequest()
                    metrics_request.ParseFromString(body)
                    receiver.metrics.append(metrics_request)
                    receiver.got_metrics.set()
                payload = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    yield server
    server.stop()


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def test_otlp_http_export_reaches_a_receiver(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the application's SDK set-up, configured only by OTEL_* variables
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "drafts")
    setup = configure_telemetry()
    assert setup is not None
    api.set_provider_and_wait(
        LeadCtxProvider(RolloutSettings(shared_bundle_clients="acme")), domain=DOMAIN
    )
    # When a pipeline resolves its context, and the application shuts down
    result = pipeline_context("acme", setup.gate_telemetry())
    setup.shutdown()
    assert result.path is ResolutionPath.SHARED
    assert receiver.got_traces.wait(10)
    assert receiver.got_metrics.wait(10)
    # Then the span tree and its attributes arrived over the wire
    spans = {}
    service = None
    for request in receiver.traces:
        for resource_spans in request.resource_spans:
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    service = _value(attribute.value)
            for scope_spans in resource_spans.scope_spans:
                assert scope_spans.scope.name == "leadctx_bundle"
                for span in scope_spans.spans:
                    spans[span.name] = span
    assert service == "drafts"
    resolve, build = spans["leadctx.context.resolve"], spans["leadctx.bundle.build"]
    assert build.parent_span_id == resolve.span_id
    assert build.trace_id == resolve.trace_id
    assert resolve.parent_span_id == b""
    attributes = {a.key: _value(a.value) for a in resolve.attributes}
    assert result.stats is not None
    assert attributes["feature_flag.key"] == "shared_bundle.enabled"
    assert attributes["feature_flag.result.reason"] == "targeting_match"
    assert attributes["leadctx.bundle.path"] == "shared"
    assert attributes["leadctx.tokens.total"] == result.stats.tokens_total
    assert attributes["leadctx.section.thread.items.included"] == (
        result.stats.sections["thread"].items_included
    )
    metric_names = {
        metric.name
        for request in receiver.metrics
        for resource_metrics in request.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    }
    assert {"leadctx.context.resolutions", "leadctx.bundle.section.tokens"} <= metric_names


# --- The same code under every provider ---------------------------------------------------


def _leadctx() -> FeatureProvider:
    return LeadCtxProvider(RolloutSettings(shared_bundle_clients="acme"))


def _flagd(tmp_path: Path) -> FeatureProvider:
    exported = export_flagd(RolloutSettings(shared_bundle_clients="acme"))
    path = tmp_path / "flags.flagd.json"
    path.write_text(json.dumps(exported.to_json()))
    return FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=str(path))


@pytest.mark.parametrize("make", ["leadctx", "flagd"])
def test_same_code_under_leadctx_and_flagd(make: str, tmp_path: Path) -> None:
    provider = _leadctx() if make == "leadctx" else _flagd(tmp_path)
    api.set_provider_and_wait(provider, domain=DOMAIN)
    on, off = pipeline_context("acme"), pipeline_context("globex")
    assert (on.path, on.flag.value, on.flag.variant) == (ResolutionPath.SHARED, True, "on")
    assert (off.path, off.flag.value, off.flag.variant) == (ResolutionPath.LEGACY, False, "off")
    assert on.flag.set_id == "leadctx"
    assert on.flag.error_code is None


def test_same_code_under_launchdarkly(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[1:3]))
        raise OSError("network refused by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: refuse(None, *a, **k))
    data = TestData.data_source()
    data.update(shared_bundle_flag(data, default=False, allowlist=["acme"]))
    api.set_provider_and_wait(offline_launchdarkly_provider(data), domain=DOMAIN)
    try:
        on, off = pipeline_context("acme"), pipeline_context("globex")
    finally:
        api.clear_providers()
    assert (on.path, on.flag.value) == (ResolutionPath.SHARED, True)
    assert (off.path, off.flag.value) == (ResolutionPath.LEGACY, False)
    assert on.flag.error_code is None
    assert attempts == []


def _wait_for_status(client: OpenFeatureClient, status: ProviderStatus) -> None:
    deadline = time.monotonic() + 10
    while client.get_provider_status() != status:
        assert time.monotonic() < deadline, f"provider never reached {status}"
        time.sleep(0.01)


@pytest.mark.parametrize(
    ("make", "status", "error_code"),
    [
        (RaisingProvider, ProviderStatus.READY, "GENERAL"),
        (NeverReadyProvider, ProviderStatus.NOT_READY, "PROVIDER_NOT_READY"),
        (FatalProvider, ProviderStatus.FATAL, "PROVIDER_FATAL"),
    ],
)
def test_a_broken_provider_means_legacy_with_the_error_code(
    make: Callable[[], FeatureProvider], status: ProviderStatus, error_code: str
) -> None:
    api.set_provider(make(), domain=DOMAIN)
    _wait_for_status(api.get_client(domain=DOMAIN), status)
    result = pipeline_context("acme")
    assert (result.path, result.fallback_reason, result.text) == (
        ResolutionPath.LEGACY,
        None,
        "legacy",
    )
    assert (result.flag.value, result.flag.error_code) == (False, error_code)
    assert result.metadata()["leadctx"]["flag"]["error_code"] == error_code


def test_leadctx_provider_reports_the_document_revision_as_version() -> None:
    provider = LeadCtxProvider(RolloutSettings(shared_bundle_clients="acme"))
    document = OverridesDocument(
        revision=12, flags={"shared_bundle.enabled": FlagOverride(clients={"globex": True})}
    )
    api.set_provider_and_wait(provider, domain=DOMAIN)
    assert pipeline_context("acme").flag.version is None
    provider.update_overrides(document)
    on = pipeline_context("globex")
    assert (on.path, on.flag.version, on.flag.set_id, on.flag.source) == (
        ResolutionPath.SHARED,
        "12",
        "leadctx",
        "override",
    )


def test_every_leadctx_provider_result_carries_the_flag_set_id() -> None:
    provider = LeadCtxProvider(RolloutSettings(shared_bundle_clients="acme"))
    context = EvaluationContext(targeting_key="acme", attributes={"kind": "client"})
    results = [
        provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, False, context),
        provider.resolve_boolean_details("some.other.flag", False, context),
        provider.resolve_string_details(SHARED_BUNDLE_FLAG, "x", context),
        provider.resolve_boolean_details(
            SHARED_BUNDLE_FLAG, False, EvaluationContext(None, {"clientId": 5})
        ),
    ]
    assert [r.flag_metadata.get("flagSetId") for r in results] == [FLAG_SET_ID] * 4
    assert FLAG_SET_ID == "leadctx"
    # No document in force: no version
    assert all("version" not in r.flag_metadata for r in results)


def test_the_version_follows_the_document_in_force() -> None:
    # Given a provider answering with a document at revision 3
    provider = LeadCtxProvider(RolloutSettings(shared_bundle_clients="acme"))
    context = EvaluationContext(targeting_key="acme", attributes={"kind": "client"})
    provider.update_overrides(OverridesDocument(revision=3))
    first = provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, False, context)
    # When a newer document is applied, Then the same decision carries the new revision
    provider.update_overrides(OverridesDocument(revision=4))
    second = provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, False, context)
    assert (first.flag_metadata["version"], second.flag_metadata["version"]) == ("3", "4")
    assert first.flag_metadata["source"] == second.flag_metadata["source"] == "allowlist"
