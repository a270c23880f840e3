"""``leadctx demo``: the rollout story on embedded defaults, with nothing to set up.

It grows with the project; today it walks the flag through a rollout: off by default, an
allowlist, a one-client rollback and a global kill through the overrides document (no
redeploy), each evaluated through the OpenFeature client as a pipeline would. Then it builds
one bundle per pipeline for a sample lead and prints what it cost: counts, never content.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from leadctx_bundle.builder import build_bundle
from leadctx_flags import editing
from leadctx_flags.operations import explain
from leadctx_flags.settings import RolloutSettings
from leadctx_flags.vocabulary import PIPELINES

__all__ = ["SAMPLE_REQUEST", "add_commands", "run_demo", "sample_bundle_stats"]

SAMPLE_CLIENTS = ("acme", "globex", "initech")

_SAMPLE_ASSET = (
    "Plans start at 49 EUR per seat and month, billed yearly; a monthly plan costs 20% more. "
    "Discounts apply from 50 seats. Onboarding takes two weeks and includes a kickoff call. "
)
SAMPLE_REQUEST: dict[str, Any] = {
    "client_id": "acme",
    "lead_id": "lead-42",
    "knowledge_assets": [
        {"id": f"asset-{n}", "title": f"Asset {n}", "content": _SAMPLE_ASSET * (4 + n), "rank": n}
        for n in range(12)
    ],
    "lead_memory": [
        {
            "id": f"memory-{n}",
            "content": "Asked about seat-based pricing and a pilot for the sales team. " * (1 + n),
            "created_at": f"2026-11-{10 + n:02d}T10:00:00Z",
        }
        for n in range(10)
    ],
    "thread": [
        {
            "role": "lead" if n % 2 else "agent",
            "content": "Could we meet Thursday afternoon to go through the pricing? " * 3,
            "sent_at": f"2026-11-24T{8 + n:02d}:15:00Z",
        }
        for n in range(8)
    ],
}


def add_commands(subparsers: Any) -> None:
    """Register ``leadctx demo``."""
    parser = subparsers.add_parser("demo", help="show the rollout story on embedded defaults")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=_demo_command)


def _steps(overrides: Path) -> Iterator[tuple[str, RolloutSettings, Callable[[], object] | None]]:
    allowlist = {"shared_bundle_clients": "acme,globex"}
    with_document = {**allowlist, "flag_overrides": str(overrides)}
    yield "env default (off)", RolloutSettings(), None
    yield "allowlist acme,globex", RolloutSettings(**allowlist), None
    yield (
        "overrides: deny globex",
        RolloutSettings(**with_document),
        lambda: editing.edit_document(
            overrides, editing.deny("globex"), updated_by="demo", create=True
        ),
    )
    yield (
        "overrides: kill",
        RolloutSettings(**with_document),
        lambda: editing.edit_document(overrides, editing.kill(), updated_by="demo"),
    )
    yield (
        "overrides: unkill",
        RolloutSettings(**with_document),
        lambda: editing.edit_document(overrides, editing.unkill(), updated_by="demo"),
    )


def run_demo() -> list[dict[str, Any]]:
    """Evaluate the flag for each sample client at each step, through OpenFeature."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="leadctx-demo-") as folder:
        for title, settings, change in _steps(Path(folder) / "overrides.json"):
            if change is not None:
                change()
            rows.extend({"step": title, **explain(c, settings).to_json()} for c in SAMPLE_CLIENTS)
    return rows


def sample_bundle_stats() -> dict[str, dict[str, Any]]:
    """``BundleStats`` (as JSON data) of the sample lead's bundle, one per pipeline."""
    return {
        str(pipeline): build_bundle({**SAMPLE_REQUEST, "pipeline": pipeline}).stats.model_dump(
            mode="json"
        )
        for pipeline in PIPELINES
    }


def _demo_command(args: argparse.Namespace) -> int:
    rows = run_demo()
    bundles = sample_bundle_stats()
    if args.json:
        print(json.dumps({"flag_decisions": rows, "bundle_stats": bundles}))
        return 0
    print("shared_bundle.enabled, evaluated through the OpenFeature client:\n")
    print(f"{'step':<24} {'client':<8} {'value':<6} {'reason':<16} source")
    for row in rows:
        print(
            f"{row['step']:<24} {row['client_id']:<8} {row['value']!s:<6} "
            f"{row['reason']:<16} {row['source']}"
        )
    print("\nThe shared bundle for a sample lead, per pipeline (stats only, never content):\n")
    print(f"{'pipeline':<15} {'section':<17} {'tokens':>13} {'items in/total':>15} {'cut':>4}")
    for pipeline, stats in bundles.items():
        for section, figures in stats["sections"].items():
            print(
                f"{pipeline:<15} {section:<17} {figures['tokens']:>6}/{figures['budget']:<6} "
                f"{figures['items_included']:>7}/{figures['items_total']:<7} "
                f"{figures['items_truncated']:>4}"
            )
        print(
            f"{pipeline:<15} {'total':<17} {stats['tokens_total']:>6}/{stats['budget_total']:<6} "
            f"{stats['encoding']}, {stats['build_ms']} ms"
        )
    return 0
