"""Connections to the records' database: SQLite (embedded default) or PostgreSQL (psycopg 3).

``connect(url)`` takes ``sqlite:///path`` (``sqlite:////abs/path`` for an absolute path,
``sqlite:///:memory:``) or ``postgresql://user@host:port/db``. The report opens SQLite
read-only and never creates a database; the generator passes ``create=True``. Every statement
goes through :meth:`Database.fetch`, which takes ``:name`` parameters in both dialects, so the
SQL in ``queries`` is written once per dialect and nowhere else.

A scheduled check must end, whatever the database does: with ``timeout_s`` every statement
has that long (PostgreSQL's ``statement_timeout``, lock waits included; SQLite's busy timeout
and a progress handler), a PostgreSQL connection sends TCP keepalives so that a server gone
from the network is noticed, and a statement over the bound is a ``DatabaseQueryError`` that
says so. Without the bound, a table locked by a migration held the report, and the rollback it
would have applied, for as long as the lock.
"""

from __future__ import annotations

import importlib.resources
import logging
import math
import re
import sqlite3
import time
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

CONNECT_TIMEOUT_S: Final = 10
"""Seconds a PostgreSQL connection may take to open."""

_KEEPALIVES: Final = {
    "keepalives": "1",
    "keepalives_idle": "15",
    "keepalives_interval": "5",
    "keepalives_count": "3",
}
"""libpq's TCP keepalives, unless the URL sets them: a server that vanished from the network
is noticed after about 30 s of silence instead of the kernel's two hours."""

# The errors of a statement stopped by the bound: PostgreSQL's query_canceled (the
# statement_timeout) and lock_not_available (a lock_timeout from the URL), SQLite's
# interrupt (the progress handler) and busy or locked (the busy timeout).
_OUT_OF_TIME: Final = frozenset(
    {"57014", "55P03", "SQLITE_INTERRUPT", "SQLITE_BUSY", "SQLITE_LOCKED"}
)
_SQLITE_STEPS: Final = 10_000
"""SQLite virtual-machine steps between two looks at the clock (well under a millisecond)."""


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
        timeout_s: Seconds each statement may take, lock waits included (``None``: no bound).
    """

    dialect: Dialect
    connection: Any
    where: str
    timeout_s: float | None = None

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
            if self.timeout_s is None:
                return list(self.connection.execute(sql, prepared).fetchall())
            deadline = time.monotonic() + self.timeout_s
            self.connection.set_progress_handler(lambda: time.monotonic() > deadline, _SQLITE_STEPS)
            try:
                return list(self.connection.execute(sql, prepared).fetchall())
            finally:
                self.connection.set_progress_handler(None, 0)
        except Exception as err:
            if not _is_driver_error(err):
                raise
            # The driver's message may quote a stored value (a bad JSON token): not echoed.
            code = getattr(err, "sqlstate", None) or getattr(err, "sqlite_errorname", None)
            failure = f"{type(err).__name__}" + (f" ({code})" if code else "")
            if self.timeout_s is not None and code in _OUT_OF_TIME:
                raise DatabaseQueryError(
                    f"{self.where}: the database did not answer a query within "
                    f"{self.timeout_s:g} s: a lock held by another session (a migration?) or "
                    f"a query slower than the bound; {failure}"
                ) from None
            raise DatabaseQueryError(
                f"{self.where}: the database failed a query: {failure}"
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


def connect(url: str, *, create: bool = False, timeout_s: float | None = None) -> Database:
    """Open the database at ``url``.

    Args:
        url: ``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``sqlite:///:memory:`` or
            ``postgresql://…`` (also ``postgres://…``; needs the ``postgres`` extra).
        create: SQLite only: create the file when missing (the generator). Without it the file
            is opened read-only and a missing file is an error, not a new empty database.
        timeout_s: Seconds each statement may take, waits for another session's locks
            included; beyond it the statement is stopped (``DatabaseQueryError``). ``None``:
            no bound (the drivers' defaults).

    Raises:
        DatabaseInputError: Unknown scheme, missing SQLite file, psycopg not installed, the
            server refused the connection, or ``timeout_s`` is not a positive number.
    """
    if timeout_s is not None and not (math.isfinite(timeout_s) and timeout_s > 0):
        raise DatabaseInputError("the query timeout must be a positive number of seconds")
    if url.startswith("sqlite:///"):
        return _connect_sqlite(url.removeprefix("sqlite:///"), create=create, timeout_s=timeout_s)
    if url.startswith(("postgresql://", "postgres://")):
        return _connect_postgresql(url, timeout_s=timeout_s)
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


def _connect_sqlite(path: str, *, create: bool, timeout_s: float | None) -> Database:
    if path == ":memory:":
        return Database(Dialect.SQLITE, sqlite3.connect(":memory:"), ":memory:")
    if not path:
        raise DatabaseInputError("--db: sqlite URL names no file; use sqlite:///path/to/file.db")
    file = Path(path)
    # The busy timeout: how long a statement waits for another connection's write lock.
    busy = 5.0 if timeout_s is None else timeout_s
    if create:
        connection = sqlite3.connect(file, timeout=busy)
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
            what = "is a folder, not" if file.is_dir() else "not found:"
            raise DatabaseInputError(f"--db: SQLite database file {what} {file}")
        connection = sqlite3.connect(uri, uri=True, timeout=busy)
    return Database(Dialect.SQLITE, connection, str(file), timeout_s)


def _connect_postgresql(url: str, *, timeout_s: float | None) -> Database:
    try:
        import psycopg  # noqa: PLC0415 - optional extra, loaded only for postgresql:// URLs
    except ImportError:
        raise DatabaseInputError(
            "--db: postgresql:// needs psycopg 3; "
            "install the extra: pip install 'leadctx[postgres]'"
        ) from None
    try:
        given = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        raise DatabaseInputError(
            "--db: the postgresql:// URL cannot be parsed; see libpq's connection URIs"
        ) from None
    keepalives = {name: value for name, value in _KEEPALIVES.items() if name not in given}
    try:
        conninfo = psycopg.conninfo.make_conninfo(url, **keepalives) if keepalives else url
        connection = psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as err:
        # psycopg's message names host, port and the cause; it never carries the password.
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DatabaseInputError(f"--db: cannot connect to PostgreSQL: {first_line}") from None
    info = connection.info
    where = f"{info.host}:{info.port}/{info.dbname}"
    try:
        # Timestamps are stored and compared in UTC whatever the server's default zone is.
        connection.execute("SET TIME ZONE 'UTC'")
        if timeout_s is not None:
            # In milliseconds, at least one: 0 would mean no bound at all.
            connection.execute(
                f"SET statement_timeout = {max(1, math.ceil(timeout_s * 1000))}"  # a number
            )
    except psycopg.Error as err:
        connection.close()
        raise DatabaseQueryError(
            f"{where}: the database failed the session set-up: {type(err).__name__}"
        ) from None
    return Database(Dialect.POSTGRESQL, connection, where, timeout_s)


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
