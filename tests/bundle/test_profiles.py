"""Per-pipeline profiles: defaults, the profiles file, the encoding variable, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leadctx_bundle import (
    DEFAULT_PROFILES,
    PIPELINES,
    BudgetOverrides,
    BundleProfile,
    BundleSettings,
    build_bundle,
    environment_profiles,
    load_profiles,
)
from leadctx_flags import ConfigurationError
from tests.bundle.bundle_helpers import request_data


def test_every_pipeline_has_a_default_within_its_total() -> None:
    assert set(DEFAULT_PROFILES) == set(PIPELINES)
    for profile in DEFAULT_PROFILES.values():
        sections = profile.knowledge_assets + profile.lead_memory + profile.thread
        assert sections <= profile.budget_total
        assert profile.encoding == "o200k_base"


def test_without_overrides_the_defaults_apply() -> None:
    assert dict(load_profiles(BundleSettings())) == dict(DEFAULT_PROFILES)


def test_the_file_overrides_only_the_fields_it_names(tmp_path: Path) -> None:
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps({"draft": {"total_budget": 12000, "thread": 4000}}))
    profiles = load_profiles(BundleSettings(profiles=path))
    assert profiles["draft"].budget_total == 12000
    assert profiles["draft"].thread == 4000
    assert profiles["draft"].knowledge_assets == DEFAULT_PROFILES["draft"].knowledge_assets
    assert profiles["overseer"] == DEFAULT_PROFILES["overseer"]


def test_the_environment_names_the_file_and_the_encoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps({"proposed_times": {"min_item_tokens": 4}}))
    monkeypatch.setenv("LEADCTX_BUNDLE_PROFILES", str(path))
    monkeypatch.setenv("LEADCTX_BUNDLE_ENCODING", "heuristic")
    profiles = load_profiles()
    assert profiles["proposed_times"].min_item_tokens == 4
    assert {p.encoding for p in profiles.values()} == {"heuristic"}
    # build_bundle reads the environment's profiles when given none
    bundle = build_bundle(request_data(pipeline="proposed_times"))
    assert bundle.stats.encoding == "heuristic"
    assert bundle.stats.budget_total == DEFAULT_PROFILES["proposed_times"].budget_total


def test_a_bad_encoding_variable_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADCTX_BUNDLE_ENCODING", "chars/4")
    with pytest.raises(ConfigurationError, match="LEADCTX_BUNDLE_ENCODING: Input should be"):
        load_profiles()
    with pytest.raises(ConfigurationError, match="LEADCTX_BUNDLE_ENCODING"):
        environment_profiles()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"draft": {"total_budget": 0}}', "draft.total_budget: Input should be greater than 0"),
        ('{"draft": {"thread": -1}}', "draft.thread: Input should be greater than or equal to 0"),
        ('{"draft": {"thread": 1.5}}', "draft.thread: Input should be a valid integer"),
        ('{"drafts": {}}', "drafts: Extra inputs are not permitted"),
        ('{"draft": {"budget": 1}}', "draft.budget: Extra inputs are not permitted"),
        ('{"draft": {"encoding": "gpt2"}}', "draft.encoding: Input should be"),
        ('{"draft": ', "not JSON (line 1, column 11)"),
    ],
)
def test_a_bad_file_names_the_variable_the_file_and_the_field(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "profiles.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError) as caught:
        load_profiles(BundleSettings(profiles=path))
    assert f"LEADCTX_BUNDLE_PROFILES={path}: {expected}" in str(caught.value)


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no such file"):
        load_profiles(BundleSettings(profiles=tmp_path / "nope.json"))


def test_bad_profile_values_are_refused() -> None:
    with pytest.raises(ValueError, match="budget_total"):
        BundleProfile(budget_total=0, knowledge_assets=1, lead_memory=1, thread=1)


def test_with_budgets_applies_only_what_is_given() -> None:
    base = DEFAULT_PROFILES["draft"]
    assert base.with_budgets(None) is base
    assert base.with_budgets(BudgetOverrides()) is base
    changed = base.with_budgets(BudgetOverrides.model_validate({"total": 100, "thread": 0}))
    assert (changed.budget_total, changed.thread) == (100, 0)
    assert changed.lead_memory == base.lead_memory
