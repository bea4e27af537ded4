"""Conventions as tests: curated public surfaces, documented guards and commands."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import click
import pytest

import tether
from tether import registry
from tether.cli import cli

PACKAGES = [
    "tether",
    "tether.policy",
    "tether.guards",
    "tether.models",
    "tether.pipeline",
    "tether.cli",
    "tether.embed",
    "tether.datasets",
    "tether.redteam",
    "tether.evals",
    "tether.tools",
    "tether.store",
    "tether.server",
    "tether.monitor",
]
README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_complete_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    # isort-style, as ruff's RUF022 keeps it: CONSTANTS, then Classes, then functions.
    key = lambda n: (0 if n.isupper() else 1 if n[:1].isupper() else 2, n)
    assert exported == sorted(exported, key=key), f"{name}.__all__ is not sorted"
    for symbol in exported:
        assert hasattr(module, symbol), f"{name}.{symbol} is in __all__ but missing"
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and not isinstance(v, type(tether))
        and getattr(v, "__module__", "").startswith("tether")
    }
    assert public <= set(exported), (
        f"{name} has public names missing from __all__: {public - set(exported)}"
    )


def test_implementation_modules_are_private() -> None:
    for name in PACKAGES[1:]:
        package = importlib.import_module(name)
        for info in pkgutil.iter_modules(package.__path__):
            assert info.name.startswith("_"), f"{name}.{info.name} should be _private"


def test_every_builtin_guard_is_documented() -> None:
    for reg in registry.registered("guard"):
        if reg.factory.__module__.startswith("tether."):
            assert reg.summary, f"guard {reg.name} has no docstring"
            assert f"| `{reg.name}` |" in README, (
                f"guard {reg.name} missing from the README's guard table"
            )


def test_every_policy_field_is_in_the_readme_reference() -> None:
    for field in tether.Policy.model_fields:
        if field != "tenant":
            assert f"| `{field}` |" in README, (
                f"policy field {field} missing from the README reference"
            )


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []
    for name, command in group.commands.items():
        out.append((f"{prefix}{name}", command))
        if isinstance(command, click.Group):
            out += _commands(command, f"{prefix}{name} ")
    return out


def test_every_cli_command_has_help_text() -> None:
    for name, command in _commands(cli):
        assert command.help, f"`tether {name}` has no help text"
