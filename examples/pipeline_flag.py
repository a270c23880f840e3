"""How a pipeline asks whether the shared bundle is on: only through OpenFeature.

Run: ``LEADCTX_SHARED_BUNDLE_CLIENTS=acme .venv/bin/python examples/pipeline_flag.py``

The provider is chosen once, at start-up; the pipeline code below it never names it, so
moving to flagd or LaunchDarkly changes one line here and nothing in the pipelines.
"""

from __future__ import annotations

from openfeature import api
from openfeature.event import ProviderEvent

from leadctx_flags import SHARED_BUNDLE_FLAG, LeadCtxProvider, client_context


def shared_bundle_enabled(client_id: str) -> bool:
    """What every pipeline calls. The default is False: any error means off."""
    client = api.get_client()
    return client.get_boolean_value(SHARED_BUNDLE_FLAG, False, client_context(client_id))


def main() -> None:
    """Start the provider from the environment and ask for a few clients."""
    api.set_provider_and_wait(LeadCtxProvider())
    api.add_handler(
        ProviderEvent.PROVIDER_CONFIGURATION_CHANGED,
        lambda details: print(f"overrides changed: {details.flags_changed}"),
    )
    try:
        for client_id in ("acme", "globex"):
            details = api.get_client().get_boolean_details(
                SHARED_BUNDLE_FLAG, False, client_context(client_id)
            )
            print(
                f"{client_id}: {details.value} "
                f"({details.reason}, source={details.flag_metadata.get('source')})"
            )
        print(f"shared_bundle_enabled('acme') -> {shared_bundle_enabled('acme')}")
    finally:
        api.shutdown()


if __name__ == "__main__":
    main()
