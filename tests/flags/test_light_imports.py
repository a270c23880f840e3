"""What a process loads to evaluate the flag: only what its path needs.

A pipeline that imports the provider, and an operator's ``leadctx flags explain`` (the
pre-deploy check), pay for every module they load at each start. These tests run fresh
interpreters and check *which* modules are loaded, not how long it takes (the figures are in
``benchmarks/bench_import.py`` and docs/performance.md): httpx only for an https source,
filelock only when editing, and none of the application's other command groups or the
guardrails' statistics stack.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Loaded by no evaluation through a file source and by no `flags explain`.
HEAVY = frozenset(
    {
        "httpx",  # the https source only
        "httpcore",
        "filelock",  # the editing commands only
        "rich",  # `leadctx demo` and httpx's own command line
        "click",
        "scipy",  # the guardrails' statistics
        "statsmodels",
        "numpy",
        "matplotlib",
        "psycopg",
        "starlette",  # `leadctx serve`
        "uvicorn",
        "tiktoken",  # the bundle's token counts
        "opentelemetry.sdk",  # only the application, and only when exporting
        "leadctx_bundle",  # the data plane: not needed to decide a flag
        "leadctx_flags.guardrails",
        "leadctx.demo",
        "leadctx.smoke",
        "leadctx.serve",
        "leadctx.telemetry",
    }
)

DOCUMENT = {
    "schema": "leadctx.overrides/v1",
    "revision": 4,
    "flags": {"shared_bundle.enabled": {"clients": {"acme": True}}},
}

# Runs `body` in a fresh interpreter, then writes the names of every loaded module to argv[1].
_RECORD = """
import json, sys
{body}
with open(sys.argv[1], "w", encoding="utf-8") as out:
    json.dump(sorted(sys.modules), out)
"""


def _loaded_by(body: str, tmp_path: Path, **env: str) -> tuple[set[str], str]:
    """The modules a fresh interpreter has loaded after running ``body``, and its stdout."""
    record = tmp_path / "modules.json"
    environment = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(tmp_path),
        **env,
    }
    finished = subprocess.run(  # noqa: S603 - our own interpreter and a fixed script
        [sys.executable, "-c", _RECORD.format(body=body), str(record)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return set(json.loads(record.read_text(encoding="utf-8"))), finished.stdout


def _heavy_in(modules: set[str]) -> set[str]:
    """The ``HEAVY`` packages among ``modules``, a package counting for its submodules."""
    return {
        heavy
        for heavy in HEAVY
        if any(name == heavy or name.startswith(f"{heavy}.") for name in modules)
    }


@pytest.fixture
def overrides_file(tmp_path: Path) -> Path:
    path = tmp_path / "overrides.json"
    path.write_text(json.dumps(DOCUMENT), encoding="utf-8")
    return path


def test_importing_the_provider_loads_no_heavy_module(tmp_path: Path) -> None:
    # Given a fresh interpreter
    # When it imports the provider
    modules, _ = _loaded_by("from leadctx_flags import LeadCtxProvider", tmp_path)

    # Then it has the provider and none of the heavy modules
    assert "leadctx_flags.provider" in modules
    assert _heavy_in(modules) == set()


def test_importing_the_provider_defers_the_settings_and_the_validators(tmp_path: Path) -> None:
    # Given a fresh interpreter
    body = """
from leadctx_flags import LeadCtxProvider
from leadctx_flags.document import FlagOverride, OverridesDocument
print(OverridesDocument.__pydantic_complete__, FlagOverride.__pydantic_complete__)
"""
    # When it imports the provider (and the document's models)
    modules, out = _loaded_by(body, tmp_path)

    # Then the environment's reader (pydantic-settings, and the asyncio it loads) waits for a
    # provider to read the environment, as change notifications (file watching, server-sent
    # events) wait for a provider to start them, and no validator has been built yet
    deferred = {"pydantic_settings", "asyncio", "watchfiles", "anyio", "httpx_sse"}
    assert deferred & {name.split(".")[0] for name in modules} == set()
    assert out.split() == ["False", "False"]


def test_importing_the_provider_loads_no_pydantic(tmp_path: Path) -> None:
    # Given a fresh interpreter
    # When it imports the provider and the modules a provider reads documents with
    body = """
