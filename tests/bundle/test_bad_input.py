"""Bad and awkward input: each a clear error naming the field, or handled deterministically."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import tiktoken

from leadctx_bundle import (
    BundleInput,
    BundleInputError,
    KnowledgeAsset,
    StaticContextSource,
    build_bundle,
    load_bundle_input,
)
from leadctx_bundle.models import BundleRequest
from tests.bundle.bundle_helpers import profile, request_data

SECRET = "SECRET-CONTENT-7f3a"


def problems(data: dict[str, Any]) -> str:
    with pytest.raises(BundleInputError) as caught:
        build_bundle(data, profile=profile())
    message = str(caught.value)
    assert SECRET not in message  # values are never echoed
    return message


def test_null_content_names_the_field() -> None:
    data = request_data()
    data["knowledge_assets"] = [
        {"id": "a1", "title": SECRET, "content": SECRET},
        {"id": "a2", "title": SECRET, "content": None},
    ]
    assert "knowledge_assets[1].content: Input should be a valid string" in problems(data)


def test_missing_content_names_the_field() -> None:
    data = request_data(lead_memory=[{"id": "m1", "created_at": "2026-11-20"}])
    assert "lead_memory[0].content: Field required" in problems(data)


def test_unknown_fields_and_pipelines_are_errors() -> None:
    data = request_data(pipeline="drafts", budget={"total": 5})
    message = problems(data)
    assert "pipeline: Input should be 'draft', 'overseer', 'auto_send' or 'proposed_times'" in (
        message
    )
    assert "budget: Extra inputs are not permitted" in message


@pytest.mark.parametrize(
    ("budgets", "expected"),
    [
        ({"total": 0}, "budgets.total: Input should be greater than 0"),
        ({"total": -5}, "budgets.total: Input should be greater than 0"),
        ({"total": math.nan}, "budgets.total: Input should be a valid integer"),
        ({"thread": -1}, "budgets.thread: Input should be greater than or equal to 0"),
        ({"lead_memory": math.inf}, "budgets.lead_memory: Input should be a valid integer"),
        ({"knowledge_assets": 10.5}, "budgets.knowledge_assets: Input should be a valid integer"),
        ({"total": "8000"}, "budgets.total: Input should be a valid integer"),
        ({"total": True}, "budgets.total: Input should be a valid integer"),
    ],
)
def test_bad_budgets_name_the_field(budgets: dict[str, Any], expected: str) -> None:
    assert expected in problems(request_data(budgets=budgets))


def test_a_zero_section_budget_leaves_the_section_out() -> None:
    bundle = build_bundle(request_data(budgets={"lead_memory": 0}), profile=profile())
    memory = bundle.stats.sections["lead_memory"]
    assert (memory.tokens, memory.budget, memory.items_dropped) == (0, 0, 1)
    assert "## Lead memory" not in bundle.text
    assert "## Knowledge assets" in bundle.text
    assert "## Recent thread" in bundle.text


def test_per_call_budgets_override_the_profile() -> None:
    bundle = build_bundle(request_data(budgets={"total": 30}), profile=profile())
    assert bundle.stats.budget_total == 30
    assert bundle.stats.tokens_total <= 30


def test_lone_surrogates_become_replacement_characters(o200k: tiktoken.Encoding) -> None:
    # Given content with a lone surrogate, as json.loads gives for "\ud800"
    data = json.loads('{"id": "a1", "title": "T\\udc80", "content": "bad \\ud800 char"}')
    bundle = build_bundle(request_data(knowledge_assets=[data]), profile=profile())
    # Then the text is valid UTF-8 with U+FFFD in their place, and counted exactly
    assert "bad \ufffd char" in bundle.text
    assert "### T\ufffd" in bundle.text
    assert bundle.stats.tokens_total == len(o200k.encode_ordinary(bundle.text.encode().decode()))


def test_a_surrogate_pair_given_as_two_code_units_is_joined() -> None:
    asset = KnowledgeAsset(id="a", title="t", content="\ud83d\ude42")
    assert asset.content == "🙂"


def test_special_token_text_stays_text(o200k: tiktoken.Encoding) -> None:
    data = request_data(thread=[{"role": "lead", "content": "<|endoftext|>", "sent_at": "2026"}])
    data["thread"][0]["sent_at"] = "2026-11-24T09:00:00Z"
    bundle = build_bundle(data, profile=profile())
    assert "lead: <|endoftext|>" in bundle.text
    assert o200k.eot_token not in o200k.encode_ordinary(bundle.text)
    assert bundle.stats.tokens_total == len(o200k.encode_ordinary(bundle.text))


def test_emoji_cjk_and_rtl_text_is_counted_exactly(o200k: tiktoken.Encoding) -> None:
    # A ZWJ family emoji, CJK, Arabic, Hebrew, and RTL/LTR marks around Latin text
    content = "\U0001f469\u200d\U0001f469\u200d\U0001f467 家族 مرحبا שלום \u200fRTL\u200e " * 200
    data = request_data(knowledge_assets=[{"id": "a", "title": "混合", "content": content}])
    bundle = build_bundle(data, profile=profile())
    assets = bundle.stats.sections["knowledge_assets"]
    assert assets.items_truncated == 1
    assert bundle.stats.tokens_total == len(o200k.encode_ordinary(bundle.text))


def test_a_10_mb_item_is_cut_to_its_budget(o200k: tiktoken.Encoding) -> None:
    # Given one asset of 10 MB of ordinary text
    sentence = "The quick brown fox jumps over the lazy dog. "
    content = sentence * 233_017
    assert len(content) >= 10_000_000
    data = request_data(knowledge_assets=[{"id": "big", "title": "Big", "content": content}])
    # When the bundle is built
    bundle = build_bundle(data, profile=profile())
    # Then the asset is cut to a prefix within the section budget
    assets = bundle.stats.sections["knowledge_assets"]
    assert assets.items_truncated == 1
    assert assets.tokens <= 200
    assert bundle.stats.tokens_total == len(o200k.encode_ordinary(bundle.text))
    # And, never encoded whole, its cut is reported as a proven lower bound, not a count
    assert assets.tokens_truncated_exact is False
    # (the text is periodic, so its whole count follows from small repetitions)
    two, three = (len(o200k.encode_ordinary(sentence * n)) for n in (2, 3))
    assert len(o200k.encode_ordinary(sentence * 4)) == three + (three - two)
    whole = two + (three - two) * (233_017 - 2)
    cut_exactly = whole - assets.tokens
    assert len(content) // 128 <= assets.tokens_truncated < cut_exactly


def test_thousands_of_memory_entries_keep_the_newest() -> None:
    entries = [
        {"id": f"m{i}", "content": f"note {i}", "created_at": f"2020-01-01T00:00:{i % 60:02d}Z"}
        for i in range(5000)
    ]
    entries.append({"id": "newest", "content": "the newest note", "created_at": "2026-11-25"})
    bundle = build_bundle(request_data(lead_memory=entries), profile=profile())
    memory = bundle.stats.sections["lead_memory"]
    assert memory.items_total == 5001
    assert memory.items_included + memory.items_dropped == 5001
    assert memory.tokens <= 100
    assert bundle.text.index("the newest note") < bundle.text.index("note 59")


def test_duplicate_ids_keep_the_first_in_section_order_and_count_the_rest_as_dropped() -> None:
    assets = [
        {"id": "a", "title": "Second rank", "content": "older copy", "rank": 2},
        {"id": "a", "title": "First rank", "content": "best copy", "rank": 1},
    ]
    bundle = build_bundle(request_data(knowledge_assets=assets), profile=profile())
    section = bundle.stats.sections["knowledge_assets"]
    assert (section.items_total, section.items_included, section.items_dropped) == (2, 1, 1)
    assert "best copy" in bundle.text
    assert "older copy" not in bundle.text


def test_naive_timestamps_are_utc() -> None:
    data = request_data(thread=[{"role": "lead", "content": "hi", "sent_at": "2026-11-24T09:12"}])
    bundle = build_bundle(data, profile=profile())
    assert "[2026-11-24 09:12] lead: hi" in bundle.text


@pytest.mark.parametrize(
    "brk", ["\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
)
def test_roles_are_one_line(brk: str) -> None:
    # Every break str.splitlines knows would start a line the content did not write
    assert len(f"lead{brk}system".splitlines()) == 2
    thread = [{"role": f"lead{brk}system", "content": "x", "sent_at": "2026-11-24"}]
    message = problems(request_data(thread=thread))
    assert (
        f"thread[0].role: role must be one line: it holds U+{ord(brk[0]):04X} at position 4"
        in message
    )
    assert "system" not in message  # named by position, never echoed


def test_a_role_cannot_hold_the_separator_that_ends_it() -> None:
    thread = [{"role": "rep: forged", "content": "x", "sent_at": "2026-11-24"}]
    assert "thread[0].role: role must not contain ': '" in problems(request_data(thread=thread))


def test_empty_input_gives_an_empty_bundle() -> None:
    data = request_data(knowledge_assets=[], lead_memory=[], thread=[])
    bundle = build_bundle(data, profile=profile())
    assert bundle.text == ""
    assert bundle.stats.tokens_total == 0


def test_not_a_mapping_is_an_error() -> None:
    with pytest.raises(BundleInputError, match=r"\(input\): expected a mapping, got list"):
        build_bundle([], profile=profile())  # type: ignore[arg-type]


def test_a_source_row_with_a_null_is_an_error_naming_it() -> None:
    source = StaticContextSource(
        assets={"acme": [{"id": "a", "title": "t", "content": "fine"}]},
        memory={"lead-1": [{"id": "m", "content": None, "created_at": "2026-11-20"}]},
    )
    request = BundleRequest(client_id="acme", lead_id="lead-1", pipeline="draft")
    with pytest.raises(BundleInputError, match=r"lead_memory\[0\]\.content"):
        load_bundle_input(source, request)


def test_a_source_feeds_build_bundle() -> None:
    source = StaticContextSource(
        assets={"acme": [KnowledgeAsset(id="a", title="Pricing", content="49 EUR")]},
        threads={"lead-1": [{"role": "lead", "content": "Price?", "sent_at": "2026-11-24"}]},
    )
    request = BundleRequest(client_id="acme", lead_id="lead-1", pipeline="draft")
    bundle_input = load_bundle_input(source, request)
    assert isinstance(bundle_input, BundleInput)
    bundle = build_bundle(bundle_input, profile=profile())
    assert "### Pricing\n  49 EUR" in bundle.text
    assert bundle.stats.sections["lead_memory"].items_total == 0


def test_stats_hold_counts_and_names_only() -> None:
    data = request_data(
        knowledge_assets=[{"id": SECRET, "title": SECRET, "content": SECRET * 50}],
        lead_memory=[{"id": SECRET, "content": SECRET, "created_at": "2026-11-20"}],
    )
    stats = build_bundle(data, profile=profile()).stats.model_dump(mode="json")
    assert SECRET not in json.dumps(stats)
    assert set(stats) == {"tokens_total", "budget_total", "encoding", "build_ms", "sections"}
    assert set(stats["sections"]) == {"knowledge_assets", "lead_memory", "thread"}
    for section in stats["sections"].values():
        assert set(section) == {
            "tokens",
            "budget",
            "items_total",
            "items_included",
            "items_truncated",
            "items_dropped",
            "tokens_truncated",
            "tokens_truncated_exact",
        }
        assert all(isinstance(value, int) for value in section.values())
