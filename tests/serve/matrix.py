"""The parity matrix: rollout configurations and the contexts every client must answer alike.

Each case is asked of the in-process provider through the standard OpenFeature client, and of
``leadctx serve`` through each official OFREP client; value, variant, reason and error code
must be equal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openfeature.evaluation_context import EvaluationContext

from leadctx_flags.flags import SHARED_BUNDLE_FLAG

UNICODE_CLIENT = "Zürich-客户"


@dataclass(frozen=True)
class Scenario:
    """A rollout configuration: ``LEADCTX_*`` variables and, maybe, an overrides document."""

    name: str
    env: dict[str, str]
    document: dict[str, Any] | None = None

    def environment(self, folder: Path) -> dict[str, str]:
        """The variables, with the document written into ``folder`` when there is one."""
        env = dict(self.env)
        if self.document is not None:
            path = folder / f"{self.name}.overrides.json"
            path.write_text(json.dumps(self.document), encoding="utf-8")
            env["LEADCTX_FLAG_OVERRIDES"] = str(path)
            env["LEADCTX_FLAG_OVERRIDES_POLL_SECONDS"] = "0.5"
        return env


def document(*, kill: bool = False, revision: int = 3) -> dict[str, Any]:
    """An overrides document: globex denied, initech allowed, maybe the kill switch."""
    return {
        "schema": "leadctx.overrides/v1",
        "revision": revision,
        "updated_by": "tests",
        "flags": {
            SHARED_BUNDLE_FLAG: {"kill": kill, "clients": {"globex": False, "initech": True}}
        },
    }


ALLOWLIST = f"acme,globex,{UNICODE_CLIENT}"

SCENARIOS = (
    Scenario("rules", {"LEADCTX_SHARED_BUNDLE_CLIENTS": ALLOWLIST}, document()),
    Scenario("document-kill", {"LEADCTX_SHARED_BUNDLE_CLIENTS": ALLOWLIST}, document(kill=True)),
    Scenario(
        "env-kill",
        {"LEADCTX_SHARED_BUNDLE_CLIENTS": ALLOWLIST, "LEADCTX_SHARED_BUNDLE_KILL": "true"},
    ),
)

# name -> (flag key, the context as JSON, as OFREP carries it)
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "allowed": (SHARED_BUNDLE_FLAG, {"targetingKey": "acme", "kind": "client"}),
    "allowed by the document": (SHARED_BUNDLE_FLAG, {"targetingKey": "initech", "kind": "client"}),
    "not allowed": (SHARED_BUNDLE_FLAG, {"targetingKey": "umbrella", "kind": "client"}),
    "denied by the document": (SHARED_BUNDLE_FLAG, {"targetingKey": "globex", "kind": "client"}),
    "unicode id": (SHARED_BUNDLE_FLAG, {"targetingKey": UNICODE_CLIENT, "kind": "client"}),
    "missing targeting key": (SHARED_BUNDLE_FLAG, {"kind": "client"}),
    "empty targeting key": (SHARED_BUNDLE_FLAG, {"targetingKey": "", "kind": "client"}),
    "non-string targeting key": (SHARED_BUNDLE_FLAG, {"targetingKey": 42, "kind": "client"}),
    "unknown flag": ("no.such.flag", {"targetingKey": "acme", "kind": "client"}),
}


def written_at(path: Path) -> float:
    """When ``path`` was last written (wall clock, as ``time.time()``): a kill's start.

    The file system's clock is coarse (a few ms behind ``time.time()`` at most), so a latency
    measured from it is, if anything, overstated.
    """
    return path.stat().st_mtime_ns / 1e9


def evaluation_context(context: dict[str, Any]) -> EvaluationContext:
    """The OpenFeature context a Python caller passes for the JSON ``context``."""
    attributes = {k: v for k, v in context.items() if k != "targetingKey"}
    return EvaluationContext(targeting_key=context.get("targetingKey"), attributes=attributes)


Answer = tuple[object, str | None, str | None, str | None]
"""(value, variant, reason, error code) as strings where they are enums."""
