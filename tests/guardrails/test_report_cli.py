"""``leadctx guardrails report``: renderings, exit codes and the real statistics when present."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from leadctx import cli as app_cli
from leadctx_flags.guardrails import cli as guardrails_cli
from leadctx_flags.guardrails.generate import GeneratorConfig, generate

from . import fake_stats

CONFIG = GeneratorConfig(seed=11, drafts=2000, clients=4, canary_clients=2)


def run(argv: list[str]) -> int:
    args = app_cli.build_parser().parse_args(["guardrails", "report", *argv])
    return guardrails_cli.run_report(args, fake_stats.evaluate)


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    generate(sqlite_url, CONFIG)
    return sqlite_url


def test_table_is_readable_at_100_columns(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--db", db_url]) == 0
    out = capsys.readouterr().out
    assert "decision: EXPAND" in out
    for column in ("metric", "baseline", "canary", "n/value", "delta", "interval", "verdict"):
        assert column in out
    assert "needs_review_rate" in out
    assert "wrong_bookings*" in out
    assert "data quality: " in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_json_shape(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--db", db_url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["decision"] == "expand"
    metric = data["metrics"][0]
    assert {"name", "verdict", "reason", "baseline", "canary"} <= set(metric)
    # The figures are the records' own: 2000 drafts, half by the 2 canary clients, half before
    assert 400 < metric["baseline"]["n"] < 600
    assert 400 < metric["canary"]["n"] < 600
    assert data["canary_clients"] == ["client-000", "client-001"]
    assert data["quality"]["missing_interaction"] == 0
    assert data["excluded"]["overseer_other_stage"] > 0
    assert data["applied"] is None


def test_markdown_and_plot_files(db_url: str, tmp_path: Path) -> None:
    markdown, png = tmp_path / "report.md", tmp_path / "report.png"
    assert run(["--db", db_url, "--markdown", str(markdown), "--plot", str(png)]) == 0
    text = markdown.read_text()
    assert text.startswith("# Guardrails report: expand\n")
    assert "| needs_review_rate | " in text
    assert "- malformed_metadata: 0" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_filters_reach_the_queries(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--db", db_url, "--json", "--clients", "client-000"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["canary_clients"] == ["client-000"]
    assert run(["--db", db_url, "--json", "--since", "2026-11-10", "--until", "2026-11-12"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["window"] == {
        "start": "2026-11-10T00:00:00.000Z",
        "end": "2026-11-12T00:00:00.000Z",
    }


def test_the_previous_check_is_read_back(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[object] = []

    def evaluate(signals: object, previous: object = None) -> fake_stats.FakeReport:
        seen.append(previous)
        return fake_stats.evaluate(signals, previous)  # type: ignore[arg-type]

    def check(*extra: str) -> int:
        args = app_cli.build_parser().parse_args(["guardrails", "report", "--db", db_url, *extra])
        return guardrails_cli.run_report(args, evaluate)

    decision = pytest.importorskip("leadctx_flags.guardrails.decision")
    assert check("--json") == 0
    state = tmp_path / "guardrails-state.json"
    assert json.loads(state.read_text())["decision"] == "expand"
    # The fake's state is not a real report: it is ignored, with a word on stderr
    assert check("--json") == 0
    assert seen == [None, None]
    # A real report's state is read back and passed on
    real = decision.GuardrailReport(decision=decision.RolloutDecision.HOLD, metrics=())
    state.write_text(real.dumps())
    assert check("--json") == 0
    assert seen[-1] == real
    # --no-state neither reads nor writes it
    state.unlink()
    assert check("--json", "--no-state") == 0
    assert seen[-1] is None
    assert not state.exists()


def test_without_state_the_previous_check_is_recomputed_from_the_records(
    db_url: str, tmp_path: Path
) -> None:
    seen: list[object] = []

    def evaluate(signals: object, previous: object = None) -> fake_stats.FakeReport:
        seen.append(signals)
        return fake_stats.evaluate(signals, previous)  # type: ignore[arg-type]

    def check(*extra: str) -> int:
        args = app_cli.build_parser().parse_args(["guardrails", "report", "--db", db_url, *extra])
        return guardrails_cli.run_report(args, evaluate)

    until = "2026-11-11T00:00:00+00:00"
    assert check("--no-state", "--until", until, "--check-interval", "6h") == 0
    signals = seen[-1]
    earlier = signals.earlier  # type: ignore[attr-defined]
    # Then the check reads what the previous check saw: the window one interval back
    assert signals.window_end == "2026-11-11T00:00:00.000Z"  # type: ignore[attr-defined]
    assert earlier.window_end == "2026-11-10T18:00:00.000Z"
    assert earlier.earlier is None
    assert sum(c.drafts_evaluated for c in earlier.by_client.values()) < sum(
        c.drafts_evaluated
        for c in signals.by_client.values()  # type: ignore[attr-defined]
    )


@pytest.mark.parametrize("interval", ["0h", "-1h", "1w", "h", "nanm"])
def test_a_bad_check_interval_is_refused_naming_the_option(
    interval: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        app_cli.build_parser().parse_args(
            ["guardrails", "report", "--db", "sqlite:///x", f"--check-interval={interval}"]
        )
    assert "--check-interval must be a positive duration" in capsys.readouterr().err


@pytest.mark.parametrize("timeout", ["0s", "-5m", "5", "infs", "nanm"])
def test_a_bad_query_timeout_is_refused_naming_the_option(
    timeout: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        app_cli.build_parser().parse_args(
            ["guardrails", "report", "--db", "sqlite:///x", f"--query-timeout={timeout}"]
        )
    assert "--query-timeout must be a positive duration such as 30s, 5m or 1h" in (
        capsys.readouterr().err
    )


def test_the_query_timeout_defaults_to_five_minutes() -> None:
    args = app_cli.build_parser().parse_args(["guardrails", "report", "--db", "sqlite:///x"])
    assert args.query_timeout == guardrails_cli.DEFAULT_QUERY_TIMEOUT == timedelta(minutes=5)


@pytest.fixture
def fake_statistics(monkeypatch: pytest.MonkeyPatch) -> None:
    """``leadctx guardrails report`` decides with the stand-in statistics."""
    monkeypatch.setattr(guardrails_cli, "_default_evaluator", lambda: fake_stats.evaluate)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--db", "mysql://x/y"], "unsupported database URL scheme 'mysql'"),
        (["--db", "sqlite:///does/not/exist.db"], "SQLite database file not found"),
        (["--db", "sqlite:///{empty}"], "table 'AIInteraction' not found"),
    ],
)
def test_bad_input_exits_2_naming_it(
    argv: list[str],
    message: str,
    tmp_path: Path,
    fake_statistics: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    argv = [part.replace("{empty}", str(empty)) for part in argv]
    assert app_cli.main(["guardrails", "report", *argv]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


@pytest.mark.parametrize(
    ("option", "value"), [("--since", "yesterday"), ("--until", "2026-13-01"), ("--clients", ",")]
)
def test_bad_options_exit_2(option: str, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        app_cli.main(["guardrails", "report", "--db", "sqlite:///x.db", option, value])
    assert exited.value.code == 2
    assert option in capsys.readouterr().err


def test_a_missing_extra_is_a_message_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing() -> None:
        raise ImportError("No module named 'scipy'", name="scipy")

    monkeypatch.setattr(guardrails_cli, "_default_evaluator", missing)
    assert app_cli.main(["guardrails", "report", "--db", db_url]) == 2
    err = capsys.readouterr().err
    assert "guardrails need scipy" in err
    assert "pip install 'leadctx[guardrails]'" in err


HAS_STATS = importlib.util.find_spec("leadctx_flags.guardrails.decision") is not None


@pytest.mark.skipif(not HAS_STATS, reason="the statistics half (decision.evaluate) is not here")
def test_the_real_statistics_roll_back_a_wrong_booking(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate(sqlite_url, GeneratorConfig(seed=5, drafts=3000, canary_clients=2, wrong_bookings=1))
    overrides = tmp_path / "overrides.json"
    argv = ["guardrails", "report", "--db", sqlite_url, "--json", "--apply"]
    assert app_cli.main([*argv, "--overrides", str(overrides)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["decision"] == "rollback"
    assert {"name", "verdict", "reason", "baseline", "canary"} <= set(data["metrics"][0])
    assert data["applied"]["changed"] is True
    document = json.loads(overrides.read_text())
    assert document["updated_by"] == "guardrails"


def test_the_command_module_is_light() -> None:
    # `leadctx --help` imports the command; the statistics, psycopg and matplotlib load on use
    code = (
        "import json, sys\nimport leadctx.cli\nimport leadctx_flags.guardrails.cli\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter, a fixed program
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(result.stdout))
    heavy = ("scipy", "statsmodels", "numpy", "matplotlib", "psycopg")
    assert sorted(name for name in loaded if name.split(".")[0] in heavy) == []
    assert "leadctx_flags.guardrails.queries" in loaded


def test_a_missing_command_module_is_a_message_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the guardrails command cannot be imported at all
    import leadctx_flags.guardrails  # noqa: PLC0415

    monkeypatch.delattr(leadctx_flags.guardrails, "cli")
    monkeypatch.setitem(sys.modules, "leadctx_flags.guardrails.cli", None)
    # When it is asked for, Then the application says what is missing, exit 2
    assert app_cli.main(["guardrails", "report", "--db", "sqlite:///x.db"]) == 2
    err = capsys.readouterr().err
    assert "guardrails need leadctx_flags.guardrails.cli" in err
    assert "pip install 'leadctx[guardrails]'" in err


def _empty_tables(url: str) -> None:
    from leadctx_flags.guardrails.db import connect, create_schema  # noqa: PLC0415

    with connect(url, create=True) as database:
        create_schema(database)


def _generated(url: str) -> None:
    generate(url, CONFIG)


def _legacy_only(url: str) -> None:
    from leadctx_flags.guardrails.db import connect  # noqa: PLC0415

    from .records import Records, leadctx  # noqa: PLC0415

    records = Records()
    for hour in range(3):
        interaction = records.interaction("acme", hour, leadctx("legacy"))
        records.draft("acme", hour, interaction)
    with connect(url, create=True) as database:
        records.write(database)


@pytest.mark.parametrize(
    ("records", "extra", "message"),
    [
        (_empty_tables, [], "nothing to decide: the record tables hold no records"),
        (
            _generated,
            ["--clients", "nobody,client-9999"],
            "nothing to decide: no record of the 2 --clients id(s) in the window",
        ),
        (
            _generated,
            ["--since", "2020-01-01", "--until", "2020-02-01"],
            (
                "nothing to decide: no records in the window "
                "2020-01-01T00:00:00.000Z .. 2020-02-01T00:00:00.000Z"
            ),
        ),
        (
            _legacy_only,
            [],
            "nothing to decide: no canary in the window (6 records read, none on the shared path)",
        ),
        (
            _generated,
            ["--clients", "client-002,client-003"],  # two control clients: no canary among them
            "nothing to decide: no canary in the window",
        ),
    ],
    ids=["empty-tables", "clients-match-none", "empty-window", "no-canary", "no-canary-clients"],
)
@pytest.mark.parametrize("output", [[], ["--json"]], ids=["table", "json"])
def test_nothing_to_decide_says_so_in_one_line_and_exits_3(
    records: Callable[[str], None],
    extra: list[str],
    message: str,
    output: list[str],
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a selection with nothing to decide on, and a scheduled --apply
    records(sqlite_url)
    overrides = tmp_path / "overrides.json"
    monkeypatch.setattr(guardrails_cli, "_default_evaluator", lambda: fake_stats.evaluate)
    argv = ["guardrails", "report", "--db", sqlite_url, *extra, *output]
    # When the report runs
    status = app_cli.main([*argv, "--apply", "--overrides", str(overrides)])
    # Then one line says so, the status is the one to alert on, and nothing is decided
    captured = capsys.readouterr()
    assert status == guardrails_cli.EXIT_NOTHING_TO_DECIDE == 3
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith(f"leadctx: {message}")
    assert not overrides.exists()
    assert not (tmp_path / "guardrails-state.json").exists()


@pytest.mark.parametrize(
    ("since", "until"),
    [("2026-11-12", "2026-11-10"), ("2026-11-10T00:00:00Z", "2026-11-10T00:00:00+00:00")],
    ids=["after", "equal"],
)
def test_an_empty_window_exits_2_naming_both_options(
    since: str, until: str, db_url: str, fake_statistics: None, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["guardrails", "report", "--db", db_url, "--since", since, "--until", until]
    assert app_cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert "--since" in line
    assert "--until" in line
    assert "must be before" in line


@pytest.mark.parametrize("output", ["--markdown", "--plot"])
def test_a_report_file_that_cannot_be_written_hides_neither_the_decision_nor_the_rollback(
    sqlite_url: str,
    tmp_path: Path,
    fake_statistics: None,
    capsys: pytest.CaptureFixture[str],
    output: str,
) -> None:
    # Given a rollback to apply, and a report file in a folder that does not exist
    generate(
        sqlite_url,
        GeneratorConfig(seed=2, drafts=800, clients=4, canary_clients=2, wrong_bookings=1),
    )
    overrides = tmp_path / "overrides.json"
    missing = tmp_path / "no-such-folder" / "report.out"
    argv = ["guardrails", "report", "--db", sqlite_url, "--apply", "--overrides", str(overrides)]
    # When the scheduled check runs
    status = app_cli.main([*argv, "--json", output, str(missing)])
    captured = capsys.readouterr()
    # Then the rollback is in force, the report (with what was applied) is printed, and one
    # line says what was not written and that the rollback is in force; exit 2 to alert
    assert status == 2
    flag = json.loads(overrides.read_text())["flags"]["shared_bundle.enabled"]
    assert list(flag["clients"].values()) == [False]
    data = json.loads(captured.out)
    assert data["decision"] == "rollback"
    assert data["applied"]["changed"] is True
    (line,) = [line for line in captured.err.splitlines() if line.startswith("leadctx: ")]
    assert line.endswith("; the rollback was written and is in force")
    assert "cannot write" in line or "--plot needs" in line


def test_apply_defaults_overrides_to_the_environment(
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_statistics: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given LEADCTX_FLAG_OVERRIDES names the document, as for `leadctx flags deny`
    generate(
        sqlite_url,
        GeneratorConfig(seed=2, drafts=800, clients=4, canary_clients=2, wrong_bookings=1),
    )
    overrides = tmp_path / "from-env.json"
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", str(overrides))
    # When --apply runs without --overrides
    assert app_cli.main(["guardrails", "report", "--db", sqlite_url, "--json", "--apply"]) == 0
    # Then the rollback is written where the environment says
    data = json.loads(capsys.readouterr().out)
    assert data["applied"]["changed"] is True
    flag = json.loads(overrides.read_text())["flags"]["shared_bundle.enabled"]
    assert list(flag["clients"].values()) == [False]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            None,
            (
                "--apply: name the overrides document with --overrides PATH "
                "(LEADCTX_FLAG_OVERRIDES is not set to a local file)"
            ),
        ),
        (
            "https://flags.example/overrides.json",
            "LEADCTX_FLAG_OVERRIDES is not set to a local file",
        ),
        (" /tmp/quoted.json", "LEADCTX_FLAG_OVERRIDES"),
    ],
    ids=["unset", "https", "spaces"],
)
def test_apply_without_a_document_exits_2_naming_option_and_variable(
    value: str | None,
    message: str,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    fake_statistics: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if value is not None:
        monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", value)
    assert app_cli.main(["guardrails", "report", "--db", db_url, "--apply"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("leadctx: --apply: ")
    assert message in captured.err


def test_a_file_that_is_not_a_database_exits_2(
    tmp_path: Path, fake_statistics: None, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all " * 200)
    assert app_cli.main(["guardrails", "report", "--db", f"sqlite:///{garbage}"]) == 2
    captured = capsys.readouterr()
    assert "the database failed a query: DatabaseError" in captured.err
    assert captured.out == ""


def test_counts_print_as_integers_and_rates_with_decimals(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given six wrong bookings by the canary (a count metric) and the real statistics
    from .records import canary_with_wrong_bookings  # noqa: PLC0415

    canary_with_wrong_bookings(sqlite_url, {"acme": 6, "globex": 0})
    # When the table is printed
    assert app_cli.main(["guardrails", "report", "--db", sqlite_url, "--no-state"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # Then the count, its baseline and its change are integers: 0/0 -> 6/6, delta +6
    (wrong,) = [line for line in lines if line.startswith("proposed_times.wrong_bookings")]
    assert wrong.split()[1:4] == ["0/0", "6/6", "+6"]
    (volume,) = [line for line in lines if line.startswith("canary.volume")]
    assert volume.split()[1:3] == ["-", "8/8"]  # acme 1 + 6 calls, globex 1
    # And a rate keeps its decimals
    (fallback,) = [line for line in lines if line.startswith("bundle.fallback_rate")]
    assert fallback.split()[2] == "8/0.0000"


@pytest.mark.skipif(not HAS_STATS, reason="the statistics half (decision.evaluate) is not here")
def test_a_window_starting_after_the_switch_says_so_and_names_a_since(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate(sqlite_url, CONFIG)
    switch = CONFIG.switch_time
    since = (switch + (CONFIG.span / 10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    argv = ["guardrails", "report", "--db", sqlite_url, "--no-state", "--since", since]
    markdown = tmp_path / "report.md"
    assert app_cli.main([*argv, "--json", "--markdown", str(markdown)]) == 0
    data = json.loads(capsys.readouterr().out)
    # Then the check holds, and its note says why and which --since gives a baseline
    assert data["decision"] == "hold"
    (note,) = data["notes"]
    assert "no record of the canary clients from before their switch" in note
    assert "use --since 20" in note
    assert "## Notes" in markdown.read_text()
    assert app_cli.main(argv) == 0
    assert "note: no record of the canary clients" in capsys.readouterr().out
    # A window that holds the switch has no such note.
    assert app_cli.main(["guardrails", "report", "--db", sqlite_url, "--no-state", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["notes"] == []


@pytest.mark.skipif(not HAS_STATS, reason="the statistics half (decision.evaluate) is not here")
def test_every_rendering_shows_the_minimum_detectable_effect(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    markdown = tmp_path / "report.md"
    argv = ["guardrails", "report", "--db", db_url, "--no-state"]
    assert app_cli.main([*argv, "--json", "--markdown", str(markdown)]) == 0
    data = json.loads(capsys.readouterr().out)
    needs_review = data["minimum_detectable_effects"]["auto_send.needs_review_rate"]
    assert 0 < needs_review["mde"] < 1
    assert needs_review["mde_power"] == 0.8
    assert needs_review["detection_target"] == 0.05
    assert needs_review["more_samples_per_side"] >= 0
    metric = next(m for m in data["metrics"] if m["name"] == "auto_send.needs_review_rate")
    assert metric["extra"]["mde"] == needs_review["mde"]
    assert "| mde (80%) |" in markdown.read_text()
    assert app_cli.main(argv) == 0
    table = capsys.readouterr().out
    assert "mde: the smallest change this check detects at 80% power" in table
    assert f"{needs_review['mde']:.3f}" in table
    assert "more drafts per side)" in table
    assert max(len(line) for line in table.splitlines()) <= 100


def test_clients_select_the_records_of_either_unicode_spelling(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given records whose application wrote the client id decomposed (NFD)
    from .records import canary_with_wrong_bookings  # noqa: PLC0415

    canary_with_wrong_bookings(sqlite_url, {"cafe\u0301": 2, "globex": 0})
    # When the operator selects the client by its composed (canonical) spelling
    argv = ["guardrails", "report", "--db", sqlite_url, "--no-state", "--json"]
    status = app_cli.main([*argv, "--clients", "caf\u00e9"])
    # Then its records are read: two wrong bookings, not "nothing to decide", and the client
    # is named canonically, as the rollback names it
    assert status == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    (wrong,) = [m for m in report["metrics"] if m["name"] == "proposed_times.wrong_bookings"]
    assert (wrong["canary"]["value"], wrong["clients"]) == (2, ["caf\u00e9"])


@pytest.mark.skipif(not HAS_STATS, reason="the statistics half (decision.evaluate) is not here")
def test_a_confidence_drift_rolls_back_through_the_sql_without_any_state(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given records whose canary confidence drifted up after the switch
    generate(
        sqlite_url,
        GeneratorConfig(seed=3, drafts=6000, clients=2, canary_clients=2, confidence_shift=0.1),
    )
    argv = ["guardrails", "report", "--db", sqlite_url, "--json", "--no-state"]
    # When a single check runs with no state file at all
    assert app_cli.main([*argv, "--check-interval", "1d"]) == 0
    data = json.loads(capsys.readouterr().out)
    confidence = next(m for m in data["metrics"] if m["name"] == "auto_send.confidence")
    # Then the previous check's confirmation is read back from the records: it rolls back
    assert confidence["extra"]["regress_streak"] == 2
    assert confidence["verdict"] == "regress"
    assert data["decision"] == "rollback"


def test_a_state_path_that_is_not_a_regular_file_is_ignored_not_waited_on(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a FIFO no one writes to as --state (reading it would block until a writer came)
    fifo = tmp_path / "state"
    os.mkfifo(fifo)
    codes: list[int] = []
    check = threading.Thread(
        target=lambda: codes.append(run(["--db", db_url, "--state", str(fifo)])), daemon=True
    )
    # When the report runs
    check.start()
    check.join(timeout=30)
    if check.is_alive():  # release the blocked read, so that the test fails instead of hanging
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        check.join(timeout=60)
        pytest.fail("the report waited on the FIFO named as --state")
    # Then it says it ignores it, and reports
    assert codes == [0]
    err = capsys.readouterr().err
    assert f"leadctx: ignoring the state file {fifo}: not a regular file" in err


def _refused_stat(errno_code: int, name: str) -> Callable[..., os.stat_result]:
    real = os.stat

    def stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        if str(path).endswith(name):
            raise OSError(errno_code, os.strerror(errno_code), str(path))
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    return stat


def _refused_open(errno_code: int, name: str) -> Callable[..., int]:
    real = os.open

    def open_(path: object, *args: object, **kwargs: object) -> int:
        if str(path).endswith(name):
            raise OSError(errno_code, os.strerror(errno_code), str(path))
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    return open_


@pytest.mark.parametrize("why", ["name too long", "folder not searchable"])
def test_a_state_file_that_cannot_be_looked_up_is_ignored_not_a_traceback(
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    why: str,
) -> None:
    # Given a --state whose lookup fails with something other than "missing": a pasted name
    # too long for the file system, or a folder this account may not search (EACCES: root
    # runs as root here, so the refusal is simulated)
    if why == "name too long":
        state = tmp_path / ("s" * 300)
    else:
        state = tmp_path / "locked" / "state.json"
        monkeypatch.setattr(os, "stat", _refused_stat(13, "state.json"))
        monkeypatch.setattr(os, "open", _refused_open(13, "state.json"))
    # When the check runs, Then it reports, saying it ignores the state (it was a traceback)
    assert run(["--db", db_url, "--state", str(state)]) == 0
    captured = capsys.readouterr()
    assert "decision: EXPAND" in captured.out
    assert f"leadctx: ignoring the state file {state}" in captured.err


@pytest.mark.parametrize("why", ["name too long", "folder not searchable"])
def test_a_database_file_that_cannot_be_looked_up_is_exit_2_naming_it(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    why: str,
) -> None:
    # Given a --db file whose lookup fails with something other than "missing"
    if why == "name too long":
        file = tmp_path / ("d" * 300)
    else:
        file = tmp_path / "locked" / "records.db"
        monkeypatch.setattr(os, "stat", _refused_stat(13, "records.db"))
    # When the check runs, Then it cannot run: exit 2, naming --db and the file, one line
    assert run(["--db", f"sqlite:///{file}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"leadctx: --db: cannot open the SQLite database {file}: ")
    assert err.count("\n") == 1


def test_apply_to_another_file_than_the_environment_names_says_so(
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_statistics: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a rollback to decide, and LEADCTX_FLAG_OVERRIDES naming the services' document
    generate(
        sqlite_url,
        GeneratorConfig(seed=2, drafts=800, clients=4, canary_clients=2, wrong_bookings=1),
    )
    followed = tmp_path / "followed.json"
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", str(followed))
    other = tmp_path / "other.json"
    # When --apply writes --overrides naming another file
    argv = ["guardrails", "report", "--db", sqlite_url, "--apply", "--overrides", str(other)]
    assert app_cli.main(argv) == 0
    # Then the rollback is written there, and stderr says no process here reads it
    assert other.exists()
    assert not followed.exists()
    assert f"--overrides {other} is not the document LEADCTX_FLAG_OVERRIDES names here" in (
        capsys.readouterr().err
    )


def test_apply_to_a_relative_location_names_the_file_it_wrote(
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_statistics: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a rollback to decide, and LEADCTX_FLAG_OVERRIDES a relative path (a scheduled
    # check runs in its own working directory, the services in theirs)
    generate(
        sqlite_url,
        GeneratorConfig(seed=2, drafts=800, clients=4, canary_clients=2, wrong_bookings=1),
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEADCTX_FLAG_OVERRIDES", "overrides.json")
    # When --apply writes the rollback there
    assert app_cli.main(["guardrails", "report", "--db", sqlite_url, "--apply"]) == 0
    # Then stderr names the file it went to and why another process may not read it
    assert (tmp_path / "overrides.json").exists()
    err = capsys.readouterr().err
    assert f"this edit wrote {tmp_path / 'overrides.json'}" in err
    assert "a process started in another directory reads another file" in err


def test_one_client_written_in_both_unicode_spellings_is_one_client(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given one client whose records an application wrote composed and another decomposed
    from .records import canary_with_wrong_bookings  # noqa: PLC0415

    canary_with_wrong_bookings(sqlite_url, {"cafe\u0301": 1, "caf\u00e9": 1, "globex": 0})
    # When the guardrails read every client
    argv = ["guardrails", "report", "--db", sqlite_url, "--no-state", "--json"]
    status = app_cli.main(argv)
    # Then that client is one client, named canonically (NFC), with both wrong bookings
    assert status == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    (wrong,) = [m for m in report["metrics"] if m["name"] == "proposed_times.wrong_bookings"]
    assert (wrong["canary"]["value"], wrong["clients"]) == (2, ["caf\u00e9"])
