"""What the gate costs a pipeline, measured side by side in one run, as ratios.

A typical draft, as in ``bench_bundle.py`` [3] ("same client, a new lead"): the client's
knowledge assets (the demo's 12, shared by all its leads, so their token counts are cached
after the first build) and, per lead, 10 memory entries and 12 thread messages of about 1 KB
of its own, enough to fill the draft profile's memory and thread budgets (new text, encoded
on the lead's first build). Rows live in a SQLite file, read through one connection per
thread. Every call takes a lead no earlier call has seen. ``legacy()`` is today's assembly:
read the same rows, join them under a character budget.

1. Telemetry on the shared path: ``resolve_context`` with the OpenTelemetry SDK (a
   ``BatchSpanProcessor`` to an exporter that drops, a ``MeterProvider`` whose
   ``PeriodicExportingMetricReader`` collects at the SDK's default interval, 60 s, to an
   exporter that drops; collected once before the first measured call, as in a process that
   has run for a minute, so that build measurements wait for a collection as they do there)
   against the same call with the API's no-op providers; the same with the INFO record
   formatted to a null stream; with head sampling at 10%; and with the SDK's traces or its
   metrics alone (the other on the API's no-op). Target: at most 5% more.
2. Flag off: ``resolve_context`` against ``legacy()`` plus one ``get_boolean_details``.
   Target: at most 1.2x.
3. Fallback on a raising source (a table is missing): ``resolve_context`` against
   ``legacy()`` plus one evaluation plus the failed source call. Target: at most 1.2x.

4. Floors beside the gate: the same evaluation, reads and build on the caller's thread with
   the gate's signals instrumented by hand (``handwritten_telemetry.py``), with the SDK and the
   INFO record and with the no-op API; the gate against it; the flag-off path against
   ``legacy()`` plus one evaluation inside one bare SDK span. Target (flag off): at most 1.2x.
5. The worker pool against the caller's thread, for a new lead (tokens encoded) and for one
   lead repeated (every count cached, the build cheap): a fixed cost per call weighs more on a
   cheaper build.

The INFO record goes to one handler set up once (a null stream); variants without it switch
the loggers off through ``Logger.disabled``.

Each ratio is measured by alternating its two sides call by call (each call timed alone), so
that load from elsewhere on the machine lands on both sides alike; figures are medians over
rounds of per-call times and of per-round ratios.

``--db-latency-ms`` adds a round trip to every query (both sides pay it): 0 by default, the
in-process worst case where ``legacy()`` costs tens of microseconds; a database server on the
network answers in 0.2-1 ms. Given several values, it measures each in turn in one process
and ends with a table of the three targets by round trip.

Run: ``.venv/bin/python benchmarks/bench_gate.py [--rounds N] [--calls N] [--db-latency-ms MS ...]
[--only TEXT] [--json]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from handwritten_telemetry import LOGGER_NAME, HandWrittenTelemetry
from openfeature import api
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

from leadctx.demo import SAMPLE_REQUEST
from leadctx_bundle import (
    GateTelemetry,
    LeadContextBundle,
    build_bundle,
    resolve_context,
    token_counter,
)
from leadctx_bundle.deadline import SharedPathPool
from leadctx_flags import (
    SHARED_BUNDLE_FLAG,
    LeadCtxProvider,
    ResolutionPath,
    RolloutSettings,
    client_context,
)

DOMAIN = "bench-gate"
CLIENT = "acme"
LEADS_PER_VARIANT = 1_000_000  # lead ids only: their rows are the template's
LEGACY_CHAR_BUDGET = 32_000  # today's pipelines cut by characters (about 8k tokens)


class DroppingExporter(SpanExporter):
    """Exports nowhere: the benchmark measures recording, not the network."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return


class DroppingMetricExporter(MetricExporter):
    """Exports nowhere: the collection's cost is measured (on the reader's thread), not the
    network's."""

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return


