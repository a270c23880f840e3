"""Connections to the records' database: SQLite (embedded default) or PostgreSQL (psycopg 3).

``connect(url)`` takes ``sqlite:///path`` (``sqlite:////abs/path`` for an absolute path,
``sqlite:///:memory:``) or ``postgresql://user@host:port/db``. The report opens SQLite
read-only and never creates a database; the generator passes ``create=True``. Every statement
goes through :meth:`Database.fetch`, which takes ``:name`` parameters in both dialects, so the
SQL in ``queries`` is written once per dialect and nowhere else.
"""

from __future__ import annotations

import importlib.resources
import logging
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from leadctx_flags.guardrails.tables import COLUMNS, REQUIRED_COLUMNS

__all__ = [
    "REQUIRED_COLUMNS",
    "Database",
    "DatabaseInputError",
    "DatabaseQueryError",
    "Dialect",
    "connect",
    "create_schema",
    "from_connection",
]

logger = logging.getLogger(__name__)

_PARAM: Final = re.compile(r"(?<![:\w]):([a-z_]+)\b")
_SQLITE_TIME: Final = "%Y-%m-%d %H:%M:%S.%f"


class DatabaseInputError(ValueError):
    """The database cannot be read as the guardrails need: bad URL, missing table or column.

    The message names the URL scheme, file, table or column, never a record's content. The
    report command exits with status 2 on it.
    """


class DatabaseQueryError(DatabaseInputError):
    """A statement failed in the database (a lost connection, a column of another type).

    The message names the database and the driver's error class and code, never the driver's
    text, which can quote stored values. The report command exits with status 2 on it.
    """


class Dialect(StrEnum):
    """The SQL dialects the queries are written in."""

    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


