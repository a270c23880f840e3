"""Moving the shared-bundle flag to LaunchDarkly without touching pipeline code.

Run: ``.venv/bin/python examples/launchdarkly_migration.py`` (no LaunchDarkly account, no network).
LaunchDarkly's ``TestData`` source stands in for the LaunchDarkly service, with events and
diagnostics off, so the SDK never opens a connection.

The pipeline function below only knows the OpenFeature client. It runs first on
``LeadCtxProvider`` (env allowlist ``acme,globex``), then, unchanged, on
``launchdarkly-openfeature-server`` with the same rules expressed as LaunchDarkly individual
targets on the context kind ``client``; then one client is rolled back and finally the flag is
killed, the LaunchDarkly way.

Context mapping: ``client_context(id)`` sends ``targeting_key=id`` and ``kind="client"``; the
LaunchDarkly provider turns that into a single-kind context ``{"kind": "client", "key": id}``.
Without ``kind`` it would be a ``user`` context and no ``client`` target would match.
"""

from __future__ import annotations

from collections.abc import Iterable

from ld_openfeature import LaunchDarklyProvider
from ldclient.config import Config
from ldclient.integrations.test_data import FlagBuilder, TestData
from openfeature import api
from openfeature.provider import FeatureProvider

from leadctx_flags import SHARED_BUNDLE_FLAG, LeadCtxProvider, RolloutSettings, client_context
from leadctx_flags.context import CONTEXT_KIND

CLIENTS = ("acme", "globex", "initech")
ALLOWLIST = ("acme", "globex")


def pipeline_decision(client_id: str) -> str:
    """What a pipeline does: ask the default OpenFeature client, nothing provider-specific."""
    details = api.get_client().get_boolean_details(
        SHARED_BUNDLE_FLAG, False, client_context(client_id)
    )
    return f"{details.value!s:<5} variant={details.variant} reason={details.reason}"


def shared_bundle_flag(data: TestData, *, default: bool, allowlist: Iterable[str]) -> FlagBuilder:
    """The env rules (default + allowlist) as one LaunchDarkly boolean flag.

    Args:
        data: The TestData source (a LaunchDarkly project, in production).
        default: ``LEADCTX_SHARED_BUNDLE_ENABLED``: the fallthrough variation.
        allowlist: ``LEADCTX_SHARED_BUNDLE_CLIENTS``: individual targets, kind ``client``.

    Returns:
        The flag builder; pass it to ``data.update`` to publish it.
    """
    # off_variation(False): a killed flag (targeting off) must answer false, not true.
    flag = data.flag(SHARED_BUNDLE_FLAG).boolean_flag().off_variation(False)
    flag = flag.fallthrough_variation(default)
    for client_id in allowlist:
        flag = flag.variation_for_key(CONTEXT_KIND, client_id, True)
    return flag


def offline_launchdarkly_provider(data: TestData) -> LaunchDarklyProvider:
    """A LaunchDarkly provider fed by ``data`` that never reaches LaunchDarkly's servers.

    Args:
        data: The TestData source standing in for LaunchDarkly's streaming service.

    Returns:
        The provider, its client already started from ``data``.
    """
    config = Config(
        "sdk-key-unused-offline",  # required by the SDK; never sent, nothing is sent
        update_processor_class=data,  # flags come from TestData, not the streaming service
        send_events=False,  # no analytics events...
        diagnostic_opt_out=True,  # ...and no diagnostic events either
    )
    return LaunchDarklyProvider(config, start_wait=1)


def show(title: str) -> None:
    """Print the pipeline's decision for every sample client."""
    print(f"\n{title} [{api.get_provider_metadata().name}]")
    for client_id in CLIENTS:
        print(f"  {client_id:<8} {pipeline_decision(client_id)}")


def use(provider: FeatureProvider) -> None:
    """Swap the application's provider; pipelines keep calling the same client."""
    api.set_provider_and_wait(provider)


def main() -> None:
    """Run the same pipeline code on leadctx, then on LaunchDarkly; roll back; kill."""
    use(LeadCtxProvider(RolloutSettings(shared_bundle_clients=ALLOWLIST)))
    show("before: leadctx, env allowlist acme,globex")

    data = TestData.data_source()
    data.update(shared_bundle_flag(data, default=False, allowlist=ALLOWLIST))
    use(offline_launchdarkly_provider(data))
    show("after: LaunchDarkly, individual targets on kind 'client'")

    data.update(data.flag(SHARED_BUNDLE_FLAG).variation_for_key(CONTEXT_KIND, "acme", False))
    show("rollback: acme targeted to false")

    data.update(data.flag(SHARED_BUNDLE_FLAG).on(False))
    show("kill: targeting off, off variation false")

    api.shutdown()


if __name__ == "__main__":
    main()