TEMPLATE_LEAD = "template"
VOCABULARY = (
    *("pricing", "seats", "pilot", "onboarding", "kickoff", "Thursday", "contract", "renewal"),
    *("discount", "team", "integration", "calendar", "invoice", "security", "review", "trial"),
    *("budget", "quarter", "demo", "follow", "up"),
)


def prose(words: int, seed: int) -> str:
    """About ``6 * words`` bytes of sales-thread English, varied by ``seed``."""
    return " ".join(VOCABULARY[(seed * 7 + i * 3) % len(VOCABULARY)] for i in range(words))


def create_database(path: Path) -> None:
    """The client's assets (the demo's) and one lead's rows: 10 memory entries and 12 thread
    messages of about 1 KB each, enough to fill the draft profile's memory and thread
    budgets. Sources and ``legacy()`` read these rows for any lead and prefix each text with
    the lead's id, so every lead's text is new to the token cache without storing it."""
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE assets (client_id, id, title, content, rank);"
            "CREATE TABLE memory (lead_id, id, content, created_at);"
            "CREATE TABLE thread (lead_id, role, content, sent_at);"
        )
        db.executemany(
            "INSERT INTO assets VALUES (?, ?, ?, ?, ?)",
            [
                (CLIENT, a["id"], a["title"], a["content"], a["rank"])
                for a in SAMPLE_REQUEST["knowledge_assets"]
            ],
        )
        db.executemany(
            "INSERT INTO memory VALUES (?, ?, ?, ?)",
            [
                (TEMPLATE_LEAD, f"m{n}", prose(170, n), f"2026-11-{10 + n:02d}T10:00:00Z")
                for n in range(10)
            ],
        )
        db.executemany(
            "INSERT INTO thread VALUES (?, ?, ?, ?)",
            [
                (
                    TEMPLATE_LEAD,
                    "lead" if n % 2 else "agent",
                    prose(170, 100 + n),
                    f"2026-11-24T{8 + n:02d}:15:00Z",
                )
                for n in range(12)
            ],
        )


class Database:
    """One connection per thread to the SQLite file, as a connection pool would give.

    Args:
        path: The SQLite file.
        latency_s: Added to every query, answered or failed, before it runs: the round trip
            to a database server on the network (0: the SQLite file alone, the worst case
            for the ratios).
    """

    def __init__(self, path: Path, latency_s: float = 0.0) -> None:
        self.path = path
        self.latency_s = latency_s
        self._local = threading.local()

    def execute(self, sql: str, parameters: tuple[str, ...]) -> list[Any]:
        if self.latency_s:
            time.sleep(self.latency_s)
        return self.connection().execute(sql, parameters).fetchall()

    def connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path)
            self._local.db = db
        return db


