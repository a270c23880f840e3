"""The SQL the rollout playbook shows runs as pasted and counts what it says it counts."""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from pathlib import Path

from leadctx_flags.guardrails.generate import GeneratorConfig, generate

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOK = (ROOT / "docs" / "rollout-playbook.md").read_text(encoding="utf-8")


def sqlite_statement() -> str:
    blocks: list[str] = re.findall(r"```sql\n(.*?)```", PLAYBOOK, flags=re.DOTALL)
    (statement,) = [block for block in blocks if "json_extract" in block]
    return statement


def test_the_paths_per_client_query_counts_every_call(tmp_path: Path) -> None:
    database = tmp_path / "app.db"
    summary = generate(f"sqlite:///{database}", GeneratorConfig(drafts=300, seed=3))
    with sqlite3.connect(database) as db:
        rows = db.execute(sqlite_statement()).fetchall()
        expected: Counter[tuple[str, str, str | None]] = Counter()
        for client, metadata in db.execute('SELECT "clientId", metadata FROM "AIInteraction"'):
            leadctx = json.loads(metadata)["leadctx"]
            expected[(client, leadctx["path"], leadctx["fallback_reason"])] += 1
    assert {(c, p, r): n for c, p, r, n in rows} == dict(expected)
    assert sum(n for *_, n in rows) == summary.interactions
    assert {p for _, p, _, _ in rows} == {"shared", "legacy", "fallback"}
    assert {r for _, p, r, _ in rows if p == "fallback"} == {"source_error"}
