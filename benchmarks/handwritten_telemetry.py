"""The floor the gate's telemetry is judged against: the same signals, instrumented by hand.

What a pipeline author would write without ``GateTelemetry``, straight from the OpenTelemetry
docs: the same two spans (``leadctx.context.resolve`` and its child ``leadctx.bundle.build``)
with the same 34 resolve-span attributes, the same four histogram measurements (build
duration, tokens of each section), the same seven counts (resolutions, items truncated and
dropped per section) as synchronous counters, and the same INFO record with the same
``extra``. No caching, no attribute sets kept between calls, no observable counters: plain
code. ``bench_gate.py`` runs it side by side with the gate, around the same work (the same
evaluation, reads and build, on the caller's thread), with the SDK and with the no-op API.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import metrics, trace

from leadctx_bundle import LeadContextBundle

__all__ = ["HandWrittenTelemetry"]

LOGGER_NAME = "bench.handwritten"


class HandWrittenTelemetry:
    """The gate's signals, written the plain way.

    Args:
        tracer_provider: Where the spans go.
        meter_provider: Where the measurements go.
    """

    def __init__(
        self, tracer_provider: trace.TracerProvider, meter_provider: metrics.MeterProvider
    ) -> None:
        self.tracer = tracer_provider.get_tracer("handwritten")
        meter = meter_provider.get_meter("handwritten")
        self.resolutions = meter.create_counter("hw.context.resolutions")
        self.truncated = meter.create_counter("hw.bundle.section.items.truncated")
        self.dropped = meter.create_counter("hw.bundle.section.items.dropped")
        self.section_tokens = meter.create_histogram("hw.bundle.section.tokens")
        self.duration = meter.create_histogram("hw.bundle.build.duration", unit="s")
        self.logger = logging.getLogger(LOGGER_NAME)

    def shared_call(
        self,
        client_id: str,
        evaluate: Callable[[], Any],
        read_and_build: Callable[[], LeadContextBundle],
    ) -> LeadContextBundle:
        """One shared call: evaluate, read and build on this thread, instrumented by hand."""
        with self.tracer.start_as_current_span("leadctx.context.resolve") as span:
            details = evaluate()
            started = time.perf_counter()
            with self.tracer.start_as_current_span(
                "leadctx.bundle.build", attributes={"leadctx.pipeline": "draft"}
            ):
                bundle = read_and_build()
            elapsed = time.perf_counter() - started
            stats = bundle.stats
            attributes: dict[str, Any] = {
                "leadctx.bundle.path": "shared",
                "leadctx.pipeline": "draft",
                "feature_flag.key": "shared_bundle.enabled",
                "feature_flag.result.value": bool(details.value),
                "feature_flag.result.reason": str(details.reason).lower(),
                "feature_flag.context.id": client_id,
                "feature_flag.result.variant": str(details.variant),
                "feature_flag.provider.name": "leadctx",
                "feature_flag.set.id": str((details.flag_metadata or {}).get("flagSetId")),
                "leadctx.tokenizer.encoding": stats.encoding,
                "leadctx.tokens.total": stats.tokens_total,
                "leadctx.tokens.budget": stats.budget_total,
            }
            for name, section in stats.sections.items():
                prefix = f"leadctx.section.{name}."
                attributes[prefix + "tokens"] = section.tokens
                attributes[prefix + "budget"] = section.budget
                attributes[prefix + "items.included"] = section.items_included
                attributes[prefix + "items.truncated"] = section.items_truncated
                attributes[prefix + "items.dropped"] = section.items_dropped
                attributes[prefix + "tokens.truncated"] = section.tokens_truncated
            span.set_attributes(attributes)
            self.duration.record(elapsed, {"leadctx.pipeline": "draft"})
            for name, section in stats.sections.items():
                point = {"leadctx.pipeline": "draft", "leadctx.bundle.section": name}
                self.section_tokens.record(section.tokens, point)
                self.truncated.add(section.items_truncated, point)
                self.dropped.add(section.items_dropped, point)
            self.resolutions.add(1, {"leadctx.pipeline": "draft", "leadctx.bundle.path": "shared"})
            payload = {
                "path": "shared",
                "flag": {"key": "shared_bundle.enabled", "value": details.value},
                "stats": stats.model_dump(mode="json"),
            }
            self.logger.info(
                "context resolved: pipeline=%s path=%s tokens=%s/%s",
                "draft",
                "shared",
                stats.tokens_total,
                stats.budget_total,
                extra={
                    "leadctx_pipeline": "draft",
                    "leadctx_path": "shared",
                    "leadctx_flag": payload["flag"],
                    "leadctx_stats": payload["stats"],
                },
            )
            return bundle
