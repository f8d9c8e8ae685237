"""Timing `rag-indexer` as separate processes, as the compose topology runs it: wall time,
exit status and the child's own peak RSS, each run with its own hash seed.

The peak RSS is the child's VmHWM (Linux), sampled every 20 ms while it runs: wait4's
ru_maxrss would also count the parent's memory that the child had between fork and exec.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
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


def _high_water_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def run_cli(args: list[str], env: dict[str, str], *, hash_seed: int) -> ProcessRun:
    """`rag-indexer ARGS...` in a fresh process; stderr is discarded (it logs there)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as stdout:
        proc = subprocess.Popen(
            [RAG, *args],
            env={**env, "PYTHONHASHSEED": str(hash_seed)},
            stdout=stdout,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        peak_mib = 0.0
        while proc.poll() is None:
            sampled = _high_water_mib(proc.pid)
            if sampled is not None:
                peak_mib = max(peak_mib, sampled)
            time.sleep(0.02)
        wall_s = time.perf_counter() - started
        stdout.seek(0)
        return ProcessRun(proc.returncode, wall_s, peak_mib, stdout.read())


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
