"""Every example runs as its docstring says, in a clean environment, and prints what it shows.

The command is read from the example's own ``Run: ``...``` line (environment assignments
included), so the documented command is the tested one. The environment holds no
``LEADCTX_*`` or ``OTEL_*`` variable but those the command sets: no Jaeger, no network.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# Modules the examples import; not run on their own.
SHARED_MODULES = {"pipeline.py"}

RUN_LINE = re.compile(r"^Run: ``(?P<command>[^`]+)``", re.MULTILINE)

PIPELINE_PATHS: list[tuple[str, ...]] = [
    ("acme", "lead-42", "True", "shared", "-"),
    ("globex", "lead-7", "True", "shared", "-"),
    ("initech", "lead-9", "False", "legacy", "-"),
    ("acme", "lead-offline", "True", "fallback", "source_error"),
]


def documented_command(example: Path) -> tuple[dict[str, str], list[str]]:
    """The example's ``Run:`` command as (environment assignments, argv)."""
    docstring = ast.get_docstring(ast.parse(example.read_text(encoding="utf-8"))) or ""
    match = RUN_LINE.search(docstring)
    assert match is not None, f"{example.name}: no 'Run: ``...``' line in its docstring"
    words = shlex.split(match["command"])
    assignments = {}
    while "=" in words[0]:
        name, _, value = words.pop(0).partition("=")
        assignments[name] = value
    assert words[:2] == [".venv/bin/python", f"examples/{example.name}"], words
    return assignments, [sys.executable, *words[1:]]


def run_example(name: str) -> str:
    assignments, argv = documented_command(EXAMPLES / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADCTX_", "OTEL_"))}
    env.update(assignments)
    done = subprocess.run(  # noqa: S603 - our own example, with this interpreter
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def pipeline_rows(out: str) -> list[tuple[str, ...]]:
    """(client, lead, flag, path, fallback) of each line ``run_drafts`` printed."""
    rows: list[tuple[str, ...]] = []
    for line in out.splitlines()[1:]:
        fields = dict(part.split("=", 1) for part in line.split()[2:] if "=" in part)
        words = line.split()
        rows.append((words[0], words[1], fields["flag"], fields["path"], fields["fallback"]))
    return rows


def check_pipeline(provider: str, last_reason: str) -> Callable[[str], None]:
    def check(out: str) -> None:
        lines = out.splitlines()
        assert lines[0] == f"provider: {provider}"
        assert pipeline_rows(out) == PIPELINE_PATHS
        # The flag-off client's reason is each provider's own (see docs/migration.md).
        assert lines[3].endswith(f"reason={last_reason}")

    return check


def check_tracing(out: str) -> None:
    lines = out.splitlines()
    paths = [json.loads(line.split(maxsplit=1)[1])["path"] for line in lines[:3]]
    assert paths == ["shared", "legacy", "fallback"]
    assert re.fullmatch(
        r"5 spans written to .+spans\.jsonl: leadctx\.bundle\.build, leadctx\.context\.resolve",
        lines[3],
    )


def check_launchdarkly_migration(out: str) -> None:
    blocks = out.strip().split("\n\n")
    assert blocks[0].splitlines()[0] == "before: leadctx, env allowlist acme,globex [leadctx]"
    assert "acme     False variant=1 reason=TARGETING_MATCH" in blocks[2]
    assert blocks[3].splitlines()[1:] == [
        f"  {client:<8} False variant=1 reason=DISABLED" for client in ("acme", "globex", "initech")
    ]


def check_pipeline_flag(out: str) -> None:
    assert out.splitlines() == [
        "acme: True (TARGETING_MATCH, source=allowlist)",
        "globex: False (STATIC, source=env)",
        "shared_bundle_enabled('acme') -> True",
    ]


def check_bundle_from_source(out: str) -> None:
    text, _, stats = out.partition("\n\n{")
    assert "Plans start at 49 EUR." in text
    figures = json.loads("{" + stats)
    assert figures["sections"]["knowledge_assets"]["items_included"] == 2
    assert figures["tokens_total"] <= figures["budget_total"]


EXPECTED: dict[str, Callable[[str], None]] = {
    "pipeline_gate.py": check_pipeline("leadctx", "STATIC"),
    "pipeline_on_flagd.py": check_pipeline("FlagdProvider", "DEFAULT"),
    "pipeline_on_launchdarkly.py": check_pipeline("launchdarkly-openfeature-server", "FALLTHROUGH"),
    "tracing_jaeger.py": check_tracing,
    "launchdarkly_migration.py": check_launchdarkly_migration,
    "pipeline_flag.py": check_pipeline_flag,
    "bundle_from_source.py": check_bundle_from_source,
}


def test_every_example_is_run_here() -> None:
    on_disk = {path.name for path in EXAMPLES.glob("*.py")} - SHARED_MODULES
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_as_documented(name: str) -> None:
    EXPECTED[name](run_example(name))


def test_the_three_provider_examples_share_one_pipeline_function() -> None:
    # The pipeline is imported, never redefined, by each of them.
    for name in ("pipeline_gate.py", "pipeline_on_flagd.py", "pipeline_on_launchdarkly.py"):
        tree = ast.parse((EXAMPLES / name).read_text(encoding="utf-8"))
        defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        imported = {
            alias.name
            for node in tree.body
            if isinstance(node, ast.ImportFrom) and node.module == "pipeline"
            for alias in node.names
        }
        assert "run_drafts" in imported
        assert not defined & {"run_drafts", "draft_context"}
