"""The `tether` command group."""

from __future__ import annotations

import click

from tether import __version__, registry

from ._approvals import approvals
from ._chat import chat
from ._common import console, handle_errors
from ._datasets import datasets
from ._db import db
from ._eval import eval_group
from ._monitor import monitor
from ._policy import policy
from ._redteam import redteam
from ._scan import scan
from ._serve import serve

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="tether")
def cli() -> None:
    """tether — put a production LLM application on a leash.

    \b
    Getting started:
      tether policy check examples/bank/policy.yaml
      tether policy compile examples/bank/policy.yaml --tenant northbank
      tether chat --policy examples/bank/policy.yaml --tenant northbank \\
          -m "How do I reset my card PIN?"
    """


@cli.group()
def guards() -> None:
    """The guards a policy can name."""


@guards.command(name="list")
@handle_errors
def list_guards() -> None:
    """List every registered guard (built-in and plugins) with its stages."""
    for reg in registry.registered("guard"):
        stages = "/".join(reg.extra.get("stages", ("input", "output")))
        console.print(f"{reg.name:<16} {stages:<13} {reg.summary}")


cli.add_command(policy)
cli.add_command(chat)
cli.add_command(datasets)
cli.add_command(scan)
cli.add_command(serve)
cli.add_command(db)
cli.add_command(eval_group)
cli.add_command(approvals)
cli.add_command(monitor)
cli.add_command(redteam)


def main() -> None:
    cli(prog_name="tether")
