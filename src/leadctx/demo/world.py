"""The demo's synthetic world: clients, their knowledge assets, leads, and a flaky source.

Everything here is generated from a seed out of fixed word lists; no real data is read. The
texts exist only to be measured by the bundle builder: the demo prints counts, never them.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from leadctx_bundle.sources import Row

__all__ = [
    "CANARY_CLIENT",
    "CLIENTS",
    "SAMPLE_REQUEST",
    "FlakySource",
    "Lead",
    "SimulatedDatabaseError",
    "World",
]

CLIENTS: Final = ("acme", "globex", "initech", "umbrella")
"""The demo's clients; the first one is the canary."""

CANARY_CLIENT: Final = CLIENTS[0]
"""The client the demo allowlists in the "after" period."""

LEGACY_CHAR_BUDGET: Final = 6000
"""What today's assembly keeps: the lead's rows joined, cut at this many characters."""

_SAMPLE_ASSET = (
    "Plans start at 49 EUR per seat and month, billed yearly; a monthly plan costs 20% more. "
    "Discounts apply from 50 seats. Onboarding takes two weeks and includes a kickoff call. "
)
SAMPLE_REQUEST: dict[str, Any] = {
    "client_id": "acme",
    "lead_id": "lead-42",
    "knowledge_assets": [
        {"id": f"asset-{n}", "title": f"Asset {n}", "content": _SAMPLE_ASSET * (4 + n), "rank": n}
        for n in range(12)
    ],
    "lead_memory": [
        {
            "id": f"memory-{n}",
            "content": "Asked about seat-based pricing and a pilot for the sales team. " * (1 + n),
            "created_at": f"2026-11-{10 + n:02d}T10:00:00Z",
        }
        for n in range(10)
    ],
    "thread": [
        {
            "role": "lead" if n % 2 else "agent",
            "content": "Could we meet Thursday afternoon to go through the pricing? " * 3,
            "sent_at": f"2026-11-24T{8 + n:02d}:15:00Z",
        }
        for n in range(8)
    ],
}
"""One fixed lead with every section filled (benchmarks and examples reuse it)."""

_TOPICS = (
    "seat-based pricing",
    "the onboarding plan",
    "a pilot for the sales team",
    "single sign-on",
    "the data retention policy",
    "volume discounts",
    "the reporting add-on",
    "an annual contract",
)
_FACTS = (
    "Plans are billed per seat and month, yearly or monthly.",
    "Onboarding takes two weeks and starts with a kickoff call.",
    "Support answers within four business hours on weekdays.",
    "Single sign-on is included from the business plan upwards.",
    "Data is kept in the region the customer chooses at sign-up.",
    "A pilot runs for thirty days with up to ten seats.",
    "Discounts apply from fifty seats and grow with volume.",
    "Reports can be exported as spreadsheets every week.",
)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
_PARTS = ("morning", "around noon", "afternoon", "late afternoon")


class SimulatedDatabaseError(ConnectionError):
    """What the demo's flaky source raises: a stand-in for a dropped database connection."""


@dataclass(frozen=True, slots=True)
class Lead:
    """One synthetic lead and its rows.

    Args:
        client_id: The client the lead belongs to.
        lead_id: The lead's id.
        memory: Lead memory rows (``id``, ``content``, ``created_at``).
        thread: Thread rows (``role``, ``content``, ``sent_at``).
    """

    client_id: str
    lead_id: str
    memory: tuple[Row, ...]
    thread: tuple[Row, ...]

    def legacy_text(self) -> str:
        """Today's context assembly: memory and thread joined, cut at a character budget."""
        parts = [str(row["content"]) for row in (*self.memory, *self.thread)]
        return "\n".join(parts)[:LEGACY_CHAR_BUDGET]


