"""A forked process that called `exit_with_parent` ends soon after its parent is SIGKILLed,
by the kernel's parent-death signal or, without it, by the parent-pid watch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

PARENT = textwrap.dedent(
    """
    import os, sys, time
    from rag_indexer_service.jobs.parent_watch import exit_with_parent

    parent = os.getpid()
    child = os.fork()
    if child == 0:
        exit_with_parent(parent, poll_s=0.1, use_prctl=sys.argv[1] == "prctl")
        time.sleep(60)
        os._exit(0)
    print(child, flush=True)
    time.sleep(60)
    """
)

# A worker process as Dramatiq forks it: it imports `worker_main`. The audit hook records when
# the parent-death signal is armed (the `prctl` lookup) and which modules were imported first.
WORKER_CHILD = textwrap.dedent(
    """
    import json, multiprocessing, sys

    def child(conn):
        events = []

        def hook(event, args):
            if event == "import":
                events.append(("import", args[0]))
            elif event == "ctypes.dlsym" and args[1] == "prctl":
                events.append(("prctl", ""))

        sys.addaudithook(hook)
        try:
            import rag_indexer_service.jobs.worker_main  # noqa: F401
        except BaseException:
            pass
        conn.send(events)

    if __name__ == "__main__":
        ctx = multiprocessing.get_context("fork")
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=child, args=(theirs,))
        proc.start()
        events = ours.recv()
        proc.join()
        armed = events.index(("prctl", ""))
        print(json.dumps(sorted({name for kind, name in events[:armed] if kind == "import"})))
    """
)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("mechanism", ["prctl", "watch"])
def test_the_child_exits_when_its_parent_is_killed(mechanism: str) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", PARENT, mechanism], stdout=subprocess.PIPE, text=True
    ) as parent:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        check_child_dies_with(parent, child)


def check_child_dies_with(parent: subprocess.Popen[str], child: int) -> None:
    try:
        time.sleep(0.3)
        assert alive(child), "the child should live while its parent does"

        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 3
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)

        assert not alive(child)
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_a_worker_process_arms_the_parent_watch_before_its_heavy_imports() -> None:
    """A worker process whose parent is SIGKILLed while it starts must not finish starting up
    as an orphan: the imports after the watch take seconds on a busy machine (14 s measured
    at load 11, during which the orphan lived on)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    done = subprocess.run(
        [sys.executable, "-c", WORKER_CHILD],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    imported_before = set(json.loads(done.stdout))
    heavy = {"dramatiq", "sqlalchemy", "pydantic", "numpy", "rag_indexer_service.config"}
    assert imported_before & heavy == set(), sorted(imported_before)
