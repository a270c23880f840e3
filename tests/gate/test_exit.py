"""A process ends cleanly whatever its shared paths are doing: each case runs in a fresh
interpreter, because what is tested is the interpreter's own exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

BOUND = 120.0  # seconds a child may take before the test calls it hung (it takes about 2)

PRELUDE = textwrap.dedent(
    """
    import sys, threading
    from openfeature import api
    from leadctx_bundle import resolve_context, token_counter
    from leadctx_flags import LeadCtxProvider, RolloutSettings

    api.set_provider_and_wait(LeadCtxProvider(RolloutSettings(shared_bundle_clients="acme")))
    token_counter("o200k_base")  # loaded up front: the build, not the encoding, is abandoned
    REQUEST = {"client_id": "acme", "lead_id": "lead-1", "pipeline": "draft"}

    class Source:
        def __init__(self, memory):
            self.memory = memory
        def knowledge_assets(self, client_id):
            return []
        def lead_memory(self, lead_id):
            return self.memory()
        def thread(self, lead_id):
            return []

    def resolve(memory, deadline_s):
        result = resolve_context(
            REQUEST, legacy=lambda: "legacy", source=Source(memory), deadline_s=deadline_s
        )
        print(result.path.value, result.fallback_reason, result.error_type, flush=True)
    """
)


def run_child(body: str) -> subprocess.CompletedProcess[str]:
    """Run PRELUDE + ``body`` in a fresh interpreter; the child is gone when this returns."""
    return subprocess.run(  # noqa: S603 - our own interpreter on our own code
        [sys.executable, "-c", PRELUDE + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=False,
    )


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_a_process_exiting_while_an_abandoned_build_runs_exits_0(attempt: int) -> None:
    # Given a build of 200,000 memory entries abandoned at a short deadline
    # When the process ends at once, the build still running on its worker
    child = run_child(
        """
        ROWS = [
            {"id": f"m{n}", "content": "Asked about pricing. " * 3,
             "created_at": "2026-11-10T10:00:00Z"}
            for n in range(200_000)
        ]
        resolve(lambda: ROWS, 0.02)
        """
    )
    # Then it exits 0 (not 139: native code stopped mid-build at finalisation)
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.split()[:2] == ["fallback", "timeout"]


def test_a_process_exits_while_a_source_hangs_in_its_own_call() -> None:
    # Given a source blocked for good in its own call (a stuck database read)
    # When the process ends
    child = run_child(
        """
        stuck = threading.Event()
        resolve(lambda: stuck.wait(), 0.05)
        """
    )
    # Then it exits 0 without waiting for the read (the test's bound would catch a hang)
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.split()[:2] == ["fallback", "timeout"]


def test_at_exit_work_stops_at_its_checkpoint_and_no_new_shared_path_starts() -> None:
    # Given a lazy source that yields rows forever, abandoned at its deadline
    # When exit's hook runs (as atexit will), then a pipeline asks again
    child = run_child(
        """
        import itertools
        from leadctx_bundle.deadline import stop_at_exit
        row = {"id": "m", "content": "x", "created_at": "2026-11-10T10:00:00Z"}
        resolve(lambda: itertools.repeat(row), 0.05)
        workers = [t for t in threading.enumerate() if t.name.startswith("leadctx-shared-path")]
        print("drained", stop_at_exit(5.0), flush=True)
        for worker in workers:
            worker.join(30.0)
        print("alive", sum(worker.is_alive() for worker in workers), flush=True)
        resolve(lambda: [row], 5.0)
        """
    )
    # Then the endless read stopped (its worker ended), and the new call fell back at once,
    # refused by the closed pool
    assert child.returncode == 0, child.stderr[-2000:]
    lines = child.stdout.splitlines()
    assert lines[0].split()[:2] == ["fallback", "timeout"]
    assert lines[1:3] == ["drained True", "alive 0"]
    assert lines[3].split() == [
        "fallback",
        "timeout",
        "leadctx_bundle.deadline.WorkerPoolClosed",
    ]
