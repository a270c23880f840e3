"""The application's side: SDK set-up from ``OTEL_*``, ``--spans FILE``, the tracing example,
and the libraries' independence from the SDK."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from leadctx.cli import main
from leadctx.telemetry import configure_telemetry
from leadctx_bundle import EncodingDataError
from tests.gate.conftest import sample

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's shell may export OTEL_*; these tests set what they need."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


def test_bundle_build_writes_spans_as_json_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps(sample()))
    spans = tmp_path / "spans.jsonl"
    assert main(["bundle", "build", "--input", str(request), "--json", "--spans", str(spans)]) == 0
    stats = json.loads(capsys.readouterr().out)["stats"]
    lines = spans.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    span = json.loads(lines[0])
    assert span["name"] == "leadctx.bundle.build"
    assert span["attributes"]["leadctx.tokens.total"] == stats["tokens_total"]
    assert (
        span["attributes"]["leadctx.section.thread.items.included"]
        == (stats["sections"]["thread"]["items_included"])
    )
    assert span["resource"]["attributes"]["service.name"] == "leadctx"


def test_bundle_build_spans_record_a_failed_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise EncodingDataError("o200k_base.tiktoken.gz: corrupt")

    monkeypatch.setattr("leadctx_bundle.gate.build_bundle", broken)
    request = tmp_path / "request.json"
    request.write_text(json.dumps(sample()))
    spans = tmp_path / "spans.jsonl"
    assert main(["bundle", "build", "--input", str(request), "--spans", str(spans)]) == 1
    (line,) = spans.read_text(encoding="utf-8").splitlines()
    span = json.loads(line)
    assert span["attributes"]["error.type"] == "leadctx_bundle.errors.EncodingDataError"
    assert span["status"]["status_code"] == "ERROR"
    assert "corrupt" not in line


def test_unwritable_spans_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps(sample()))
    missing = tmp_path / "no-such-folder" / "spans.jsonl"
    assert main(["bundle", "build", "--input", str(request), "--spans", str(missing)]) == 2
    assert f"--spans {missing}" in capsys.readouterr().err


def test_nothing_configured_means_no_sdk() -> None:
    assert configure_telemetry(environ={}) is None
    disabled = {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}
    assert configure_telemetry(environ=disabled) is None
    assert configure_telemetry(environ={"OTEL_TRACES_EXPORTER": "none"}) is None


def test_grpc_protocol_is_reported_and_http_used(caplog: pytest.LogCaptureFixture) -> None:
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_SERVICE_NAME": "drafts",
    }
    with caplog.at_level(logging.WARNING, logger="leadctx.telemetry"):
        setup = configure_telemetry(environ=environ)
    assert setup is not None
    assert setup.meter_provider is not None
    assert setup.tracer_provider.resource.attributes["service.name"] == "drafts"
    assert "OTEL_EXPORTER_OTLP_PROTOCOL=grpc" in caplog.text
    # Shut down without exporting anything: nothing was recorded
    setup.shutdown(timeout_s=0.2)


def test_the_tracing_example_runs_without_jaeger(tmp_path: Path) -> None:
    spans = tmp_path / "spans.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "LEADCTX_"))}
    done = subprocess.run(  # noqa: S603 - our own example, run with this interpreter
        [sys.executable, str(ROOT / "examples" / "tracing_jaeger.py"), "--spans", str(spans)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    paths = [json.loads(line.split(maxsplit=1)[1])["path"] for line in done.stdout.splitlines()[:3]]
    assert paths == ["shared", "legacy", "fallback"]
    names = [json.loads(line)["name"] for line in spans.read_text().splitlines()]
    assert sorted(names) == sorted(["leadctx.context.resolve"] * 3 + ["leadctx.bundle.build"] * 2)


def test_libraries_never_load_the_sdk() -> None:
    code = (
        "import sys, leadctx_bundle, leadctx_bundle.gate, leadctx_bundle.telemetry, "
        "leadctx_bundle.cli, leadctx_flags, leadctx_flags.provider\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk'))\n"
        "assert not loaded, loaded"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def test_shutdown_does_not_wait_for_a_collector_that_is_down(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a collector that accepts connections and never answers (a refused connection
    # fails fast in some exporter versions and retries for ~10 s in others: a hung one hangs
    # in every version)
    with socket.create_server(("127.0.0.1", 0)) as collector:
        port = collector.getsockname()[1]
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        # One second per export attempt: five times the bound the command must keep, short
        # enough that the hung export is over when the test stops the exporters.
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
        exporters = _record_otlp_exporters(monkeypatch)
        setup = configure_telemetry()
        assert setup is not None
        assert len(exporters) == 2  # spans and metrics
        with setup.gate_telemetry().span("leadctx.context.resolve"):
            pass
        try:
            # When the command exits, then it waits about its own bound, not the exporter's
            began = time.monotonic()
            with caplog.at_level(logging.WARNING, logger="leadctx.telemetry"):
                setup.shutdown(timeout_s=0.2)
            assert time.monotonic() - began < 5.0
            assert "did not finish within 0.2 s" in caplog.text
        finally:
            # The exporters would go on retrying in the background for seconds, drawing their
            # back-off jitter from the global ``random`` while later hypothesis tests generate
            # data (which hypothesis reports as an error): stop their retries now, before the
            # collector's socket closes under them.
            for exporter in exporters:
                exporter.shutdown()
            _until_stopped("leadctx-otel-shutdown")


def _record_otlp_exporters(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The OTLP exporters ``configure_telemetry`` creates, kept to be shut down by the test."""
    from opentelemetry.exporter.otlp.proto.http import (  # noqa: PLC0415 - the optional extra
        metric_exporter,
        trace_exporter,
    )

    created: list[Any] = []
    classes = ((trace_exporter, "OTLPSpanExporter"), (metric_exporter, "OTLPMetricExporter"))
    for module, name in classes:
        original = getattr(module, name)

        def recording(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            exporter = _original(*args, **kwargs)
            created.append(exporter)
            return exporter

        monkeypatch.setattr(module, name, recording)
    return created


def _until_stopped(thread_name: str) -> None:
    deadline = time.monotonic() + 30
    while any(thread.name == thread_name for thread in threading.enumerate()):
        assert time.monotonic() < deadline, f"{thread_name} never stopped"
        time.sleep(0.01)


def test_metrics_export_can_be_turned_off_beside_jaeger() -> None:
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_METRICS_EXPORTER": "none"}
    setup = configure_telemetry(environ=environ)
    assert setup is not None
    assert setup.meter_provider is None
    setup.shutdown(timeout_s=0.2)