class SqliteSource:
    """The shared path's ``ContextSource`` over the same tables."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def knowledge_assets(self, client_id: str) -> Iterable[dict[str, Any]]:
        rows = self.database.execute(
            "SELECT id, title, content, rank FROM assets WHERE client_id = ? ORDER BY rank",
            (client_id,),
        )
        return [{"id": i, "title": t, "content": c, "rank": r} for i, t, c, r in rows]

    def lead_memory(self, lead_id: str) -> Iterable[dict[str, Any]]:
        rows = self.database.execute(
            "SELECT id, content, created_at FROM memory WHERE lead_id = ?", (TEMPLATE_LEAD,)
        )
        return [{"id": i, "content": f"[{lead_id}] {c}", "created_at": at} for i, c, at in rows]

    def thread(self, lead_id: str) -> Iterable[dict[str, Any]]:
        rows = self.database.execute(
            "SELECT role, content, sent_at FROM thread WHERE lead_id = ?", (TEMPLATE_LEAD,)
        )
        return [{"role": r, "content": f"[{lead_id}] {c}", "sent_at": at} for r, c, at in rows]


class BrokenSource(SqliteSource):
    """The database lost a table: the first read raises ``sqlite3.OperationalError``."""

    def knowledge_assets(self, client_id: str) -> Iterable[dict[str, Any]]:
        self.database.execute("SELECT * FROM missing_assets WHERE client_id = ?", (client_id,))
        return []


def legacy_for(database: Database, lead: str) -> Callable[[], str]:
    """Today's assembly for one lead: the same rows, cut at a character budget."""

    def legacy() -> str:
        db = database
        parts = [
            f"{t}\n{c}"
            for t, c in db.execute(
                "SELECT title, content FROM assets WHERE client_id = ? ORDER BY rank", (CLIENT,)
            )
        ]
        parts += [
            f"[{lead}] {c}"
            for (c,) in db.execute(
                "SELECT content FROM memory WHERE lead_id = ? ORDER BY created_at DESC",
                (TEMPLATE_LEAD,),
            )
        ]
        parts += [
            f"{r}: [{lead}] {c}"
            for r, c in db.execute(
                "SELECT role, content FROM thread WHERE lead_id = ? ORDER BY sent_at",
                (TEMPLATE_LEAD,),
            )
        ]
        return "\n\n".join(parts)[:LEGACY_CHAR_BUDGET]

    return legacy


LOGGERS = ("leadctx_bundle.gate", LOGGER_NAME)


def install_logging() -> Callable[[], None]:
    """One handler formatting INFO records to a null stream, set up once, as an application
    does: the gate's logger and the hand-written floor's. Returns the undo."""
    sink = Path(os.devnull).open("w", encoding="utf-8")  # noqa: SIM115 - closed by the returned undo
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    loggers = [logging.getLogger(name) for name in LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False

    def undo() -> None:
        for logger in loggers:
            logger.removeHandler(handler)
            logger.setLevel(logging.NOTSET)
            logger.propagate = True
            logger.disabled = False
        sink.close()

    return undo


def gate_logging(*, info: bool) -> Callable[[], None]:
    """INFO records on (``info``) or off for the next call.

    Toggled through ``Logger.disabled``, which ``isEnabledFor`` reads first: ``setLevel``
    would clear every logger's level cache on each toggle, and a handler built per call would
    be paid by the call measured, neither of which an application does.
    """
    for name in LOGGERS:
        logging.getLogger(name).disabled = not info
    return lambda: None


def paired(
    variants: dict[str, Callable[[], object]], top: str, bottom: str, calls: int
) -> dict[str, float]:
    """Total seconds of ``calls`` calls of each, alternating call by call (first one swapped
    each time), so that a burst of load from elsewhere lands on both sides alike."""
    spent = {top: 0.0, bottom: 0.0}
    for n in range(calls):
        for name in (top, bottom) if n % 2 == 0 else (bottom, top):
            logging_undo = gate_logging(info=name.endswith("+log"))
            began = time.perf_counter()
            variants[name]()
            spent[name] += time.perf_counter() - began
            logging_undo()
    return spent


def per_call(fn: Callable[[], object], calls: int) -> float:
    began = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - began) / calls


