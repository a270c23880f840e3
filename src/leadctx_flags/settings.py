"""Environment-driven rollout settings (``LEADCTX_*``).

Sources, highest precedence first: constructor arguments, then environment variables. Dotenv
files and secret directories are deliberately not read: a rollout switch must have exactly one
place an operator looks. See ``settings_customise_sources``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from leadctx_flags.client_ids import validate_client_id
from leadctx_flags.errors import ConfigurationError

__all__ = ["ENV_PREFIX", "EnvSettings", "RolloutSettings", "parse_bool", "parse_client_list"]

ENV_PREFIX = "LEADCTX_"

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

    Entries are trimmed; blanks and repeats are dropped; order of first appearance is kept so
    that what an operator sees matches what they wrote.

    Raises:
        ValueError: An entry is not a valid client id (see ``validate_client_id``).
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
    for raw in items:
        if not isinstance(raw, str):
            raise ValueError(f"{field} must be a string, got {type(raw).__name__}")  # noqa: TRY004
        entry = raw.strip()
        if entry:
            seen.setdefault(validate_client_id(entry, field=field), None)
    return tuple(seen)


class EnvSettings(BaseSettings):
    """Settings read from constructor arguments, then the environment, and nothing else.

    Dotenv files and secret directories are not read: a rollout switch must have exactly one
    place an operator looks. Subclasses turn pydantic's ``ValidationError`` (which quotes
    values and names fields) into a ``ConfigurationError`` that names variables; they define
    ``__init__`` for it themselves, so that pydantic's mypy plugin keeps their signature.
    """

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
        flag_overrides_poll_seconds: ``LEADCTX_FLAG_OVERRIDES_POLL_SECONDS``, poll interval.
        flag_overrides_fetch_timeout_seconds: ``LEADCTX_FLAG_OVERRIDES_FETCH_TIMEOUT_SECONDS``,
            the deadline for one whole https fetch (connect, headers and body), 10 s unless
            set. ``initialize`` waits at most this long for the first fetch.
        flag_overrides_token: ``LEADCTX_FLAG_OVERRIDES_TOKEN``, bearer token for https.
        flag_overrides_cache: ``LEADCTX_FLAG_OVERRIDES_CACHE``, file keeping the last good
            document, read at start when the source is down.
        flag_overrides_required: ``LEADCTX_FLAG_OVERRIDES_REQUIRED``: with no document, fresh
            or cached, the flag is off for everyone.

    Raises:
        ConfigurationError: A value cannot be parsed. The message names the environment
            variable and the value given; nothing is partially applied.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    shared_bundle_enabled: bool = False
    shared_bundle_clients: Annotated[tuple[str, ...], NoDecode] = ()
    shared_bundle_kill: bool = False
    flag_overrides: str | None = None
    flag_overrides_poll_seconds: float = Field(default=10.0, gt=0, le=3600)
    flag_overrides_fetch_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    flag_overrides_token: SecretStr | None = None
    flag_overrides_cache: Path | None = None
    flag_overrides_required: bool = False

    _BOOL_FIELDS: ClassVar[tuple[str, ...]] = (
        "shared_bundle_enabled",
        "shared_bundle_kill",
        "flag_overrides_required",
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as err:
            raise ConfigurationError(_describe(err)) from None

    @field_validator(*_BOOL_FIELDS, mode="before")
    @classmethod
    def _strict_bool(cls, value: object) -> bool:
        return parse_bool(value)

    @field_validator("shared_bundle_clients", mode="before")
    @classmethod
    def _client_list(cls, value: object) -> tuple[str, ...]:
        return parse_client_list(value)

    @field_validator(
        "flag_overrides", "flag_overrides_token", "flag_overrides_cache", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `LEADCTX_FLAG_OVERRIDES=` in a deployment manifest means "none", not a file named "".
        if isinstance(value, str) and not value.strip():
            return None
        return value


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return f"{ENV_PREFIX}{field.upper()}"


_MAX_ECHO = 80


def _describe(err: ValidationError) -> str:
    problems = []
    for error in err.errors(include_url=False):
        loc = error["loc"]
        field = str(loc[0]) if loc else "?"
        message = error["msg"].removeprefix("Value error, ")
        if "input" in error and field != "flag_overrides_token":
            given = repr(error["input"])
            if len(given) > _MAX_ECHO:
                given = given[:_MAX_ECHO] + "..."
            problems.append(f"{env_name(field)}={given}: {message}")
        else:
            problems.append(f"{env_name(field)}: {message}")
    return "invalid rollout configuration: " + "; ".join(problems)
