"""What every command shares: the Typer apps, the consoles, one-line errors, cabinet ids."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import typer
from rich.console import Console
from typer.core import TyperArgument

from rag_indexer_service.config import Settings, load_settings
from rag_indexer_service.errors import RagIndexerError

__all__ = [
    "CliError",
    "app",
    "cabinet_id_or_exit",
    "db_app",
    "demo_app",
    "err",
    "fail",
    "out",
    "parse_cabinet_id",
    "run_command",
    "sources_app",
]

T = TypeVar("T")
MAX_CABINET_ID = 2**63 - 1


def _argument_type_in_help(self: TyperArgument, ctx: Any) -> str | None:
    """Arguments are shown by their metavar alone (`ID`), not with typer's type as well
    (`ID... <list[str]>`): the help says what to give, the type is no news to a user."""
    return None


setattr(TyperArgument, "display_type_rich", _argument_type_in_help)  # noqa: B010

app = typer.Typer(
    name="rag-indexer",
    help="Keep per-cabinet RAG indexes (Postgres + pgvector) in sync with their source data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Service database schema.", no_args_is_help=True)
demo_app = typer.Typer(
    help="The demo marketplace source (synthetic, mostly Russian).", no_args_is_help=True
)
sources_app = typer.Typer(help="The sources file (RAG_SOURCES_FILE).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(sources_app, name="sources")

out = Console(soft_wrap=True)  # piped lines stay whole: one report line per cabinet
err = Console(stderr=True, soft_wrap=True)


class CliError(Exception):
    """A message for the user; printed as one line, exit status 2."""


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"error: {message}", markup=False, highlight=False)
    return typer.Exit(code)


def setup_logging(settings: Settings, *, quiet: bool) -> None:
    from rag_indexer_service.logs import configure_logging, quiet_chatty_libraries

    level = logging.WARNING if quiet else getattr(logging, settings.log_level)
    configure_logging(level, settings.log_format)
    quiet_chatty_libraries(level)


def run_command(factory: Callable[[Settings], Coroutine[Any, Any, T]], *, quiet: bool = True) -> T:
    """Load settings, run `factory(settings)` on a new loop, turn our errors into one line."""
    try:
        settings = load_settings()
        setup_logging(settings, quiet=quiet)
        return asyncio.run(factory(settings))
    except RagIndexerError as exc:
        raise fail(str(exc)) from None
    except CliError as exc:
        raise fail(str(exc), code=2) from None
    except KeyboardInterrupt:
        raise fail("interrupted", code=130) from None


def parse_cabinet_id(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise CliError(f"cabinet id {raw!r} is not an integer") from None
    if not 0 < value <= MAX_CABINET_ID:
        raise CliError(f"cabinet id {raw} must be a positive 64-bit integer")
    return value


def cabinet_id_or_exit(raw: str) -> int:
    try:
        return parse_cabinet_id(raw)
    except CliError as exc:
        raise fail(str(exc), code=2) from None
