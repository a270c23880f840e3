"""``leadctx demo`` tells the rollout story with nothing set up."""

from __future__ import annotations

import json

import pytest

from leadctx.cli import main


def test_demo_walks_allowlist_rollback_and_kill(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["flag_decisions"]
    answer = {(row["step"], row["client_id"]): (row["value"], row["source"]) for row in rows}
    assert answer["env default (off)", "acme"] == (False, "env")
    assert answer["allowlist acme,globex", "globex"] == (True, "allowlist")
    assert answer["overrides: deny globex", "globex"] == (False, "override")
    assert answer["overrides: deny globex", "acme"] == (True, "allowlist")
    assert {answer["overrides: kill", c] for c in ("acme", "globex", "initech")} == {
        (False, "kill")
    }
    assert answer["overrides: unkill", "acme"] == (True, "allowlist")


def test_demo_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "overrides: kill" in out
    assert "DISABLED" in out


def test_demo_builds_one_bundle_per_pipeline_and_prints_no_content(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--json"]) == 0
    out = capsys.readouterr().out
    stats = json.loads(out)["bundle_stats"]
    assert set(stats) == {"draft", "overseer", "auto_send", "proposed_times"}
    for figures in stats.values():
        assert 0 < figures["tokens_total"] <= figures["budget_total"]
        assert sum(s["tokens"] for s in figures["sections"].values()) == figures["tokens_total"]
    # Content, titles and ids of the sample items never reach the output.
    for fragment in ("Plans start", "seat-based", "Thursday", "Asset 1", "asset-1", "memory-1"):
        assert fragment not in out