@dataclass(slots=True)
class Database:
    """An open connection and the dialect its SQL is written in.

    Args:
        dialect: ``sqlite`` or ``postgresql``.
        connection: The DB-API connection (``sqlite3.Connection`` or ``psycopg.Connection``).
        where: A description of the database for messages (the file, or host and database).
    """

    dialect: Dialect
    connection: Any
    where: str

    def fetch(self, sql: str, params: Mapping[str, object] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement with ``:name`` parameters and return every row.

        Args:
            sql: The statement, parameters written ``:name`` in both dialects.
            params: Values by name; ``datetime`` values are passed as UTC in the dialect's form.
        """
        prepared = self._params(params or {})
        try:
            if self.dialect is Dialect.POSTGRESQL:
                with self.connection.cursor() as cursor:
                    cursor.execute(_PARAM.sub(r"%(\1)s", sql), prepared)
                    return list(cursor.fetchall()) if cursor.description else []
            return list(self.connection.execute(sql, prepared).fetchall())
        except Exception as err:
            if not _is_driver_error(err):
                raise
            # The driver's message may quote a stored value (a bad JSON token): not echoed.
            code = getattr(err, "sqlstate", None) or getattr(err, "sqlite_errorname", None)
            raise DatabaseQueryError(
                f"{self.where}: the database failed a query: {type(err).__name__}"
                + (f" ({code})" if code else "")
            ) from None

    def insert_many(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Insert ``rows`` into ``table`` in bulk: ``executemany`` (SQLite), ``COPY`` (PostgreSQL).

        Args:
            table: One of the known tables (the name is quoted, never taken from input).
            columns: Column names, in the order of each row's values.
            rows: The values; ``datetime`` values must be naive UTC or aware.
        """
        if table not in COLUMNS:
            raise ValueError(f"unknown table {table!r}")
        quoted = ", ".join(f'"{column}"' for column in columns)
        count = 0
        if self.dialect is Dialect.POSTGRESQL:
            with (
                self.connection.cursor() as cursor,
                cursor.copy(f'COPY "{table}" ({quoted}) FROM STDIN') as copy,
            ):
                for row in rows:
                    copy.write_row(row)
                    count += 1
            return count
        marks = ", ".join("?" for _ in columns)
        sql = f'INSERT INTO "{table}" ({quoted}) VALUES ({marks})'  # noqa: S608 - fixed names
        batch: list[Sequence[Any]] = []
        for row in rows:
            batch.append([_sqlite_value(value) for value in row])
            if len(batch) >= 10_000:
                self.connection.executemany(sql, batch)
                count += len(batch)
                batch.clear()
        self.connection.executemany(sql, batch)
        return count + len(batch)

    def commit(self) -> None:
        """Commit the current transaction."""
        self.connection.commit()

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _params(self, params: Mapping[str, object]) -> dict[str, object]:
        prepared: dict[str, object] = {}
        for name, value in params.items():
            if isinstance(value, datetime):
                prepared[name] = (
                    _naive_utc(value)
                    if self.dialect is Dialect.POSTGRESQL
                    else _sqlite_value(value)
                )
            else:
                prepared[name] = value
        return prepared


def connect(url: str, *, create: bool = False) -> Database:
    """Open the database at ``url``.

    Args:
        url: ``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``sqlite:///:memory:`` or
            ``postgresql://…`` (also ``postgres://…``; needs the ``postgres`` extra).
        create: SQLite only: create the file when missing (the generator). Without it the file
            is opened read-only and a missing file is an error, not a new empty database.

    Raises:
        DatabaseInputError: Unknown scheme, missing SQLite file, psycopg not installed, or the
            server refused the connection.
    """
    if url.startswith("sqlite:///"):
        return _connect_sqlite(url.removeprefix("sqlite:///"), create=create)
    if url.startswith(("postgresql://", "postgres://")):
        return _connect_postgresql(url)
    scheme = url.split(":", 1)[0] if ":" in url else "(none)"
    raise DatabaseInputError(
        f"--db: unsupported database URL scheme {scheme!r}; "
        "use sqlite:///path or postgresql://user@host:port/database"
    )


def from_connection(connection: object) -> Database:
    """Wrap an open DB-API connection (``sqlite3`` or psycopg 3) the caller keeps owning.

    Args:
        connection: A ``sqlite3.Connection`` or a ``psycopg.Connection``.

    Raises:
        TypeError: Any other kind of connection.
    """
    if isinstance(connection, sqlite3.Connection):
        return Database(Dialect.SQLITE, connection, "sqlite connection")
    if type(connection).__module__.split(".")[0] == "psycopg":
        return Database(Dialect.POSTGRESQL, connection, "postgresql connection")
    raise TypeError(f"expected a sqlite3 or psycopg connection, got {type(connection).__name__}")


def create_schema(database: Database) -> None:
    """Create the three tables and the indexes the queries use, if they do not exist.

    Args:
        database: An open database; the DDL shipped for its dialect is run and committed.
    """
    ddl = (
        importlib.resources.files("leadctx_flags.guardrails")
        .joinpath("schema")
        .joinpath(f"{database.dialect.value}.sql")
        .read_text(encoding="utf-8")
    )
    statements = [part.strip() for part in _strip_comments(ddl).split(";") if part.strip()]
    for statement in statements:
        database.fetch(statement)
    database.commit()


def _strip_comments(ddl: str) -> str:
    return "\n".join(line for line in ddl.splitlines() if not line.lstrip().startswith("--"))


def _connect_sqlite(path: str, *, create: bool) -> Database:
    if path == ":memory:":
        return Database(Dialect.SQLITE, sqlite3.connect(":memory:"), ":memory:")
    if not path:
        raise DatabaseInputError("--db: sqlite URL names no file; use sqlite:///path/to/file.db")
    file = Path(path)
    if create:
        connection = sqlite3.connect(file)
    else:
        try:
            # is_file() raises what it does not read as "missing": a folder the account may
            # not search (EACCES), a name too long (a pasted value): the check's input error.
            found = file.is_file()
            uri = f"{file.resolve().as_uri()}?mode=ro"
        except OSError as err:
            raise DatabaseInputError(
                f"--db: cannot open the SQLite database {file}: "
                f"{err.strerror or type(err).__name__}"
            ) from None
        if not found:
            raise DatabaseInputError(f"--db: SQLite database file not found: {file}")
        connection = sqlite3.connect(uri, uri=True)
    return Database(Dialect.SQLITE, connection, str(file))


def _connect_postgresql(url: str) -> Database:
    try:
        import psycopg  # noqa: PLC0415 - optional extra, loaded only for postgresql:// URLs
    except ImportError:
        raise DatabaseInputError(
            "--db: postgresql:// needs psycopg 3; "
            "install the extra: pip install 'leadctx[postgres]'"
        ) from None
    try:
        connection = psycopg.connect(url, connect_timeout=10)
    except psycopg.Error as err:
        # psycopg's message names host, port and the cause; it never carries the password.
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DatabaseInputError(f"--db: cannot connect to PostgreSQL: {first_line}") from None
    # Timestamps are stored and compared in UTC whatever the server's default zone is.
    connection.execute("SET TIME ZONE 'UTC'")
    info = connection.info
    return Database(Dialect.POSTGRESQL, connection, f"{info.host}:{info.port}/{info.dbname}")


def _is_driver_error(err: Exception) -> bool:
    if isinstance(err, sqlite3.Error):
        return True
    # psycopg is optional: its errors are recognised by their module, without importing it.
    return type(err).__module__.split(".")[0] == "psycopg"


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _sqlite_value(value: object) -> object:
    """SQLite stores times as ISO-8601 UTC text with milliseconds, the form the queries compare."""
    if isinstance(value, datetime):
        # Rounded to the millisecond, as PostgreSQL's TIMESTAMP(3) rounds.
        rounded = _naive_utc(value) + timedelta(microseconds=500)
        return rounded.strftime(_SQLITE_TIME)[:-3]
    return value
