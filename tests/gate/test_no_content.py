"""No content anywhere: spans, metric data points, log records and ``metadata()``.

Every piece of content a request can carry holds a sentinel: asset titles, contents and ids,
memory entries and their ids, thread messages and roles, the lead id, the messages of the
exceptions failing sources (and tokenizer, builder, provider, legacy) raise. Every path runs:
shared, legacy, flag errors (a provider raising with a sentinel message, a provider not
ready), an invalid request, each fallback reason, and ``legacy()`` raising. Then no sentinel
may appear in any exported span (name, attributes, events, status description), in any
metric data point's attributes, in any record of leadctx's loggers (formatted message, args,
extras) or in ``metadata()``. Bounded (25 examples of every path) so it runs in seconds.
"""

from __future__ import annotations

import copy
import json
import logging
import string
import threading
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagResolutionDetails

from leadctx_bundle import EncodingDataError, resolve_context
from leadctx_flags import LeadCtxProvider, RolloutSettings
from tests.gate.conftest import Recorded
from tests.gate.providers import NeverReadyProvider, RaisingProvider

MARK = "ZQX"
PATHS = (
    "shared",
    "legacy",
    "flag provider raises",
    "flag not ready",
    "invalid request",
    "source_error",
    "invalid_data",
    "budget_error",
    "tokenizer_error",
    "timeout",
    "internal_error",
    "legacy raises",
)

sentinels = st.text(alphabet=string.ascii_letters + " <>{}\"'", min_size=1, max_size=12).map(
    lambda s: f"{MARK}{s}{MARK}"
)


class SentinelProvider(RaisingProvider):
    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        raise RuntimeError(self.message)


class RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Source:
    """Serves ``request``'s rows, or raises ``error`` from the assets read, or hangs."""

    def __init__(self, request: dict[str, Any], error: Exception | None = None) -> None:
        self.request = request
        self.error = error
        self.hang: threading.Event | None = None

    def knowledge_assets(self, client_id: str) -> Iterable[Any]:
        if self.hang is not None:
            self.hang.wait(10)
        if self.error is not None:
            raise self.error
        rows: list[Any] = self.request["knowledge_assets"]
        return rows

    def lead_memory(self, lead_id: str) -> Iterable[Any]:
        rows: list[Any] = self.request["lead_memory"]
        return rows

    def thread(self, lead_id: str) -> Iterable[Any]:
        rows: list[Any] = self.request["thread"]
        return rows


