"""Offline encodings: same tokens as tiktoken's own, verified data, no network, clear errors."""

from __future__ import annotations

import gzip
import hashlib
import socket
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st

from leadctx_bundle import (
    TIKTOKEN_ENCODINGS,
    EncodingDataError,
    TokenCounter,
    build_bundle,
    build_encoding,
    encodings,
    load_encoding,
)
from leadctx_bundle.encodings import TiktokenEncodingName, encoding_spec
from leadctx_bundle.tokens import TiktokenTokenizer
from tests.bundle.bundle_helpers import profile, request_data

DATA = resources.files("leadctx_bundle").joinpath("data")

SAMPLES = [
    "",
    "Hello, world!",
    "<|endoftext|> is text here, and so is <|endofprompt|>.",
    "日本語のテキストと中文文本",
    "مرحبا بالعالم שלום עולם",  # RTL: Arabic, Hebrew
    "emoji 🙂👍🏽🇫🇷 and ZWJ 👩‍👩‍👧",
    "   leading spaces\n\n\ttabs\r\nCRLF  \n",
    "a" * 5000,
    "1234567890 " * 50,
]


@pytest.fixture(scope="module")
def tiktoken_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TIKTOKEN_CACHE_DIR holding the shipped files under tiktoken's own cache names."""
    cache = tmp_path_factory.mktemp("tiktoken-cache")
    for name in TIKTOKEN_ENCODINGS:
        spec = encoding_spec(name)
        # tiktoken's read_file_cached names a cached blob by the SHA-1 of its URL.
        key = hashlib.sha1(spec.url.encode(), usedforsecurity=False).hexdigest()
        (cache / key).write_bytes(gzip.decompress(DATA.joinpath(spec.file_name).read_bytes()))
    return cache


@pytest.fixture(scope="module")
def reference(tiktoken_cache: Path) -> dict[str, tiktoken.Encoding]:
    """tiktoken.get_encoding(...) for each encoding, fed from the temporary cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKEN_CACHE_DIR", str(tiktoken_cache))
        _forbid_network(patch)
        return {name: tiktoken.get_encoding(name) for name in TIKTOKEN_ENCODINGS}


def _forbid_network(patch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError("a socket was opened")

    patch.setattr(socket.socket, "connect", refuse)
    patch.setattr(socket.socket, "connect_ex", refuse)
    patch.setattr(socket, "create_connection", refuse)
    patch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.parametrize("name", TIKTOKEN_ENCODINGS)
@pytest.mark.parametrize("text", SAMPLES)
def test_tokens_equal_tiktokens_own(
    name: TiktokenEncodingName, text: str, reference: dict[str, tiktoken.Encoding]
) -> None:
    # Given the offline encoding and tiktoken's, both from the same files
    ours = load_encoding(name)
    # Then they produce the same tokens, special-token text included as text
    assert ours.encode_ordinary(text) == reference[name].encode_ordinary(text)
    assert ours.name == reference[name].name
    assert ours.n_vocab == reference[name].n_vocab


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=300))
def test_tokens_equal_tiktokens_own_for_any_text(
    text: str, reference: dict[str, tiktoken.Encoding]
) -> None:
    for name in TIKTOKEN_ENCODINGS:
        assert load_encoding(name).encode_ordinary(text) == reference[name].encode_ordinary(text)


def test_special_token_text_is_ordinary_text(o200k: tiktoken.Encoding) -> None:
    # Given a message holding the end-of-text marker
    tokens = TiktokenTokenizer(o200k).encode("stop <|endoftext|> here")
    # Then the marker is encoded as plain text, never as the special token
    assert o200k.eot_token not in tokens
    assert o200k.decode(list(tokens)) == "stop <|endoftext|> here"


def test_the_shipped_files_hash_to_what_tiktoken_declares() -> None:
    for name in TIKTOKEN_ENCODINGS:
        spec = encoding_spec(name)
        data = gzip.decompress(DATA.joinpath(spec.file_name).read_bytes())
        assert hashlib.sha256(data).hexdigest() == spec.expected_hash


def test_no_socket_is_opened_while_loading_or_building(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given every way of opening a connection fails the test
    _forbid_network(monkeypatch)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # and tiktoken's download cache is disabled
    # When both encodings are built from scratch and a bundle is built with each
    for name in TIKTOKEN_ENCODINGS:
        encoding = build_encoding(name)
        assert encoding.encode_ordinary("hello") != []
        bundle = build_bundle(request_data(), profile=profile(encoding=name))
        # Then it all worked without the network
        assert bundle.stats.encoding == name


def test_load_encoding_builds_once_for_concurrent_callers(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no encoding built yet, and a build slow enough for callers to race
    builds: list[str] = []
    real_build = encodings.build_encoding

    def slow_build(name: TiktokenEncodingName) -> tiktoken.Encoding:
        builds.append(name)
        time.sleep(0.05)
        return real_build(name)

    monkeypatch.setattr(encodings, "_encodings", {})
    monkeypatch.setattr(encodings, "build_encoding", slow_build)
    results: list[tiktoken.Encoding] = []
    threads = [
        threading.Thread(target=lambda: results.append(load_encoding("cl100k_base")))
        for _ in range(8)
    ]
    # When eight threads ask at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then it was built once and all got the same object
    assert builds == ["cl100k_base"]
    assert len(results) == 8
    assert all(encoding is results[0] for encoding in results)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A copy of the shipped data, for tests that damage it."""
    for name in TIKTOKEN_ENCODINGS:
        file_name = encoding_spec(name).file_name
        (tmp_path / file_name).write_bytes(DATA.joinpath(file_name).read_bytes())
    return tmp_path


