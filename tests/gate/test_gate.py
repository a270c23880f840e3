"""``resolve_context``: which path a call takes, what it returns, and what reaches the pipeline."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from pydantic import ValidationError

from leadctx_bundle import (
    BundleInput,
    BundleRequest,
    ContextResolution,
    EncodingDataError,
    KnowledgeAsset,
    StaticContextSource,
    build_bundle,
    resolve_context,
)
from leadctx_bundle import fallback as fallback_module
from leadctx_bundle.fallback import Stage, classify
from leadctx_flags import FallbackReason, LeadCtxProvider, ResolutionPath, RolloutSettings
from tests.gate.conftest import SAMPLE, Recorded, sample

LEGACY_TEXT = "legacy context"


def legacy() -> str:
    return LEGACY_TEXT


class FailingSource:
    """A source whose assets read raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def knowledge_assets(self, client_id: str) -> Iterable[Any]:
        raise self.error

    def lead_memory(self, lead_id: str) -> Iterable[Any]:
        return []

    def thread(self, lead_id: str) -> Iterable[Any]:
        return []


def test_flag_on_builds_the_shared_bundle(client: OpenFeatureClient, recorded: Recorded) -> None:
    # Given the flag is on for acme, when the draft pipeline resolves its context
    result = resolve_context(sample(), legacy=legacy, client=client, telemetry=recorded.telemetry)
    # Then it gets exactly the bundle build_bundle makes, with its stats
    expected = build_bundle(sample())
    assert (result.path, result.fallback_reason, result.text) == (
        ResolutionPath.SHARED,
        None,
        expected.text,
    )
    assert result.stats is not None
    assert result.stats.model_dump(exclude={"build_ms"}) == expected.stats.model_dump(
        exclude={"build_ms"}
    )
    assert (result.flag.value, result.flag.variant, result.flag.reason, result.flag.source) == (
        True,
        "on",
        "TARGETING_MATCH",
        "allowlist",
    )
    assert (result.flag.set_id, result.flag.provider, result.flag.error_code) == (
        "leadctx",
        "leadctx",
        None,
    )


def test_flag_off_calls_legacy(client: OpenFeatureClient, recorded: Recorded) -> None:
    calls: list[int] = []

    def counting_legacy() -> str:
        calls.append(1)
        return LEGACY_TEXT

    result = resolve_context(
        sample(client_id="globex"),
        legacy=counting_legacy,
        client=client,
        telemetry=recorded.telemetry,
    )
    assert (result.path, result.fallback_reason, result.stats, result.text) == (
        ResolutionPath.LEGACY,
        None,
        None,
        LEGACY_TEXT,
    )
    assert calls == [1]
    assert (result.flag.value, result.flag.reason, result.flag.source) == (False, "STATIC", "env")
    assert recorded.finished("leadctx.bundle.build") == []


def test_flag_is_asked_with_default_false_and_the_client_context() -> None:
    # Given a client that records what it is asked
    asked: list[tuple[Any, ...]] = []

    class Recorder:
        provider = None

        def get_boolean_details(self, key: str, default: bool, context: Any) -> Any:
            asked.append((key, default, context.targeting_key, dict(context.attributes)))
            raise RuntimeError("recorder only")

    result = resolve_context(sample(pipeline="overseer"), legacy=legacy, client=Recorder())  # type: ignore[arg-type]
    # Then the flag, the default False and the client context are exactly as documented, and
    # a client that raises is a flag error: legacy
    assert asked == [
        ("shared_bundle.enabled", False, "acme", {"kind": "client", "pipeline": "overseer"})
    ]
    assert (result.path, result.flag.error_code) == (ResolutionPath.LEGACY, "GENERAL")


@pytest.mark.parametrize("request_kind", ["mapping", "request", "input"])
def test_request_kinds(client: OpenFeatureClient, request_kind: str) -> None:
    source = StaticContextSource(assets={"acme": SAMPLE["knowledge_assets"]})
    bundle_input = BundleInput.model_validate(sample())
    request: Any = {
        "mapping": sample(),
        "request": bundle_input.request,
        "input": bundle_input,
    }[request_kind]
    result = resolve_context(
        request, legacy=legacy, client=client, source=None if request_kind != "request" else source
    )
    assert result.path is ResolutionPath.SHARED
    assert result.stats is not None
    assert result.stats.sections["knowledge_assets"].items_total == 8
    expected_memory = 0 if request_kind == "request" else 6
    assert result.stats.sections["lead_memory"].items_total == expected_memory


