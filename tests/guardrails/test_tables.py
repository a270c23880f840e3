"""The column constants and the shipped DDL of both dialects name the same columns in order."""

from __future__ import annotations

import importlib.resources
import re

import pytest

from leadctx_flags.guardrails import tables
from leadctx_flags.guardrails.db import Database, connect, create_schema

_TABLE = re.compile(r'CREATE TABLE IF NOT EXISTS "(\w+)" \((.*?)\n\);', re.DOTALL)
_COLUMN = re.compile(r'^\s*"(\w+)"', re.MULTILINE)


def ddl_columns(dialect: str) -> dict[str, tuple[str, ...]]:
    """The tables and their columns, in order, as ``schema/<dialect>.sql`` creates them."""
    ddl = (
        importlib.resources.files("leadctx_flags.guardrails")
        .joinpath("schema")
        .joinpath(f"{dialect}.sql")
        .read_text(encoding="utf-8")
    )
    return {name: tuple(_COLUMN.findall(body)) for name, body in _TABLE.findall(ddl)}


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_ddl_creates_the_columns_the_constants_name(dialect: str) -> None:
    assert ddl_columns(dialect) == dict(tables.COLUMNS)


def test_sqlite_creates_the_columns_the_constants_name() -> None:
    with connect("sqlite:///:memory:", create=True) as database:
        create_schema(database)
        created = {
            table: tuple(row[1] for row in database.fetch(f'PRAGMA table_info("{table}")'))
            for table in tables.COLUMNS
        }
    assert created == dict(tables.COLUMNS)


@pytest.mark.integration
def test_postgresql_creates_the_columns_the_constants_name(postgres_db: Database) -> None:
    create_schema(postgres_db)
    sql = (
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_name = :table_name ORDER BY ordinal_position"
    )
    created = {
        table: tuple(row[0] for row in postgres_db.fetch(sql, {"table_name": table}))
        for table in tables.COLUMNS
    }
    assert created == dict(tables.COLUMNS)


def test_the_required_columns_are_all_but_the_two_unread_ones_in_ddl_order() -> None:
    left_out = {
        table: set(tables.COLUMNS[table]) - set(required)
        for table, required in tables.REQUIRED_COLUMNS.items()
    }
    assert left_out == {
        "AIInteraction": set(),
        "AIDraft": {"autoSendThreshold", "autoSendReason"},
        "MeetingOverseerDecision": set(),
    }
    for table, required in tables.REQUIRED_COLUMNS.items():
        assert list(required) == [c for c in tables.COLUMNS[table] if c in required], table