def test_a_copy_of_the_data_builds(data_dir: Path, o200k: tiktoken.Encoding) -> None:
    encoding = build_encoding("o200k_base", data_dir=data_dir)
    assert encoding.encode_ordinary("bonjour") == o200k.encode_ordinary("bonjour")


def test_missing_file_is_an_error_naming_it(data_dir: Path) -> None:
    (data_dir / "o200k_base.tiktoken.gz").unlink()
    with pytest.raises(EncodingDataError, match=r"o200k_base\.tiktoken\.gz.*missing"):
        build_encoding("o200k_base", data_dir=data_dir)


def test_not_gzip_is_an_error_naming_the_file(data_dir: Path) -> None:
    (data_dir / "cl100k_base.tiktoken.gz").write_bytes(b"not gzip at all")
    with pytest.raises(EncodingDataError, match=r"cl100k_base\.tiktoken\.gz.*decompress"):
        build_encoding("cl100k_base", data_dir=data_dir)


def test_truncated_file_is_an_error_naming_it(data_dir: Path) -> None:
    path = data_dir / "cl100k_base.tiktoken.gz"
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(EncodingDataError, match=r"cl100k_base\.tiktoken\.gz"):
        build_encoding("cl100k_base", data_dir=data_dir)


def test_data_that_fails_the_hash_is_refused(data_dir: Path) -> None:
    # Given a well-formed rank file that is not the one tiktoken declares (one rank changed)
    path = data_dir / "cl100k_base.tiktoken.gz"
    lines = gzip.decompress(path.read_bytes()).splitlines()
    lines[0] = lines[0].split()[0] + b" 999999"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    # Then it is refused, naming the file and the expected hash
    spec = encoding_spec("cl100k_base")
    with pytest.raises(
        EncodingDataError, match=rf"cl100k_base\.tiktoken\.gz.*{spec.expected_hash}"
    ):
        build_encoding("cl100k_base", data_dir=data_dir)


def test_encoding_spec_comes_from_the_installed_tiktoken() -> None:
    spec = encoding_spec("o200k_base")
    assert spec.url.endswith("/o200k_base.tiktoken")
    assert spec.file_name == "o200k_base.tiktoken.gz"
    assert spec.constructor_kwargs["special_tokens"]["<|endoftext|>"] == 199999
    assert "mergeable_ranks" not in spec.constructor_kwargs


def test_token_counter_counts_like_the_encoding(o200k: tiktoken.Encoding) -> None:
    counter = TokenCounter(TiktokenTokenizer(o200k))
    for text in SAMPLES:
        assert counter.count(text) == len(o200k.encode_ordinary(text))
