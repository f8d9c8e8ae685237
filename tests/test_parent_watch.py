"""A forked process that called `exit_with_parent` ends soon after its parent is SIGKILLed,
by the kernel's parent-death signal or, without it, by the parent-pid watch."""

from __future__ import annotations

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
