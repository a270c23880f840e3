"""The one rule for a client id, wherever it comes from: validated, then canonical (NFC).

A client id reaches us from environment variables, overrides documents, CLI arguments,
evaluation contexts, bundle inputs and the guardrails' records; it ends up in logs, span
attributes and flagd targeting rules. Every place that accepts an id validates it with
``validate_client_id``; every place that only compares ids (an evaluation's targeting key, a
record's ``clientId``) folds it with ``canonical_client_id``. Both return the id in Unicode
normalisation form C, so ``café`` typed as ``e`` + combining acute (NFD, as macOS and some
databases store it) and as the precomposed ``é`` are the same client everywhere: a
``deny`` of either spelling rolls back the client that the other spelling switched on.

Apart from NFC, the only normalisation is the env allowlist's list syntax
(``parse_client_list`` splits on commas and trims each entry); a single id is never trimmed,
split or unquoted, it is refused: ``deny ' acme'`` or ``deny "'acme'"`` silently rolling back
nobody is worse than an error.

Messages name the field and the rule, with a character's code point and position where that
helps, and never echo the id: a bundle input's ids are a client's data.
"""

from __future__ import annotations

import unicodedata
from typing import Final

__all__ = ["MAX_CLIENT_ID_LENGTH", "NOT_UTF8", "canonical_client_id", "validate_client_id"]

MAX_CLIENT_ID_LENGTH: Final = 128

# Cc: C0/C1 control characters (newlines, escapes); Cf: invisible format characters (zero-width
# joiners, bidi overrides) that make two ids look identical in a terminal while differing.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf"})

# Quotes at either end are a shell's or a manifest's quoting that reached us as text
# (LEADCTX_SHARED_BUNDLE_CLIENTS='"acme,globex"' gives `"acme` and `globex"`): such an id
# matches no client that pipelines send.
_QUOTES: Final = frozenset("'\"`\u2018\u2019\u201c\u201d")

NOT_UTF8: Final = (
    "holds bytes that are not UTF-8 (a lone surrogate, as Python decodes such bytes from the "
    "environment or the command line); no other reader would see the same text"
)
"""Why a lone surrogate (category ``Cs``) is refused, in an id or a location."""


def canonical_client_id(value: str) -> str:
    """``value`` in Unicode normalisation form C: the form every rule compares ids in.

    Nothing else is checked: this is for ids that are compared, not accepted (an evaluation
    context's targeting key, a ``clientId`` read from records). ASCII ids, the common case,
    are returned as they are without normalising.

    Args:
        value: A client id as given.
    """
    if value.isascii() or unicodedata.is_normalized("NFC", value):
        return value  # no copy: most ids are already canonical, and checking is quicker
    return unicodedata.normalize("NFC", value)


def validate_client_id(value: str, *, field: str = "client id") -> str:
    """Return the canonical (NFC) form of ``value`` if it is a usable client id.

    Args:
        value: The candidate id, as given (not trimmed).
        field: What to call the value in the error message (an env var, a JSON path, an
            option).

    Returns:
        ``canonical_client_id(value)``: ``value`` itself unless it is non-ASCII and not in
        NFC.

    Raises:
        ValueError: The id is empty, longer than 128 characters (in NFC), has whitespace or
            a quote character at either end, holds a comma (the allowlist separator), holds
            a control or invisible format character, or holds a lone surrogate (bytes that
            are not UTF-8 in the environment or on the command line). The message names
            ``field`` and the rule, never the id.
    """
    if not value:
        raise ValueError(f"{field} must not be empty")
    canonical = canonical_client_id(value)
    if len(canonical) > MAX_CLIENT_ID_LENGTH:
        raise ValueError(
            f"{field} is {len(canonical)} characters long; "
            f"at most {MAX_CLIENT_ID_LENGTH} are allowed"
        )
    if canonical != canonical.strip():
        raise ValueError(f"{field} must not start or end with whitespace")
    if canonical[0] in _QUOTES or canonical[-1] in _QUOTES:
        raise ValueError(
            f"{field} must not start or end with a quote character "
            "(quoting meant for a shell or a manifest reached leadctx as part of the id)"
        )
    if "," not in canonical and canonical.isprintable():
        # str.isprintable() is False for every character of categories Cc, Cf and Cs (and
        # for other separators and unassigned code points, which the rule allows): an id it
        # accepts holds nothing refused below, so the common id skips the per-character loop.
        return canonical
    for index, char in enumerate(canonical):
        if char == ",":
            raise ValueError(
                f"{field} holds a comma at position {index}; a comma separates ids in "
                "LEADCTX_SHARED_BUNDLE_CLIENTS, so one id cannot contain it"
            )
        category = unicodedata.category(char)
        if category == "Cs":
            raise ValueError(f"{field} {NOT_UTF8} (U+{ord(char):04X} at position {index})")
        if category in _FORBIDDEN_CATEGORIES:
            raise ValueError(
                f"{field} holds control character U+{ord(char):04X} at position {index}"
            )
    return canonical