class Bench:
    """The variants, each with its own stream of leads it has not seen before."""

    def __init__(self, database: Database) -> None:
        api.set_provider_and_wait(
            LeadCtxProvider(RolloutSettings(shared_bundle_clients=CLIENT)), domain=DOMAIN
        )
        self.client = api.get_client(domain=DOMAIN)
        self.database = database
        self.source, self.broken = SqliteSource(database), BrokenSource(database)
        self.noop = GateTelemetry(
            tracer_provider=trace.NoOpTracerProvider(), meter_provider=metrics.NoOpMeterProvider()
        )
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(BatchSpanProcessor(DroppingExporter()))
        self.meter_provider = MeterProvider(
            metric_readers=[PeriodicExportingMetricReader(DroppingMetricExporter())]
        )
        self.sdk = GateTelemetry(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )
        # The same SDK with head sampling at 10% (OTEL_TRACES_SAMPLER=traceidratio, arg 0.1):
        # unsampled calls get non-recording spans, for which the gate builds no attributes.
        self.sampled_tracer_provider = TracerProvider(sampler=TraceIdRatioBased(0.1))
        self.sampled_tracer_provider.add_span_processor(BatchSpanProcessor(DroppingExporter()))
        self.sampled = GateTelemetry(
            tracer_provider=self.sampled_tracer_provider, meter_provider=self.meter_provider
        )
        # The SDK's two halves apart, to show where its cost lies.
        self.traces_only = GateTelemetry(
            tracer_provider=self.tracer_provider, meter_provider=metrics.NoOpMeterProvider()
        )
        self.metrics_only = GateTelemetry(
            tracer_provider=trace.NoOpTracerProvider(), meter_provider=self.meter_provider
        )
        # The floors: one bare span as an application's own instrumentation would open, and
        # the gate's signals instrumented by hand (benchmarks/handwritten_telemetry.py).
        self.bare_tracer = self.tracer_provider.get_tracer("bench.bare")
        # The gate's kind of pool, for the same work on a worker against the caller's thread.
        self.pool = SharedPathPool(4, name="bench-gate-pool")
        self.handwritten_sdk = HandWrittenTelemetry(self.tracer_provider, self.meter_provider)
        self.handwritten_noop = HandWrittenTelemetry(
            trace.NoOpTracerProvider(), metrics.NoOpMeterProvider()
        )
        self._streams: dict[str, Iterator[str]] = {}
        # One collection now, as in a process that has run for a minute: from here, build
        # measurements wait for the reader's next collection (docs/telemetry.md, "Cost").
        self.meter_provider.force_flush()

    def lead(self, variant: str) -> str:
        if variant not in self._streams:
            offset = len(self._streams) * LEADS_PER_VARIANT
            self._streams[variant] = itertools.cycle(
                f"lead-{n}" for n in range(offset, offset + LEADS_PER_VARIANT)
            )
        return next(self._streams[variant])

    def evaluate(self, client_id: str) -> object:
        return self.client.get_boolean_details(
            SHARED_BUNDLE_FLAG, False, client_context(client_id, pipeline="draft")
        )

    def failed_read(self) -> bool:
        """The failed source call a fallback pays for; ``True`` when it failed as expected."""
        try:
            self.broken.knowledge_assets(CLIENT)
        except sqlite3.OperationalError:
            return True
        return False

    def direct_build(self, lead: str) -> LeadContextBundle:
        rows = {
            "knowledge_assets": list(self.source.knowledge_assets(CLIENT)),
            "lead_memory": list(self.source.lead_memory(lead)),
            "thread": list(self.source.thread(lead)),
        }
        return build_bundle({"client_id": CLIENT, "lead_id": lead, "pipeline": "draft", **rows})

    def handwritten(self, lead: str, telemetry: HandWrittenTelemetry) -> object:
        """The same evaluation, reads and build as the shared path, on the caller's thread,
        with the gate's signals instrumented by hand."""
        return telemetry.shared_call(
            CLIENT, lambda: self.evaluate(CLIENT), lambda: self.direct_build(lead)
        )

    def evaluate_and_build(self, lead: str, *, on_pool: bool) -> object:
        """The same evaluation, reads and build, on the caller's thread or on a pool worker."""
        self.evaluate(CLIENT)
        if on_pool:
            return self.pool.run(lambda: self.direct_build(lead), 10.0)
        return self.direct_build(lead)

    def legacy_evaluation_span(self, lead: str) -> object:
        """``legacy()`` and one evaluation inside one bare SDK span: the flag-off floor."""
        with self.bare_tracer.start_as_current_span("bench.bare"):
            return legacy_for(self.database, lead)(), self.evaluate("globex")

    def resolve(self, lead: str, *, client_id: str, source: Any, telemetry: GateTelemetry) -> Any:
        return resolve_context(
            {"client_id": client_id, "lead_id": lead, "pipeline": "draft"},
            legacy=legacy_for(self.database, lead),
            source=source,
            client=self.client,
            telemetry=telemetry,
        )

    def variants(self) -> dict[str, Callable[[], object]]:
        """Name -> one call. ``+log`` variants format the INFO record (set around them)."""

        def shared(name: str, telemetry: GateTelemetry) -> Callable[[], object]:
            return lambda: self.resolve(
                self.lead(name), client_id=CLIENT, source=self.source, telemetry=telemetry
            )

        def off(name: str, telemetry: GateTelemetry) -> Callable[[], object]:
            return lambda: self.resolve(
                self.lead(name), client_id="globex", source=self.source, telemetry=telemetry
            )

        def fallback(name: str, telemetry: GateTelemetry) -> Callable[[], object]:
            return lambda: self.resolve(
                self.lead(name), client_id=CLIENT, source=self.broken, telemetry=telemetry
            )

        return {
            "direct build": lambda: self.direct_build(self.lead("direct build")),
            # One lead over and over: every text's token count is cached, the build is cheap,
            # and a fixed cost per call weighs more.
            "direct build, repeated lead": lambda: self.direct_build("lead-repeated"),
            "shared, no-op, repeated lead": lambda: self.resolve(
                "lead-repeated", client_id=CLIENT, source=self.source, telemetry=self.noop
            ),
            "evaluate + build, caller's thread": lambda: self.evaluate_and_build(
                self.lead("evaluate + build, caller's thread"), on_pool=False
            ),
            "evaluate + build, worker pool": lambda: self.evaluate_and_build(
                self.lead("evaluate + build, worker pool"), on_pool=True
            ),
            "evaluate + build, caller's thread, repeated lead": lambda: self.evaluate_and_build(
                "lead-repeated", on_pool=False
            ),
            "evaluate + build, worker pool, repeated lead": lambda: self.evaluate_and_build(
                "lead-repeated", on_pool=True
            ),
            "hand-written, no-op": lambda: self.handwritten(
                self.lead("hand-written, no-op"), self.handwritten_noop
            ),
            "hand-written, SDK+log": lambda: self.handwritten(
                self.lead("hand-written, SDK+log"), self.handwritten_sdk
            ),
            "legacy + evaluation + bare span": lambda: self.legacy_evaluation_span(
                self.lead("legacy + evaluation + bare span")
            ),
            "shared, no-op": shared("shared, no-op", self.noop),
            "shared, SDK": shared("shared, SDK", self.sdk),
            "shared, SDK+log": shared("shared, SDK+log", self.sdk),
            "shared, SDK 10% sampled": shared("shared, SDK 10% sampled", self.sampled),
            "shared, SDK traces only": shared("shared, SDK traces only", self.traces_only),
            "shared, SDK metrics only": shared("shared, SDK metrics only", self.metrics_only),
            "legacy + evaluation": lambda: (
                legacy_for(self.database, self.lead("legacy + evaluation"))(),
                self.evaluate("globex"),
            ),
            "flag off, no-op": off("flag off, no-op", self.noop),
            "flag off, SDK": off("flag off, SDK", self.sdk),
            "flag off, SDK+log": off("flag off, SDK+log", self.sdk),
            "legacy + evaluation + failed read": lambda: (
                legacy_for(self.database, self.lead("legacy + evaluation + failed read"))(),
                self.evaluate(CLIENT),
                self.failed_read(),
            ),
            "fallback, no-op": fallback("fallback, no-op", self.noop),
            "fallback, SDK": fallback("fallback, SDK", self.sdk),
            "fallback, SDK+log": fallback("fallback, SDK+log", self.sdk),
        }

    def close(self) -> None:
        self.tracer_provider.shutdown()
        self.sampled_tracer_provider.shutdown()
        self.meter_provider.shutdown()
        self.pool.shutdown()


