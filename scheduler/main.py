"""Scheduler entry point: `python -m scheduler.main [--once]` (same as `rag-indexer scheduler`)."""

import sys

from rag_indexer_service.cli import main as cli_main


def main() -> None:
    sys.argv = [sys.argv[0], "scheduler", *sys.argv[1:]]
    cli_main()


if __name__ == "__main__":
    main()
