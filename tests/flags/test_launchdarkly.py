"""The shared-bundle flag evaluated through ``launchdarkly-openfeature-server``.

LaunchDarkly's offline ``TestData`` source feeds a real LaunchDarkly SDK client; the provider
is bound to an OpenFeature domain and asked exactly as a pipeline asks (``client_context``).
Every socket connection and DNS lookup is refused and recorded during these tests, so
"offline" is checked, not assumed.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ldclient.integrations.test_data import TestData
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import Reason

from leadctx_flags import SHARED_BUNDLE_FLAG, LeadCtxProvider, RolloutSettings, client_context

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
# The example is part of what is tested: its mapping helpers and its main().
import launchdarkly_migration
from launchdarkly_migration import (
    offline_launchdarkly_provider,
    shared_bundle_flag,
)

pytestmark = pytest.mark.integration

DOMAIN = "leadctx-launchdarkly"
LEADCTX_DOMAIN = "leadctx-reference"
TRUE_VARIATION = "0"  # LaunchDarkly boolean flags: variation 0 is true, 1 is false
FALSE_VARIATION = "1"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse and record every connection and DNS lookup; clear OpenFeature afterwards.

    The LaunchDarkly SDK swallows network errors in its background threads, so refusing is not
    enough: the attempts are recorded and the test fails at teardown if there was any. Providers
    are cleared (LaunchDarkly clients closed, pending events flushed) while the network is still
    refused, then hooks are cleared, as OpenFeature's own tests do.
    """
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[1:3]))
        raise OSError("network refused by the test: LaunchDarkly must run offline here")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *args, **kwargs: refuse(None, *args, **kwargs)
    )
    yield
    api.clear_providers()
    api.clear_hooks()
    assert attempts == [], "the offline LaunchDarkly setup tried to reach the network"


@pytest.fixture
def data() -> TestData:
    """The flag as the env rules ``LEADCTX_SHARED_BUNDLE_CLIENTS=acme,globex`` describe it."""
    source = TestData.data_source()
    source.update(shared_bundle_flag(source, default=False, allowlist=["acme", "globex"]))
    return source


@pytest.fixture
def client(data: TestData) -> OpenFeatureClient:
    api.set_provider_and_wait(offline_launchdarkly_provider(data), domain=DOMAIN)
    return api.get_client(domain=DOMAIN)


def test_provider_is_launchdarkly(client: OpenFeatureClient) -> None:
    assert client.provider.get_metadata().name == "launchdarkly-openfeature-server"


@pytest.mark.parametrize("client_id", ["acme", "globex"])
def test_allowlisted_client_is_on_by_individual_target(
    client: OpenFeatureClient, client_id: str
) -> None:
    details = client.get_boolean_details(SHARED_BUNDLE_FLAG, False, client_context(client_id))

    assert details.value is True
    assert details.reason == Reason.TARGETING_MATCH
    assert details.variant == TRUE_VARIATION
    assert details.error_code is None


@pytest.mark.parametrize("client_id", ["initech", "ACME", "acme "])
def test_other_clients_fall_through_to_off(client: OpenFeatureClient, client_id: str) -> None:
    details = client.get_boolean_details(SHARED_BUNDLE_FLAG, True, client_context(client_id))

    # LaunchDarkly's fallthrough reason has no OpenFeature constant; the provider passes it on.
    assert details.value is False
    assert details.reason == "FALLTHROUGH"
    assert details.variant == FALSE_VARIATION


def test_targets_need_context_kind_client(client: OpenFeatureClient) -> None:
    # Given acme's id without `kind: client`: LaunchDarkly reads it as a `user` context
    details = client.get_boolean_details(
        SHARED_BUNDLE_FLAG, False, EvaluationContext(targeting_key="acme")
    )

    # Then the `client` targets do not apply: the kind is part of the mapping, not decoration
    assert details.value is False
    assert details.reason == "FALLTHROUGH"


def test_per_client_rollback_turns_one_client_off(
    data: TestData, client: OpenFeatureClient
) -> None:
    # Given acme and globex on; when acme is targeted to false (the LaunchDarkly rollback)
    data.update(data.flag(SHARED_BUNDLE_FLAG).variation_for_key("client", "acme", False))

    acme = client.get_boolean_details(SHARED_BUNDLE_FLAG, False, client_context("acme"))
    globex = client.get_boolean_details(SHARED_BUNDLE_FLAG, False, client_context("globex"))

    # Then acme is off by its own target and globex is untouched
    assert (acme.value, acme.reason, acme.variant) == (
        False,
        Reason.TARGETING_MATCH,
        FALSE_VARIATION,
    )
    assert (globex.value, globex.reason) == (True, Reason.TARGETING_MATCH)


def test_kill_is_targeting_off_and_ignores_the_callers_default(
    data: TestData, client: OpenFeatureClient
) -> None:
    data.update(data.flag(SHARED_BUNDLE_FLAG).on(False))

    details = client.get_boolean_details(SHARED_BUNDLE_FLAG, True, client_context("acme"))

    assert (details.value, details.reason, details.variant) == (
        False,
        Reason.DISABLED,
        FALSE_VARIATION,
    )


@pytest.mark.parametrize("default", [False, True])
def test_same_values_as_leadctx_for_the_same_env_rules(default: bool) -> None:
    # Given the same env rules on leadctx and on LaunchDarkly, each bound to its own domain
    allowlist = ["acme", "globex", "客户-42", '{"var": "x"}']
    settings = RolloutSettings(
        shared_bundle_enabled=default, shared_bundle_clients=allowlist, shared_bundle_kill=False
    )
    api.set_provider_and_wait(LeadCtxProvider(settings), domain=LEADCTX_DOMAIN)
    source = TestData.data_source()
    source.update(shared_bundle_flag(source, default=default, allowlist=allowlist))
    api.set_provider_and_wait(offline_launchdarkly_provider(source), domain=DOMAIN)
    leadctx, launchdarkly = api.get_client(LEADCTX_DOMAIN), api.get_client(DOMAIN)

    # When the same pipeline call is made for configured and unknown clients
    client_ids = [*allowlist, "initech", "Acme", "0", "x" * 128]
    values = {
        client_id: (
            leadctx.get_boolean_value(SHARED_BUNDLE_FLAG, not default, client_context(client_id)),
            launchdarkly.get_boolean_value(
                SHARED_BUNDLE_FLAG, not default, client_context(client_id)
            ),
        )
        for client_id in client_ids
    }

    # Then both providers answer the same value for every client
    assert {cid: pair for cid, pair in values.items() if pair[0] != pair[1]} == {}
    assert {cid for cid, (value, _) in values.items() if value != default} == (
        set() if default else set(allowlist)
    )


def test_example_runs_offline(capsys: pytest.CaptureFixture[str]) -> None:
    # When the example runs with the network refused (see the offline fixture)
    launchdarkly_migration.main()

    # Then it shows acme on through LaunchDarkly, then rolled back, then killed
    out = capsys.readouterr().out
    sections = [section.strip() for section in out.split("\n\n") if section.strip()]
    assert [section.split(":")[0] for section in sections] == [
        "before",
        "after",
        "rollback",
        "kill",
    ]
    assert "acme     True  variant=0 reason=TARGETING_MATCH" in sections[1]
    assert "acme     False variant=1 reason=TARGETING_MATCH" in sections[2]
    assert sections[3].count("reason=DISABLED") == 3
