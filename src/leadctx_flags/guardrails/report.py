"""The report's renderings: a terminal table, Markdown and JSON, from one check's results.

The statistics (``decision.evaluate``) produce a ``GuardrailReport``; this module only shows
it, with the data-quality counts of the records it was computed from. Every figure shown is a
count, a rate or a difference; no record content ever reaches a report.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict
from typing import Any, Protocol

from leadctx_flags.client_ids import validate_client_id
from leadctx_flags.guardrails.queries import Collected
from leadctx_flags.guardrails.signals import Arm

__all__ = [
    "MetricLike",
    "ReportLike",
    "canary_clients",
    "markdown",
    "rows",
    "shown_clients",
    "table",
    "to_json",
]

_COLUMNS = (
    "metric",
    "baseline n/value",
    "canary n/value",
    "delta",
    "interval",
    "mde (80%)",
    "verdict",
    "reason",
)


class MetricLike(Protocol):
    """What the report reads of one metric's result (``decision.MetricResult``)."""

    @property
    def name(self) -> str: ...

    @property
    def verdict(self) -> str: ...

    @property
    def reason(self) -> str: ...


class ReportLike(Protocol):
    """What the report reads of a check's result (``decision.GuardrailReport``)."""

    @property
    def decision(self) -> str: ...

    @property
    def metrics(self) -> Sequence[Any]: ...

    @property
    def affected_clients(self) -> Sequence[str] | frozenset[str] | tuple[str, ...]: ...

    def to_json(self) -> Mapping[str, Any]: ...


def canary_clients(collected: Collected) -> tuple[str, ...]:
    """Clients with records on the shared path (flag on) in the window, sorted."""
    by_client = collected.signals.by_client
    return tuple(sorted({client for client, arm in by_client if arm is Arm.CANARY_AFTER}))


def shown_clients(clients: Collection[str], label: str) -> list[str]:
    """``clients`` as a report shows them: a valid id as itself, any other by its position.

    Ids come from the records; one that breaks the id rule (a padded ``CHAR`` column, a control
    character) is never echoed to a terminal or a Markdown file: it shows as
    ``<label>[<index>] (unusable id)``, the index into the report's JSON list of that name.

    Args:
        clients: The ids in the report's order.
        label: The list's name in the report's JSON (``affected_clients``).
    """
    ordered = clients if isinstance(clients, Sequence) else sorted(clients)
    shown = []
    for index, client in enumerate(ordered):
        try:
            shown.append(validate_client_id(client))
        except ValueError:
            shown.append(f"{label}[{index}] (unusable id)")
    return shown


def rows(report: ReportLike) -> list[tuple[str, ...]]:
    """One row of text cells per metric, in the table's column order."""
    result: list[tuple[str, ...]] = []
    for metric in report.metrics:
        name = str(_get(metric, "name"))
        if _get(metric, "critical"):
            name += " (critical)"
        result.append(
            (
                name,
                _figure(_get(metric, "baseline")),
                _figure(_get(metric, "canary")),
                _number(_get(metric, "delta"), signed=True),
                _interval(_get(metric, "interval")),
                _number((_get(metric, "extra") or {}).get("mde"), digits=3),
                str(_get(metric, "verdict")),
                str(_get(metric, "reason") or "") + _more_needed(_get(metric, "extra") or {}),
            )
        )
    return result


def _more_needed(extra: Mapping[str, Any]) -> str:
    """How many more drafts the detection target needs, when it is not yet detectable."""
    target, more = extra.get("detection_target"), extra.get("more_drafts_per_side")
    if target is None or extra.get("mde") is None:
        return ""
    if more is None:
        return f" (a change of {target:g} is out of reach at this traffic)"
    if more > 0:
        return f" (a change of {target:g} needs about {more:,} more drafts per side)"
    return ""