VARIANTS = 24

RATIOS: dict[str, tuple[str, str]] = {
    "telemetry: shared SDK / shared no-op": ("shared, SDK", "shared, no-op"),
    "telemetry: shared SDK+log / shared no-op": ("shared, SDK+log", "shared, no-op"),
    "telemetry: shared SDK 10% sampled / shared no-op": (
        "shared, SDK 10% sampled",
        "shared, no-op",
    ),
    "telemetry: shared SDK traces only / shared no-op": (
        "shared, SDK traces only",
        "shared, no-op",
    ),
    "telemetry: shared SDK metrics only / shared no-op": (
        "shared, SDK metrics only",
        "shared, no-op",
    ),
    "gate: shared no-op / direct build": ("shared, no-op", "direct build"),
    "gate: shared no-op / direct build, repeated lead": (
        "shared, no-op, repeated lead",
        "direct build, repeated lead",
    ),
    "pool: worker / caller's thread (evaluate, reads, build)": (
        "evaluate + build, worker pool",
        "evaluate + build, caller's thread",
    ),
    "pool: worker / caller's thread, repeated lead": (
        "evaluate + build, worker pool, repeated lead",
        "evaluate + build, caller's thread, repeated lead",
    ),
    "floor: hand-written SDK+log / hand-written no-op": (
        "hand-written, SDK+log",
        "hand-written, no-op",
    ),
    "gate SDK+log / hand-written SDK+log": ("shared, SDK+log", "hand-written, SDK+log"),
    "flag off SDK / (legacy + evaluation + bare span)": (
        "flag off, SDK",
        "legacy + evaluation + bare span",
    ),
    "flag off SDK+log / (legacy + evaluation + bare span)": (
        "flag off, SDK+log",
        "legacy + evaluation + bare span",
    ),
    "flag off no-op / (legacy + evaluation)": ("flag off, no-op", "legacy + evaluation"),
    "flag off SDK / (legacy + evaluation)": ("flag off, SDK", "legacy + evaluation"),
    "flag off SDK+log / (legacy + evaluation)": ("flag off, SDK+log", "legacy + evaluation"),
    "fallback no-op / (legacy + eval + failed read)": (
        "fallback, no-op",
        "legacy + evaluation + failed read",
    ),
    "fallback SDK / (legacy + eval + failed read)": (
        "fallback, SDK",
        "legacy + evaluation + failed read",
    ),
    "fallback SDK+log / (legacy + eval + failed read)": (
        "fallback, SDK+log",
        "legacy + evaluation + failed read",
    ),
}