class World:
    """Clients' knowledge assets and leads, drawn from one seed.

    Args:
        seed: Seeds every draw; the same seed gives the same world.
        start: The time of the world's first message.
    """

    def __init__(self, seed: int, start: datetime) -> None:
        self._seed = seed
        self._start = start
        self.assets: dict[str, tuple[Row, ...]] = {
            client: self._assets(client, random.Random(f"{seed}/assets/{client}"))
            for client in CLIENTS
        }

    def lead(self, client_id: str, period: str, index: int) -> Lead:
        """The ``index``-th lead of ``client_id`` in ``period`` (the same each time asked).

        Args:
            client_id: One of ``CLIENTS``.
            period: ``before`` or ``after``.
            index: Which lead.
        """
        lead_id = f"lead-{client_id}-{period}-{index:05d}"
        rng = random.Random(f"{self._seed}/{lead_id}")
        # About one lead in ten has a long history, which the tighter budgets cut.
        memories = rng.randint(10, 14) if rng.random() < 0.1 else rng.randint(1, 6)
        first = self._start + timedelta(hours=rng.randint(0, 300))
        memory = tuple(
            {
                "id": f"{lead_id}-m{n}",
                "content": _sentence(rng, "Asked about {topic} for a team of {seats} people.", 3),
                "created_at": _iso(first + timedelta(hours=6 * n)),
            }
            for n in range(memories)
        )
        thread = tuple(
            {
                "role": "lead" if n % 2 == 0 else "agent",
                "content": _sentence(
                    rng, "Could we meet {day} {part} to go through {topic}?", rng.randint(1, 3)
                ),
                "sent_at": _iso(first + timedelta(hours=6 * memories + 2 * n)),
            }
            for n in range(rng.randint(2, 8))
        )
        return Lead(client_id, lead_id, memory, thread)

    @staticmethod
    def _assets(client_id: str, rng: random.Random) -> tuple[Row, ...]:
        count = rng.randint(3, 5)
        return tuple(
            {
                "id": f"{client_id}-asset-{n}",
                "title": f"Fact sheet {n + 1}",
                "content": " ".join(rng.sample(_FACTS, 3)),
                "rank": n,
            }
            for n in range(count)
        )


def _sentence(rng: random.Random, template: str, repeat: int) -> str:
    return " ".join(
        template.format(
            topic=rng.choice(_TOPICS),
            seats=rng.randint(5, 400),
            day=rng.choice(_DAYS),
            part=rng.choice(_PARTS),
        )
        for _ in range(repeat)
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FlakySource:
    """A ``ContextSource`` over a ``World`` whose next reads can be made to fail.

    Args:
        world: Where the rows come from.
        leads: The leads it can serve, by id (registered as the demo meets them).
    """

    def __init__(self, world: World) -> None:
        self._world = world
        self._leads: dict[str, Lead] = {}
        self._failures_left = 0
        self._lock = threading.Lock()
        self.reads = 0
        self.failed = 0

    def register(self, lead: Lead) -> None:
        """Make ``lead``'s rows readable."""
        self._leads[lead.lead_id] = lead

    def fail_next(self, reads: int) -> None:
        """Make the next ``reads`` asset reads raise ``SimulatedDatabaseError``.

        Args:
            reads: How many reads fail.
        """
        with self._lock:
            self._failures_left = reads

    def knowledge_assets(self, client_id: str) -> Iterable[Row]:
        """The client's assets; fails while failures are pending."""
        with self._lock:
            self.reads += 1
            if self._failures_left > 0:
                self._failures_left -= 1
                self.failed += 1
                raise SimulatedDatabaseError("simulated: connection to the database was reset")
        return self._world.assets.get(client_id, ())

    def lead_memory(self, lead_id: str) -> Sequence[Row]:
        """The lead's memory rows."""
        lead = self._leads.get(lead_id)
        return () if lead is None else lead.memory

    def thread(self, lead_id: str) -> Sequence[Row]:
        """The lead's thread rows."""
        lead = self._leads.get(lead_id)
        return () if lead is None else lead.thread
