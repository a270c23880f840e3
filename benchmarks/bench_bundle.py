"""Bundle builder benchmarks: cost against one tokenizer pass, scaling, the cache, a peer.

Run: ``.venv/bin/python benchmarks/bench_bundle.py`` (or ``make bench``). Prints figures;
``docs/performance.md`` (section "Bundle builder") holds a copy and explains them.

Every figure is a median over interleaved rounds: the cases of a comparison run one after the
other in each round, so they see the same machine. Builds are cold unless said otherwise (the
process-wide token cache is cleared first). Inputs are validated ``BundleInput`` models, as a
``ContextSource`` loader returns them; validation is timed on its own line.

1. 1 MB into an 8k budget vs one ``encode_ordinary`` pass over the same text (target <= 1.2),
   for one 1 MB asset (encoded only as far as its room needs; see
   ``bench_bundle_cost.py``), for 1 MB spread over many items, and for 1 MB that all fits
   (every item encoded: pure overhead).
2. 0.1 / 1 / 10 MB: 10x the input within 11x the time (for one asset, about 1x now).
3. Warm rebuild for a client whose assets repeat vs cold (target >= 5x).
4. LangChain's ``trim_messages`` with a tiktoken counter on the same thread, if installed
   (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from leadctx_bundle import (
    BundleInput,
    BundleProfile,
    KnowledgeAsset,
    LeadMemoryEntry,
    ThreadMessage,
    build_bundle,
    load_encoding,
    token_counter,
)
from leadctx_bundle.encodings import TiktokenEncodingName

KB = 1024
MB = 1024 * KB
ENCODING: TiktokenEncodingName = "o200k_base"
DRAFT_8K = BundleProfile(budget_total=8000, knowledge_assets=4000, lead_memory=1500, thread=2500)
EVERYTHING_FITS = BundleProfile(
    budget_total=10_000_000, knowledge_assets=5_000_000, lead_memory=2_000_000, thread=3_000_000
)
THREAD_8K = BundleProfile(budget_total=8000, knowledge_assets=0, lead_memory=0, thread=8000)

# Sentence material: English business words, numbers, accents, CJK, Arabic, Hebrew, emoji.
WORDS = [
    *("the", "a", "to", "of", "and", "in", "for", "on", "with", "we", "you", "our", "your"),
    *("plan", "pricing", "meeting", "call", "demo", "Thursday", "Friday", "3pm", "4:30", "CET"),
    *("invoice", "contract", "renewal", "discount", "onboarding", "team", "budget", "quarter"),
    *("Q3", "2026", "résumé", "naïve", "café", "日本語", "中文", "مرحبا", "שלום", "🙂", "👍"),
    *("—", "...", "?", "!"),
]
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def prose(size: int, rng: random.Random) -> str:
    """About ``size`` bytes of sentence-like text with some non-ASCII."""
    parts: list[str] = []
    length = 0
    while length < size:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 18))) + ". "
        if rng.random() < 0.1:
            sentence += "\n\n"
        parts.append(sentence)
        length += len(sentence.encode())
    return "".join(parts)


def assets(total: int, item: int, rng: random.Random, prefix: str = "a") -> list[KnowledgeAsset]:
    count = max(1, total // item)
    return [
        KnowledgeAsset(id=f"{prefix}{i}", title=f"Asset {i}", content=prose(item, rng), rank=i)
        for i in range(count)
    ]


def lead_rows(
    rng: random.Random, memory: int, thread: int, size: int, tag: str
) -> tuple[list[LeadMemoryEntry], list[ThreadMessage]]:
    return (
        [
            LeadMemoryEntry(
                id=f"{tag}-m{i}",
                content=f"[{tag}] " + prose(size, rng),
                created_at=T0 + timedelta(hours=i),
            )
            for i in range(memory)
        ],
        [
            ThreadMessage(
                role="lead" if i % 2 else "agent",
                content=f"[{tag}] " + prose(size, rng),
                sent_at=T0 + timedelta(minutes=i),
            )
            for i in range(thread)
        ],
    )


def bundle_input(**rows: Any) -> BundleInput:
    return BundleInput(client_id="acme", lead_id="lead-1", pipeline="draft", **rows)


def all_text(data: BundleInput) -> str:
    contents = [item.content for item in data.knowledge_assets]
    contents += [entry.content for entry in data.lead_memory]
    contents += [message.content for message in data.thread]
    return "\n\n".join(contents)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def cold(data: BundleInput, profile: BundleProfile) -> Callable[[], object]:
    def run() -> object:
        token_counter(profile.encoding).clear()
        return build_bundle(data, profile=profile)

    return run


def interleaved(cases: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median milliseconds per case, the cases alternating within each round."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            if name.startswith("warm"):
                fn()  # the previous case may have cleared the cache: warm it first
            times[name].append(timed(fn))
    return {name: statistics.median(values) for name, values in times.items()}


def floor(text: str) -> Callable[[], object]:
    encoding = load_encoding(ENCODING)
    return lambda: encoding.encode_ordinary(text)


def report(title: str, medians: dict[str, float], base: str) -> None:
    print(f"\n{title}")
    for name, ms in medians.items():
        print(f"  {name:<44} {ms:9.2f} ms   x{ms / medians[base]:.3f} of {base}")


def one_mb(rng: random.Random) -> None:
    single = bundle_input(knowledge_assets=assets(MB, MB, rng))
    many_memory, many_thread = lead_rows(rng, 40, 60, 2 * KB, "lead")
    many = bundle_input(
        knowledge_assets=assets(MB - 200 * KB, 5 * KB, rng),
        lead_memory=many_memory,
        thread=many_thread,
    )
    for label, data, profile in (
        ("one 1 MB asset, 8k budget", single, DRAFT_8K),
        ("1 MB over 260 items, 8k budget", many, DRAFT_8K),
        ("1 MB over 260 items, all fits", many, EVERYTHING_FITS),
    ):
        medians = interleaved(
            {"encode_ordinary (floor)": floor(all_text(data)), "build_bundle": cold(data, profile)},
            rounds=9,
        )
        report(f"[1] {label}", medians, "encode_ordinary (floor)")
    raw = many.model_dump()
    medians = interleaved({"validate 1 MB BundleInput": lambda: BundleInput.model_validate(raw)}, 5)
    print(f"  (validating that input from dicts: {medians['validate 1 MB BundleInput']:.2f} ms)")


def scaling(rng: random.Random) -> None:
    for label, item in (("one asset", None), ("5 KB assets", 5 * KB)):
        medians: dict[str, float] = {}
        floors: dict[str, float] = {}
        for size, tag in ((MB // 10, "0.1 MB"), (MB, "1 MB"), (10 * MB, "10 MB")):
            data = bundle_input(knowledge_assets=assets(size, item or size, rng))
            result = interleaved({"floor": floor(all_text(data)), "build": cold(data, DRAFT_8K)}, 5)
            medians[tag], floors[tag] = result["build"], result["floor"]
        print(f"\n[2] scaling, {label}, 8k budget (cold)")
        for tag, ms in medians.items():
            print(f"  {tag:<8} build {ms:9.2f} ms   floor {floors[tag]:9.2f} ms")
        print(
            f"  10x input: 0.1->1 MB x{medians['1 MB'] / medians['0.1 MB']:.2f}, "
            f"1->10 MB x{medians['10 MB'] / medians['1 MB']:.2f} "
            f"(floor x{floors['1 MB'] / floors['0.1 MB']:.2f}, "
            f"x{floors['10 MB'] / floors['1 MB']:.2f})"
        )


def warm_vs_cold(rng: random.Random) -> None:
    client_assets = assets(MB, 5 * KB, rng)
    leads = [lead_rows(rng, 30, 40, 1 * KB, f"lead{i}") for i in range(40)]
    inputs = [
        bundle_input(knowledge_assets=client_assets, lead_memory=m, thread=t) for m, t in leads
    ]
    fresh = iter(inputs[2:])

    def new_lead() -> object:
        # Assets are cached from earlier builds; this lead's rows have never been seen.
        return build_bundle(next(fresh), profile=DRAFT_8K)

    medians = interleaved(
        {
            "cold": cold(inputs[0], DRAFT_8K),
            "warm: same request again": lambda: build_bundle(inputs[0], profile=DRAFT_8K),
            "warm: same client, new lead": new_lead,
        },
        rounds=9,
    )
    print("\n[3] warm vs cold: a client's 1 MB of assets (5 KB each), 8k budget")
    for name, ms in medians.items():
        print(f"  {name:<44} {ms:9.3f} ms   cold/this x{medians['cold'] / ms:.1f}")


def langchain_peer(rng: random.Random) -> None:
    try:
        from langchain_core.messages import (  # noqa: PLC0415 - optional peer
            AIMessage,
            BaseMessage,
            HumanMessage,
            trim_messages,
        )
    except ImportError:
        print("\n[4] LangChain trim_messages: skipped, langchain-core is not installed")
        print("    (pip install -e '.[bench]')")
        return
    _, thread = lead_rows(rng, 0, 500, 2 * KB, "peer")
    data = bundle_input(thread=thread)
    messages: list[BaseMessage] = [
        HumanMessage(m.content) if m.role == "lead" else AIMessage(m.content) for m in thread
    ]
    encoding = load_encoding(ENCODING)

    def count(batch: list[BaseMessage]) -> int:
        return sum(len(encoding.encode_ordinary(str(m.content))) for m in batch)

    medians = interleaved(
        {
            "build_bundle (thread only, cold)": cold(data, THREAD_8K),
            "trim_messages(strategy=last)": lambda: trim_messages(
                messages, max_tokens=8000, token_counter=count, strategy="last"
            ),
            "encode_ordinary (floor)": floor(all_text(data)),
        },
        rounds=7,
    )
    report(
        "[4] 500 messages (1 MB), 8k budget, most recent kept",
        medians,
        "build_bundle (thread only, cold)",
    )


def main() -> None:
    rng = random.Random(20261125)
    load_encoding(ENCODING)  # built once, outside every timing
    print(f"bench_bundle: encoding {ENCODING}, medians of interleaved rounds")
    one_mb(rng)
    scaling(rng)
    warm_vs_cold(rng)
    langchain_peer(rng)


if __name__ == "__main__":
    main()
