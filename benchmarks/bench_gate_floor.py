"""Where the gate's time goes: the unit costs behind the ratios of ``bench_gate.py``.

Each figure is the best of five ``timeit`` repeats (the machine's floor for that operation,
not a typical call), in microseconds:

1. The OpenTelemetry SDK's share of one shared-path call, piece by piece, as the gate does
   it: the two spans (``leadctx.context.resolve`` and its child ``leadctx.bundle.build``),
   the resolve span's 34 attributes, and the build's metrics (six in-process counts, and four
   histogram measurements kept for the reader's next collection, which comes before each
   repeat); each against the same code on the API's no-op providers; and what a collection
   then spends per build, recording its four measurements in the SDK.
2. The hand-off of the shared path to a worker and back (a call that returns at once):
   ``SharedPathPool.run`` against a ``ThreadPoolExecutor`` ``Future``, the previous mechanism;
   and the hand-off as the caller sees it around 0.05, 0.5 and 2 ms of work (the caller's
   wait minus the work, median per call): the longer the caller sleeps, the dearer its wake.
3. The gate around a ``legacy()`` that returns at once, flag off and on a source that raises
   at once, against one flag evaluation (plus the failed call): what the gate adds in
   absolute terms, whatever ``legacy()`` costs.

Run: ``.venv/bin/python benchmarks/bench_gate_floor.py [--number N] [--json]``
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import statistics
import time
import timeit
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from openfeature import api
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from leadctx.demo import SAMPLE_REQUEST
from leadctx_bundle import GateTelemetry, build_bundle, resolve_context
from leadctx_bundle.deadline import SharedPathPool
from leadctx_bundle.gate import FlagOutcome
from leadctx_bundle.telemetry import PENDING_BUILDS_LIMIT, resolve_attributes, stats_attributes
from leadctx_flags import SHARED_BUNDLE_FLAG, LeadCtxProvider, RolloutSettings, client_context

DOMAIN = "bench-gate-floor"


def _nothing() -> None:
    return


class DroppingExporter(SpanExporter):
    """Exports nowhere, as in ``bench_gate.py``: recording is measured, not the network."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return


class RaisingSource:
    """A source whose first read fails at once."""

    def knowledge_assets(self, client_id: str) -> Iterable[Any]:
        raise OSError("no such table")

    def lead_memory(self, lead_id: str) -> Iterable[Any]:
        return []

    def thread(self, lead_id: str) -> Iterable[Any]:
        return []


def best(fn: Callable[[], object], number: int, setup: Callable[[], object] = _nothing) -> float:
    """Microseconds per call, best of five repeats (``setup`` before each, not timed)."""
    return min(timeit.repeat(fn, setup=setup, number=number, repeat=5)) / number * 1e6


def collection_per_build(tel: GateTelemetry, reader: InMemoryMetricReader, builds: int) -> float:
    """Microseconds a collection spends per build that waited for it (the SDK's four
    histogram measurements, recorded then), best of five: one collection after ``builds``
    builds, less an empty one."""
    bundle = build_bundle({**SAMPLE_REQUEST, "pipeline": "draft"})
    spent = []
    for _ in range(5):
        reader.get_metrics_data()
        with tel.span("leadctx.bundle.build") as span:
            for _ in range(builds):
                tel.record_build(span, bundle, 0.001, "draft")
        began = time.perf_counter()
        reader.get_metrics_data()
        full = time.perf_counter() - began
        began = time.perf_counter()
        reader.get_metrics_data()
        empty = time.perf_counter() - began
        spent.append((full - empty) / builds)
    return min(spent) * 1e6


def telemetry_pieces(number: int) -> dict[str, float]:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(DroppingExporter()))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    sdk = GateTelemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    noop = GateTelemetry(
        tracer_provider=trace.NoOpTracerProvider(), meter_provider=metrics.NoOpMeterProvider()
    )
    bundle = build_bundle({**SAMPLE_REQUEST, "pipeline": "draft"})
    stats = bundle.stats
    flag = FlagOutcome(
        key=SHARED_BUNDLE_FLAG,
        value=True,
        variant="on",
        reason="TARGETING_MATCH",
        source="allowlist",
        set_id="leadctx",
        provider="leadctx",
    )

    def spans(tel: GateTelemetry) -> None:
        with tel.span("leadctx.context.resolve"), tel.span("leadctx.bundle.build"):
            pass

    def attributes(tel: GateTelemetry) -> None:
        with tel.span("leadctx.context.resolve") as span:
            if tel.is_recording(span):
                values: dict[str, Any] = dict(resolve_attributes("shared", "draft", flag, "acme"))
                values.update(stats_attributes(stats))
                tel.set_attributes(span, values)

    def build_metrics(tel: GateTelemetry) -> None:
        with tel.span("leadctx.context.resolve") as span:
            tel.record_build(span, bundle, 0.001, "draft")

    def everything(tel: GateTelemetry) -> None:
        with tel.span("leadctx.context.resolve") as span:
            with tel.build_span("draft") as build:
                tel.record_build(build, bundle, 0.001, "draft")
            if tel.is_recording(span):
                values: dict[str, Any] = dict(resolve_attributes("shared", "draft", flag, "acme"))
                values.update(stats_attributes(stats))
                tel.set_attributes(span, values)

    figures: dict[str, float] = {}
    pieces: tuple[tuple[str, Callable[[GateTelemetry], None]], ...] = (
        ("two spans", spans),
        ("one span + 34 attributes", attributes),
        ("one span + build metrics", build_metrics),
        ("all of a shared call", everything),
    )
    # A collection before each repeat, as the reader's interval brings: the builds' histogram
    # measurements wait for the next one (up to PENDING_BUILDS_LIMIT builds).
    for name, piece in pieces:
        for label, tel in (("no-op", noop), ("SDK", sdk)):
            figures[f"telemetry: {name}, {label}"] = best(
                functools.partial(piece, tel), number, setup=reader.get_metrics_data
            )
    figures["telemetry: one build's metrics at the collection, SDK"] = collection_per_build(
        sdk, reader, min(number, PENDING_BUILDS_LIMIT)
    )
    tracer_provider.shutdown()
    meter_provider.shutdown()
    return figures


