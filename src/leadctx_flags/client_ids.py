"""Validation of client ids, the targeting keys of every rollout rule.

A client id reaches us from environment variables, overrides documents and CLI arguments; it
ends up in logs, span attributes and flagd targeting rules. Rejecting control characters and
absurd lengths at the edge keeps all of those safe to print and to match.
"""

from __future__ import annotations

import unicodedata

__all__ = ["MAX_CLIENT_ID_LENGTH", "validate_client_id"]

MAX_CLIENT_ID_LENGTH = 128

# Cc: C0/C1 control characters (newlines, escapes); Cf: invisible format characters (zero-width
# joiners, bidi overrides) that make two ids look identical in a terminal while differing.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf"})


def validate_client_id(value: str, *, field: str = "client id") -> str:
    """Return ``value`` unchanged if it is a usable client id, else raise ``ValueError``.

    Args:
        value: The candidate id. It is not trimmed here: callers that parse lists trim first.
        field: What to call the value in the error message (an env var, a JSON path).

    Raises:
        ValueError: The id is empty, longer than 128 characters, or holds a control or
            invisible format character. The message names ``field`` and shows the offending
            character's code point, never an unbounded echo of the value.
    """
    if not value:
        raise ValueError(f"{field} must not be empty")
    if len(value) > MAX_CLIENT_ID_LENGTH:
        raise ValueError(
            f"{field} {value[:16]!r}... is {len(value)} characters long; "
            f"at most {MAX_CLIENT_ID_LENGTH} are allowed"
        )
    for index, char in enumerate(value):
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            raise ValueError(
                f"{field} {value[:MAX_CLIENT_ID_LENGTH]!r} holds control character "
                f"U+{ord(char):04X} at position {index}"
            )
    return value
