"""The official Node OFREP clients against a real ``leadctx serve``: parity, and a kill.

``@openfeature/server-sdk`` + ``@openfeature/ofrep-provider`` (evaluates per call) and
``@openfeature/web-sdk`` + ``@openfeature/ofrep-web-provider`` (bulk evaluation, ETag, and
change events over SSE: it does not poll here, so a kill can only reach it through the event).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.serve.conftest import in_process_answers, over_the_wire
from tests.serve.matrix import CASES, SCENARIOS, Answer, Scenario, document, written_at
from tests.serve.node import NodeWatcher, require_node, run_cases
from tests.serve.serve_process import ROOT, ServeProcess

pytestmark = pytest.mark.integration


def node_answer(line: dict[str, object]) -> Answer:
    variant, reason, code = line["variant"], line["reason"], line["errorCode"]
    assert variant is None or isinstance(variant, str)
    assert reason is None or isinstance(reason, str)
    assert code is None or isinstance(code, str)
    return line["value"], variant, reason, code


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.name)
@pytest.mark.parametrize("mode", ["server", "web"])
def test_every_case_answers_as_in_process(
    mode: str, scenario: Scenario, overrides_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the same configuration in process and in a server
    node = require_node()
    expected = in_process_answers(scenario, overrides_folder, monkeypatch)
    cases = [{"flag": flag, "context": context} for flag, context in CASES.values()]
    with ServeProcess(scenario.environment(overrides_folder)) as server:
        # When every case is asked through the official Node client
        lines = run_cases(node, mode, server.url, cases)
    # Then each answer is the in-process one (an error's variant does not cross the wire)
    answers = dict(zip(CASES, (node_answer(line) for line in lines), strict=True))
    assert answers == {name: over_the_wire(answer) for name, answer in expected.items()}


def test_a_kill_reaches_both_node_clients_within_the_poll_plus_one_second(
    overrides_folder: Path,
) -> None:
    # Given a server polling its document every 0.5 s, acme on, and both clients watching
    node = require_node()
    poll = 0.5
    path = overrides_folder / "overrides.json"
    path.write_text(json.dumps(document()), encoding="utf-8")
    env = {
        "LEADCTX_SHARED_BUNDLE_CLIENTS": "acme",
        "LEADCTX_FLAG_OVERRIDES": str(path),
        "LEADCTX_FLAG_OVERRIDES_POLL_SECONDS": str(poll),
    }
    context = {"targetingKey": "acme", "kind": "client"}
    with ServeProcess(env) as server:
        watchers = {
            mode: NodeWatcher(node, mode, server.url, context) for mode in ("watch", "server-watch")
        }
        try:
            for watcher in watchers.values():
                ready = watcher.next_event(timeout=30)
                assert (ready["event"], ready["value"]) == ("ready", True)
            # When an operator kills the flag with the CLI
            subprocess.run(  # noqa: S603 - our own command
                [sys.executable, "-m", "leadctx", "flags", "kill", "--overrides", str(path)],
                cwd=ROOT, check=True, capture_output=True, timeout=30,
            )  # fmt: skip
            killed_at = written_at(path)
            # Then each client answers off within the poll interval + 1 s of the write
            elapsed = {}
            for mode, watcher in watchers.items():
                remaining = poll + 1.0 - (time.time() - killed_at)
                changed = watcher.next_event(timeout=max(remaining, 0.01))
                elapsed[mode] = changed["received_at"] - killed_at
                assert (changed["event"], changed["value"], changed["reason"]) == (
                    "changed",
                    False,
                    "DISABLED",
                )
        finally:
            for watcher in watchers.values():
                watcher.stop()
    assert all(0 <= seconds <= poll + 1.0 for seconds in elapsed.values()), elapsed
    figures = ", ".join(f"{mode} {seconds:.3f} s" for mode, seconds in elapsed.items())
    print(  # noqa: T201 - the measured figures are reported with `pytest -s`
        f"node clients: kill seen after it was written: {figures} "
        f"(watch: the web provider, through SSE; server-watch: the server provider; poll {poll} s)"
    )
