"""Environment-driven rollout settings (``LEADCTX_*``).

Sources, highest precedence first: constructor arguments, then environment variables. Dotenv
files and secret directories are deliberately not read: a rollout switch must have exactly one
place an operator looks. See ``settings_customise_sources``.
"""

from __future__ import annotations

import difflib
import logging
import math
import os
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final

from pydantic import SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from leadctx_flags.client_ids import NOT_UTF8, validate_client_id
from leadctx_flags.errors import ConfigurationError, describe_validation_error

__all__ = [
    "ENV_PREFIX",
    "MIN_FETCH_TIMEOUT_SECONDS",
    "MIN_POLL_SECONDS",
    "EnvSettings",
    "RolloutSettings",
    "check_one_spelling",
    "check_verbatim",
    "environment_value",
    "parse_bool",
    "parse_client_list",
    "register_environment_variables",
    "unknown_variables",
    "warn_about_unknown_variables",
]

ENV_PREFIX: Final = "LEADCTX_"

MIN_POLL_SECONDS: Final = 0.05
"""Shortest poll interval accepted. Below it an idle process spends its time polling (at
1e-9 s, about half a core); at it, a local file is read 20 times a second for about 0.5% of a
core, and a rollback takes effect within a twentieth of a second (``docs/performance.md``)."""

MIN_FETCH_TIMEOUT_SECONDS: Final = 0.1
"""Shortest fetch deadline accepted: below it no https fetch can complete, so every poll
fails and the process is cut off from the document while looking configured."""

logger = logging.getLogger(__name__)

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_BOOL_HELP = "expected one of true/false, 1/0, yes/no, on/off (any case)"


def parse_bool(value: object) -> bool:
    """Parse a boolean strictly: ``true/false, 1/0, yes/no, on/off`` in any case, or a bool.

    Pydantic's lax parsing would also take ``"t"``, ``"y"`` or ``1.0``; a kill switch set to a
    typo must be an error, not a guess.

    Raises:
        ValueError: Anything else, with the value quoted.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        folded = value.strip().lower()
        if folded in _TRUE:
            return True
        if folded in _FALSE:
            return False
    raise ValueError(_BOOL_HELP)


def parse_client_list(value: object, *, field: str = "client id") -> tuple[str, ...]:
    """Parse an allowlist: a comma-separated string or an iterable of strings.

    This is the list syntax's only normalisation: entries are trimmed; blanks and repeats are
    dropped; order of first appearance is kept so that what an operator sees matches what they
    wrote. Each entry is then checked by ``validate_client_id``, the rule the CLI and the
    overrides document use for a single id.

    Args:
        value: The raw list.
        field: What to call an entry in error messages.

    Raises:
        ValueError: An entry is not a valid client id; the message gives its position in the
            list, never the list.
    """
    items: Iterable[object]
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, Iterable):
        items = value
    else:
        # ValueError, not TypeError: pydantic reports ValueErrors as validation errors.
        raise ValueError(f"expected comma-separated client ids, got {type(value).__name__}")  # noqa: TRY004
    seen: dict[str, None] = {}
    for position, raw in enumerate(items, start=1):
        if not isinstance(raw, str):
            raise ValueError(f"{field} must be a string, got {type(raw).__name__}")  # noqa: TRY004
        entry = raw.strip()
        if entry:
            seen.setdefault(validate_client_id(entry, field=f"{field} #{position}"), None)
    return tuple(seen)


class EnvSettings(BaseSettings):
    """Settings read from constructor arguments, then the environment, and nothing else.

    Dotenv files and secret directories are not read: a rollout switch must have exactly one
    place an operator looks. Subclasses turn pydantic's ``ValidationError`` (which quotes
    values and names fields) into a ``ConfigurationError`` that names variables; they define
    ``__init__`` for it themselves, so that pydantic's mypy plugin keeps their signature.
    """

    @classmethod
    def check_spellings(cls, values: Mapping[str, object], *, what: str) -> None:
        """Refuse a variable of this class set under two spellings (``check_one_spelling``);
        fields given as constructor arguments are not read from the environment, so not
        checked. Subclasses call it first thing in their ``__init__``."""
        prefix = str(cls.model_config.get("env_prefix", ""))
        check_one_spelling(
            (f"{prefix}{name}".upper() for name in cls.model_fields if name not in values),
            what=what,
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Constructor arguments, then the environment; nothing else."""
        return (init_settings, env_settings)