TARGETS: dict[str, float] = {
    "telemetry: shared SDK+log / shared no-op": 1.05,
    "flag off SDK / (legacy + evaluation + bare span)": 1.2,
    "fallback SDK / (legacy + eval + failed read)": 1.2,
}
"""The targets, judged with the SDK (a batch span processor and a metric reader): the shared
call at default settings, its INFO record included, from a 0.5 ms round trip; flag off
against legacy, one evaluation and one bare SDK span, at 0 ms."""


def measure(
    bench: Bench, selected: dict[str, tuple[str, str]], rounds: int, calls: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Median per-call times (µs) of each measured variant and median per-round ratios."""
    variants = bench.variants()
    for name, fn in variants.items():  # warm: threads, caches, the profile, the connections
        undo = gate_logging(info=name.endswith("+log"))
        per_call(fn, 10)
        undo()
    measured = {name for pair in selected.values() for name in pair}
    times: dict[str, list[float]] = {name: [] for name in variants if name in measured}
    ratios: dict[str, list[float]] = {name: [] for name in selected}
    for _ in range(rounds):
        for name, (top, bottom) in selected.items():
            spent = paired(variants, top, bottom, calls)
            times[top].append(spent[top] / calls)
            times[bottom].append(spent[bottom] / calls)
            ratios[name].append(spent[top] / spent[bottom])
    return (
        {name: round(statistics.median(values) * 1e6, 1) for name, values in times.items()},
        {name: round(statistics.median(values), 3) for name, values in ratios.items()},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument(
        "--db-latency-ms",
        type=float,
        nargs="+",
        default=[0.0],
        metavar="MS",
        help="round trip added to every query; several values measure each in turn, in one "
        "process (0: in-process SQLite, the worst case)",
    )
    parser.add_argument(
        "--only", default="", help="measure only the ratios whose name contains this text"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    selected = {name: pair for name, pair in RATIOS.items() if args.only in name}
    if not selected:
        parser.error(f"--only {args.only!r}: no ratio's name contains it")
    latencies = list(args.db_latency_ms)
    if any(not 0 <= latency < 1000 for latency in latencies):
        parser.error("--db-latency-ms: expected milliseconds from 0 up to 1000")
    # a variant is in up to 4 ratios, for every latency
    if 4 * args.rounds * args.calls * len(latencies) + 20 * len(latencies) > LEADS_PER_VARIANT:
        parser.error("--rounds x --calls x latencies: too many calls for the lead streams")

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="leadctx-bench-gate-") as folder:
        path = Path(folder) / "leads.sqlite"
        create_database(path)
        database = Database(path)
        undo_logging = install_logging()
        bench = Bench(database)
        token_counter(
            "o200k_base"
        )  # loaded once, as docs/telemetry.md advises, not under a deadline
        # Sanity: each gate variant takes the path it is named for (and warms threads).
        on = bench.resolve("lead-0", client_id=CLIENT, source=bench.source, telemetry=bench.noop)
        down = bench.resolve("lead-0", client_id=CLIENT, source=bench.broken, telemetry=bench.noop)
        if (
            len(bench.variants()) != VARIANTS
            or on.path is not ResolutionPath.SHARED
            or down.fallback_reason != "source_error"
            or not bench.failed_read()
        ):
            raise SystemExit("bench_gate: the variants do not take the paths they are named for")
        for latency in latencies:
            database.latency_s = latency / 1000
            medians, ratio_medians = measure(bench, selected, args.rounds, args.calls)
            results.append(
                {
                    "db_latency_ms": latency,
                    "load_average": _load_average(),
                    "per_call_us": medians,
                    "ratios": ratio_medians,
                }
            )
        bench.close()
        undo_logging()

    if args.json:
        print(
            json.dumps(
                {
                    "rounds": args.rounds,
                    "calls": args.calls,
                    "cpus": os.cpu_count(),
                    "targets": {k: v for k, v in TARGETS.items() if k in selected},
                    "results": results,
                }
            )
        )
        return
    for result in results:
        print(
            f"per call, median of {args.rounds} rounds x {args.calls} calls (microseconds), "
            f"database round trip {result['db_latency_ms']} ms, "
            f"load average {result['load_average']}:"
        )
        for name, value in result["per_call_us"].items():
            print(f"  {name:<36} {value:>9.1f}")
        print("ratios, median of per-round ratios:")
        for name, value in result["ratios"].items():
            target = TARGETS.get(name)
            verdict = ""
            if target is not None:
                verdict = f"  target <= {target}: {'met' if value <= target else 'NOT met'}"
            print(f"  {name:<50} {value:>6.3f}{verdict}")
    if len(results) > 1:
        names = [name for name in TARGETS if name in selected]
        print("targets by round trip (ms):")
        print("  " + " | ".join(["round trip", *names]))
        for result in results:
            cells = [f"{result['ratios'][name]:.3f}" for name in names]
            print("  " + " | ".join([f"{result['db_latency_ms']}", *cells]))


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


if __name__ == "__main__":
    main()