def table(report: ReportLike, collected: Collected, *, width: int = 100) -> str:
    """The terminal rendering: the decision, a metric table and the data-quality counts.

    Each metric is one line of figures with its reason wrapped on the lines below, so the
    table stays readable at ``width`` columns whatever the reasons' length.

    Args:
        report: The check's result.
        collected: The signals it was computed from (for the window and data quality).
        width: Columns to fit in (default 100).
    """
    signals = collected.signals
    lines = [
        f"decision: {str(report.decision).upper()}",
        f"window:   {signals.window_start or '-'} .. {signals.window_end or '-'}",
        f"switch:   {signals.switch_time or '-'}",
        "",
    ]
    body = [(_short(row[0]), *row[1:]) for row in rows(report)]
    headers = ("metric", "baseline", "canary", "delta", "interval", "mde", "verdict")
    count = len(headers)
    widths = [
        max([len(headers[index])] + [len(row[index]) for row in body]) for index in range(count)
    ]
    # The metric column takes what the figures leave; a longer name gets a line of its own.
    widths[0] = min(widths[0], max(12, width - sum(widths[1:]) - 2 * (count - 1)))
    lines.append("baseline and canary: n/value; * critical: a regress rolls back at once")
    lines.append("mde: the smallest change this check detects at 80% power")
    lines.append(_line(headers, widths))
    lines.append("-" * min(width, sum(widths) + 2 * (count - 1)))
    indent = "    "
    for row in body:
        if len(row[0]) > widths[0]:
            lines.append(row[0])
            lines.append(_line(("", *row[1:count]), widths))
        else:
            lines.append(_line(row[:count], widths))
        if row[count]:
            lines.extend(
                textwrap.wrap(row[count], width, initial_indent=indent, subsequent_indent=indent)
            )
    affected = shown_clients(report.affected_clients, "affected_clients")
    lines.append("")
    for note in _get(report, "notes") or ():
        lines.extend(textwrap.wrap("note: " + note, width, subsequent_indent=indent))
    if affected:
        lines.extend(
            textwrap.wrap(
                "affected clients: " + ", ".join(affected), width, subsequent_indent=indent
            )
        )
    lines.extend(textwrap.wrap(_quality_line(collected), width, subsequent_indent=indent))
    return "\n".join(lines) + "\n"


def _listed(clients: Collection[str], label: str) -> str:
    return ", ".join(shown_clients(clients, label)) or "-"


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(cell.ljust(size) for cell, size in zip(cells, widths, strict=True)).rstrip()


def _short(name: str) -> str:
    return name.replace(" (critical)", "*")


def markdown(report: ReportLike, collected: Collected) -> str:
    """The report as a Markdown document (a heading, the metric table, data quality)."""
    signals = collected.signals
    lines = [
        f"# Guardrails report: {report.decision}",
        "",
        f"- window: {signals.window_start or '-'} .. {signals.window_end or '-'}",
        f"- switch time: {signals.switch_time or '-'}",
        f"- canary clients: {_listed(canary_clients(collected), 'canary_clients')}",
        f"- affected clients: {_listed(report.affected_clients, 'affected_clients')}",
        "",
        "| " + " | ".join(_COLUMNS) + " |",
        "|" + "|".join("---" for _ in _COLUMNS) + "|",
    ]
    lines.extend("| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows(report))
    notes = list(_get(report, "notes") or ())
    if notes:
        lines += ["", "## Notes", "", *(f"- {note}" for note in notes)]
    lines += ["", "## Data quality", ""]
    for name, count in {**asdict(signals.quality), **asdict(collected.excluded)}.items():
        lines.append(f"- {name}: {count}")
    return "\n".join(lines) + "\n"


def to_json(
    report: ReportLike, collected: Collected, applied: Mapping[str, object] | None
) -> dict[str, Any]:
    """``report.to_json()`` with the data quality, exclusions and what ``--apply`` did added.

    Keys the report already has are kept as the report wrote them.
    """
    data = dict(report.to_json())
    signals = collected.signals
    extra: dict[str, Any] = {
        "window": {"start": signals.window_start, "end": signals.window_end},
        "switch_time": signals.switch_time,
        "canary_clients": list(canary_clients(collected)),
        "quality": asdict(signals.quality),
        "excluded": asdict(collected.excluded),
        "applied": dict(applied) if applied is not None else None,
    }
    for key, value in extra.items():
        data.setdefault(key, value)
    return data


def _quality_line(collected: Collected) -> str:
    counts = {**asdict(collected.signals.quality), **asdict(collected.excluded)}
    flagged = {name: count for name, count in counts.items() if count}
    if not flagged:
        return "data quality: no unusable records"
    return "data quality: " + ", ".join(f"{name} {count}" for name, count in flagged.items())


def _get(item: Any, name: str) -> Any:
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


def _figure(value: Any) -> str:
    """``n/value`` from a side's figures (a mapping or an object with ``n`` and a value)."""
    if value is None:
        return "-"
    if isinstance(value, int | float):
        return _number(value)
    n = _get(value, "n")
    for key in ("value", "rate", "mean", "count"):
        figure = _get(value, key)
        if figure is not None:
            break
    shown = _number(figure) if isinstance(figure, int | float) else "-"
    return f"{n}/{shown}" if n is not None else shown


def _number(value: Any, *, signed: bool = False, digits: int = 4) -> str:
    if value is None or not isinstance(value, int | float):
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else "-inf" if value < 0 else "-"
    if isinstance(value, int):
        return f"{value:+d}" if signed else str(value)
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _interval(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        low, high = value
        return f"[{_number(low, digits=3)}, {_number(high, digits=3)}]"
    lower, upper = _get(value, "lower"), _get(value, "upper")
    if lower is not None or upper is not None:
        return f"[{_number(lower, digits=3)}, {_number(upper, digits=3)}]"
    return str(value)


def _md(cell: str) -> str:
    return cell.replace("|", "\\|")
