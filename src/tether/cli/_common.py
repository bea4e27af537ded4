"""What every command group shares: the console and turning domain errors into one line."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from tether.errors import FileProblemsError, TetherError, UserError

__all__ = ["concurrency_option", "console", "err_console", "handle_errors"]

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])

# eval run and redteam run: None lets run_suite choose from the model (default_concurrency).
concurrency_option = click.option(
    "--concurrency",
    "-j",
    type=click.IntRange(1, 64),
    help="Cases at once (default: 1 for a model that computes in this process, such as the "
    "embedded one, whose calls and the guards' would only compete for the CPU; else 4).",
)


def handle_errors(fn: F) -> F:
    """Print tether's errors as clean lines (one per problem) instead of tracebacks.
    Exit 2 for user mistakes, 1 for runtime failures."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FileProblemsError as exc:
            for problem in exc.problems:
                err_console.print(f"[red]error:[/red] {escape(str(problem))}", markup=True)
            sys.exit(2)
        except TetherError as exc:
            err_console.print(f"[red]error:[/red] {escape(str(exc))}", markup=True)
            sys.exit(2 if isinstance(exc, UserError) else 1)

    return wrapper  # type: ignore[return-value]
