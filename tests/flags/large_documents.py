"""Overrides documents of an exact size near the providers' 1 MiB cap, for the write tests."""

from __future__ import annotations

from leadctx_flags import SHARED_BUNDLE_FLAG, OverridesDocument
from leadctx_flags.document import MAX_DOCUMENT_BYTES

_ID_LENGTH = 100


def compact(document: OverridesDocument) -> bytes:
    """``document`` as compact JSON with the wire names (the smallest form a writer uses)."""
    return document.model_dump_json(by_alias=True).encode()


def near_cap(revision: int, headroom: int, *, on: bool = True) -> OverridesDocument:
    """A document whose compact JSON is ``MAX_DOCUMENT_BYTES - headroom`` bytes, or up to 10 less.

    Its ``shared_bundle.enabled`` entry names thousands of clients, all ``on`` (or off).

    Args:
        revision: The document's revision.
        headroom: Bytes left below the cap; at least 0, at most a few hundred KiB.
        on: The value of every client entry.
    """
    target = MAX_DOCUMENT_BYTES - headroom

    def build(clients: dict[str, bool]) -> OverridesDocument:
        return OverridesDocument.model_validate(
            {
                "schema": "leadctx.overrides/v1",
                "revision": revision,
                "updated_by": "tests",
                "flags": {SHARED_BUNDLE_FLAG: {"clients": clients}},
            }
        )

    one = len(compact(build({"a" * _ID_LENGTH: on})))
    overhead = len(compact(build({"a" * _ID_LENGTH: on, "b": on}))) - one - 1  # `,"":true`
    per_entry = overhead + _ID_LENGTH
    count = (target - one) // per_entry + 1
    clients = {f"client-{n:07d}-".ljust(_ID_LENGTH, "x"): on for n in range(count)}
    gap = target - len(compact(build(clients)))
    if gap > overhead:  # one shorter entry closes the gap
        clients["z" * (gap - overhead)] = on
    document = build(clients)
    size = len(compact(document))
    assert target - overhead <= size <= target, (size, target)
    return document
