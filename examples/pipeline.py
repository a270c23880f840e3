"""The pipeline the provider examples share: one function, imported by each of them.

Not run on its own. Run one of:

    .venv/bin/python examples/pipeline_gate.py              # leadctx's own provider
    .venv/bin/python examples/pipeline_on_flagd.py          # flagd (FILE resolver, offline)
    .venv/bin/python examples/pipeline_on_launchdarkly.py   # LaunchDarkly (TestData, offline)

``draft_context`` is what a pipeline calls: it knows ``resolve_context`` and the OpenFeature
client it asks, never which provider answers. The examples differ only in the provider they
install before calling ``run_drafts``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from leadctx_bundle import ContextResolution, StaticContextSource, resolve_context

ALLOWLIST = ("acme", "globex")
"""The clients the examples turn the shared bundle on for, in each provider's own terms."""

CALLS: Sequence[tuple[str, str]] = (
    ("acme", "lead-42"),
    ("globex", "lead-7"),
    ("initech", "lead-9"),
    ("acme", "lead-offline"),
)
"""(client, lead) pairs: two allowlisted clients, one that is not, and a lead whose database
read fails (the shared path falls back to the legacy context)."""

_ASSETS: list[dict[str, Any]] = [
    {"id": "pricing", "title": "Pricing", "content": "Plans start at 49 EUR per seat.", "rank": 1},
    {"id": "onboarding", "title": "Onboarding", "content": "Two weeks, kickoff call included."},
]
_MEMORY: list[dict[str, Any]] = [
    {"id": "m1", "content": "Prefers calls after 3 pm CET.", "created_at": "2026-11-20"}
]
_THREAD: list[dict[str, Any]] = [
    {"role": "lead", "content": "Could we talk on Thursday?", "sent_at": "2026-11-24"}
]


class ExampleDatabase(StaticContextSource):
    """Stands in for the application's database; reads for ``lead-offline`` fail."""

    def lead_memory(self, lead_id: str) -> Iterable[Any]:
        """The lead's memory, or ``ConnectionError`` for the offline lead."""
        if lead_id == "lead-offline":
            raise ConnectionError("database unreachable")
        return super().lead_memory(lead_id)


DATABASE = ExampleDatabase(
    assets=dict.fromkeys(("acme", "globex", "initech"), _ASSETS),
    memory={lead: _MEMORY for _, lead in CALLS},
    threads={lead: _THREAD for _, lead in CALLS},
)


def legacy_context(lead_id: str) -> str:
    """Today's context assembly, used when the flag is off or the shared path fails."""
    assets = [f"{asset['title']}: {asset['content']}" for asset in _ASSETS]
    return "\n".join([f"Lead {lead_id}", *assets])


def draft_context(client_id: str, lead_id: str) -> ContextResolution:
    """The draft pipeline's context: the shared bundle if the flag is on, else the legacy one.

    Args:
        client_id: The client (the flag's targeting key).
        lead_id: The lead being answered.
    """
    return resolve_context(
        {"client_id": client_id, "lead_id": lead_id, "pipeline": "draft"},
        legacy=lambda: legacy_context(lead_id),
        source=DATABASE,
    )


def run_drafts(provider_label: str) -> list[ContextResolution]:
    """Call ``draft_context`` for every pair in ``CALLS`` and print how each context was had.

    Args:
        provider_label: What to call the provider in the heading.
    """
    print(f"provider: {provider_label}")
    results = []
    for client_id, lead_id in CALLS:
        result = draft_context(client_id, lead_id)
        results.append(result)
        tokens = "-" if result.stats is None else f"{result.stats.tokens_total} tokens"
        why = result.fallback_reason or "-"
        print(
            f"  {client_id:<8} {lead_id:<13} flag={result.flag.value!s:<5} "
            f"path={result.path:<8} fallback={why:<12} {tokens:<10} "
            f"reason={result.flag.reason}"
        )
    return results
