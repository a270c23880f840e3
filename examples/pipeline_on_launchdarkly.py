"""The same draft pipeline on LaunchDarkly, offline (LaunchDarkly's TestData source).

Run: ``.venv/bin/python examples/pipeline_on_launchdarkly.py``

The allowlist becomes individual targets on the context kind ``client`` (see
``examples/launchdarkly_migration.py`` and ``docs/migration.md``); no account, no network,
no events sent. The pipeline code is ``examples/pipeline.py``, unchanged.
"""

from __future__ import annotations

from launchdarkly_migration import offline_launchdarkly_provider, shared_bundle_flag
from ldclient.integrations.test_data import TestData
from openfeature import api
from pipeline import ALLOWLIST, run_drafts

from leadctx_bundle import warm_up


def main() -> None:
    """Publish the flag to TestData, install the LaunchDarkly provider, run the pipeline."""
    warm_up()  # the one-time builds at start-up, not inside the first call's deadline
    data = TestData.data_source()
    data.update(shared_bundle_flag(data, default=False, allowlist=ALLOWLIST))
    api.set_provider_and_wait(offline_launchdarkly_provider(data))
    try:
        run_drafts(api.get_provider_metadata().name)
    finally:
        api.shutdown()


if __name__ == "__main__":
    main()
