"""``leadctx demo``: the whole rollout story on embedded defaults, with nothing to set up.

A SQLite file, a local overrides document and a JSON-lines span file (or OTLP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set), all in one output folder. Synthetic leads of four
clients go through the four pipelines via ``resolve_context``; acme is allowlisted half-way
through the overrides document; a failing source shows the fallback; the guardrails report
decides; the flag goes off again through the document, timed. ``story.py`` tells it,
``command.py`` shows it; nothing printed is content (counts, names, reasons, client ids).
"""

from __future__ import annotations

from leadctx.demo.command import DEFAULT_OUT, add_commands
from leadctx.demo.world import SAMPLE_REQUEST

__all__ = ["DEFAULT_OUT", "SAMPLE_REQUEST", "add_commands"]
