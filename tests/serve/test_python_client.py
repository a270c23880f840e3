"""The official Python OFREP client against a real ``leadctx serve``: parity, and a kill.

``openfeature-provider-ofrep`` through the standard OpenFeature client must answer exactly
what the in-process provider answers through the same client, for the whole matrix.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider

from leadctx_flags.flags import SHARED_BUNDLE_FLAG
from tests.serve.conftest import answer_of, in_process_answers, over_the_wire
from tests.serve.matrix import (
    CASES,
    SCENARIOS,
    Scenario,
    document,
    evaluation_context,
    written_at,
)
from tests.serve.serve_process import ROOT, ServeProcess

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.name)
def test_every_case_answers_as_in_process(
    scenario: Scenario, overrides_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the same configuration in process and in a server
    expected = in_process_answers(scenario, overrides_folder, monkeypatch)
    with ServeProcess(scenario.environment(overrides_folder)) as server:
        api.set_provider(OFREPProvider(server.url, timeout=5), domain="ofrep")
        client = api.get_client("ofrep")
        # When every case is asked through the official client
        answers = {
            name: answer_of(client.get_boolean_details(flag, False, evaluation_context(context)))
            for name, (flag, context) in CASES.items()
        }
    # Then each answer is the in-process one (an error's variant does not cross the wire)
    assert answers == {name: over_the_wire(answer) for name, answer in expected.items()}


def test_the_matrix_covers_what_it_claims(
    overrides_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The parity test proves nothing if the in-process answers were all alike.
    answers = in_process_answers(SCENARIOS[0], overrides_folder, monkeypatch)
    assert answers["allowed"] == (True, "on", "TARGETING_MATCH", None)
    assert answers["denied by the document"] == (False, "off", "TARGETING_MATCH", None)
    assert answers["missing targeting key"] == (False, "off", "DEFAULT", None)
    assert answers["non-string targeting key"][3] == "INVALID_CONTEXT"
    assert answers["unknown flag"][3] == "FLAG_NOT_FOUND"
    killed = in_process_answers(SCENARIOS[1], overrides_folder, monkeypatch)
    assert killed["allowed"] == (False, "off", "DISABLED", None)


def test_a_kill_reaches_the_python_client_within_the_poll_plus_one_second(
    overrides_folder: Path,
) -> None:
    # Given a server polling its document every 0.5 s, and acme on
    poll = 0.5
    path = overrides_folder / "overrides.json"
    path.write_text(json.dumps(document()), encoding="utf-8")
    env = {
        "LEADCTX_SHARED_BUNDLE_CLIENTS": "acme",
        "LEADCTX_FLAG_OVERRIDES": str(path),
        "LEADCTX_FLAG_OVERRIDES_POLL_SECONDS": str(poll),
    }
    with ServeProcess(env) as server:
        api.set_provider(OFREPProvider(server.url, timeout=5), domain="ofrep")
        client = api.get_client("ofrep")
        context = evaluation_context({"targetingKey": "acme", "kind": "client"})
        assert client.get_boolean_value(SHARED_BUNDLE_FLAG, False, context) is True
        # When an operator kills the flag with the CLI, while a pipeline keeps calling
        operator = subprocess.Popen(  # noqa: S603 - our own command
            [sys.executable, "-m", "leadctx", "flags", "kill", "--overrides", str(path)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30 + poll + 1.0  # the CLI's start-up, then the bound
            details = client.get_boolean_details(SHARED_BUNDLE_FLAG, False, context)
            while details.value and time.monotonic() < deadline:
                time.sleep(0.01)  # a pipeline's pace: one call every 10 ms
                details = client.get_boolean_details(SHARED_BUNDLE_FLAG, False, context)
            seen_at = time.time()
        finally:
            # Reaped by its pid whatever happened above; killed if it outlives its bound
            try:
                status = operator.wait(30)
            except subprocess.TimeoutExpired:
                operator.kill()
                status = operator.wait(5)
        assert status == 0
    # Then the first call answering off came within the poll interval + 1 s of the write
    assert (details.value, details.reason) == (False, "DISABLED")
    elapsed = seen_at - written_at(path)
    assert 0 <= elapsed <= poll + 1.0, f"kill seen {elapsed:.3f} s after it was written"
    print(  # noqa: T201 - the measured figure is reported with `pytest -s`
        f"python ofrep client: kill seen {elapsed:.3f} s after it was written (poll {poll} s)"
    )
