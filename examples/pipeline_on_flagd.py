"""The same draft pipeline on flagd: the rules exported by leadctx, evaluated by flagd.

Run: ``.venv/bin/python examples/pipeline_on_flagd.py``

``export_flagd`` turns the leadctx configuration (here the allowlist ``acme,globex``; in
production the ``LEADCTX_*`` environment and the overrides document) into a flagd flag
definition, written to a temporary file and loaded by the flagd provider's FILE resolver: in
process, no daemon, no network. The pipeline code is ``examples/pipeline.py``, unchanged.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from pipeline import ALLOWLIST, run_drafts

from leadctx_bundle import warm_up
from leadctx_flags import RolloutSettings
from leadctx_flags.operations import export_flagd


def main() -> None:
    """Export the rules, start flagd on the file, run the pipeline, shut down."""
    warm_up()  # the one-time builds at start-up, not inside the first call's deadline
    exported = export_flagd(RolloutSettings(shared_bundle_clients=ALLOWLIST))
    with tempfile.TemporaryDirectory(prefix="leadctx-flagd-") as folder:
        path = Path(folder) / "shared-bundle.flagd.json"
        # ASCII JSON (json.dumps' default): the FILE resolver reads the platform's encoding.
        path.write_text(json.dumps(exported.document), encoding="ascii")
        api.set_provider_and_wait(
            FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=str(path))
        )
        try:
            run_drafts(api.get_provider_metadata().name)
        finally:
            api.shutdown()  # stops flagd's file watcher before the folder goes


if __name__ == "__main__":
    main()
