"""Overrides sources and documents: parsing, change detection, URL rules, editing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from leadctx_flags import ConfigurationError, OverridesDocument
from leadctx_flags.document import DocumentError, parse_document
from leadctx_flags.editing import allow, apply_change, clear, deny, kill, unkill
from leadctx_flags.overrides_sources import FileSource, HttpSource, SourceError, open_source
from leadctx_flags.storage import atomic_write, read_document, write_document
from tests.flags.overrides_helpers import document, wire


def test_the_design_example_document_parses() -> None:
    raw = json.dumps(
        {
            "schema": "leadctx.overrides/v1",
            "revision": 12,
            "updated_at": "2026-11-25T16:00:00Z",
            "updated_by": "guardrails",
            "flags": {
                "shared_bundle.enabled": {
                    "kill": False,
                    "default": None,
                    "clients": {"acme": True, "globex": False},
                    "note": "stage 2: acme only",
                }
            },
        }
    ).encode()
    parsed = parse_document(raw, origin="example")
    assert parsed.revision == 12
    assert parsed.flags["shared_bundle.enabled"].clients == {"acme": True, "globex": False}
    assert OverridesDocument.model_validate_json(parsed.to_json()) == parsed


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"{not json", "invalid overrides document"),
        (b'{"schema": "leadctx.overrides/v2"}', "schema"),
        (b'{"revision": -1}', "revision"),
        (b'{"revision": 1, "surprise": true}', "surprise"),
        (b'{"flags": {"shared_bundle.enable": {}}}', "unknown flag key"),
        (
            b'{"flags": {"shared_bundle.enabled": {"kill": "yes"}}}',
            "flags.shared_bundle.enabled.kill",
        ),
        (b'{"flags": {"shared_bundle.enabled": {"clients": {"a\\u0000": true}}}}', "U+0000"),
        (b'{"flags": {"shared_bundle.enabled": {"clients": {"acme": 1}}}}', "acme"),
        (b'{"updated_at": "2026-11-25T16:00:00"}', "updated_at"),
        (b"[]", "(document)"),
    ],
)
def test_a_bad_document_is_rejected_naming_origin_and_field(payload: bytes, fragment: str) -> None:
    with pytest.raises(DocumentError) as caught:
        parse_document(payload, origin="/etc/leadctx/overrides.json")
    assert "/etc/leadctx/overrides.json" in str(caught.value)
    assert fragment in str(caught.value)


def test_a_document_over_one_mebibyte_is_rejected() -> None:
    with pytest.raises(DocumentError, match="1048576"):
        parse_document(b" " * (1024 * 1024 + 1), origin="big")


def test_error_messages_do_not_echo_notes_or_client_lists() -> None:
    raw = (
        b'{"revision": "x", "flags": {"shared_bundle.enabled": '
        b'{"note": "secret plan", "clients": {"acme": true}}}}'
    )
    with pytest.raises(DocumentError) as caught:
        parse_document(raw, origin="doc")
    assert "secret plan" not in str(caught.value)
    assert "acme" not in str(caught.value)


def test_file_source_reads_only_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    write_document(path, document(1, clients={"acme": True}))
    source = FileSource(path)
    first = source.fetch()
    assert first is not None
    assert first.revision == 1
    assert source.fetch() is None, "unchanged file: nothing new"
    # Same bytes rewritten (new inode, new mtime): content hash says nothing changed.
    atomic_write(path, path.read_bytes())
    assert source.fetch() is None
    write_document(path, document(2, kill=True))
    second = source.fetch()
    assert second is not None
    assert second.flags["shared_bundle.enabled"].kill is True


def test_file_source_sees_an_in_place_rewrite_with_the_same_size_and_mtime(tmp_path: Path) -> None:
    # Given two documents of exactly the same size ("true" + "ab" against "false" + "a")
    before_bytes = wire(1, default=True, note="ab")
    after_bytes = wire(1, default=False, note="a")
    assert len(before_bytes) == len(after_bytes)
    path = tmp_path / "overrides.json"
    path.write_bytes(before_bytes)
    source = FileSource(path)
    assert source.fetch() is not None
    before = path.stat()
    # When the file is rewritten in place and its mtime put back
    with path.open("r+b") as handle:
        handle.write(after_bytes)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    # Then the source still sees the new document
    changed = source.fetch()
    assert changed is not None
    assert changed.flags["shared_bundle.enabled"].default is False


@pytest.mark.skipif(shutil.which("cp") is None, reason="needs cp")
def test_file_source_sees_a_cp_p_of_a_same_size_document_with_the_same_mtime(
    tmp_path: Path,
) -> None:
    # Given a live document and a same-size replacement staged with the same mtime
    path = tmp_path / "overrides.json"
    path.write_bytes(wire(1, default=True, note="ab"))
    source = FileSource(path)
    assert source.fetch() is not None
    staged = tmp_path / "staged.json"
    staged.write_bytes(wire(1, default=False, note="a"))
    live = path.stat()
    os.utime(staged, ns=(live.st_atime_ns, live.st_mtime_ns))
    # When an operator copies it over with `cp -p` (in place, mtime preserved)
    subprocess.run(["cp", "-p", str(staged), str(path)], check=True, timeout=30)  # noqa: S603, S607
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (live.st_ino, live.st_mtime_ns)
    # Then the new document is noticed
    changed = source.fetch()
    assert changed is not None
    assert changed.flags["shared_bundle.enabled"].default is False


def test_file_source_failures_are_source_errors_with_a_kind(tmp_path: Path) -> None:
    missing = FileSource(tmp_path / "missing.json")
    with pytest.raises(SourceError) as caught:
        missing.fetch()
    assert caught.value.kind == "FileNotFoundError"
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(SourceError) as caught:
        FileSource(broken).fetch()
    assert caught.value.kind == "DocumentError"


def test_a_fifo_in_place_of_the_file_is_a_source_error_at_once(tmp_path: Path) -> None:
    # Given a FIFO where the document was (no writer: an open() would wait for one for ever)
    path = tmp_path / "overrides.json"
    os.mkfifo(path)
    outcome: list[BaseException | None] = []

    def fetch() -> None:
        try:
            FileSource(path).fetch()
        except BaseException as err:  # noqa: BLE001 - handed to the test's thread
            outcome.append(err)
        else:
            outcome.append(None)

    reader = threading.Thread(target=fetch, daemon=True)
    reader.start()
    reader.join(5)
    try:
        # Then the fetch fails at once, as a source error that says what is wrong
        assert not reader.is_alive(), "the fetch blocked on the FIFO"
        assert isinstance(outcome[0], SourceError)
        assert outcome[0].kind == "NotARegularFileError"
        assert "not a regular file" in str(outcome[0])
    finally:
        if reader.is_alive():  # unblock the hung open() so the thread ends
            with open(path, "wb"):  # noqa: PTH123 - a FIFO's writer end
                pass


@pytest.mark.parametrize(
    ("location", "kind"),
    [
        ("/etc/leadctx/overrides.json", FileSource),
        ("relative/overrides.json", FileSource),
        ("file:///etc/leadctx/overrides.json", FileSource),
        ("https://flags.example.com/leadctx.json", HttpSource),
        ("http://127.0.0.1:8080/o.json", HttpSource),
        ("http://localhost/o.json", HttpSource),
        ("http://[::1]:9/o.json", HttpSource),
    ],
)
def test_open_source_picks_the_source_by_location(location: str, kind: type) -> None:
    source = open_source(location)
    try:
        assert isinstance(source, kind)
    finally:
        source.close()


def test_a_file_url_path_is_decoded() -> None:
    source = open_source("file:///srv/leadctx/with%20space.json")
    assert source.description == "/srv/leadctx/with space.json"


@pytest.mark.parametrize(
    "location",
    [
        "http://flags.example.com/o.json",
        "http://10.0.0.5/o.json",
        "ftp://example.com/o.json",
        "file://remote-host/o.json",
        "https:///no-host",
    ],
)
def test_unsafe_or_unknown_locations_are_configuration_errors(location: str) -> None:
    with pytest.raises(ConfigurationError, match="LEADCTX_FLAG_OVERRIDES"):
        open_source(location)


def test_http_source_description_hides_credentials_and_query() -> None:
    source = HttpSource("https://user:pw@flags.example.com/o.json?sig=abc", token="t0ken")
    try:
        assert source.description == "https://flags.example.com/o.json"
    finally:
        source.close()


def test_apply_change_bumps_the_revision_and_leaves_the_input_alone() -> None:
    base = document(4, clients={"acme": True})
    now = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    denied = apply_change(base, deny("acme"), updated_by="ops", now=now, note="rollback")
    flag = denied.flags["shared_bundle.enabled"]
    assert (denied.revision, denied.updated_by, denied.updated_at) == (5, "ops", now)
    assert (flag.clients, flag.note) == ({"acme": False}, "rollback")
    assert base.flags["shared_bundle.enabled"].clients == {"acme": True}


def test_changes_compose() -> None:
    doc = OverridesDocument()
    for change in (kill(), allow("acme"), deny("globex"), unkill(), clear("acme")):
        doc = apply_change(doc, change, updated_by="t")
    flag = doc.flags["shared_bundle.enabled"]
    assert (doc.revision, flag.kill, flag.clients) == (5, False, {"globex": False})


def test_a_change_rejects_an_invalid_client_id() -> None:
    with pytest.raises(ValueError, match=r"U\+000A"):
        deny("bad\nid")


def test_read_document_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "o.json"
    path.write_text('{"revision": "x"}')
    with pytest.raises(DocumentError, match=str(path)):
        read_document(path)


def _release_fifo_reader(fifo: Path) -> None:
    """Let a reader blocked opening ``fifo`` go (a failed test must not leave it hanging)."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # nobody is waiting on it
        return
    os.close(fd)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes")
