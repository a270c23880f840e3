"""``leadctx demo``: the whole story end to end, at a small size, in a temporary folder.

Three runs per module (each a few seconds): a plain one in a shell whose ``LEADCTX_*`` would
change everything were they read, one with ``--inject-regression`` in text mode, and one with
``--use-env`` showing that the same shell does change the outcome when asked to.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext

from leadctx.cli import main
from leadctx.demo.outcomes import NO_EFFECT, REGRESSION, DraftOutcome, Effect, Outcomes
from leadctx.demo.records import PROMPT_KEYS
from leadctx.demo.story import FILES, PERIOD, START
from leadctx.demo.world import FlakySource, World
from leadctx_bundle.gate import resolve_context
from leadctx_flags.context import client_context
from leadctx_flags.flags import SHARED_BUNDLE_FLAG
from leadctx_flags.provider import LeadCtxProvider
from leadctx_flags.settings import RolloutSettings
from leadctx_flags.storage import read_document
from leadctx_flags.vocabulary import Pipeline, ResolutionPath
from tests.environment import clear_leadctx_variables
from tests.gate.test_peers import OtlpReceiver

LEADS = 40
"""Leads per client and period in these runs: 1,280 resolve_context calls, ~2-4 s."""

POLL_S = 0.2
BOUND_S = 1.5
"""Slack over the poll interval for a document to take effect on a loaded 2-core machine."""

# Texts the synthetic world is made of; none may reach the output, the spans or the logs.
CONTENT = ("Asked about", "Could we meet", "billed per seat", "kickoff call", "Fact sheet")

HOSTILE_SHELL = {
    "LEADCTX_SHARED_BUNDLE_KILL": "true",
    "LEADCTX_SHARED_BUNDLE_CLIENTS": "globex",
    "LEADCTX_SHARED_BUNDLE_ENABLED": "true",
    # Were this read, every shared path would time out and fall back.
    "LEADCTX_BUNDLE_DEADLINE_SECONDS": "0.000001",
}


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    cwd: Path
    out: Path
    summary: dict[str, Any]
    logs: tuple[str, ...] = ()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _run(base: Path, *options: str, env: dict[str, str] | None = None) -> Run:
    out = base / "out"
    printed = io.StringIO()
    logged = _Records()
    logging.getLogger("leadctx_flags").addHandler(logged)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(base)
            clear_leadctx_variables(patch)
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            with contextlib.redirect_stdout(printed):
                code = main(["demo", "--out", str(out), "--leads", str(LEADS), *options])
    finally:
        logging.getLogger("leadctx_flags").removeHandler(logged)
    summary = json.loads((out / FILES["summary"]).read_text(encoding="utf-8"))
    return Run(code, printed.getvalue(), base, out, summary, tuple(logged.messages))


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(tmp_path_factory.mktemp("plain"), "--json", env=HOSTILE_SHELL)


@pytest.fixture(scope="module")
def injected(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(tmp_path_factory.mktemp("injected"), "--inject-regression")


def _records(run: Run) -> list[tuple[str, str, str, dict[str, Any]]]:
    with contextlib.closing(sqlite3.connect(run.out / FILES["database"])) as db:
        rows = db.execute(
            'SELECT "clientId", "createdAt", "promptKey", "metadata" FROM "AIInteraction"'
        ).fetchall()
    return [(client, at, key, json.loads(metadata)) for client, at, key, metadata in rows]


def _after(created: str) -> bool:
    return datetime.fromisoformat(created + "+00:00") >= START + PERIOD


def test_the_json_summary_is_what_summary_json_holds(plain: Run) -> None:
    assert plain.code == 0
    assert json.loads(plain.stdout) == plain.summary


def test_writes_only_into_its_output_folder(plain: Run) -> None:
    assert [path.name for path in plain.cwd.iterdir()] == ["out"]
    written = {path.name for path in plain.out.iterdir()}
    assert written - {"overrides.json.lock"} == set(FILES.values())
    for path in plain.summary["files"].values():
        assert Path(path).parent == plain.out
    png = (plain.out / FILES["plot"]).read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert "# Guardrails report" in (plain.out / FILES["report"]).read_text(encoding="utf-8")


def test_records_of_four_pipelines_shared_only_for_acme_after_the_switch(plain: Run) -> None:
    records = _records(plain)
    assert len(records) == 4 * 2 * LEADS * 4
    assert {key for _, _, key, _ in records} == set(PROMPT_KEYS.values())
    paths = {(client, _after(at), meta["leadctx"]["path"]) for client, at, _, meta in records}
    assert {path for _, _, path in paths} == {"shared", "legacy", "fallback"}
    assert {(client, after) for client, after, path in paths if path != "legacy"} == {
        ("acme", True)
    }
    # acme's calls after the switch all had the flag on; everyone else's never did.
    assert ("acme", True, "legacy") not in paths
    for _, _, key, meta in records:
        assert meta["leadctx"]["pipeline"] in {"draft", "overseer", "auto_send", "proposed_times"}
        assert ("proposedTimes" in meta) == (key == PROMPT_KEYS[Pipeline.PROPOSED_TIMES])
    with contextlib.closing(sqlite3.connect(plain.out / FILES["database"])) as db:
        drafts = db.execute('SELECT COUNT(*) FROM "AIDraft"').fetchone()[0]
        gates = db.execute(
            """SELECT COUNT(*) FROM "MeetingOverseerDecision" WHERE stage = 'gate'"""
        ).fetchone()[0]
    assert drafts == gates == 4 * 2 * LEADS


def test_a_failing_source_falls_back_and_the_pipelines_get_their_legacy_context(
    plain: Run,
) -> None:
    fallback = plain.summary["fallback"]
    assert fallback["calls"] == 5
    assert fallback["legacy_text"] == 5
    assert fallback["reasons"] == {"source_error": 5}
    assert fallback["by_pipeline"]["draft"] >= 1
    stored = [meta["leadctx"] for _, _, _, meta in _records(plain)]
    fell_back = [meta for meta in stored if meta["path"] == "fallback"]
    assert len(fell_back) == 5
    assert {meta["fallback_reason"] for meta in fell_back} == {"source_error"}
    assert {meta["stats"] for meta in fell_back} == {None}


def test_without_injection_the_guardrails_do_not_roll_back(plain: Run) -> None:
    assert plain.summary["decision"] in {"hold", "expand"}
    assert plain.summary["guardrails"]["applied"] is None
    metrics = {metric["name"] for metric in plain.summary["guardrails"]["metrics"]}
    assert "auto_send.needs_review_rate" in metrics


def test_the_kill_switch_takes_effect_within_the_poll_interval(plain: Run) -> None:
    allow, off = plain.summary["allowlist"], plain.summary["off"]
    assert allow["flag"]["value"] is True
    assert allow["flag"]["source"] == "override"
    assert off["route"] == "kill switch"
    assert off["flag"]["value"] is False
    assert off["flag"]["source"] == "kill"
    assert off["document"]["updated_by"] == "demo"
    assert off["next_draft_path"] == "legacy"
    for step in (allow, off):
        assert step["poll_interval_s"] == POLL_S
        assert 0 <= step["seconds"] <= POLL_S + BOUND_S


def test_the_shells_leadctx_variables_are_ignored_without_use_env(plain: Run) -> None:
    # The shell says kill, globex only, and a deadline no shared path can meet; yet acme was
    # on the shared path after the switch (the records test) and nothing timed out.
    assert plain.summary["ignored_variables"] == sorted(HOSTILE_SHELL)
    assert plain.summary["calls"]["after"]["acme"]["shared"] == LEADS * 4 - 5
    assert plain.summary["calls"]["after"]["globex"] == {"legacy": LEADS * 4}
    assert "timeout" not in plain.summary["fallback"]["reasons"]


def test_with_use_env_the_shells_kill_switch_applies(tmp_path: Path) -> None:
    run = _run(tmp_path, "--json", "--use-env", env={"LEADCTX_SHARED_BUNDLE_KILL": "true"})
    assert run.code == 0
    # No client reached the shared path: the guardrails say they have nothing to decide on
    assert run.summary["decision"] == "nothing_to_decide"
    (reason,) = run.summary["guardrails"]["reasons"]
    assert reason.startswith("nothing to decide: no canary in the window")
    assert run.summary["ignored_variables"] == []
    assert run.summary["allowlist"]["flag"] == {
        **run.summary["allowlist"]["flag"],
        "value": False,
        "source": "kill",
    }
    assert {
        client: calls.get("shared", 0) for client, calls in run.summary["calls"]["after"].items()
    } == {
        "acme": 0,
        "globex": 0,
        "initech": 0,
        "umbrella": 0,
    }


def test_an_injected_regression_is_rolled_back_and_the_flag_goes_off(injected: Run) -> None:
    assert injected.code == 0
    summary = injected.summary
    assert summary["decision"] == "rollback"
    applied = summary["guardrails"]["applied"]
    assert applied["changed"] is True
    assert applied["action"] in {"kill", "deny"}
    document = read_document(injected.out / FILES["overrides"])
    assert document.updated_by == "guardrails"
    flag = document.flag(SHARED_BUNDLE_FLAG)
    assert flag is not None
    assert flag.kill or flag.clients.get("acme") is False
    off = summary["off"]
    assert off["route"].startswith("guardrails rollback")
    assert off["flag"]["value"] is False
    assert 0 <= off["seconds"] <= POLL_S + BOUND_S
    assert off["next_draft_path"] == "legacy"


def test_a_provider_started_on_the_rolled_back_document_answers_off_for_acme(
    injected: Run,
) -> None:
    settings = RolloutSettings(
        shared_bundle_enabled=False,
        shared_bundle_clients=(),
        shared_bundle_kill=False,
        flag_overrides=str(injected.out / FILES["overrides"]),
        flag_overrides_cache=None,
    )
    provider = LeadCtxProvider(settings)
    provider.initialize(EvaluationContext())
    try:
        answer = provider.resolve_boolean_details(SHARED_BUNDLE_FLAG, True, client_context("acme"))
    finally:
        provider.shutdown()
    assert answer.value is False


def test_text_output_shows_each_step_names_the_files_and_prints_no_content(
    injected: Run,
) -> None:
    text = injected.stdout
    for heading in (
        "1. Before",
        "2. Allowlist",
        "3. After",
        "4. A failing source",
        "5. Guardrails",
    ):
        assert heading in text
    assert "decision: ROLLBACK" in text
    assert "proposed_times.wrong_bookings" in text
    # (a path longer than its column is folded onto the next line of the table: compared with
    # the table's borders and the line breaks taken out, so a long temporary folder passes too)
    cells = re.sub(r"[\s│]", "", text)
    for role in ("report", "plot", "spans", "database"):
        assert re.sub(r"\s", "", injected.summary["files"][role]) in cells
    spans = (injected.out / FILES["spans"]).read_text(encoding="utf-8")
    assert spans.count("leadctx.context.resolve") == 4 * 2 * LEADS * 4 + 1
    for emitted in (text, spans, (injected.out / FILES["report"]).read_text(encoding="utf-8")):
        for fragment in (*CONTENT, "lead-acme-"):
            assert fragment not in emitted


def test_the_rollback_is_told_the_same_way_in_the_log_and_the_output(injected: Run) -> None:
    # Given the injected regression rolled acme, the only canary client, back with the kill
    assert injected.summary["guardrails"]["applied"]["action"] == "kill"
    # Then the log record (shown before the progress bar) and the output line say the same
    (logged,) = [message for message in injected.logs if "guardrails rollback" in message]
    assert "kill: every client off" in logged
    assert "applied: kill: every client off" in injected.stdout
    assert "0 client(s)" not in logged + injected.stdout


def test_the_guardrails_table_prints_counts_as_integers(injected: Run) -> None:
    def cells(metric: str) -> list[str]:
        rows = [line for line in injected.stdout.splitlines() if line.startswith("\u2502")]
        (row,) = [line for line in rows if f" {metric} " in line]
        return [cell.strip() for cell in row.split("\u2502")[1:-1]]

    # Counts (wrong bookings and their change, the canary's volume) are integers
    _, baseline, canary, delta, _ = cells("proposed_times.wrong_bookings")
    wrong = injected.summary["guardrails"]["metrics"]
    (booked,) = [m for m in wrong if m["name"] == "proposed_times.wrong_bookings"]
    assert canary == f"{booked['canary']['n']}/{booked['canary']['value']}"
    assert baseline == f"{booked['baseline']['n']}/{booked['baseline']['value']}"
    assert delta == f"{booked['canary']['value'] - booked['baseline']['value']:+d}"
    _, _, volume, _, _ = cells("canary.volume")
    assert "." not in volume
    # Rates keep four decimals
    _, _, rate, _, _ = cells("bundle.fallback_rate")
    assert rate.split("/")[1].startswith("0.")
    assert len(rate.split("/")[1]) == 6


@pytest.fixture
def leadctx_script() -> str:
    script = shutil.which("leadctx", path=str(Path(sys.executable).parent))
    if script is None:  # pragma: no cover - the package is installed in the test environment
        pytest.fail("the leadctx console script is not installed next to this interpreter")
    return script


def test_the_console_script_explains_its_options(leadctx_script: str) -> None:
    done = subprocess.run(  # noqa: S603 - our own console script
        [leadctx_script, "demo", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    for option in ("--out", "--inject-regression", "--use-env", "--json", "--seed", "--leads"):
        assert option in done.stdout


def test_the_story_piped_into_a_reader_that_went_away_exits_141(
    leadctx_script: str, tmp_path: Path
) -> None:
    # Given stdout a pipe whose reader has already gone (`leadctx demo | head -1` once head
    # has its line): rich's own answer to that is SystemExit(1), a failed step's status
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(  # noqa: S603 - our own console script
            [leadctx_script, "demo", "--out", str(tmp_path / "out"), "--leads", "5"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    # Then it stops as every leadctx command does: 128 + SIGPIPE, nothing on stderr
    assert (done.returncode, done.stderr) == (141, b"")


def test_logs_carry_no_content(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    run = _run(tmp_path, "--json", "--inject-regression", "--leads", "5")
    assert run.code == 0
    assert "leadctx_bundle.gate" in {record.name for record in caplog.records}
    for fragment in (*CONTENT, "lead-acme-"):
        assert fragment not in caplog.text


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    yield server
    server.stop()


def test_with_an_otlp_endpoint_the_spans_go_there_not_to_a_file(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    run = _run(
        tmp_path,
        "--json",
        "--leads",
        "5",
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_SERVICE_NAME": "demo"},
    )
    assert run.code == 0
    assert run.summary["files"]["spans"] == f"OTLP {receiver.endpoint}"
    assert not (run.out / FILES["spans"]).exists()
    assert receiver.got_traces.wait(10)
    names = Counter(
        span.name
        for request in receiver.traces
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    )
    assert names["leadctx.context.resolve"] == 4 * 2 * 5 * 4 + 1
    # acme's flag-on calls after the switch, the five that fell back included.
    assert names["leadctx.bundle.build"] == 5 * 4


def test_with_use_env_a_setting_that_does_not_parse_is_named_not_echoed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LEADCTX_SHARED_BUNDLE_KILL", "maybe-later")
        code = main(["demo", "--out", str(tmp_path / "out"), "--use-env", "--json"])
    assert code == 2
    err = capsys.readouterr().err
    assert "LEADCTX_SHARED_BUNDLE_KILL" in err
    assert "maybe-later" not in err


def test_a_source_read_that_fails_gives_the_lead_its_legacy_text_then_the_bundle() -> None:
    world = World(seed=3, start=START)
    source = FlakySource(world)
    lead = world.lead("acme", "after", 0)
    source.register(lead)
    source.fail_next(1)
    api.set_provider_and_wait(
        LeadCtxProvider(RolloutSettings(shared_bundle_clients="acme")), domain="demo-test"
    )
    client = api.get_client(domain="demo-test")
    request = {"client_id": "acme", "lead_id": lead.lead_id, "pipeline": "draft"}
    failed = resolve_context(request, legacy=lead.legacy_text, source=source, client=client)
    shared = resolve_context(request, legacy=lead.legacy_text, source=source, client=client)
    assert (failed.path, failed.fallback_reason) == ("fallback", "source_error")
    assert failed.text == lead.legacy_text() != ""
    assert shared.path == "shared"
    assert shared.text != lead.legacy_text()
    assert (source.reads, source.failed) == (2, 1)


def test_outcomes_do_not_depend_on_the_path_unless_a_regression_is_injected() -> None:
    def drafts(effect: Effect, path: ResolutionPath) -> list[DraftOutcome]:
        outcomes = Outcomes(seed=5, effect=effect)
        return [outcomes.draft("acme", path) for _ in range(2000)]

    legacy = drafts(NO_EFFECT, ResolutionPath.LEGACY)
    assert drafts(NO_EFFECT, ResolutionPath.SHARED) == legacy
    regressed = drafts(REGRESSION, ResolutionPath.SHARED)
    assert drafts(REGRESSION, ResolutionPath.LEGACY) == legacy

    def review_rate(sample: list[DraftOutcome]) -> float:
        return sum(outcome.action == "needs_review" for outcome in sample) / len(sample)

    assert 0.15 < review_rate(legacy) < 0.32
    assert review_rate(regressed) > review_rate(legacy) + 0.3
    parses = Outcomes(seed=5, effect=REGRESSION)
    booked = [parses.proposed_times(ResolutionPath.SHARED) for _ in range(20)]
    attempted = [parse["bookingOutcome"] for parse in booked if parse["bookingAttempted"]]
    assert attempted[:2] == ["wrong", "wrong"]


def test_a_relative_output_folder_gives_no_warning_about_the_demos_own_paths(
    tmp_path: Path,
) -> None:
    # Given `leadctx demo --out d`, the way the README runs it, from the shell's directory
    logged = _Records()
    logging.getLogger("leadctx_flags").addHandler(logged)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(tmp_path)
            clear_leadctx_variables(patch)
            with contextlib.redirect_stdout(io.StringIO()):
                code = main(["demo", "--out", "d", "--leads", "5", "--json"])
    finally:
        logging.getLogger("leadctx_flags").removeHandler(logged)
    # Then the run succeeds and warns of nothing it chose itself: the provider it starts reads
    # the document by an absolute path (a relative one warns the operator who configured it)
    assert code == 0
    assert not [message for message in logged.messages if "relative" in message]
