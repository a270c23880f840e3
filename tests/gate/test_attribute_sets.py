"""The attribute sets the gate builds once and reuses: each still says what its call saw."""

from __future__ import annotations

import dataclasses

import pytest
from openfeature.client import OpenFeatureClient

from leadctx_bundle import build_bundle, resolve_context
from leadctx_bundle.gate import FlagOutcome
from leadctx_bundle.stats import SECTIONS
from leadctx_bundle.telemetry import (
    SECTION_FIELDS,
    flag_attributes,
    resolution_attributes,
    resolve_attributes,
    section_attribute,
    stats_attributes,
)
from tests.gate.conftest import Recorded, sample

ON = FlagOutcome(
    key="shared_bundle.enabled",
    value=True,
    variant="on",
    reason="TARGETING_MATCH",
    source="override",
    version="7",
    set_id="leadctx",
    provider="leadctx",
)


def test_a_new_revision_or_client_gives_new_flag_attributes() -> None:
    first = resolve_attributes("shared", "draft", ON, "acme")
    assert first["feature_flag.version"] == "7"
    assert first["feature_flag.context.id"] == "acme"
    assert first["leadctx.bundle.path"] == "shared"
    assert first["leadctx.pipeline"] == "draft"
    revised = resolve_attributes("shared", "draft", dataclasses.replace(ON, version="8"), "acme")
    assert revised["feature_flag.version"] == "8"
    other = resolve_attributes("legacy", "overseer", ON, "globex")
    assert (other["feature_flag.context.id"], other["leadctx.bundle.path"]) == ("globex", "legacy")
    assert other["leadctx.pipeline"] == "overseer"
    # a flag error is reported in lower case, as the conventions spell error.type
    failed = resolve_attributes(
        "legacy", "draft", FlagOutcome(key=ON.key, value=False, error_code="GENERAL"), "acme"
    )
    assert failed["error.type"] == "general"
    assert "feature_flag.version" not in failed


def test_kept_attribute_sets_cannot_be_changed_by_a_caller() -> None:
    kept = resolve_attributes("shared", "draft", ON, "acme")
    with pytest.raises(TypeError):
        kept["feature_flag.version"] = "changed"  # type: ignore[index]
    # flag_attributes hands out a copy of its own
    copy = flag_attributes(ON, "acme")
    copy["feature_flag.version"] = "changed"
    assert flag_attributes(ON, "acme")["feature_flag.version"] == "7"


def test_no_flag_means_path_and_pipeline_only() -> None:
    assert dict(resolve_attributes("fallback", None, None, None)) == {
        "leadctx.bundle.path": "fallback"
    }


def test_stats_attributes_name_every_section_field() -> None:
    stats = build_bundle(sample()).stats
    attributes = stats_attributes(stats)
    for section in SECTIONS:
        for suffix, field in SECTION_FIELDS.items():
            name = section_attribute(section, suffix)
            assert attributes[name] == getattr(stats.sections[section], field)
    assert attributes["leadctx.tokens.total"] == stats.tokens_total
    assert len(attributes) == 3 + len(SECTIONS) * len(SECTION_FIELDS)


def test_the_resolve_span_carries_exactly_what_telemetry_assembles_from_the_outcome(
    recorded: Recorded, client: OpenFeatureClient
) -> None:
    # Given a shared call, a fallback and a flag-off call
    results = [
        resolve_context(
            sample(), legacy=lambda: "legacy", client=client, telemetry=recorded.telemetry
        ),
        resolve_context(
            sample(lead_memory=[{"id": "m", "content": None, "created_at": "2026-11-10"}]),
            legacy=lambda: "legacy",
            client=client,
            telemetry=recorded.telemetry,
        ),
        resolve_context(
            sample(client_id="globex"),
            legacy=lambda: "legacy",
            client=client,
            telemetry=recorded.telemetry,
        ),
    ]
    # When their resolve spans are read
    spans = recorded.finished("leadctx.context.resolve")
    # Then each span's attributes are the outcome's attributes, assembled in one place
    assert [result.path.value for result in results] == ["shared", "fallback", "legacy"]
    assert [dict(span.attributes or {}) for span in spans] == [
        dict(resolution_attributes(result)) for result in results
    ]
