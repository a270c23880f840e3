"""``leadctx guardrails report``: renderings, exit codes and the real statistics when present."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
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
    assert run(["--db", db_url, "--json", "--clients", "client-002,client-003"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["canary_clients"] == []
    assert data["decision"] == "hold"  # no canary among these clients
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
        (["--db", "sqlite:///{empty}", "--apply"], "--apply needs --overrides PATH"),
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


@pytest.mark.skipif(not HAS_STATS, reason="the statistics half (decision.evaluate) is not here")
def test_an_empty_database_holds(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from leadctx_flags.guardrails.db import connect, create_schema  # noqa: PLC0415

    with connect(sqlite_url, create=True) as database:
        create_schema(database)
    assert app_cli.main(["guardrails", "report", "--db", sqlite_url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["decision"] == "hold"
    assert {m["verdict"] for m in data["metrics"]} >= {"insufficient_data"}
    assert data["applied"] is None


def test_a_file_that_is_not_a_database_exits_2(
    tmp_path: Path, fake_statistics: None, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all " * 200)
    assert app_cli.main(["guardrails", "report", "--db", f"sqlite:///{garbage}"]) == 2
    captured = capsys.readouterr()
    assert "the database failed a query: DatabaseError" in captured.err
    assert captured.out == ""


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