class RolloutSettings(EnvSettings):
    """Rollout controls for the shared bundle, read from ``LEADCTX_*`` environment variables.

    Args:
        shared_bundle_enabled: ``LEADCTX_SHARED_BUNDLE_ENABLED``, the default for clients no
            more specific rule covers. Off unless set.
        shared_bundle_clients: ``LEADCTX_SHARED_BUNDLE_CLIENTS``, the allowlist: client ids
            separated by commas (``acme,globex``). Blanks and repeats are ignored.
        shared_bundle_kill: ``LEADCTX_SHARED_BUNDLE_KILL``, the kill switch: off for every
            client, whatever else is configured.
        flag_overrides: ``LEADCTX_FLAG_OVERRIDES``, where the remote overrides document lives:
            a file path, ``file://`` or ``https://`` URL.
        flag_overrides_poll_seconds: ``LEADCTX_FLAG_OVERRIDES_POLL_SECONDS``, poll interval:
            a finite number of seconds, at least 0.05 (``MIN_POLL_SECONDS``) and at most 3600.
        flag_overrides_fetch_timeout_seconds: ``LEADCTX_FLAG_OVERRIDES_FETCH_TIMEOUT_SECONDS``,
            the deadline for one whole https fetch (connect, headers and body): a finite
            number of seconds, at least 0.1 (``MIN_FETCH_TIMEOUT_SECONDS``) and at most 300;
            10 unless set. ``initialize`` waits at most this long for the first fetch.
        flag_overrides_token: ``LEADCTX_FLAG_OVERRIDES_TOKEN``, bearer token for https:
            visible ASCII (it is sent in an HTTP header).
        flag_overrides_cache: ``LEADCTX_FLAG_OVERRIDES_CACHE``, file keeping the last good
            document, read at start when the source is down.
        flag_overrides_required: ``LEADCTX_FLAG_OVERRIDES_REQUIRED``: with no document, fresh
            or cached, the flag is off for everyone.
        flag_overrides_watch: ``LEADCTX_FLAG_OVERRIDES_WATCH``: watch a file source's
            directory and poll as soon as it changes (on unless set false); the poll at its
            interval stays the fallback.
        flag_overrides_events: ``LEADCTX_FLAG_OVERRIDES_EVENTS``: the change-event stream of
            a ``leadctx serve`` that follows the same document (``https://host/ofrep/v1/events``,
            or ``http://`` to loopback); each event makes the provider poll at once.
        flag_overrides_events_token: ``LEADCTX_FLAG_OVERRIDES_EVENTS_TOKEN``: bearer token
            for that stream (the server's ``LEADCTX_SERVE_TOKEN``); visible ASCII.

    A location, a path or a token with whitespace or a quote character at either end is
    refused rather than trimmed or unquoted: it is quoting or padding from a shell or a
    manifest, and read as a path it would cut the process off from the document.

    Constructing one also warns, once per process, about each ``LEADCTX_*`` variable that
    nothing reads (see ``warn_about_unknown_variables``).

    Raises:
        ConfigurationError: A value cannot be parsed, or one variable is set under two
            spellings that differ only in case (see ``check_one_spelling``). The message
            names the environment variable(s) and the rule, never the value; nothing is
            partially applied.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        extra="forbid",
        frozen=True,
        validate_default=True,
        defer_build=True,  # the validator is built on first use, not at import
    )

    shared_bundle_enabled: bool = False
    shared_bundle_clients: Annotated[tuple[str, ...], NoDecode] = ()
    shared_bundle_kill: bool = False
    flag_overrides: str | None = None
    flag_overrides_poll_seconds: float = 10.0
    flag_overrides_fetch_timeout_seconds: float = 10.0
    flag_overrides_token: SecretStr | None = None
    flag_overrides_cache: Path | None = None
    flag_overrides_required: bool = False
    flag_overrides_watch: bool = True
    flag_overrides_events: str | None = None
    flag_overrides_events_token: SecretStr | None = None

    _BOOL_FIELDS: ClassVar[tuple[str, ...]] = (
        "shared_bundle_enabled",
        "shared_bundle_kill",
        "flag_overrides_required",
        "flag_overrides_watch",
    )

    def __init__(self, **values: Any) -> None:
        warn_about_unknown_variables()
        # Only the variables the environment decides: a constructor argument wins anyway.
        type(self).check_spellings(values, what="rollout configuration")
        try:
            super().__init__(**values)
        except ValidationError as err:
            problems = describe_validation_error(err, name=_variable_of)
            raise ConfigurationError(
                "invalid rollout configuration: " + "; ".join(problems)
            ) from None

    def orphaned_overrides_settings(self) -> tuple[str, ...]:
        """The ``LEADCTX_FLAG_OVERRIDES_*`` variables set while ``LEADCTX_FLAG_OVERRIDES`` is not.

        Each configures a document route that does not exist: a cache, a token or an event
        stream with no document to read usually means the location itself was lost from the
        manifest, and the process then answers from the environment alone.
        ``LEADCTX_FLAG_OVERRIDES_REQUIRED`` is not listed: it has its own rule (off for
        everyone).
        """
        if self.flag_overrides is not None:
            return ()
        return tuple(
            env_name(name)
            for name in type(self).model_fields
            if name.startswith("flag_overrides_")
            and name != "flag_overrides_required"
            and name in self.model_fields_set
        )

    @field_validator(*_BOOL_FIELDS, mode="before")
    @classmethod
    def _strict_bool(cls, value: object) -> bool:
        return parse_bool(value)

    @field_validator("shared_bundle_clients", mode="before")
    @classmethod
    def _client_list(cls, value: object) -> tuple[str, ...]:
        return parse_client_list(value)

    @field_validator("flag_overrides_poll_seconds", mode="after")
    @classmethod
    def _poll_seconds(cls, value: float) -> float:
        return _seconds(value, MIN_POLL_SECONDS, _MAX_POLL_SECONDS)

    @field_validator("flag_overrides_fetch_timeout_seconds", mode="after")
    @classmethod
    def _fetch_timeout_seconds(cls, value: float) -> float:
        return _seconds(value, MIN_FETCH_TIMEOUT_SECONDS, _MAX_FETCH_TIMEOUT_SECONDS)

    @field_validator("flag_overrides_token", "flag_overrides_events_token", mode="after")
    @classmethod
    def _usable_token(cls, value: SecretStr | None) -> SecretStr | None:
        # The token goes into an HTTP header, which only carries visible ASCII: checked here,
        # once, rather than failing every poll with an encoding traceback.
        if value is None:
            return value
        secret = value.get_secret_value()
        if not all("!" <= char <= "~" for char in secret):
            raise ValueError(
                "must be printable ASCII without spaces or control characters "
                "(it is sent as an HTTP bearer token)"
            )
        _unquoted(secret)
        return value

    @field_validator(
        "flag_overrides",
        "flag_overrides_token",
        "flag_overrides_cache",
        "flag_overrides_events",
        "flag_overrides_events_token",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `LEADCTX_FLAG_OVERRIDES=` in a deployment manifest means "none", not a file named "".
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator(
        "flag_overrides", "flag_overrides_cache", "flag_overrides_events", mode="before"
    )
    @classmethod
    def _no_padding_or_quotes(cls, value: object) -> object:
        # A blank value is left to _blank_is_unset, whichever of the two pydantic runs first.
        if isinstance(value, str) and value.strip():
            check_verbatim(value)
        return value


_MAX_POLL_SECONDS: Final = 3600
_MAX_FETCH_TIMEOUT_SECONDS: Final = 300


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return f"{ENV_PREFIX}{field.upper()}"


def _variable_of(loc: tuple[int | str, ...]) -> str:
    return env_name(str(loc[0])) if loc else f"{ENV_PREFIX}*"


# Every LEADCTX_* variable some part of leadctx reads. A package that reads its own variables
# (the bundle's LEADCTX_BUNDLE_*) adds them with register_environment_variables when imported;
# until then its namespace is not judged, so a process that never imports it is not warned
# about variables meant for it.
_known_variables: set[str] = {env_name(name) for name in RolloutSettings.model_fields}
_exact_case_variables: set[str] = set()
_namespaces: dict[str, bool] = {f"{ENV_PREFIX}BUNDLE_": False, f"{ENV_PREFIX}SERVE_": False}
_warned: set[str] = set()
_warn_lock = threading.Lock()


def register_environment_variables(
    namespace: str, names: Iterable[str], *, exact_case: bool = False
) -> None:
    """Declare the ``LEADCTX_*`` variables a package reads, so none is reported as unknown.

    Args:
        namespace: The prefix the package owns (``LEADCTX_BUNDLE_``).
        names: Every variable it reads, in full (``LEADCTX_BUNDLE_ENCODING``).
        exact_case: The package reads ``names`` exactly as given (upper case), not in any
            case as pydantic-settings does: another spelling (``leadctx_bundle_workers``) is
            then reported as unknown, with the name it is read under.
    """
    with _warn_lock:
        folded = {name.upper() for name in names}
        _known_variables.update(folded)
        if exact_case:
            _exact_case_variables.update(folded)
        _namespaces[namespace.upper()] = True


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """Each ``LEADCTX_*`` variable set that nothing reads, with the closest known name.

    Variables of a namespace whose package is not imported are left out (that package judges
    them when it registers). Pure: it logs nothing; ``warn_about_unknown_variables`` warns.

    Args:
        environ: The environment to check (default: ``os.environ``).

    Returns:
        ``(variable, closest known variable or None)``, sorted by variable.
    """
    environ = os.environ if environ is None else environ
    found: list[tuple[str, str | None]] = []
    with _warn_lock:
        known = sorted(_known_variables)
        # A variable read in upper case only is ignored under any other spelling: named as
        # it is spelt, with the name it is read under.
        found.extend(
            (name, name.upper())
            for name in environ
            if name.upper() in _exact_case_variables and name != name.upper()
        )
        for variable in sorted({name.upper() for name in environ}):
            if not variable.startswith(ENV_PREFIX) or variable in _known_variables:
                continue
            if _unclaimed_namespace(variable):
                continue
            close = difflib.get_close_matches(variable, known, n=1)
            found.append((variable, close[0] if close else None))
    return sorted(found)


def warn_about_unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """Warn once per process about each ``LEADCTX_*`` variable that nothing reads.

    A misspelt kill switch (``LEADCTX_SHARED_BUNDLE_KIL=true``) is otherwise ignored without
    a word; the warning names the variable and the closest known one, never the value.

    Args:
        environ: The environment to check (default: ``os.environ``).

    Returns:
        The names warned about by this call (each name is warned about once per process).
    """
    warned = []
    for variable, close in unknown_variables(environ):
        with _warn_lock:
            if variable in _warned:
                continue
            _warned.add(variable)
        warned.append(variable)
        if close is not None:
            logger.warning(
                "unknown environment variable %s is ignored; did you mean %s?", variable, close
            )
        else:
            logger.warning("unknown environment variable %s is ignored", variable)
    return warned


def _unclaimed_namespace(variable: str) -> bool:
    return any(
        variable.startswith(prefix) and not registered for prefix, registered in _namespaces.items()
    )


def _seconds(value: float, minimum: float, maximum: int) -> float:
    """``value`` if it is a usable duration: finite, from ``minimum`` to ``maximum`` seconds."""
    if not math.isfinite(value) or not minimum <= value <= maximum:
        raise ValueError(
            f"must be a finite number of seconds, at least {minimum} and at most {maximum}"
        )
    return value


def check_verbatim(value: str) -> None:
    """Refuse a path or URL with whitespace or a quote character at either end, or with a
    control or invisible format character anywhere (a pasted newline, a zero-width space), or
    with bytes that are not UTF-8 (lone surrogates, as Python decodes them from the environment).

    Such a value is padding or quoting from a shell or a manifest; it is never trimmed or
    unquoted, because the same text must mean the same file to every reader.

    Raises:
        ValueError: The rule broken, without the value (the caller adds the variable's name).
    """
    if value != value.strip():
        raise ValueError(
            "starts or ends with whitespace; a path or URL is used exactly as given, "
            "so remove the padding"
        )
    _unquoted(value)
    for index, char in enumerate(value):
        category = unicodedata.category(char)
        if category == "Cs":
            raise ValueError(f"{NOT_UTF8} (U+{ord(char):04X} at position {index})")
        if category in {"Cc", "Cf"}:
            raise ValueError(
                f"holds control or invisible character U+{ord(char):04X} at position {index}"
            )


def environment_value(variable: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of ``variable`` in any case, as pydantic-settings would read it.

    Args:
        variable: The documented name (``LEADCTX_FLAG_OVERRIDES``).
        environ: The environment (default: ``os.environ``).

    Raises:
        ConfigurationError: It is set under two spellings (see ``check_one_spelling``).
    """
    environ = os.environ if environ is None else environ
    check_one_spelling([variable], environ)
    folded = variable.upper()
    return next((value for name, value in environ.items() if name.upper() == folded), None)


_QUOTES: Final = frozenset("'\"`\u2018\u2019\u201c\u201d")


def _unquoted(value: str) -> None:
    """Refuse a value with a quote character at either end (it is never unquoted)."""
    if value and (value[0] in _QUOTES or value[-1] in _QUOTES):
        raise ValueError(
            "starts or ends with a quote character; quoting meant for a shell or a manifest "
            "reached leadctx as part of the value, so remove the quotes"
        )


def check_one_spelling(
    variables: Iterable[str],
    environ: Mapping[str, str] | None = None,
    *,
    what: str = "rollout configuration",
) -> None:
    """Refuse a variable set under two spellings that differ only in case.

    pydantic-settings matches names case-insensitively, so with both
    ``LEADCTX_SHARED_BUNDLE_KILL=true`` and ``leadctx_shared_bundle_kill=false`` the winner
    would depend on the order of the environment: the kill switch would be on in one process
    and off in the next.

    Args:
        variables: The variables to check, in their documented (upper-case) spelling.
        environ: The environment (default: ``os.environ``).
        what: What the variables configure, for the message (``serve configuration``).

    Raises:
        ConfigurationError: Some variable is set under more than one spelling. The message
            names every spelling found, never a value.
    """
    environ = os.environ if environ is None else environ
    wanted = {name.upper() for name in variables}
    spellings: dict[str, list[str]] = {}
    for name in environ:
        folded = name.upper()
        if folded in wanted:
            spellings.setdefault(folded, []).append(name)
    clashes = [sorted(names) for _, names in sorted(spellings.items()) if len(names) > 1]
    if clashes:
        listed = "; ".join(" and ".join(names) for names in clashes)
        raise ConfigurationError(
            f"invalid {what}: {listed} set under more than one spelling "
            "(names are matched without regard to case, so which one wins would depend on the "
            "order of the environment); keep one spelling of each"
        )
