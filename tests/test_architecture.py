"""The architecture is checked, not only drawn: import contracts and light imports.

``docs/architecture.md`` draws the three packages and the rule ``leadctx`` -> ``leadctx_bundle``
-> ``leadctx_flags``. These tests run the import-linter contracts of ``pyproject.toml`` and
import each package in a fresh interpreter to see what it drags in.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What importing a package must never load. The guardrails' stack (scipy, statsmodels,
# psycopg, matplotlib) is an optional extra; the SDK is the application's choice.
GUARDRAILS_STACK = ("scipy", "statsmodels", "psycopg", "matplotlib", "numpy")
NEVER_LOADED = {
    "leadctx_flags": ("opentelemetry.sdk", "leadctx_flags.guardrails", *GUARDRAILS_STACK),
    "leadctx_bundle": (
        "leadctx_flags.provider",
        "leadctx_flags.poller",
        "httpx",
        "opentelemetry.sdk",
        "leadctx_flags.guardrails",
        *GUARDRAILS_STACK,
    ),
    "leadctx_bundle.models": ("leadctx_flags.provider", "httpx", "opentelemetry.sdk"),
}


def loaded_modules(statement: str) -> set[str]:
    """The names in ``sys.modules`` after running ``statement`` in a fresh interpreter."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(  # noqa: S603 - our own interpreter, a fixed program
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return set(json.loads(result.stdout))


@pytest.mark.parametrize("package", sorted(NEVER_LOADED))
def test_importing_a_library_loads_none_of_the_heavy_or_upper_modules(package: str) -> None:
    # Given a fresh interpreter, When the package is imported
    modules = loaded_modules(f"import {package}")
    # Then none of the forbidden modules, nor any of their submodules, is loaded
    forbidden = NEVER_LOADED[package]
    offending = sorted(
        name for name in modules if any(name == f or name.startswith(f + ".") for f in forbidden)
    )
    assert offending == []
    assert package in modules  # the import itself happened


def test_the_light_import_check_notices_a_heavy_import() -> None:
    # The check above must be able to fail: asking for the provider loads its poller (which
    # `import leadctx_bundle` must not), and an https source loads httpx.
    modules = loaded_modules("import leadctx_flags; leadctx_flags.LeadCtxProvider")
    assert {"leadctx_flags.provider", "leadctx_flags.poller"} <= modules
    https = (
        "from leadctx_flags.overrides_sources import open_source; open_source('https://o.example/')"
    )
    assert "httpx" in loaded_modules(https)


def test_lazy_exports_resolve_every_public_name() -> None:
    import leadctx_flags  # noqa: PLC0415 - the laziness itself is under test

    for name in leadctx_flags.__all__:
        assert getattr(leadctx_flags, name) is not None
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = leadctx_flags.no_such_name


def test_import_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint_imports is None:
        pytest.fail("lint-imports (import-linter, in the dev extra) is not installed")
    result = subprocess.run(  # noqa: S603 - the venv's own console script
        [lint_imports, "--no-cache"], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert "0 broken" in result.stdout


def test_the_guardrails_contract_names_every_other_control_plane_module() -> None:
    # The contract lists modules one by one (import-linter cannot say "all but one
    # subpackage"), so a new module of leadctx_flags must be added to it: this test says so.
    import tomllib  # noqa: PLC0415 - only this test reads pyproject.toml

    import leadctx_flags  # noqa: PLC0415

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    (guardrails,) = [
        c for c in contracts if c.get("forbidden_modules") == ["leadctx_flags.guardrails"]
    ]
    package = Path(leadctx_flags.__file__).parent
    modules = {
        f"leadctx_flags.{path.stem}" for path in package.glob("*.py") if path.stem != "__init__"
    }
    assert modules <= set(guardrails["source_modules"])