def hand_off(number: int) -> dict[str, float]:
    pool = SharedPathPool(4, name="bench-floor")
    executor = ThreadPoolExecutor(max_workers=4)
    figures = {
        "hand-off: SharedPathPool.run": best(lambda: pool.run(lambda: None, 1.0), number),
        "hand-off: ThreadPoolExecutor Future": best(
            lambda: executor.submit(lambda: None).result(1.0), number
        ),
    }
    pool.shutdown()
    executor.shutdown()
    return figures


def hand_off_after_work(number: int) -> dict[str, float]:
    """What the hand-off costs the caller around work of a given length: median of (time the
    caller waited) - (time the work took on the worker), per call, the work a busy loop."""
    pool = SharedPathPool(2, name="bench-floor-work")

    def busy(seconds: float) -> float:
        began = time.perf_counter()
        while time.perf_counter() - began < seconds:
            pass
        return time.perf_counter() - began

    figures: dict[str, float] = {}
    calls = max(50, number // 20)
    for work_ms in (0.05, 0.5, 2.0):
        overheads = []
        for _ in range(calls):
            began = time.perf_counter()
            inner = pool.run(functools.partial(busy, work_ms / 1000), 10.0)
            overheads.append(time.perf_counter() - began - inner)
        figures[f"hand-off around {work_ms} ms of work (median)"] = (
            statistics.median(overheads) * 1e6
        )
    pool.shutdown()
    return figures


def gate_overhead(number: int) -> dict[str, float]:
    api.set_provider_and_wait(
        LeadCtxProvider(RolloutSettings(shared_bundle_clients="acme")), domain=DOMAIN
    )
    client = api.get_client(domain=DOMAIN)
    sdk_tracer = TracerProvider()
    sdk_tracer.add_span_processor(BatchSpanProcessor(DroppingExporter()))
    sdk_meter = MeterProvider(metric_readers=[InMemoryMetricReader()])
    sdk = GateTelemetry(tracer_provider=sdk_tracer, meter_provider=sdk_meter)
    noop = GateTelemetry(
        tracer_provider=trace.NoOpTracerProvider(), meter_provider=metrics.NoOpMeterProvider()
    )
    broken = RaisingSource()

    def evaluation(client_id: str) -> None:
        client.get_boolean_details(
            SHARED_BUNDLE_FLAG, False, client_context(client_id, pipeline="draft")
        )

    def failed_read() -> None:
        with contextlib.suppress(OSError):
            broken.knowledge_assets("acme")

    def evaluation_and_failed_read() -> None:
        evaluation("acme")
        failed_read()

    def resolve(client_id: str, tel: GateTelemetry) -> Callable[[], object]:
        return lambda: resolve_context(
            {"client_id": client_id, "lead_id": "lead-1", "pipeline": "draft"},
            legacy=lambda: "legacy",
            source=broken,
            client=client,
            telemetry=tel,
        )

    figures = {
        "gate: one evaluation": best(lambda: evaluation("globex"), number),
        "gate: flag off, no-op": best(resolve("globex", noop), number),
        "gate: flag off, SDK": best(resolve("globex", sdk), number),
        "gate: one evaluation + failed read": best(evaluation_and_failed_read, number),
        "gate: fallback, no-op": best(resolve("acme", noop), number),
        "gate: fallback, SDK": best(resolve("acme", sdk), number),
    }
    sdk_tracer.shutdown()
    sdk_meter.shutdown()
    api.clear_providers()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=3000, help="calls per timeit repeat")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.getLogger("leadctx_bundle.gate").setLevel(logging.WARNING)
    figures = {
        **telemetry_pieces(args.number),
        **hand_off(args.number),
        **hand_off_after_work(args.number),
        **gate_overhead(args.number),
    }
    if args.json:
        print(json.dumps({name: round(value, 1) for name, value in figures.items()}))
        return
    print(f"best of 5 x {args.number} calls (microseconds per call):")
    for name, value in figures.items():
        print(f"  {name:<50} {value:>8.1f}")


if __name__ == "__main__":
    main()