@st.composite
def requests(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    text = sentinels
    assets = [
        {
            "id": draw(text),
            "title": draw(text),
            "content": draw(text) * draw(st.integers(1, 200)),
            "rank": n,
        }
        for n in range(draw(st.integers(0, 5)))
    ]
    memory = [
        {
            "id": draw(text),
            "content": draw(text) * draw(st.integers(1, 200)),
            "created_at": f"2026-11-{10 + n}T10:00:00Z",
        }
        for n in range(draw(st.integers(0, 5)))
    ]
    thread = [
        {
            "role": draw(text),
            "content": draw(text) * draw(st.integers(1, 100)),
            "sent_at": f"2026-11-24T0{n}:00:00Z",
        }
        for n in range(draw(st.integers(0, 5)))
    ]
    request = {
        "client_id": "acme",
        "lead_id": draw(text),
        "pipeline": draw(st.sampled_from(["draft", "overseer", "auto_send", "proposed_times"])),
        "knowledge_assets": assets,
        "lead_memory": memory,
        "thread": thread,
    }
    return request, draw(text)


def _no_mark(where: str, value: Any) -> None:
    rendered = json.dumps(value, default=repr, ensure_ascii=False)
    assert MARK not in rendered, f"content leaked into {where}: {rendered[:300]}"


def test_no_sentinel_reaches_telemetry_logs_or_metadata(recorded: Recorded) -> None:
    handler = RecordingHandler()
    package_loggers = [logging.getLogger(name) for name in ("leadctx_bundle", "leadctx_flags")]
    levels = [target.level for target in package_loggers]
    for target in package_loggers:
        target.addHandler(handler)
        target.setLevel(logging.DEBUG)
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    seen: set[str] = set()

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(requests())
    def run(drawn: tuple[dict[str, Any], str]) -> None:
        for path in PATHS:
            run_path(copy.deepcopy(drawn[0]), drawn[1], path)

    def run_path(request: dict[str, Any], message: str, path: str) -> None:  # noqa: PLR0912 - one branch per path reads as the list of paths
        seen.add(path)
        recorded.spans.clear()
        handler.records.clear()
        source: Source | None = Source(request)
        domain = "no-content"
        api.set_provider_and_wait(
            LeadCtxProvider(RolloutSettings(shared_bundle_clients="acme")), domain=domain
        )
        legacy_error: Exception | None = None
        deadline_s: float | None = None
        hang = threading.Event()
        with pytest.MonkeyPatch.context() as patch:
            if path == "legacy":
                request["client_id"] = "globex"
            elif path == "flag provider raises":
                api.set_provider_and_wait(SentinelProvider(message), domain=domain)
            elif path == "flag not ready":
                api.set_provider(NeverReadyProvider(), domain=domain)
            elif path == "invalid request":
                request["lead_id"] = message * 40  # too long: the request does not validate
            elif path == "source_error":
                source = Source(request, ConnectionError(message))
            elif path == "invalid_data":
                request["lead_memory"] = [{"id": message, "content": None, "created_at": message}]
            elif path == "budget_error":
                source = Source(request, ZeroDivisionError(message))
            elif path == "tokenizer_error":

                def broken(*args: Any, **kwargs: Any) -> Any:
                    raise EncodingDataError(message)

                patch.setattr("leadctx_bundle.builder.token_counter", broken)
            elif path == "timeout":
                assert source is not None
                source.hang = hang
                deadline_s = 0.01
            elif path == "internal_error":

                def buggy(*args: Any, **kwargs: Any) -> Any:
                    raise KeyError(message)

                patch.setattr("leadctx_bundle.gate.build_bundle", buggy)
            elif path == "legacy raises":
                legacy_error = ValueError(message)

            def legacy() -> str:
                if legacy_error is not None:
                    raise legacy_error
                return f"legacy {message}"

            result = None
            try:
                result = resolve_context(
                    request,
                    legacy=legacy,
                    source=source,
                    client=api.get_client(domain=domain),
                    deadline_s=deadline_s,
                    telemetry=recorded.telemetry,
                )
            except ValueError as err:
                if err is not legacy_error:
                    raise
            finally:
                hang.set()
                api.clear_providers()
        if result is not None:
            _no_mark("metadata()", result.metadata())
            _no_mark("repr(result)", repr(result))
        for span in recorded.finished():
            _no_mark(f"span {span.name}", json.loads(span.to_json()))
            for event in span.events:
                _no_mark("span event", dict(event.attributes or {}))
            _no_mark("span status", span.status.description)
        if path != "legacy raises":
            # Not vacuous: the gate did write its record, and the spans were exported
            assert any(record.name == "leadctx_bundle.gate" for record in handler.records)
            assert recorded.finished("leadctx.context.resolve")
        for record in handler.records:
            _no_mark("log message", formatter.format(record))
            _no_mark("log args", record.args)
            _no_mark("log extras", record.__dict__)
        data = recorded.reader.get_metrics_data()
        if data is not None:
            for resource in data.resource_metrics:
                for scope in resource.scope_metrics:
                    for metric in scope.metrics:
                        for point in metric.data.data_points:
                            _no_mark(f"metric {metric.name}", dict(point.attributes or {}))

    try:
        run()
    finally:
        for target, level in zip(package_loggers, levels, strict=True):
            target.removeHandler(handler)
            target.setLevel(level)
    assert seen == set(PATHS)
