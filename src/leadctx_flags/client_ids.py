"""Validation of client ids, the targeting keys of every rollout rule: one rule everywhere.

A client id reaches us from environment variables, overrides documents, CLI arguments and
bundle inputs; it ends up in logs, span attributes and flagd targeting rules. Every one of
those places validates with ``validate_client_id`` and nothing else, so an id accepted in one
place means the same client in all of them. The only normalisation is the env allowlist's
list syntax (``parse_client_list`` splits on commas and trims each entry); a single id is
never trimmed or split, it is refused: ``deny ' acme'`` silently rolling back nobody is worse
than an error.

Messages name the field and the rule, with a character's code point and position where that
helps, and never echo the id: a bundle input's ids are a client's data.
"""

from __future__ import annotations

import unicodedata
from typing import Final

__all__ = ["MAX_CLIENT_ID_LENGTH", "validate_client_id"]

MAX_CLIENT_ID_LENGTH: Final = 128

# Cc: C0/C1 control characters (newlines, escapes); Cf: invisible format characters (zero-width
# joiners, bidi overrides) that make two ids look identical in a terminal while differing.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf"})


def validate_client_id(value: str, *, field: str = "client id") -> str:
    """Return ``value`` unchanged if it is a usable client id, else raise ``ValueError``.

    Args:
        value: The candidate id, as given (not trimmed).
        field: What to call the value in the error message (an env var, a JSON path, an
            option).

    Raises:
        ValueError: The id is empty, longer than 128 characters, has whitespace at either
            end, holds a comma (the allowlist separator), or holds a control or invisible
            format character. The message names ``field`` and the rule, never the id.
    """
    if not value:
        raise ValueError(f"{field} must not be empty")
    if len(value) > MAX_CLIENT_ID_LENGTH:
        raise ValueError(
            f"{field} is {len(value)} characters long; at most {MAX_CLIENT_ID_LENGTH} are allowed"
        )
    if value != value.strip():
        raise ValueError(f"{field} must not start or end with whitespace")
    for index, char in enumerate(value):
        if char == ",":
            raise ValueError(
                f"{field} holds a comma at position {index}; a comma separates ids in "
                "LEADCTX_SHARED_BUNDLE_CLIENTS, so one id cannot contain it"
            )
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            raise ValueError(
                f"{field} holds control character U+{ord(char):04X} at position {index}"
            )
    return value
