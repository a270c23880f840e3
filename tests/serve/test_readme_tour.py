"""The README's ``leadctx serve`` block runs as written: the server, then one request.

``tests/test_readme.py`` runs each shell command to completion, which a server never reaches;
so this block is marked not run there and run here: the server as the README starts it (its
variables, on a free port instead of 8016), and the request's output compared with the README.
"""

from __future__ import annotations

import shlex
import subprocess

import pytest

from tests.serve.serve_process import ServeProcess
from tests.test_readme import blocks, clean_env, matches, shell_steps

pytestmark = pytest.mark.integration

README_PORT = "8016"


def test_the_readme_serve_block_answers_what_it_shows() -> None:
    # Given the README's block: the server's command line, then a request and its output
    (block,) = [b for b in blocks() if b.lang == "sh" and "leadctx serve" in b.body]
    (serve, no_output), (request, expected) = shell_steps(block.body)
    assert no_output == []
    words = shlex.split(serve, comments=True)
    env = dict(word.split("=", 1) for word in words if "=" in word)
    assert [word for word in words if "=" not in word] == ["leadctx", "serve"]
    # When the server runs with its variables and the request is sent as written
    with ServeProcess(env) as server:
        done = subprocess.run(  # noqa: S603 - bash running the README's own command
            ["/bin/bash", "-c", request.replace(f":{README_PORT}/", f":{server.port}/")],
            env=clean_env(), capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    # Then it prints what the README shows
    assert done.returncode == 0, done.stderr[-2000:]
    actual = done.stdout.splitlines()
    assert len(actual) == len(expected), done.stdout
    for want, got in zip(expected, actual, strict=True):
        assert matches(want, got), f"README shows: {want}\nit prints:   {got}"
