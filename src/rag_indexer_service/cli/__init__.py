"""`rag-indexer`: the command line of the service, one module per group of commands.

    base.py        the Typer apps, consoles, one-line errors, cabinet ids
    indexing.py    index, search
    ledger.py      runs, status
    processes.py   worker, scheduler, api, up (the long-running processes)
    admin.py       db upgrade, demo seed, sources check

Owns no SQL and no state: each command opens the runtime and calls `service`, the ledger, the
dispatcher or a process's entry point. May import every other package except `api`'s
internals (it starts `api.server` only) and `ui`.
"""

from __future__ import annotations

import re
import sys

import typer
from typer.exceptions import TyperException

from rag_indexer_service.cli import admin, indexing, ledger, processes
from rag_indexer_service.cli.base import app

__all__ = ["admin", "app", "indexing", "ledger", "main", "processes"]


def main() -> None:
    """Console entry point: usage errors are one line too, like every other error."""
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        print("error: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except TyperException as exc:  # click's UsageError family, vendored by typer
        message = str(getattr(exc, "format_message", exc.__str__)())
        ctx = getattr(exc, "ctx", None)
        if not message and ctx is not None:  # `no_args_is_help`: show the help, not an error
            print(ctx.get_help())
            raise SystemExit(0) from None
        negative = re.fullmatch(r"No such option: (-\d+)", message)
        if negative:
            message = f"cabinet id {negative.group(1)} must be a positive 64-bit integer"
        hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
        print(f"error: {message}{hint}", file=sys.stderr)
        raise SystemExit(2) from None
    raise SystemExit(code if isinstance(code, int) else 0)