@pytest.mark.parametrize("role", ["source", "cache"])
def test_a_named_pipe_as_document_or_cache_is_refused_without_hanging_start_up(
    tmp_path: Path, role: str
) -> None:
    # Given LEADCTX_FLAG_OVERRIDES or LEADCTX_FLAG_OVERRIDES_CACHE naming a FIFO no one writes
    # (a process substitution `<(...)`, a path another process replaced)
    import threading  # noqa: PLC0415 - this test only

    from leadctx_flags import LeadCtxProvider, RolloutSettings, client_context  # noqa: PLC0415

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    path = tmp_path / "overrides.json"
    write_document(path, document(1, kill=True))
    settings = RolloutSettings(
        flag_overrides=str(fifo if role == "source" else path),
        flag_overrides_cache=str(fifo) if role == "cache" else None,
        flag_overrides_poll_seconds=3600,
        flag_overrides_watch=False,
    )
    provider = LeadCtxProvider(settings, write_cache=False)
    started = threading.Thread(target=provider.initialize, args=(client_context("t"),))
    try:
        started.start()
        started.join(5.0)
        # Then start-up returns instead of waiting for a writer for ever
        assert not started.is_alive(), "initialize() hung opening a named pipe"
        if role == "source":  # the pipe is refused as a source, naming the file
            assert provider.overrides_source_failing
            with pytest.raises(SourceError, match="not a regular file") as caught:
                FileSource(fifo).fetch()
            assert str(fifo) in str(caught.value)
        else:  # the cache is ignored and the document read
            assert provider.state.revision == 1
    finally:
        _release_fifo_reader(fifo)
        started.join(5.0)
        provider.shutdown()
