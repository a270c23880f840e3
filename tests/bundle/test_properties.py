"""Invariants of build_bundle over generated inputs (hypothesis).

For every input: the stats' total is the exact token count of the text; no budget is exceeded;
sections add up; included + dropped == total; truncated items are included ones; every kept
item's content is a prefix of the original; the same input gives the same output, warm or cold.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import tiktoken
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from leadctx_bundle import (
    SECTIONS,
    TIKTOKEN_ENCODINGS,
    BundleInput,
    BundleProfile,
    BundleStats,
    LeadContextBundle,
    SectionStats,
    build_bundle,
    load_encoding,
    token_counter,
)
from leadctx_bundle.models import scrub_text
from leadctx_bundle.ordering import (
    assets_in_rank_order,
    memory_newest_first,
    thread_most_recent_first,
)
from leadctx_bundle.render import INDENT, SEPARATOR, heading_block, indent_lines
from tests.bundle.structure import parse_bundle, unindent

# Endings that stress the tokenizer's pre-splitting regex at a block boundary.
TRICKY_ENDINGS = [
    *("", " ", "  ", "\t", ".", "!?", "/", "./", "\r", "\n", " \n ", "\u2028", "\u3000"),
    *("\u00a0", "e\u0301", "'s", "123", "<|endoftext|>", "\U0001f642", "日本", "\u0627"),
]

BASE_TIME = datetime(2026, 11, 1, tzinfo=UTC)


def contents(alphabet: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[str]:
    text = st.text(max_size=400) if alphabet is None else st.text(alphabet, max_size=400)
    return st.builds(lambda t, e: t + e, text, st.sampled_from(TRICKY_ENDINGS))


def bundle_inputs(content: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    asset = st.fixed_dictionaries(
        {
            "id": st.sampled_from(["a1", "a2", "a3", "a4", "a5"]),  # duplicates happen
            "title": st.sampled_from(["Pricing", "FAQ", "Policy", " Multi\nline "]),
            "content": content,
            "rank": st.none() | st.integers(-3, 3),
        }
    )
    memory = st.fixed_dictionaries(
        {
            "id": st.sampled_from(["m1", "m2", "m3", "m4"]),
            "content": content,
            "created_at": st.integers(0, 30).map(lambda d: BASE_TIME + timedelta(days=d)),
        }
    )
    message = st.fixed_dictionaries(
        {
            "role": st.sampled_from(["lead", "agent"]),
            "content": content,
            "sent_at": st.integers(0, 500).map(lambda m: BASE_TIME + timedelta(minutes=m)),
        }
    )
    return st.fixed_dictionaries(
        {
            "client_id": st.just("acme"),
            "lead_id": st.just("lead-1"),
            "pipeline": st.sampled_from(["draft", "overseer", "auto_send", "proposed_times"]),
            "knowledge_assets": st.lists(asset, max_size=6),
            "lead_memory": st.lists(memory, max_size=6),
            "thread": st.lists(message, max_size=6),
        }
    )


profiles = st.builds(
    BundleProfile,
    budget_total=st.integers(1, 500),
    knowledge_assets=st.integers(0, 200),
    lead_memory=st.integers(0, 150),
    thread=st.integers(0, 200),
    min_item_tokens=st.integers(1, 16),
    encoding=st.sampled_from(["o200k_base", "cl100k_base", "heuristic"]),
)


def exact_count(bundle: LeadContextBundle) -> int:
    if bundle.stats.encoding == "heuristic":
        return len(bundle.text.encode("utf-8"))
    encodings: dict[str, tiktoken.Encoding] = {n: load_encoding(n) for n in TIKTOKEN_ENCODINGS}
    return len(encodings[bundle.stats.encoding].encode_ordinary(bundle.text))


def check_budgets_and_counts(bundle: LeadContextBundle, profile: BundleProfile) -> None:
    stats = bundle.stats
    assert stats.tokens_total == exact_count(bundle)
    assert stats.tokens_total <= stats.budget_total == profile.budget_total
    assert sum(s.tokens for s in stats.sections.values()) == stats.tokens_total
    assert list(stats.sections) == list(SECTIONS)
    for name, section in stats.sections.items():
        assert section.budget == profile.section_budget(name)
        assert section.tokens <= section.budget
        assert section.items_included + section.items_dropped == section.items_total
        assert section.items_truncated <= section.items_included
        assert (section.tokens_truncated > 0) == (section.items_truncated > 0)
        if section.items_included == 0:
            assert section.tokens == 0


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=bundle_inputs(contents()), profile=profiles)
def test_budgets_hold_and_counts_are_exact(data: dict[str, Any], profile: BundleProfile) -> None:
    bundle = build_bundle(data, profile=profile)
    check_budgets_and_counts(bundle, profile)
    bundle.text.encode("utf-8")  # always valid UTF-8: this raises on a lone surrogate


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=bundle_inputs(contents()), profile=profiles)
def test_kept_items_are_prefixes_in_section_order(
    data: dict[str, Any], profile: BundleProfile
) -> None:
    # Given any content: the text parses back into blocks whatever it holds (render.py)
    bundle = build_bundle(data, profile=profile)
    check_budgets_and_counts(bundle, profile)
    parsed = BundleInput.model_validate(data)
    expected = {
        "knowledge_assets": [a.content for a in assets_in_rank_order(parsed.knowledge_assets)],
        "lead_memory": [m.content for m in memory_newest_first(parsed.lead_memory)],
        "thread": [t.content for t in thread_most_recent_first(parsed.thread)],
    }
    # When the text is parsed
    sections = {section.name: section.items for section in parse_bundle(bundle.text)}
    # Then each section holds a prefix of its order, each item whole or cut to a prefix
    for name in SECTIONS:
        stats = bundle.stats.sections[name]
        kept = [item.content for item in sections.get(name, [])]
        assert len(kept) == stats.items_included
        if name == "thread":
            kept = kept[::-1]  # rendered oldest first
        cut = 0
        for text, content in zip(kept, expected[name], strict=False):
            assert content.startswith(text)
            cut += text != content
        assert cut == stats.items_truncated <= 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=bundle_inputs(contents()), profile=profiles)
def test_same_input_same_output_cold_or_warm(data: dict[str, Any], profile: BundleProfile) -> None:
    token_counter(profile.encoding).clear()
    cold = build_bundle(data, profile=profile)
    warm = build_bundle(data, profile=profile)
    assert warm.text == cold.text
    assert warm.stats.model_dump(exclude={"build_ms"}) == cold.stats.model_dump(
        exclude={"build_ms"}
    )


@settings(max_examples=150, deadline=None)
@given(bodies=st.lists(contents(), min_size=1, max_size=5))
def test_text_tokens_are_the_sum_of_block_tokens(bodies: list[str]) -> None:
    # The reason build_bundle never re-encodes the bundle to count it (see render.py).
    blocks = [heading_block("thread")]
    for i, body in enumerate(bodies):
        head = ("### Title\n" + INDENT, "- 2026-11-20: ", "[2026-11-24 09:12] lead: ")[i % 3]
        blocks.append(head + indent_lines(body) + SEPARATOR)
    blocks[-1] = blocks[-1].removesuffix(SEPARATOR)
    for name in TIKTOKEN_ENCODINGS:
        encoding = load_encoding(name)
        whole = len(encoding.encode_ordinary("".join(blocks)))
        assert whole == sum(len(encoding.encode_ordinary(b)) for b in blocks)


@settings(max_examples=60, deadline=None)
@given(
    body=st.text(min_size=300, max_size=1500),
    room=st.integers(40, 150),
    encoding=st.sampled_from(["o200k_base", "cl100k_base", "heuristic"]),
)
def test_a_long_item_is_cut_to_a_prefix_that_fits(body: str, room: int, encoding: str) -> None:
    # Given one asset far larger than its section
    profile = BundleProfile(
        budget_total=1000,
        knowledge_assets=room,
        lead_memory=0,
        thread=0,
        min_item_tokens=4,
        encoding=encoding,
    )
    data = {
        "client_id": "acme",
        "lead_id": "lead-1",
        "pipeline": "draft",
        "knowledge_assets": [{"id": "a", "title": "T", "content": body}],
    }
    rendered = "### T\n" + INDENT + indent_lines(body) + SEPARATOR
    assume(token_counter(profile.encoding).count(rendered) > room)
    # When the bundle is built
    bundle = build_bundle(data, profile=profile)
    # Then the asset is cut, fits, and what is kept starts the original content
    section = bundle.stats.sections["knowledge_assets"]
    check_budgets_and_counts(bundle, profile)
    assert section.items_included == section.items_truncated == 1
    kept = unindent(bundle.text.removeprefix(heading_block("knowledge_assets") + "### T\n  "))
    assert scrub_text(body).startswith(kept)
    assert len(kept) < len(body)


_counts = st.integers(min_value=0, max_value=2**40)
_section_stats = st.builds(
    SectionStats,
    tokens=_counts,
    budget=_counts,
    items_total=_counts,
    items_included=_counts,
    items_truncated=_counts,
    items_dropped=_counts,
    tokens_truncated=_counts,
    tokens_truncated_exact=st.booleans(),
)


@given(
    st.builds(
        BundleStats,
        tokens_total=_counts,
        budget_total=_counts,
        encoding=st.sampled_from(["o200k_base", "cl100k_base", "heuristic"]),
        build_ms=st.floats(min_value=0, max_value=1e9, allow_nan=False),
        sections=st.fixed_dictionaries(dict.fromkeys(SECTIONS, _section_stats)),
    )
)
def test_the_stats_json_of_the_log_record_is_pydantics_json_dump(stats: BundleStats) -> None:
    # The log record's `leadctx_stats` is built by hand for speed: it must stay exactly what
    # pydantic's JSON dump gives (keys, their order, values and types), and JSON-serialisable
    data = stats.to_json()
    dumped = stats.model_dump(mode="json")
    assert data == dumped
    assert json.dumps(data) == json.dumps(dumped)
    assert data["sections"] is not dumped["sections"]
    data["sections"]["thread"]["tokens"] = -1  # a copy: the frozen model is untouched
    assert stats.sections["thread"].tokens >= 0
