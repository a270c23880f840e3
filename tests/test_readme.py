"""README.md's snippets run as written and print what the README shows.

* Python blocks: run one after the other in one fresh interpreter, as the README reads (a
  later block uses the provider an earlier one installed); an expression statement ending in
  ``# => VALUE`` must evaluate to something whose ``repr`` is ``VALUE``.
* Shell blocks: each line starting with ``$ `` is a command, run by bash with the virtual
  environment's ``bin`` first on ``PATH`` (where ``leadctx`` lives after ``make``), in a
  scratch folder holding a link to ``examples/``; the lines after it, up to the next ``$ ``,
  are its expected stdout. Commands of one block share the folder, in order.

In expected text, ``...`` stands for any run of characters (timings, clock revisions, counts
that depend on random sentinels). A block preceded by ``<!-- not run: REASON -->`` is skipped
(it needs Docker or a network). Every run starts without ``LEADCTX_*`` or ``OTEL_*``
variables: only what a snippet sets itself.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent

BLOCK = re.compile(
    r"(?P<before>(?:<!-- not run: (?P<reason>[^>]*?) -->\n)?)```(?P<lang>\w+)\n(?P<body>.*?)```",
    re.DOTALL,
)
SHOW = "# => "
MARK = "@@README-SHOW@@ "


@dataclass(frozen=True)
class Block:
    lang: str
    body: str
    line: int
    skip_reason: str | None


def blocks() -> list[Block]:
    found = []
    for match in BLOCK.finditer(README):
        line = README.count("\n", 0, match.start("lang")) + 1
        found.append(Block(match["lang"], match["body"], line, match["reason"]))
    return found


def matches(expected: str, actual: str) -> bool:
    """``actual`` is ``expected``, each ``...`` in it standing for any characters."""
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual, flags=re.DOTALL) is not None


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADCTX_", "OTEL_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def instrument(code: str) -> tuple[str, list[str]]:
    """``code`` with each ``expr  # => VALUE`` statement printing ``repr(expr)``."""
    lines = code.splitlines()
    expected = []
    for node in reversed(ast.parse(code).body):
        if not isinstance(node, ast.Expr) or node.end_lineno is None:
            continue
        last = lines[node.end_lineno - 1]
        if SHOW not in last:
            continue
        expected.append(last.split(SHOW, 1)[1].strip())
        source = ast.get_source_segment(code, node.value)
        lines[node.lineno - 1 : node.end_lineno] = [f"print({MARK!r} + repr(({source})))"]
    return "\n".join(lines) + "\n", list(reversed(expected))


def python_blocks() -> list[Block]:
    return [b for b in blocks() if b.lang == "python" and b.skip_reason is None]


def shell_blocks() -> list[Block]:
    return [
        b for b in blocks() if b.lang == "sh" and b.skip_reason is None and b.body.startswith("$ ")
    ]


def test_the_readme_has_snippets_of_both_kinds_and_skips_only_with_a_reason() -> None:
    assert len(python_blocks()) >= 3
    assert len(shell_blocks()) >= 4
    for block in blocks():
        if block.skip_reason is not None:
            assert block.skip_reason.strip(), f"line {block.line}: a skipped block needs a reason"


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the README's own code or command in ``cwd`` with the clean environment."""
    return subprocess.run(  # noqa: S603 - this interpreter or bash, running the README's own text
        argv, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=120, check=False
    )


def test_the_comparison_can_fail() -> None:
    assert matches("built in ... ms", "built in 3.2 ms")
    assert not matches("built in ... ms", "built in 3.2 s")
    assert not matches("(True, 'TARGETING_MATCH', 'allowlist')", "(False, 'STATIC', 'env')")
    code, expected = instrument("x = 1\nx + 1  # => 2\nprint('side')  # not shown\n")
    assert expected == ["2"]
    assert f"print({MARK!r} + repr((x + 1)))" in code


def test_python_snippets_print_what_the_readme_shows(tmp_path: Path) -> None:
    code = ""
    expected: list[str] = []
    for block in python_blocks():
        instrumented, shows = instrument(block.body)
        assert shows, f"line {block.line}: the block shows no value (# => ...)"
        code += instrumented
        expected += shows
    done = run([sys.executable, "-c", code], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    shown = [line[len(MARK) :] for line in done.stdout.splitlines() if line.startswith(MARK)]
    assert len(shown) == len(expected)
    for want, got in zip(expected, shown, strict=True):
        assert matches(want, got), f"README shows {want}, the code gives {got}"


def shell_steps(body: str) -> list[tuple[str, list[str]]]:
    steps: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


@pytest.mark.parametrize("block", shell_blocks(), ids=lambda b: f"line-{b.line}")
def test_shell_snippet_prints_what_the_readme_shows(block: Block, tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    for command, expected in shell_steps(block.body):
        done = run(["/bin/bash", "-c", command], tmp_path)
        assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
        actual = done.stdout.splitlines()
        assert len(actual) == len(expected), f"{command}\n{done.stdout}"
        for want, got in zip(expected, actual, strict=True):
            assert matches(want, got), f"{command}\nREADME shows: {want}\nit prints:   {got}"
