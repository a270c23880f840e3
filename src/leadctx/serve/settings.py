"""``ServeSettings``: the ``LEADCTX_SERVE_*`` environment of ``leadctx serve``.

The rollout itself is configured exactly as for an in-process provider (``RolloutSettings``,
``LEADCTX_SHARED_BUNDLE_*`` and ``LEADCTX_FLAG_OVERRIDES*``); these settings only concern the
transport. Importing this module registers the variables with the unknown-variable warning.
"""

from __future__ import annotations

import math
from typing import Any, Final

from pydantic import SecretStr, ValidationError, field_validator
from pydantic_settings import SettingsConfigDict

from leadctx_flags.errors import ConfigurationError, describe_validation_error
from leadctx_flags.settings import EnvSettings, check_verbatim, register_environment_variables

__all__ = [
    "BODY_DEADLINE_SECONDS",
    "HEAD_DEADLINE_SECONDS",
    "MIN_SERVE_SECONDS",
    "SERVE_ENV_PREFIX",
    "ServeSettings",
]

SERVE_ENV_PREFIX: Final = "LEADCTX_SERVE_"

_MAX_SECONDS: Final = 300

MIN_SERVE_SECONDS: Final = 0.05
"""The floor of every ``LEADCTX_SERVE_*_SECONDS``, the poll interval's (``MIN_POLL_SECONDS``):
a heartbeat interval of ``1e-9`` would write to every idle stream in a busy loop, and a head or
body deadline that short answers every request 408."""

HEAD_DEADLINE_SECONDS: Final = 10.0
"""A request line and headers must arrive whole within this long (else 408 and close), unless
``LEADCTX_SERVE_HEAD_DEADLINE_SECONDS`` says otherwise."""

BODY_DEADLINE_SECONDS: Final = 10.0
"""A request body must arrive whole within this long (a dripping client is answered 408),
unless ``LEADCTX_SERVE_BODY_DEADLINE_SECONDS`` says otherwise."""


class ServeSettings(EnvSettings):
    """Transport settings of ``leadctx serve``, from ``LEADCTX_SERVE_*``.

    Args:
        token: ``LEADCTX_SERVE_TOKEN``: when set, every OFREP route (and the change-event
            stream) needs ``Authorization: Bearer <token>`` or ``X-API-Key: <token>``; visible
            ASCII, at least 16 characters. ``/healthz`` and ``/readyz`` never need it.
        max_streams: ``LEADCTX_SERVE_MAX_STREAMS``: change-event streams open at once per
            process (1 to 100000, 10000 unless set); one more is answered 503.
        heartbeat_seconds: ``LEADCTX_SERVE_HEARTBEAT_SECONDS``: seconds between heartbeat
            comments on an idle stream, so proxies keep it open and a dead client is noticed
            (at least 0.05, at most 300; 15 unless set).
        head_deadline_seconds: ``LEADCTX_SERVE_HEAD_DEADLINE_SECONDS``: seconds a request line
            and its headers may take to arrive whole (of the connection's opening, or of the
            head's first bytes), else 408 and the connection closed (at least 0.05, at most 300;
            10 unless set).
        body_deadline_seconds: ``LEADCTX_SERVE_BODY_DEADLINE_SECONDS``: seconds a request
            body may take to arrive whole, else 408 and the connection closed (at least 0.05,
            at most 300; 10 unless set).

    Raises:
        ConfigurationError: A value cannot be used; the message names the variable and the
            rule, never the value.
    """

    model_config = SettingsConfigDict(
        env_prefix=SERVE_ENV_PREFIX,
        case_sensitive=False,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    token: SecretStr | None = None
    max_streams: int = 10_000
    heartbeat_seconds: float = 15.0
    head_deadline_seconds: float = HEAD_DEADLINE_SECONDS
    body_deadline_seconds: float = BODY_DEADLINE_SECONDS

    def __init__(self, **values: Any) -> None:
        # Two spellings of the token: which one the server checked would depend on the order
        # of its environment.
        type(self).check_spellings(values, what="serve configuration")
        try:
            super().__init__(**values)
        except ValidationError as err:
            problems = describe_validation_error(
                err, name=lambda loc: f"{SERVE_ENV_PREFIX}{str(loc[0]).upper()}" if loc else "?"
            )
            raise ConfigurationError(
                "invalid serve configuration: " + "; ".join(problems)
            ) from None

    @field_validator("token", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `LEADCTX_SERVE_TOKEN=` in a manifest means "no token", not a token that is empty.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("token", mode="after")
    @classmethod
    def _usable_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value()
        if not all("!" <= char <= "~" for char in secret):
            raise ValueError(
                "must be printable ASCII without spaces or control characters "
                "(it is compared with an HTTP header)"
            )
        if len(secret) < 16:
            raise ValueError("must be at least 16 characters long")
        # The rule of the clients' LEADCTX_FLAG_OVERRIDES_EVENTS_TOKEN, which carries it: a
        # quote at either end is a manifest's quoting, and no client would send it.
        check_verbatim(secret)
        return value

    @field_validator("max_streams", mode="after")
    @classmethod
    def _stream_bound(cls, value: int) -> int:
        if not 1 <= value <= 100_000:
            raise ValueError("must be a whole number from 1 to 100000")
        return value

    @field_validator(
        "heartbeat_seconds", "head_deadline_seconds", "body_deadline_seconds", mode="after"
    )
    @classmethod
    def _seconds(cls, value: float) -> float:
        if not math.isfinite(value) or not MIN_SERVE_SECONDS <= value <= _MAX_SECONDS:
            raise ValueError(
                f"must be a finite number of seconds, at least {MIN_SERVE_SECONDS:g} and at "
                f"most {_MAX_SECONDS}"
            )
        return value


register_environment_variables(
    SERVE_ENV_PREFIX,
    [f"{SERVE_ENV_PREFIX}{name.upper()}" for name in ServeSettings.model_fields],
)
