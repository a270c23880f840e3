"""OpenTelemetry SDK set-up for the ``leadctx`` application, from the standard ``OTEL_*`` variables.

The libraries (``leadctx_flags``, ``leadctx_bundle``) speak only the OpenTelemetry API; this
module, part of the application, chooses the SDK and where its data goes:

* ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` /
  ``..._METRICS_ENDPOINT``) set: spans through a ``BatchSpanProcessor`` and metrics through a
  ``PeriodicExportingMetricReader``, both over OTLP/HTTP (protobuf) to that endpoint, e.g.
  Jaeger all-in-one or a Collector on ``http://localhost:4318``. The exporters read the other
  ``OTEL_EXPORTER_OTLP_*`` variables (headers, timeout, compression) themselves.
* ``OTEL_TRACES_EXPORTER`` may list ``console`` (spans as JSON on stderr) or be ``none``.
* ``OTEL_SERVICE_NAME`` (default ``leadctx``) and ``OTEL_RESOURCE_ATTRIBUTES`` name the
  resource; ``OTEL_SDK_DISABLED=true`` turns the env-driven export off.
* A spans file (``leadctx bundle build --spans FILE``, the demo, the examples): every span as
  one JSON object per line, written as it ends.

Only OTLP over HTTP is installed: ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc`` is reported and HTTP
used instead (Jaeger and the Collector accept both, on 4317 for gRPC and 4318 for HTTP).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)

from leadctx_bundle.telemetry import GateTelemetry

__all__ = [
    "DEFAULT_SERVICE_NAME",
    "SHUTDOWN_TIMEOUT_S",
    "TelemetrySetup",
    "configure_telemetry",
    "span_json_line",
]

logger = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "leadctx"

SHUTDOWN_TIMEOUT_S = 3.0
"""How long a command waits, at exit, for buffered telemetry to be exported."""

_TRUE = frozenset({"true", "1", "yes", "on"})


def span_json_line(span: ReadableSpan) -> str:
    """One span as one line of JSON (the SDK's own JSON form, compacted).

    Args:
        span: A finished span.
    """
    line: str = span.to_json(indent=None)
    return line + "\n"


@dataclass
class TelemetrySetup:
    """The SDK providers the application configured; shut them down before exiting.

    Args:
        tracer_provider: Spans go here.
        meter_provider: Metrics go here (``None`` when no metric exporter is configured).
        files: Files opened for span output, closed by ``shutdown``.
    """

    tracer_provider: TracerProvider
    meter_provider: MeterProvider | None = None
    files: list[IO[str]] = field(default_factory=list)

    def gate_telemetry(self) -> GateTelemetry:
        """A ``GateTelemetry`` bound to these providers (for ``resolve_context(telemetry=...)``)."""
        return GateTelemetry(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def shutdown(self, timeout_s: float = SHUTDOWN_TIMEOUT_S) -> None:
        """Flush and stop the providers, waiting at most ``timeout_s``; then close the files.

        An unreachable collector makes the OTLP exporters retry for up to their own timeout
        (``OTEL_EXPORTER_OTLP_TIMEOUT``, 10 s) per signal; a command does not wait for that:
        after ``timeout_s`` it exits and what was not exported is lost, as it would be anyway.
        Never raises.

        Args:
            timeout_s: The longest wait for the export of what is still buffered.
        """
        done = threading.Thread(target=self._shutdown_providers, name="leadctx-otel-shutdown")
        done.daemon = True
        done.start()
        done.join(timeout_s)
        if done.is_alive():
            logger.warning(
                "telemetry export did not finish within %.1f s (collector down?); "
                "unexported spans and metrics are dropped",
                timeout_s,
            )
        for handle in self.files:
            handle.close()

    def _shutdown_providers(self) -> None:
        try:
            self.tracer_provider.shutdown()
            if self.meter_provider is not None:
                self.meter_provider.shutdown()
        except Exception as exc:  # noqa: BLE001 - exiting must not fail on telemetry
            logger.warning("telemetry shutdown failed: %s", type(exc).__name__)


def _flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() in _TRUE


def _listed(environ: Mapping[str, str], name: str) -> set[str]:
    return {part.strip().lower() for part in environ.get(name, "").split(",") if part.strip()}


def _otlp_wanted(environ: Mapping[str, str], signal: str) -> bool:
    exporters = _listed(environ, f"OTEL_{signal}_EXPORTER")
    if "none" in exporters:
        return False
    endpoint = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get(
        f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"
    )
    return bool(endpoint) or "otlp" in exporters


def configure_telemetry(
    *,
    spans_file: Path | None = None,
    set_global: bool = False,
    environ: Mapping[str, str] | None = None,
) -> TelemetrySetup | None:
    """Build the SDK providers from the ``OTEL_*`` variables and an optional spans file.

    Args:
        spans_file: Write every span to this file as JSON lines (truncated first).
        set_global: Also install the providers as OpenTelemetry's globals (for a long-running
            application whose pipelines call ``resolve_context`` without ``telemetry=``).
            Globals can be set once per process; commands pass the providers explicitly.
        environ: The variables to read; ``None`` reads ``os.environ``.

    Returns:
        The providers, or ``None`` when nothing is to be exported (no endpoint, no file):
        then the API stays a no-op and costs nothing.

    Raises:
        OSError: ``spans_file`` cannot be opened for writing.
    """
    env = os.environ if environ is None else environ
    disabled = _flag(env, "OTEL_SDK_DISABLED")
    traces_otlp = not disabled and _otlp_wanted(env, "TRACES")
    metrics_otlp = not disabled and _otlp_wanted(env, "METRICS")
    console = not disabled and "console" in _listed(env, "OTEL_TRACES_EXPORTER")
    if not (traces_otlp or metrics_otlp or console or spans_file is not None):
        return None
    if (traces_otlp or metrics_otlp) and env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").startswith(
        "grpc"
    ):
        logger.warning(
            "OTEL_EXPORTER_OTLP_PROTOCOL=grpc: only OTLP over HTTP is installed; using "
            "http/protobuf (port 4318 on Jaeger and the Collector)"
        )
    resource = Resource.create(
        {"service.name": env.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME}
    )
    # shutdown_on_exit=False: TelemetrySetup.shutdown bounds the wait; an atexit hook would not.
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    setup = TelemetrySetup(tracer_provider=tracer_provider)
    if spans_file is not None:
        handle = spans_file.open("w", encoding="utf-8")
        setup.files.append(handle)
        # Simple (synchronous) processor: each span is on disk when it ends, so a command's
        # file is complete when it exits, and a reader may tail it.
        tracer_provider.add_span_processor(
            SimpleSpanProcessor(ConsoleSpanExporter(out=handle, formatter=span_json_line))
        )
    if console:
        tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    if traces_otlp:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415 - loaded only when exporting
            OTLPSpanExporter,
        )

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if metrics_otlp:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415 - loaded only when exporting
            OTLPMetricExporter,
        )

        readers: list[MetricReader] = [PeriodicExportingMetricReader(OTLPMetricExporter())]
        setup.meter_provider = MeterProvider(
            resource=resource, metric_readers=readers, shutdown_on_exit=False
        )
    if set_global:
        trace.set_tracer_provider(tracer_provider)
        if setup.meter_provider is not None:
            metrics.set_meter_provider(setup.meter_provider)
    return setup
