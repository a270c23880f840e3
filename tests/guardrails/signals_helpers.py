"""Hand-made signals for the metric and decision tests: exact counts, no randomness."""

from __future__ import annotations

from leadctx_flags.guardrails.signals import (
    CONFIDENCE_BUCKETS,
    Arm,
    ClientArmSignals,
    DataQuality,
    Moments,
    Signals,
)


def counts(
    n: int,
    *,
    flag_on: bool = False,
    needs_review: float = 0.2,
    auto_send: float = 0.6,
    edited: float = 0.3,
    revise: float = 0.2,
    match: float = 0.7,
    attempts: float = 0.5,
    wrong: int = 0,
    confidence: float = 0.75,
    confidence_sd: float = 0.1,
    fallback: float = 0.01,
    assets_truncated: float = 0.1,
    memory_truncated: float = 0.1,
) -> ClientArmSignals:
    """One client's counts in one arm, every rate applied exactly (rounded)."""
    reviews = round(n * needs_review)
    resolved = round(reviews * 0.8)
    parses = round(n * 0.3)
    gates = n // 2
    on = n if flag_on else 0
    fell_back = round(on * fallback)
    shared = on - fell_back
    bucket = min(int(confidence * CONFIDENCE_BUCKETS), CONFIDENCE_BUCKETS - 1)
    histogram = tuple(n if i == bucket else 0 for i in range(CONFIDENCE_BUCKETS))
    return ClientArmSignals(
        drafts_evaluated=n,
        auto_sent=round(n * auto_send),
        needs_review=reviews,
        review_resolved=resolved,
        review_edited=round(resolved * edited),
        confidence=Moments(
            n=n,
            total=n * confidence,
            total_sq=(n - 1) * confidence_sd**2 + n * confidence**2,
            histogram=histogram,
        ),
        overseer_gate=gates,
        overseer_revise=round(gates * revise),
        proposed_parses=parses,
        proposed_matched=round(parses * match),
        booking_attempted=round(parses * attempts),
        booking_wrong=wrong,
        calls=n,
        calls_flag_on=on,
        calls_fallback=fell_back,
        calls_assets_truncated=round(shared * assets_truncated),
        calls_memory_truncated=round(shared * memory_truncated),
    )


def signals(
    by_client: dict[tuple[str, Arm], ClientArmSignals],
    *,
    quality: DataQuality | None = None,
    previous: Signals | None = None,
) -> Signals:
    """Signals over a fixed window."""
    return Signals(
        by_client=by_client,
        quality=quality or DataQuality(),
        window_start="2026-11-01T00:00:00Z",
        window_end="2026-11-08T00:00:00Z",
        switch_time="2026-11-04T00:00:00Z",
        previous=previous,
    )


def steady(
    n: int = 2_000, clients: tuple[str, ...] = ("acme", "globex"), **after: float
) -> Signals:
    """Canary clients before and after with the same rates, except ``after``'s overrides."""
    per = n // len(clients)
    by_client: dict[tuple[str, Arm], ClientArmSignals] = {}
    for client in clients:
        by_client[client, Arm.CANARY_BEFORE] = counts(per)
        by_client[client, Arm.CANARY_AFTER] = counts(per, flag_on=True, **after)  # type: ignore[arg-type]
    return signals(by_client)
