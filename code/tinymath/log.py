"""Logging to the console (rich) and to a file beside a stage's outputs, and progress bars."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")
# Wide when not a terminal, so CI logs keep one message per line (greppable).
console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
logger = logging.getLogger("tinymath")


def setup_console(level: int = logging.INFO) -> None:
    if not any(isinstance(h, RichHandler) for h in logger.handlers):
        handler = RichHandler(console=console, show_path=False, rich_tracebacks=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False  # libraries (absl, orbax) configure the root logger: no duplicate lines


def attach_file(path: Path) -> logging.Handler:
    """Mirror the log to `path` (appending) until the returned handler is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return handler


def detach(handler: logging.Handler) -> None:
    logger.removeHandler(handler)
    handler.close()


def progress(items: Iterable[T], total: int | None = None, desc: str = "") -> Iterator[T]:
    """A rich progress bar on stderr, disabled when stderr is not a terminal (CI logs stay readable)."""
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn()]
    with Progress(*columns, console=console, disable=not sys.stderr.isatty(), transient=True) as bar:
        task = bar.add_task(desc, total=total)
        for item in items:
            yield item
            bar.advance(task)
