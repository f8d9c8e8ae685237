"""`exit_with_parent()`: a forked worker process ends when the process that forked it dies.

`rag-indexer worker` is Dramatiq's parent process; it forks the worker processes. When the
parent is killed with SIGKILL (OOM killer, `kill -9`, a container runtime), nothing tells the
children: they would go on consuming, holding database connections and logging into a pipe
nobody reads. Here the kernel kills the child with its parent (Linux `PR_SET_PDEATHSIG`), and a
thread watching the parent pid covers other systems. A run in flight is left `running`; its
heartbeat stops and the scheduler's reaper takes it over, as after any crash.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
import time

__all__ = ["exit_with_parent", "set_parent_death_signal"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
EXIT_PARENT_GONE = 70


def set_parent_death_signal(signum: int = signal.SIGKILL) -> bool:
    """Ask Linux to send `signum` to this process when its parent dies; False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _parent_gone(parent_pid: int) -> None:
    log.error("parent process %s is gone; worker process %s exits", parent_pid, os.getpid())
    os._exit(EXIT_PARENT_GONE)


def _watch(parent_pid: int, poll_s: float) -> None:
    while os.getppid() == parent_pid:
        time.sleep(poll_s)
    _parent_gone(parent_pid)


def exit_with_parent(parent_pid: int, *, poll_s: float = 0.5, use_prctl: bool = True) -> None:
    """End this process (at once, exit status 70) when the process `parent_pid` dies.

    Call it in the child, early. `use_prctl=False` leaves only the parent-pid watch (tests).
    """
    if use_prctl:
        set_parent_death_signal()
    if os.getppid() != parent_pid:  # it died before we asked
        _parent_gone(parent_pid)
    threading.Thread(
        target=_watch, args=(parent_pid, poll_s), name="parent-watch", daemon=True
    ).start()
