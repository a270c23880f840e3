"""A build's cost follows the budget, not the input: one huge item into an 8k budget.

Run: ``.venv/bin/python benchmarks/bench_bundle_cost.py [--whole]``. Prints figures;
``docs/performance.md`` (section "Bundle builder", [5]) holds a copy and explains them.

For each kind of item (one repeated letter; random letters without spaces; ordinary prose), a
10 MB asset and the first 100 KB of it are built into the ``draft`` budgets (8,000 in total,
4,000 for assets), cold (token cache cleared), the two alternating in each round; the figure
is the median over rounds, and the target is 10 MB / 100 KB <= 2. Beside them, one
``encode_ordinary`` of the text the bundle kept: what encoding the part that fits costs.
``--whole`` also times one ``encode_ordinary`` of each whole 10 MB item, once (what a build
cost when every item was encoded whole; about 20 s in all).
"""

from __future__ import annotations

import random
import statistics
import string
import sys
import time
from collections.abc import Callable

from leadctx_bundle import (
    BundleInput,
    BundleProfile,
    KnowledgeAsset,
    LeadContextBundle,
    build_bundle,
    load_encoding,
    token_counter,
)

MB = 1_000_000
ROUNDS = 15
DRAFT_8K = BundleProfile(budget_total=8000, knowledge_assets=4000, lead_memory=1500, thread=2500)
WORDS = [
    *("the", "a", "to", "of", "and", "in", "for", "on", "with", "we", "you", "our", "your"),
    *("plan", "pricing", "meeting", "call", "demo", "Thursday", "3pm", "CET", "invoice"),
    *("contract", "renewal", "discount", "onboarding", "team", "budget", "Q3", "2026"),
    *("résumé", "café", "日本語", "مرحبا", "🙂", "—", "...", "?", "!"),
]


def prose(size: int, rng: random.Random) -> str:
    """About ``size`` characters of sentences, a paragraph break every ten or so."""
    parts: list[str] = []
    length = 0
    while length < size:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18))) + ". "
        if rng.random() < 0.1:
            sentence += "\n\n"
        parts.append(sentence)
        length += len(sentence)
    return "".join(parts)[:size]


def items(rng: random.Random) -> dict[str, str]:
    return {
        "one repeated letter": "a" * (10 * MB),
        "random letters, no spaces": "".join(rng.choices(string.ascii_letters, k=10 * MB)),
        "ordinary prose": prose(10 * MB, rng),
    }


def bundle_input(content: str) -> BundleInput:
    asset = KnowledgeAsset(id="big", title="Pasted blob", content=content, rank=1)
    return BundleInput(
        client_id="acme", lead_id="lead-1", pipeline="draft", knowledge_assets=[asset]
    )


def cold(data: BundleInput) -> Callable[[], LeadContextBundle]:
    def run() -> LeadContextBundle:
        token_counter(DRAFT_8K.encoding).clear()
        return build_bundle(data, profile=DRAFT_8K)

    return run


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def encoded_chars(run: Callable[[], LeadContextBundle]) -> int:
    run()
    return token_counter(DRAFT_8K.encoding).info().encoded_chars


def encode(text: str) -> Callable[[], object]:
    encoding = load_encoding("o200k_base")
    return lambda: encoding.encode_ordinary(text)


def main() -> None:
    rng = random.Random(20261126)
    # Build the encoding and the prefix rules once, outside every timing.
    token_counter(DRAFT_8K.encoding).fit(("warm up the prefix rules " * 9000,), 10)
    print(f"bench_bundle_cost: o200k_base, draft budgets, medians of {ROUNDS} interleaved rounds")
    for kind, content in items(rng).items():
        large, small = cold(bundle_input(content)), cold(bundle_input(content[:100_000]))
        kept = large().text
        cases = {"10 MB": large, "100 KB": small, "kept": encode(kept)}
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(ROUNDS):
            for name, fn in cases.items():
                times[name].append(timed(fn))
        ms = {name: statistics.median(values) for name, values in times.items()}
        stats = large().stats.sections["knowledge_assets"]
        chars = {"10 MB": encoded_chars(large), "100 KB": encoded_chars(small)}
        print(f"\n{kind}: kept {len(kept):,} characters, {stats.tokens:,} tokens")
        for name, label in (("10 MB", "10 MB item"), ("100 KB", "100 KB prefix")):
            print(f"  build, {label:<15} {ms[name]:8.2f} ms   encoded {chars[name]:>9,} chars")
        print(f"  encode the kept text   {ms['kept']:8.2f} ms")
        print(f"  10 MB / 100 KB = {ms['10 MB'] / ms['100 KB']:.2f}  (target <= 2)")
        print(f"  10 MB / encode of the kept text = {ms['10 MB'] / ms['kept']:.2f}")
        print(
            f"  tokens_truncated {stats.tokens_truncated:,} "
            f"(exact: {stats.tokens_truncated_exact}; otherwise a lower bound)"
        )
        if "--whole" in sys.argv[1:]:
            whole = timed(encode(content))
            print(f"  encode_ordinary of the whole 10 MB, once: {whole / 1000:.2f} s")


if __name__ == "__main__":
    main()