def test_source_rows_replace_inline_rows(client: OpenFeatureClient) -> None:
    source = StaticContextSource(
        assets={"acme": [KnowledgeAsset(id="x", title="T", content="one", rank=1)]}
    )
    result = resolve_context(sample(), legacy=legacy, client=client, source=source)
    assert result.stats is not None
    assert result.stats.sections["knowledge_assets"].items_total == 1
    assert result.stats.sections["thread"].items_total == 0  # the source's (empty) thread


@pytest.mark.parametrize(
    "bad", [{"client_id": "acme", "lead_id": "l", "pipeline": "fax"}, None, ["acme"]]
)
def test_unreadable_requests_fall_back_too(client: OpenFeatureClient, bad: Any) -> None:
    result = resolve_context(bad, legacy=legacy, client=client)
    assert (result.path, result.fallback_reason, result.flag.value) == (
        ResolutionPath.FALLBACK,
        FallbackReason.INVALID_DATA,
        False,
    )


def test_invalid_request_falls_back_without_asking_the_flag(client: OpenFeatureClient) -> None:
    result = resolve_context({"lead_id": "l", "pipeline": "draft"}, legacy=legacy, client=client)
    assert (result.path, result.fallback_reason, result.pipeline, result.text) == (
        ResolutionPath.FALLBACK,
        FallbackReason.INVALID_DATA,
        None,
        LEGACY_TEXT,
    )
    assert result.error_type == "pydantic_core._pydantic_core.ValidationError"


def _broken_tokenizer(*args: Any, **kwargs: Any) -> Any:
    raise EncodingDataError("o200k_base.tiktoken.gz: corrupt")


