"""What the unforgeable layout costs: indenting content against encoding it, and its tokens.

Run: ``.venv/bin/python benchmarks/bench_bundle_layout.py`` (about 10 s). Prints figures;
``docs/performance.md`` (section "Bundle builder", [6]) holds a copy.

1. Time: ``render.indent_lines`` over 1 MB of text against one ``encode_ordinary`` pass over
   the same text (the floor every build pays for what it keeps), interleaved rounds, medians.
   Kinds: prose with a line break every ~60 characters, e-mail-like text with blank lines and
   quoted lines, one line without a break (the common asset), and 1 MB of newlines (the
   worst case: every character is a break).
2. Tokens: the tokens of the rendered (indented) text against the raw text, per kind, for
   ``o200k_base`` and ``cl100k_base``: what the packer now budgets, as a ratio.
"""

from __future__ import annotations

import functools
import random
import statistics
import time
from collections.abc import Callable

from leadctx_bundle import load_encoding
from leadctx_bundle.render import indent_lines

MB = 1_000_000
ROUNDS = 7

_rng = random.Random(20261203)
_WORDS = ("plans", "start", "at", "49", "EUR", "per", "seat", "we", "meet", "Thursday", "call")


def _prose(size: int, words_per_line: int) -> str:
    lines, total = [], 0
    while total < size:
        line = " ".join(_rng.choice(_WORDS) for _ in range(words_per_line)) + ".\n"
        lines.append(line)
        total += len(line)
    return "".join(lines)[:size]


def _email(size: int) -> str:
    paragraphs, total = [], 0
    while total < size:
        body = _prose(240, 10).rstrip("\n")
        quoted = "\n".join("> " + line for line in _prose(120, 8).splitlines())
        paragraph = f"Hi,\n\n{body}\n\n{quoted}\n\nBest,\nAnna\n\n"
        paragraphs.append(paragraph)
        total += len(paragraph)
    return "".join(paragraphs)[:size]


KINDS: dict[str, str] = {
    "prose, a break every ~60 chars": _prose(MB, 10),
    "e-mails: blank and quoted lines": _email(MB),
    "one line, no break": _prose(MB, 10).replace("\n", " "),
    "newlines only (worst case)": "\n" * MB,
}


def _timed_ms(run: Callable[[], object], times: list[float]) -> None:
    started = time.perf_counter()
    run()
    times.append((time.perf_counter() - started) * 1000)


def main() -> None:
    """Print the time and token ratios."""
    encoding = load_encoding("o200k_base")
    print("bench_bundle_layout: 1 MB per kind, medians of interleaved rounds")
    print("\n[1] time: indent_lines vs one encode_ordinary pass (o200k_base)")
    for kind, text in KINDS.items():
        indent: list[float] = []
        floor: list[float] = []
        for _ in range(ROUNDS):
            _timed_ms(functools.partial(indent_lines, text), indent)
            _timed_ms(functools.partial(encoding.encode_ordinary, text), floor)
        ratio = statistics.median(indent) / statistics.median(floor)
        print(
            f"  {kind:<34} indent {statistics.median(indent):8.2f} ms   "
            f"floor {statistics.median(floor):8.2f} ms   x{ratio:.3f}"
        )
    print("\n[2] tokens: rendered (indented) vs raw")
    for name in ("o200k_base", "cl100k_base"):
        tokens = load_encoding(name)
        for kind, text in KINDS.items():
            sample = text[: MB // 10]
            raw = len(tokens.encode_ordinary(sample))
            rendered = len(tokens.encode_ordinary(indent_lines(sample)))
            lines = len(sample.splitlines())
            print(
                f"  {name:<11} {kind:<34} raw {raw:7d}  rendered {rendered:7d}  "
                f"x{rendered / raw:.3f}  (+{(rendered - raw) / max(lines, 1):.2f} per line)"
            )


if __name__ == "__main__":
    main()
