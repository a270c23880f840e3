"""The draft pipeline on leadctx's own provider, through the OpenFeature client.

Run: ``.venv/bin/python examples/pipeline_gate.py``

The provider is installed once, at start-up; the pipeline (``examples/pipeline.py``) asks the
OpenFeature client through ``resolve_context`` and never names it. In production the provider
reads the ``LEADCTX_*`` environment (``LeadCtxProvider()``); here the allowlist is given in
code so that the example prints the same thing in any shell.
"""

from __future__ import annotations

from openfeature import api
from pipeline import ALLOWLIST, run_drafts

from leadctx_bundle import warm_up
from leadctx_flags import LeadCtxProvider, RolloutSettings


def main() -> None:
    """Install the provider, run the pipeline, shut down."""
    warm_up()  # the one-time builds at start-up, not inside the first call's deadline
    api.set_provider_and_wait(LeadCtxProvider(RolloutSettings(shared_bundle_clients=ALLOWLIST)))
    try:
        run_drafts(api.get_provider_metadata().name)
    finally:
        api.shutdown()


if __name__ == "__main__":
    main()
