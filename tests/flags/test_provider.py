"""LeadCtxProvider through the standard OpenFeature client, as pipelines use it."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent, ProviderEventDetails
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from openfeature.provider import ProviderStatus

from leadctx_flags import (
    PROVIDER_NAME,
    SHARED_BUNDLE_FLAG,
    LeadCtxProvider,
    OverridesDocument,
    RolloutSettings,
    client_context,
)
from tests.flags.overrides_helpers import wait_for


def provider_with(**settings: object) -> LeadCtxProvider:
    return LeadCtxProvider(RolloutSettings(**settings))


def test_metadata_name_is_leadctx() -> None:
    assert LeadCtxProvider().get_metadata().name == PROVIDER_NAME == "leadctx"


def test_evaluates_through_the_default_client_after_set_provider_and_wait() -> None:
    # Given the provider is the default provider
    api.set_provider_and_wait(provider_with(shared_bundle_clients="acme"))
    client = api.get_client()
    # When a pipeline asks for an allowlisted client and another one
    on = client.get_boolean_details(SHARED_BUNDLE_FLAG, False, client_context("acme"))
    off = client.get_boolean_details(SHARED_BUNDLE_FLAG, False, client_context("globex"))
    # Then the allowlist decides, with reason, variant and source set
    assert (on.value, on.reason, on.variant, on.flag_metadata) == (
        True,
        Reason.TARGETING_MATCH,
        "on",
        {"source": "allowlist", "flagSetId": "leadctx"},
    )
    assert (off.value, off.reason, off.variant, off.flag_metadata["source"]) == (
        False,
        Reason.STATIC,
        "off",
        "env",
    )
    assert client.get_provider_status() == ProviderStatus.READY


def test_works_bound_to_a_domain_without_touching_the_default_provider() -> None:
    api.set_provider_and_wait(provider_with(shared_bundle_enabled=True), domain="pipelines")
    bound = api.get_client(domain="pipelines")
    unbound = api.get_client(domain="elsewhere")
    assert bound.get_boolean_value(SHARED_BUNDLE_FLAG, False, client_context("acme")) is True
    assert unbound.get_boolean_value(SHARED_BUNDLE_FLAG, False, client_context("acme")) is False
    assert unbound.provider.get_metadata().name != PROVIDER_NAME


def test_async_client_methods_give_the_same_answer() -> None:
    api.set_provider_and_wait(provider_with(shared_bundle_clients="acme"))
    client = api.get_client()

    async def ask() -> tuple[bool, bool]:
        details = await client.get_boolean_details_async(
            SHARED_BUNDLE_FLAG, False, client_context("acme")
        )
        value = await client.get_boolean_value_async(
            SHARED_BUNDLE_FLAG, False, client_context("globex")
        )
        return details.value, value

    assert asyncio.run(ask()) == (True, False)


def test_client_id_falls_back_to_the_client_id_attribute() -> None:
    api.set_provider_and_wait(provider_with(shared_bundle_clients="acme"))
    client = api.get_client()
    context = EvaluationContext(attributes={"clientId": "acme"})
    assert client.get_boolean_details(SHARED_BUNDLE_FLAG, False, context).reason == (
        Reason.TARGETING_MATCH
    )


def test_targeting_key_wins_over_the_client_id_attribute() -> None:
    api.set_provider_and_wait(provider_with(shared_bundle_clients="acme"))
    context = EvaluationContext(targeting_key="globex", attributes={"clientId": "acme"})
    assert api.get_client().get_boolean_value(SHARED_BUNDLE_FLAG, False, context) is False


@pytest.mark.parametrize(
    "context",
    [None, EvaluationContext(), EvaluationContext(targeting_key="", attributes={"clientId": ""})],
)
def test_no_client_id_gives_the_env_default_with_reason_default(
    context: EvaluationContext | None,
) -> None:
    api.set_provider_and_wait(
        provider_with(shared_bundle_enabled=True, shared_bundle_clients="acme")
    )
    details = api.get_client().get_boolean_details(SHARED_BUNDLE_FLAG, False, context)
    assert (details.value, details.reason, details.flag_metadata["source"]) == (
        True,
        Reason.DEFAULT,
        "env",
    )


def test_global_and_invocation_contexts_merge_as_the_sdk_defines() -> None:
    # The SDK merges API-level context with the invocation's; the targeting key still decides.
    api.set_evaluation_context(EvaluationContext(attributes={"region": "eu"}))
    api.set_provider_and_wait(provider_with(shared_bundle_clients="acme"))
    details = api.get_client().get_boolean_details(
        SHARED_BUNDLE_FLAG, False, client_context("acme")
    )
    assert (details.value, details.reason, details.flag_metadata["source"]) == (
        True,
        Reason.TARGETING_MATCH,
        "allowlist",
    )


TRUTHY_NON_STRING_IDS = [
    pytest.param(["acme"], id="list"),
    pytest.param(42, id="int"),
    pytest.param({"id": "acme"}, id="dict"),
    pytest.param(True, id="bool"),
    pytest.param(float("nan"), id="nan"),
]
# The SDK's context merge keeps a targeting key with `or`, so a falsy one never reaches the
# provider through the client; called directly, the provider still refuses it.
NON_STRING_IDS = [
    *TRUTHY_NON_STRING_IDS,
    pytest.param(0, id="zero"),
    pytest.param([], id="empty-list"),
]


def non_string_contexts(bad: object) -> list[tuple[str, EvaluationContext]]:
    """The same bad id as the targeting key and as the clientId attribute, with the message."""
    kind = type(bad).__name__
    return [
        (
            f"evaluation context targeting_key must be a string, got {kind}",
            EvaluationContext(targeting_key=bad),  # type: ignore[arg-type]
        ),
        (
            f"evaluation context attribute 'clientId' must be a string, got {kind}",
            EvaluationContext(attributes={"clientId": bad}),  # type: ignore[dict-item]
        ),
    ]


@pytest.mark.parametrize("bad", NON_STRING_IDS)
def test_a_non_string_id_is_invalid_context_and_off_from_the_provider(bad: object) -> None:
    # Given a provider that would turn the flag on for anyone (acme is allowlisted too)
    provider = provider_with(shared_bundle_enabled=True, shared_bundle_clients="acme")
    for message, context in non_string_contexts(bad):
        # When resolved directly with the caller's default True, Then it does not raise and
        # answers off with INVALID_CONTEXT, naming where the id was and its type only
        details = provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, True, context)
        assert (details.value, details.reason, details.variant, details.error_code) == (
            False,
            Reason.ERROR,
            "off",
            ErrorCode.INVALID_CONTEXT,
        ), message
        assert details.error_message == message


@pytest.mark.parametrize("bad", TRUTHY_NON_STRING_IDS)
def test_a_non_string_id_is_off_through_the_client_with_default_true(
    bad: object, caplog: pytest.LogCaptureFixture
) -> None:
    api.set_provider_and_wait(provider_with(shared_bundle_enabled=True))
    client = api.get_client()
    with caplog.at_level(logging.DEBUG):
        for message, context in non_string_contexts(bad):
            details = client.get_boolean_details(SHARED_BUNDLE_FLAG, True, context)
            # The provider answered off (variant "off", INVALID_CONTEXT); on any error the
            # OpenFeature client hands back the caller's default, here True, as the
            # specification requires. That is why pipelines pass False.
            assert (details.value, details.variant, details.reason, details.error_code) == (
                True,
                "off",
                Reason.ERROR,
                ErrorCode.INVALID_CONTEXT,
            ), message
            assert details.error_message == message
    # No traceback from the SDK: the provider answered, it did not raise
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_context_whose_attributes_are_broken_is_off_not_a_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = provider_with(shared_bundle_enabled=True)
    broken = EvaluationContext()
    broken.attributes = None  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, logger="leadctx_flags"):
        details = provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, True, broken)
    assert (details.value, details.error_code, details.error_message) == (
        False,
        ErrorCode.GENERAL,
        "evaluation failed: AttributeError",
    )
    assert [r.getMessage() for r in caplog.records] == [
        "shared bundle evaluation failed, answering off: AttributeError"
    ]


def test_an_unhashable_flag_key_is_not_a_raise() -> None:
    details = LeadCtxProvider().resolve_boolean_details(["x"], True)  # type: ignore[arg-type]
    assert (details.value, details.error_code) == (False, ErrorCode.GENERAL)


def test_an_unknown_flag_is_flag_not_found_with_the_callers_default() -> None:
    api.set_provider_and_wait(provider_with(shared_bundle_enabled=True))
    details = api.get_client().get_boolean_details(
        "shared_bundle.enable", True, client_context("a")
    )
    assert (details.value, details.reason, details.error_code) == (
        True,
        Reason.ERROR,
        ErrorCode.FLAG_NOT_FOUND,
    )


def test_every_non_boolean_resolve_is_a_type_mismatch_with_the_callers_default() -> None:
    api.set_provider_and_wait(provider_with(shared_bundle_enabled=True))
    client = api.get_client()
    context = client_context("acme")
    results = [
        (client.get_string_details(SHARED_BUNDLE_FLAG, "x", context), "x"),
        (client.get_integer_details(SHARED_BUNDLE_FLAG, 7, context), 7),
        (client.get_float_details(SHARED_BUNDLE_FLAG, 0.5, context), 0.5),
        (client.get_object_details(SHARED_BUNDLE_FLAG, {"a": 1}, context), {"a": 1}),
    ]
    for details, default in results:
        assert (details.value, details.reason, details.error_code) == (
            default,
            Reason.ERROR,
            ErrorCode.TYPE_MISMATCH,
        )


def test_non_boolean_resolve_of_an_unknown_flag_is_flag_not_found() -> None:
    provider = LeadCtxProvider()
    assert provider.resolve_string_details("nope", "d").error_code == ErrorCode.FLAG_NOT_FOUND
    assert provider.resolve_integer_details("nope", 1).error_code == ErrorCode.FLAG_NOT_FOUND


def test_every_resolution_sets_a_reason() -> None:
    provider = provider_with(shared_bundle_clients="acme")
    reasons = [
        provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, False, context).reason
        for context in (None, client_context("acme"), client_context("globex"))
    ]
    assert reasons == [Reason.DEFAULT, Reason.TARGETING_MATCH, Reason.STATIC]
    assert provider.resolve_boolean_details("other", False).reason == Reason.ERROR


def test_a_configuration_error_fails_closed_and_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an unparseable environment
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_ENABLED", "maybe")
    monkeypatch.setenv("LEADCTX_SHARED_BUNDLE_CLIENTS", "acme")
    with caplog.at_level(logging.ERROR, logger="leadctx_flags"):
        provider = LeadCtxProvider()
    # Then the error is logged once, naming the variable
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "LEADCTX_SHARED_BUNDLE_ENABLED: expected one of" in errors[0].getMessage()
    assert "maybe" not in errors[0].getMessage()
    assert provider.configuration_error is not None
    # And the provider answers off with reason ERROR for every client, whatever the default
    for client_id in ("acme", "globex"):
        resolution = provider.resolve_boolean_details(
            SHARED_BUNDLE_FLAG, True, client_context(client_id)
        )
        assert (resolution.value, resolution.reason) == (False, Reason.ERROR)
    # And through the client (OpenFeature returns the caller's default, False, on errors)
    api.set_provider_and_wait(provider)
    details = api.get_client().get_boolean_details(
        SHARED_BUNDLE_FLAG, False, client_context("acme")
    )
    assert (details.value, details.reason, details.error_code, details.variant) == (
        False,
        Reason.ERROR,
        ErrorCode.GENERAL,
        "off",
    )
    assert details.error_message is not None
    assert "LEADCTX_SHARED_BUNDLE_ENABLED" in details.error_message


def test_an_unusable_overrides_location_fails_closed() -> None:
    provider = provider_with(shared_bundle_enabled=True, flag_overrides="ftp://example.com/x")
    assert provider.configuration_error is not None
    assert "LEADCTX_FLAG_OVERRIDES" in provider.configuration_error
    assert provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, True).value is False


def test_required_overrides_without_a_location_are_off_for_everyone() -> None:
    provider = provider_with(shared_bundle_enabled=True, flag_overrides_required=True)
    details = provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, True, client_context("acme"))
    assert (details.value, details.error_code, details.flag_metadata["source"]) == (
        False,
        ErrorCode.GENERAL,
        "unavailable",
    )


def test_initialize_and_shutdown_without_overrides_start_no_thread_and_are_idempotent() -> None:
    threads_before = threading.active_count()
    provider = LeadCtxProvider()
    provider.initialize(EvaluationContext())
    assert threading.active_count() == threads_before
    assert not any(t.name == "leadctx-overrides-poller" for t in threading.enumerate())
    provider.shutdown()
    provider.shutdown()
    details = provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, False)
    assert (details.value, details.reason, details.flag_metadata["source"]) == (
        False,
        Reason.DEFAULT,
        "env",
    )


def test_update_overrides_emits_configuration_changed_with_flags_changed() -> None:
    provider = provider_with(shared_bundle_clients="acme")
    api.set_provider_and_wait(provider)
    emitted: list[ProviderEventDetails] = []
    seen: list[EventDetails] = []
    api.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, seen.append)
    original = provider.emit_provider_configuration_changed

    def record(details: ProviderEventDetails) -> None:
        emitted.append(details)
        original(details)

    provider.emit_provider_configuration_changed = record  # type: ignore[method-assign]
    document = OverridesDocument.model_validate(
        {
            "revision": 1,
            "updated_by": "test",
            "flags": {SHARED_BUNDLE_FLAG: {"clients": {"acme": False}}},
        }
    )
    # When a document is applied, then the same again, then an older one
    assert provider.update_overrides(document) is True
    assert provider.update_overrides(document) is False
    assert provider.update_overrides(document.model_copy(update={"revision": 0})) is False
    # Then exactly one event was emitted, naming the flag, and handlers receive it
    assert [details.flags_changed for details in emitted] == [[SHARED_BUNDLE_FLAG]]
    assert emitted[0].metadata == {"revision": 1}
    wait_for(lambda: len(seen) > 0)  # the SDK runs handlers on its own executor
    assert (seen[0].provider_name, seen[0].flags_changed) == (PROVIDER_NAME, [SHARED_BUNDLE_FLAG])
    assert (
        api.get_client().get_boolean_value(SHARED_BUNDLE_FLAG, True, client_context("acme"))
        is False
    )


def test_a_change_that_leaves_the_flag_alone_reports_no_flag_changed() -> None:
    provider = LeadCtxProvider()
    emitted: list[ProviderEventDetails] = []
    provider.emit_provider_configuration_changed = emitted.append  # type: ignore[method-assign,assignment]
    flag = {SHARED_BUNDLE_FLAG: {"default": True, "note": "first"}}
    provider.update_overrides(OverridesDocument.model_validate({"revision": 1, "flags": flag}))
    flag[SHARED_BUNDLE_FLAG]["note"] = "reworded"
    provider.update_overrides(OverridesDocument.model_validate({"revision": 2, "flags": flag}))
    assert [details.flags_changed for details in emitted] == [[SHARED_BUNDLE_FLAG], []]
