"""``--plot``: a PNG of the confidence distributions and of each rate difference over time.

The sequence over time comes from re-running the check at cut-off times inside the window
(``report_cli`` does that), so the picture shows what each earlier check would have seen.
matplotlib is loaded only here, with the Agg backend (no display needed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from leadctx_flags.guardrails.queries import Collected
from leadctx_flags.guardrails.report import ReportLike
from leadctx_flags.guardrails.signals import CONFIDENCE_BUCKETS, Arm

__all__ = ["write_plot"]


def write_plot(
    path: Path,
    collected: Collected,
    sequence: Sequence[tuple[datetime, ReportLike]],
) -> None:
    """Write the PNG to ``path``.

    Args:
        path: The PNG file to write.
        collected: The full window's signals (for the confidence histograms).
        sequence: ``(cut-off time, report)`` for each re-run check, oldest first.
    """
    import matplotlib as mpl  # noqa: PLC0415 - the guardrails extra, loaded on use

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    series = _series(sequence)
    switch = collected.signals.switch_time
    origin = (
        datetime.fromisoformat(switch.replace("Z", "+00:00"))
        if switch
        else sequence[0][0]
        if sequence
        else datetime.now(UTC)
    )
    rows = 1 + max(1, math.ceil(len(series) / 2))
    figure = plt.figure(figsize=(12, 3.2 * rows), layout="constrained")
    grid = figure.add_gridspec(rows, 2)
    histogram = figure.add_subplot(grid[0, :])
    edges = [index / CONFIDENCE_BUCKETS for index in range(CONFIDENCE_BUCKETS)]
    for arm in Arm:
        counts = [0] * CONFIDENCE_BUCKETS
        for (_, each), signals in collected.signals.by_client.items():
            if each is arm:
                counts = [a + b for a, b in zip(counts, signals.confidence.histogram, strict=True)]
        total = sum(counts)
        if total:
            shares = [count / total for count in counts]
            # The last bucket's step is drawn to 1.0 (its closed end).
            histogram.step(
                [*edges, 1.0], [*shares, shares[-1]], where="post", label=f"{arm.value} (n={total})"
            )
    histogram.set_title("autoSendConfidence by arm (share of drafts per bucket)")
    histogram.set_xlabel("confidence")
    histogram.set_xlim(0, 1)
    histogram.legend(fontsize="small")

    for index, (name, points) in enumerate(sorted(series.items())):
        axes = figure.add_subplot(grid[1 + index // 2, index % 2])
        times = [(point[0] - origin).total_seconds() / 3600 for point in points]
        axes.plot(times, [point[1] for point in points], marker="o", label="delta")
        lows = [point[2] for point in points]
        highs = [point[3] for point in points]
        axes.fill_between(times, lows, highs, alpha=0.25, label="interval")
        axes.axhline(0, color="grey", linewidth=0.8)
        axes.set_title(name, fontsize="medium")
        axes.set_xlabel(f"hours since {origin:%Y-%m-%d %H:%M} UTC (switch)", fontsize="small")
    if not series:
        figure.text(0.5, 0.25, "no metric has a difference to plot yet", ha="center")
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)


def _series(
    sequence: Sequence[tuple[datetime, ReportLike]],
) -> dict[str, list[tuple[datetime, float, float, float]]]:
    """Per metric: (time, delta, interval low, interval high), where a delta exists."""
    series: dict[str, list[tuple[datetime, float, float, float]]] = {}
    for moment, report in sequence:
        for metric in report.metrics:
            delta = _get(metric, "delta")
            if not isinstance(delta, int | float) or not math.isfinite(delta):
                continue
            low, high = _bounds(_get(metric, "interval"), float(delta))
            series.setdefault(str(_get(metric, "name")), []).append(
                (moment, float(delta), low, high)
            )
    return series


def _bounds(interval: Any, delta: float) -> tuple[float, float]:
    """Finite plot limits of an interval; an open (one-sided) end is drawn at the delta."""
    if isinstance(interval, Sequence) and not isinstance(interval, str) and len(interval) == 2:
        low, high = interval
    else:
        low, high = _get(interval, "lower"), _get(interval, "upper")

    def finite(value: Any) -> float:
        if isinstance(value, int | float) and math.isfinite(value):
            return float(value)
        return delta

    return finite(low), finite(high)


def _get(item: Any, name: str) -> Any:
    if item is None:
        return None
    if isinstance(item, dict):
        return item.get(name)
    return getattr(item, name, None)
