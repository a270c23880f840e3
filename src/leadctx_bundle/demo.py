"""``leadctx demo``: the rollout story on embedded defaults, with nothing to set up.

It grows with the project; today it shows the flag's precedence for a few sample clients:
the env default, an allowlist, and the kill switch.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from leadctx_flags import RolloutSettings
from leadctx_flags.cli import explain

__all__ = ["add_commands", "run_demo"]

SAMPLE_CLIENTS = ("acme", "globex", "initech")

SCENARIOS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("env default (off)", {}),
    ("allowlist acme", {"shared_bundle_clients": "acme"}),
    (
        "allowlist acme, default on",
        {"shared_bundle_clients": "acme", "shared_bundle_enabled": True},
    ),
    ("kill switch", {"shared_bundle_clients": "acme", "shared_bundle_kill": True}),
)


def add_commands(subparsers: Any) -> None:
    """Register ``leadctx demo``."""
    parser = subparsers.add_parser("demo", help="show the rollout story on embedded defaults")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=_demo_command)


def run_demo() -> list[dict[str, Any]]:
    """Evaluate the flag for each sample client under each scenario, through OpenFeature."""
    rows = []
    for title, values in SCENARIOS:
        settings = RolloutSettings(**values)
        for client_id in SAMPLE_CLIENTS:
            rows.append({"scenario": title, **explain(client_id, settings)})
    return rows


def _demo_command(args: argparse.Namespace) -> int:
    rows = run_demo()
    if args.json:
        print(json.dumps({"flag_decisions": rows}))
        return 0
    print("shared_bundle.enabled, evaluated through the OpenFeature client:\n")
    print(f"{'scenario':<28} {'client':<8} {'value':<6} {'reason':<16} source")
    for row in rows:
        print(
            f"{row['scenario']:<28} {row['client_id']:<8} {row['value']!s:<6} "
            f"{row['reason']:<16} {row['source']}"
        )
    return 0
