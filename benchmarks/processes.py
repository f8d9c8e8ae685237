"""Timing `rag-indexer` as separate processes, as the compose topology runs it: wall time,
exit status and the child's own peak RSS (from wait4), each run with its own hash seed."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RAG = str(Path(sys.executable).with_name("rag-indexer"))


@dataclass(frozen=True)
class ProcessRun:
    code: int
    wall_s: float
    peak_rss_mib: float
    stdout: str


def run_cli(args: list[str], env: dict[str, str], *, hash_seed: int) -> ProcessRun:
    """`rag-indexer ARGS...` in a fresh process; stderr is discarded (it logs there)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [RAG, *args],
        env={**env, "PYTHONHASHSEED": str(hash_seed)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall_s = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    return ProcessRun(proc.returncode, wall_s, usage.ru_maxrss / 1024, stdout)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (with few samples, p95 is the maximum)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def spread(values: list[float], digits: int = 2) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 0.5), digits),
        "p95": round(percentile(values, 0.95), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def service_env(**variables: str) -> dict[str, str]:
    """This environment without RAG_* variables, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(variables)
    return env
