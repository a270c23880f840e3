"""Trace context resolutions in Jaeger (or any OTLP backend), or to a JSON-lines file.

Run: ``.venv/bin/python examples/tracing_jaeger.py`` (no Jaeger needed: spans go to a file)

With Jaeger all-in-one (OTLP on 4317 for gRPC and 4318 for HTTP, the UI on 16686)::

    docker run --rm -p 16686:16686 -p 4317:4317 -p 4318:4318 jaegertracing/all-in-one:latest
    OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 OTEL_SERVICE_NAME=leadctx-example \\
        OTEL_METRICS_EXPORTER=none .venv/bin/python examples/tracing_jaeger.py

then open http://localhost:16686, pick the service ``leadctx-example`` and search for
``leadctx.context.resolve``. leadctx exports OTLP over HTTP (``http/protobuf``), so point it
at port 4318; a Collector works the same way. Jaeger keeps traces only, hence
``OTEL_METRICS_EXPORTER=none``.

Without an endpoint the example still runs: spans go to a JSON-lines file (one span per line;
``--spans FILE`` to choose it, a temporary file otherwise) and a summary is printed.

Three calls show the three paths: the flag on for ``acme`` (shared bundle), off for
``globex`` (legacy), and on with a source whose database read fails (fallback, reason
``source_error``, the exception's class on the span and never its message). OpenFeature's own
``TracingHook`` adds its ``feature_flag.evaluation`` event to each resolve span.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from openfeature import api
from openfeature.contrib.hook.opentelemetry import TracingHook

from leadctx.telemetry import configure_telemetry
from leadctx_bundle import ContextSource, StaticContextSource, resolve_context, warm_up
from leadctx_flags import LeadCtxProvider, RolloutSettings

ASSETS: list[dict[str, Any]] = [
    {"id": "pricing", "title": "Pricing", "content": "Plans start at 49 EUR per seat.", "rank": 1},
    {"id": "onboarding", "title": "Onboarding", "content": "Two weeks, kickoff call included."},
]
MEMORY: list[dict[str, Any]] = [
    {"id": "m1", "content": "Prefers calls after 3 pm CET.", "created_at": "2026-11-20"}
]


class BrokenDatabaseSource:
    """A source whose database is gone: every read raises ``sqlite3.OperationalError``."""

    def knowledge_assets(self, client_id: str) -> Iterable[Any]:
        with sqlite3.connect(":memory:") as db:
            return list(db.execute("SELECT id, title, content FROM knowledge_assets"))

    def lead_memory(self, lead_id: str) -> Iterable[Any]:
        return []

    def thread(self, lead_id: str) -> Iterable[Any]:
        return []


def legacy_context() -> str:
    """The pipeline's context assembly before the shared bundle."""
    return "\n\n".join(f"{asset['title']}: {asset['content']}" for asset in ASSETS)


def main(argv: list[str] | None = None) -> int:
    """Resolve three contexts and export their spans."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=Path, help="JSON-lines file for the spans")
    args = parser.parse_args(argv)
    spans_file: Path | None = args.spans
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    with tempfile.TemporaryDirectory(prefix="leadctx-tracing-") as folder:
        if spans_file is None and not endpoint:
            spans_file = Path(folder) / "spans.jsonl"
        setup = configure_telemetry(spans_file=spans_file)
        if setup is None:  # cannot happen: a spans file or an endpoint is always set here
            return 1
        telemetry = setup.gate_telemetry()
        warm_up()  # the one-time builds at start-up, not inside the first call's deadline
        api.set_provider_and_wait(LeadCtxProvider(RolloutSettings(shared_bundle_clients="acme")))
        api.add_hooks([TracingHook()])
        good = StaticContextSource(assets={"acme": ASSETS}, memory={"lead-42": MEMORY})
        calls: list[tuple[str, ContextSource]] = [
            ("acme", good),
            ("globex", good),
            ("acme", BrokenDatabaseSource()),
        ]
        try:
            for client_id, source in calls:
                result = resolve_context(
                    {"client_id": client_id, "lead_id": "lead-42", "pipeline": "draft"},
                    legacy=legacy_context,
                    source=source,
                    telemetry=telemetry,
                )
                print(f"{client_id:<7} {json.dumps(result.metadata()['leadctx'])}")
        finally:
            setup.shutdown()
            api.shutdown()
        if endpoint:
            print(f"spans exported over OTLP/HTTP to {endpoint}")
        if spans_file is not None:
            lines = spans_file.read_text(encoding="utf-8").splitlines()
            names = [json.loads(line)["name"] for line in lines]
            print(f"{len(lines)} spans written to {spans_file}: {', '.join(sorted(set(names)))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