@pytest.mark.parametrize(
    ("case", "reason", "error_type"),
    [
        ("source raises", FallbackReason.SOURCE_ERROR, "ConnectionError"),
        ("source times out itself", FallbackReason.SOURCE_ERROR, "TimeoutError"),
        ("null content", FallbackReason.INVALID_DATA, "leadctx_bundle.errors.BundleInputError"),
        ("source builds bad models", FallbackReason.INVALID_DATA, None),
        (
            "bad profiles file",
            FallbackReason.BUDGET_ERROR,
            "leadctx_flags.errors.ConfigurationError",
        ),
        ("negative budget", FallbackReason.INVALID_DATA, "leadctx_bundle.errors.BundleInputError"),
        (
            "tokenizer data",
            FallbackReason.TOKENIZER_ERROR,
            "leadctx_bundle.errors.EncodingDataError",
        ),
        (
            "bad deadline env",
            FallbackReason.BUDGET_ERROR,
            "leadctx_flags.errors.ConfigurationError",
        ),
        ("bug in the builder", FallbackReason.INTERNAL_ERROR, "KeyError"),
    ],
)
def test_each_failure_falls_back_with_its_reason(
    case: str,
    reason: FallbackReason,
    error_type: str | None,
    client: OpenFeatureClient,
    recorded: Recorded,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    request: dict[str, Any] = sample()
    source: Any = None
    if case == "source raises":
        source = FailingSource(ConnectionError("db down"))
    elif case == "source times out itself":
        source = FailingSource(TimeoutError("read timed out"))
    elif case == "null content":
        request["lead_memory"][0]["content"] = None
    elif case == "source builds bad models":

        class BadModels(FailingSource):
            def knowledge_assets(self, client_id: str) -> Iterable[Any]:
                return [KnowledgeAsset.model_validate({"id": "a", "title": "t", "content": None})]

        source = BadModels(RuntimeError())
    elif case == "bad profiles file":
        bad = tmp_path / "profiles.json"
        bad.write_text('{"draft": {"budget_total": -1}}')
        monkeypatch.setenv("LEADCTX_BUNDLE_PROFILES", str(bad))
    elif case == "negative budget":
        request["budgets"] = {"total": -5}
    elif case == "tokenizer data":
        monkeypatch.setattr("leadctx_bundle.builder.token_counter", _broken_tokenizer)
    elif case == "bad deadline env":
        monkeypatch.setenv("LEADCTX_BUNDLE_DEADLINE_SECONDS_DRAFT", "soon")
    elif case == "bug in the builder":

        def buggy(*args: Any, **kwargs: Any) -> Any:
            empty: dict[str, Any] = {}
            return empty["missing"]

        monkeypatch.setattr("leadctx_bundle.gate.build_bundle", buggy)
    # When the pipeline resolves its context with the flag on
    result = resolve_context(
        request, legacy=legacy, client=client, source=source, telemetry=recorded.telemetry
    )
    # Then it gets legacy(), with the reason and the exception's class recorded
    assert (result.path, result.fallback_reason, result.text, result.stats) == (
        ResolutionPath.FALLBACK,
        reason,
        LEGACY_TEXT,
        None,
    )
    if error_type is not None:
        assert result.error_type == error_type
    metadata = result.metadata()["leadctx"]
    assert (metadata["path"], metadata["fallback_reason"]) == ("fallback", reason.value)


def test_an_exception_from_legacy_propagates_unchanged(
    client: OpenFeatureClient, recorded: Recorded
) -> None:
    error = LookupError("legacy broke")

    def broken_legacy() -> str:
        raise error

    with pytest.raises(LookupError) as caught:
        resolve_context(
            sample(client_id="globex"),
            legacy=broken_legacy,
            client=client,
            telemetry=recorded.telemetry,
        )
    assert caught.value is error
    (span,) = recorded.finished("leadctx.context.resolve")
    assert span.attributes is not None
    assert span.attributes["error.type"] == "LookupError"
    assert span.status.description == "legacy context assembly raised"
    assert span.events == ()


def test_legacy_raising_after_a_fallback_propagates_too(client: OpenFeatureClient) -> None:
    def broken_legacy() -> str:
        raise KeyError("k")

    with pytest.raises(KeyError):
        resolve_context(
            sample(), legacy=broken_legacy, client=client, source=FailingSource(OSError("x"))
        )


def test_metadata_shape_is_exactly_as_documented(client: OpenFeatureClient) -> None:
    result = resolve_context(sample(), legacy=legacy, client=client)
    metadata = result.metadata()
    assert list(metadata) == ["leadctx"]
    body = metadata["leadctx"]
    assert list(body) == ["path", "fallback_reason", "error_type", "pipeline", "flag", "stats"]
    assert list(body["flag"]) == [
        "key",
        "value",
        "variant",
        "reason",
        "source",
        "version",
        "set_id",
        "provider",
        "error_code",
    ]
    assert body["path"] == "shared"
    assert body["stats"]["sections"]["knowledge_assets"]["items_truncated"] >= 0
    assert set(body["stats"]["sections"]) == {"knowledge_assets", "lead_memory", "thread"}
    # JSON-ready as it is
    assert json.loads(json.dumps(metadata)) == metadata


def test_result_is_frozen_and_its_repr_has_no_text(client: OpenFeatureClient) -> None:
    result = resolve_context(sample(), legacy=legacy, client=client)
    assert isinstance(result, ContextResolution)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.path = ResolutionPath.LEGACY  # type: ignore[misc]
    assert "Plans start" not in repr(result)


def test_classify_by_type_then_stage_then_module() -> None:
    assert classify(ValueError(), Stage.SOURCE) is FallbackReason.SOURCE_ERROR
    assert classify(ValueError(), Stage.BUILD) is FallbackReason.INTERNAL_ERROR
    assert classify(ZeroDivisionError(), Stage.BUILD) is FallbackReason.BUDGET_ERROR
    with pytest.raises(ValidationError) as invalid:
        KnowledgeAsset.model_validate({})
    assert classify(invalid.value, Stage.SOURCE) is FallbackReason.INVALID_DATA
    # An exception raised inside the token counter is the tokenizer's
    namespace: dict[str, Any] = {"__name__": "leadctx_bundle.tokens"}
    exec("def boom():\n    raise ValueError('x')", namespace)  # noqa: S102 - a frame in that module
    with pytest.raises(ValueError, match="x") as raised:
        namespace["boom"]()
    assert classify(raised.value, Stage.BUILD) is FallbackReason.TOKENIZER_ERROR
    assert fallback_module.SharedPathFailure(FallbackReason.TIMEOUT, "X").args == (
        "shared path failed: timeout (X)",
    )


def test_default_client_is_the_global_api_client() -> None:
    api.set_provider_and_wait(LeadCtxProvider(RolloutSettings(shared_bundle_enabled=True)))
    result = resolve_context(
        BundleRequest(client_id="x", lead_id="y", pipeline="draft"), legacy=legacy
    )
    assert (result.path, result.flag.source) == (ResolutionPath.SHARED, "env")
