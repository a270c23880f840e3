"""Build a LeadContextBundle from a ContextSource and print what it cost.

Run: ``.venv/bin/python examples/bundle_from_source.py``

A real source reads the application's database; ``StaticContextSource`` stands in for it. The
stats printed last are what a pipeline may log or attach to ``AIInteraction`` metadata: counts
and names only, no content.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from leadctx_bundle import (
    BundleRequest,
    KnowledgeAsset,
    LeadMemoryEntry,
    StaticContextSource,
    ThreadMessage,
    build_bundle,
    load_bundle_input,
)

source = StaticContextSource(
    assets={
        "acme": [
            KnowledgeAsset(id="faq", title="FAQ", content="We onboard in two weeks.", rank=2),
            KnowledgeAsset(id="price", title="Pricing", content="Plans start at 49 EUR.", rank=1),
        ]
    },
    memory={
        "lead-42": [
            LeadMemoryEntry(
                id="m1",
                content="Prefers calls after 3 pm CET.",
                created_at=datetime(2026, 11, 20, 10, tzinfo=UTC),
            )
        ]
    },
    threads={
        "lead-42": [
            ThreadMessage(
                role="lead",
                content="Could we talk Thursday?",
                sent_at=datetime(2026, 11, 24, 9, 12, tzinfo=UTC),
            )
        ]
    },
)

request = BundleRequest(client_id="acme", lead_id="lead-42", pipeline="draft")
bundle = build_bundle(load_bundle_input(source, request))
print(bundle.text)
print()
print(json.dumps(bundle.stats.model_dump(), indent=2))
