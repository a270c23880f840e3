"""``leadctx demo``: the rollout story on embedded defaults, with nothing to set up.

It grows with the project; today it walks the flag through a rollout: off by default, an
allowlist, a one-client rollback and a global kill through the overrides document (no
redeploy), each evaluated through the OpenFeature client as a pipeline would.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from leadctx_flags import RolloutSettings, editing
from leadctx_flags.cli import explain

__all__ = ["add_commands", "run_demo"]

SAMPLE_CLIENTS = ("acme", "globex", "initech")


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
        lambda: editing.edit_document(overrides, editing.deny("globex"), updated_by="demo"),
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
            rows.extend({"step": title, **explain(c, settings)} for c in SAMPLE_CLIENTS)
    return rows


def _demo_command(args: argparse.Namespace) -> int:
    rows = run_demo()
    if args.json:
        print(json.dumps({"flag_decisions": rows}))
        return 0
    print("shared_bundle.enabled, evaluated through the OpenFeature client:\n")
    print(f"{'step':<24} {'client':<8} {'value':<6} {'reason':<16} source")
    for row in rows:
        print(
            f"{row['step']:<24} {row['client_id']:<8} {row['value']!s:<6} "
            f"{row['reason']:<16} {row['source']}"
        )
    return 0
