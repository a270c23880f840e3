"""What is written is what every provider reads: the one validated writer of documents.

``storage.write_document`` parses its own bytes with the providers' parser and size cap before
the atomic replace; a size error names the real size; a failed write names the document; and a
document on the wire must say which schema it is.
"""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from openfeature.evaluation_context import EvaluationContext

from leadctx_flags import SHARED_BUNDLE_FLAG, LeadCtxProvider, RolloutSettings, client_context
from leadctx_flags.document import (
    MAX_DOCUMENT_BYTES,
    DocumentError,
    DocumentTooLargeError,
    parse_document,
)
from leadctx_flags.overrides_sources import FileSource, SourceError
from leadctx_flags.storage import atomic_write, read_document, write_document
from tests.flags.large_documents import compact, near_cap
from tests.flags.overrides_helpers import document


def value(provider: LeadCtxProvider, client_id: str) -> bool:
    context = client_context(client_id)
    return provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, True, context).value


# --- the size cap ------------------------------------------------------------------------


def test_a_document_above_the_cap_is_not_written_and_the_error_names_its_size(
    tmp_path: Path,
) -> None:
    # Given a valid document on disk, and a new one above the cap even without indentation
    path = tmp_path / "o.json"
    write_document(path, document(3))
    before = path.read_bytes()
    too_large = near_cap(4, 0).model_copy(update={"updated_by": "x" * 200})
    size = len(compact(too_large))
    assert size > MAX_DOCUMENT_BYTES
    # When it is written, Then it is refused, naming the file and its real size
    with pytest.raises(DocumentTooLargeError) as caught:
        write_document(path, too_large)
    assert caught.value.size == size
    assert f"{path}: the new overrides document would be {size} bytes" in str(caught.value)
    assert "not written" in str(caught.value)
    # And the file is untouched: the providers keep reading the old document
    assert path.read_bytes() == before


def test_a_document_too_large_indented_is_written_compact_and_every_reader_accepts_it(
    tmp_path: Path,
) -> None:
    # Given a document under the cap in compact JSON but above it indented
    large = near_cap(4, 100)
    assert len(large.to_json().encode()) > MAX_DOCUMENT_BYTES
    path = tmp_path / "o.json"
    # When it is written, Then the file is within the cap and reads back as the same document
    write_document(path, large)
    assert path.stat().st_size <= MAX_DOCUMENT_BYTES
    assert read_document(path) == large
    assert FileSource(path).fetch() == large


def test_a_provider_cache_of_a_large_compact_document_is_readable_at_restart(
    tmp_path: Path,
) -> None:
    # Given a provider with a cache that applies a large compact document (as from https)
    cache = tmp_path / "cache.json"
    source = tmp_path / "o.json"
    large = near_cap(7, 100, on=False)
    atomic_write(source, compact(large))
    settings = RolloutSettings(flag_overrides_cache=cache, flag_overrides_poll_seconds=60)
    running = LeadCtxProvider(settings, source=FileSource(source))
    running.initialize(EvaluationContext())
    running.shutdown()
    # When the source is gone and a provider restarts from the cache alone
    source.unlink()
    restarted = LeadCtxProvider(settings, source=FileSource(source))
    restarted.initialize(EvaluationContext())
    try:
        # Then it starts from the cached document (its clients off), not from nothing
        assert restarted.state.revision == 7
        assert value(restarted, next(iter(large.flags[SHARED_BUNDLE_FLAG].clients))) is False
    finally:
        restarted.shutdown()


@pytest.mark.parametrize("reader", ["read_document", "FileSource"])
def test_a_too_large_file_is_refused_naming_its_real_size(tmp_path: Path, reader: str) -> None:
    # Given a 3 MiB file where a document should be
    path = tmp_path / "o.json"
    size = 3 * 1024 * 1024
    path.write_bytes(b"{" + b" " * (size - 2) + b"}")
    # When a reader reads it, Then the error names the 3 MiB, not the bytes it read
    read: Callable[[], object] = (
        functools.partial(read_document, path)
        if reader == "read_document"
        else FileSource(path).fetch
    )
    with pytest.raises((DocumentError, SourceError)) as caught:
        read()
    assert f"{path}: overrides document is {size} bytes; at most {MAX_DOCUMENT_BYTES}" in str(
        caught.value
    )


# --- a write the file system refuses -------------------------------------------------------


def test_a_full_disk_names_the_document_and_leaves_it_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a document, and a disk that fills up when the new bytes are flushed
    path = tmp_path / "o.json"
    write_document(path, document(3))
    before = path.read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    # When the document is rewritten, Then the error names the document, not a temporary file
    with pytest.raises(OSError, match="No space left on device") as caught:
        write_document(path, document(4))
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, str(path))
    # And the document and its folder are as they were
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.json"]


# --- the schema is required on the wire ----------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"{}", b'{"revision": 5}', b'{"revision": 5, "flags": {}}'],
    ids=["empty", "rev", "flags"],
)
def test_a_document_without_schema_is_refused_naming_the_field(raw: bytes) -> None:
    with pytest.raises(DocumentError) as caught:
        parse_document(raw, origin="o.json")
    assert str(caught.value) == (
        "o.json: invalid overrides document: schema: field required "
        "(must be 'leadctx.overrides/v1')"
    )


def test_a_document_without_schema_also_reports_its_other_problems() -> None:
    with pytest.raises(DocumentError) as caught:
        parse_document(b'{"revision": "x"}', origin="o.json")
    assert "schema: field required" in str(caught.value)
    assert "revision" in str(caught.value).split("schema: field required", 1)[1]


def test_a_placeholder_does_not_satisfy_overrides_required(tmp_path: Path) -> None:
    # Given overrides required, and `{}` where the document should be
    path = tmp_path / "o.json"
    path.write_bytes(b"{}")
    settings = RolloutSettings(
        flag_overrides=str(path),
        flag_overrides_required=True,
        shared_bundle_clients="acme",
    )
    provider = LeadCtxProvider(settings)
    provider.initialize(EvaluationContext())
    try:
        # Then no document is in force: the flag is off for everyone, as an error
        details = provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, True, client_context("acme"))
        assert provider.state.document is None
        assert (details.value, details.flag_metadata["source"]) == (False, "unavailable")
    finally:
        provider.shutdown()
