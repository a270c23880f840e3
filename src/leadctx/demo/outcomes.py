"""Simulated pipeline outcomes: what the auto-send evaluator, the overseer and the parser did.

The demo has no LLM; each pipeline's outcome is drawn from a seeded generator whose
parameters depend on the context's path. By default the shared bundle has no effect (the same
parameters on every path), so the guardrails should not roll back. ``REGRESSION`` is the
injected one: on the shared path the drafts' confidence drops (needs-review goes up sharply),
the overseer sends more back and some bookings go wrong.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Final

from leadctx_flags.vocabulary import ResolutionPath

__all__ = ["NO_EFFECT", "REGRESSION", "DraftOutcome", "Effect", "Outcomes"]

AUTO_SEND_THRESHOLD: Final = 0.7
_CONFIDENCE_MEAN: Final = {"acme": 0.76, "globex": 0.74, "initech": 0.78, "umbrella": 0.75}
_SKIP_RATE: Final = 0.04
_REVISE_RATE: Final = 0.2
_MATCH_RATE: Final = 0.8
_BOOKING_RATE: Final = 0.6


@dataclass(frozen=True, slots=True)
class Effect:
    """What the shared context does to outcomes (applied on the ``shared`` path only).

    Args:
        confidence_shift: Added to the auto-send confidence's mean.
        revise_delta: Added to the overseer's revise rate.
        wrong_booking_rate: Share of attempted bookings that book the wrong time.
        forced_wrong_bookings: The first this many attempted bookings go wrong whatever the
            draw, so that even a small run shows one.
    """

    confidence_shift: float = 0.0
    revise_delta: float = 0.0
    wrong_booking_rate: float = 0.0
    forced_wrong_bookings: int = 0


NO_EFFECT: Final = Effect()
REGRESSION: Final = Effect(
    confidence_shift=-0.12, revise_delta=0.2, wrong_booking_rate=0.05, forced_wrong_bookings=2
)


@dataclass(frozen=True, slots=True)
class DraftOutcome:
    """The auto-send evaluator's verdict on a draft, as ``AIDraft`` stores it.

    Args:
        confidence: ``autoSendConfidence``.
        threshold: ``autoSendThreshold``.
        action: ``autoSendAction``: ``send``, ``needs_review`` or ``skip``.
        status: ``status``: ``SENT``, ``PENDING``, ``APPROVED`` or ``EDITED``.
    """

    confidence: float
    threshold: float
    action: str
    status: str


class Outcomes:
    """Draws outcomes from one seeded generator; the same draws whatever the path.

    Args:
        seed: Seeds the generator.
        effect: The shared path's effect.
    """

    def __init__(self, seed: int, effect: Effect) -> None:
        self._rng = random.Random(f"{seed}/outcomes")
        self._effect = effect
        self._forced_left = effect.forced_wrong_bookings

    def draft(self, client_id: str, path: ResolutionPath) -> DraftOutcome:
        """The auto-send verdict for a draft written with context from ``path``.

        Args:
            client_id: The client (each has its own base confidence).
            path: How the draft's context was had.
        """
        rng = self._rng
        mean = _CONFIDENCE_MEAN.get(client_id, 0.76)
        if path is ResolutionPath.SHARED:
            mean += self._effect.confidence_shift
        confidence = round(min(max(rng.gauss(mean, 0.08), 0.0), 1.0), 4)
        skip, review = rng.random(), rng.random()
        if skip < _SKIP_RATE:
            return DraftOutcome(confidence, AUTO_SEND_THRESHOLD, "skip", "PENDING")
        if confidence >= AUTO_SEND_THRESHOLD:
            return DraftOutcome(confidence, AUTO_SEND_THRESHOLD, "send", "SENT")
        status = "PENDING" if review < 0.05 else "EDITED" if review < 0.35 else "APPROVED"
        return DraftOutcome(confidence, AUTO_SEND_THRESHOLD, "needs_review", status)

    def overseer(self, path: ResolutionPath) -> tuple[str, float]:
        """The overseer's gate decision (``approve``/``revise``) and its confidence.

        Args:
            path: How the overseer's context was had.
        """
        rng = self._rng
        rate = _REVISE_RATE + (self._effect.revise_delta if path is ResolutionPath.SHARED else 0)
        revise = rng.random() < rate
        confidence = round(min(max(rng.gauss(0.62 if revise else 0.78, 0.1), 0.0), 1.0), 4)
        return ("revise" if revise else "approve"), confidence

    def proposed_times(self, path: ResolutionPath) -> dict[str, Any]:
        """``metadata.proposedTimes`` of a parse: matched, booking attempted, its outcome.

        Args:
            path: How the parser's context was had.
        """
        rng = self._rng
        matched = rng.random() < _MATCH_RATE
        attempted = matched and rng.random() < _BOOKING_RATE
        draw, booked = rng.random(), rng.random()
        outcome: str | None = None
        if attempted:
            wrong = False
            if path is ResolutionPath.SHARED:
                wrong = draw < self._effect.wrong_booking_rate or self._forced_left > 0
                self._forced_left -= 1 if wrong and self._forced_left > 0 else 0
            outcome = "wrong" if wrong else "booked" if booked < 0.95 else "failed"
        return {"matched": matched, "bookingAttempted": attempted, "bookingOutcome": outcome}
