"""Fixtures for the guardrails' tests: a throwaway PostgreSQL server and fresh databases.

The server is started once per test session by ``scripts/pg_throwaway.sh`` and stopped by the
same session. Without the server binaries the PostgreSQL tests skip, unless
``REQUIRE_POSTGRES_TESTS=1`` (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadctx_flags.guardrails.db import Database, connect

# Read at import: the root conftest clears LEADCTX_* from each test's environment.
REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES_TESTS", "").strip() == "1"
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pg_throwaway.sh"
NO_BINARIES = 3  # the script's exit status when the server binaries are missing


@pytest.fixture(autouse=True)
def _in_a_temporary_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report writes its state file to the working directory by default: keep it here."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a throwaway PostgreSQL server's ``postgres`` database."""
    result = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [str(SCRIPT), "start"], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        message = f"no throwaway PostgreSQL server: {result.stderr.strip()}"
        if result.returncode == NO_BINARIES and not REQUIRE_POSTGRES:
            pytest.skip(message)
        pytest.fail(message + " (REQUIRE_POSTGRES_TESTS=1)" if REQUIRE_POSTGRES else message)
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    try:
        yield lines["URL"]
    finally:
        subprocess.run(  # noqa: S603 - the stop command the script printed
            lines["STOP"].split(), capture_output=True, timeout=60, check=False
        )


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A new, empty database on the throwaway server, dropped after the test."""
    import psycopg  # noqa: PLC0415 - the module is skipped without it

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    base = postgres_server.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A path for a new SQLite database file."""
    return f"sqlite:///{tmp_path / 'records.db'}"


@pytest.fixture
def postgres_db(postgres_url: str) -> Iterator[Database]:
    """An open connection to a fresh PostgreSQL database."""
    with connect(postgres_url) as database:
        yield database