from leadctx_flags import LeadCtxProvider
import leadctx_flags.overrides_sources, leadctx_flags.poller, leadctx_flags.storage
import leadctx_flags.wire
"""
    modules, _ = _loaded_by(body, tmp_path)

    # Then pydantic is not loaded: the document's models wait for the first parse
    assert {name.split(".")[0] for name in modules} & {"pydantic", "pydantic_core"} == set()
    assert "leadctx_flags.document" not in modules


def test_the_first_parse_loads_the_document_models(tmp_path: Path) -> None:
    # Given a fresh interpreter that has imported the provider (no pydantic yet)
    body = """
from leadctx_flags import LeadCtxProvider
from leadctx_flags.wire import parse_document
document = parse_document(b'{"schema": "leadctx.overrides/v1", "revision": 3}', origin="x")
print(type(document).__module__, type(document).__name__, document.revision)
"""
    # When it parses a document
    modules, out = _loaded_by(body, tmp_path)

    # Then the models were loaded for it, and the document is the public model
    assert out.split() == ["leadctx_flags.document", "OverridesDocument", "3"]
    assert "pydantic" in modules


def test_a_provider_on_a_file_source_evaluates_without_httpx_or_filelock(
    tmp_path: Path, overrides_file: Path
) -> None:
    # Given a provider whose overrides come from a local file (with a cache beside it)
    body = """
from openfeature.evaluation_context import EvaluationContext
from leadctx_flags import LeadCtxProvider
provider = LeadCtxProvider()
provider.initialize(EvaluationContext())
try:
    details = provider.resolve_boolean_details(
        "shared_bundle.enabled", False, EvaluationContext(targeting_key="acme")
    )
    print(details.value, details.flag_metadata["source"])
finally:
    provider.shutdown()
"""
    # When it loads the document, writes its cache and evaluates
    modules, out = _loaded_by(
        body,
        tmp_path,
        LEADCTX_FLAG_OVERRIDES=str(overrides_file),
        LEADCTX_FLAG_OVERRIDES_CACHE=str(tmp_path / "cache.json"),
    )

    # Then the document was in force, and neither httpx nor filelock was loaded
    assert out.split() == ["True", "override"]
    assert (tmp_path / "cache.json").is_file()
    assert _heavy_in(modules) == set()


def test_flags_explain_on_a_file_source_loads_only_what_it_needs(
    tmp_path: Path, overrides_file: Path
) -> None:
    # Given the operator's pre-deploy check with a file overrides source
    body = """
from leadctx.cli import main
code = main(["flags", "explain", "--client-id", "acme"])
sys.stdout.flush()
assert code == 0, code
"""
    # When `leadctx flags explain` runs in a fresh interpreter
    modules, out = _loaded_by(body, tmp_path, LEADCTX_FLAG_OVERRIDES=str(overrides_file))

    # Then it answered from the document, without loading another command group, httpx,
    # filelock, the data plane or the OpenTelemetry SDK
    assert "source      override" in out
    assert "leadctx_flags.cli" in modules
    assert _heavy_in(modules) == set()


def test_an_https_source_loads_httpx(tmp_path: Path) -> None:
    # Given a fresh interpreter (the check above can see httpx when it is loaded)
    body = """
from leadctx_flags.overrides_sources import open_source
open_source("https://overrides.example/leadctx.json").close()
"""
    # When it opens an https source
    modules, _ = _loaded_by(body, tmp_path)

    # Then httpx is loaded: the source needs it
    assert "httpx" in _heavy_in(modules)
