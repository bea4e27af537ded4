"""`tether policy`: schema, check, compile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from tether import registry
from tether.errors import ModelNotAvailableError
from tether.guards import OVERLAP_THRESHOLD, topic_overlaps
from tether.policy import Policy, compile_prompt, load_policy

from ._common import console, err_console, handle_errors

__all__ = ["policy"]


@click.group()
def policy() -> None:
    """Write, validate and compile policy files.

    \b
    tether policy schema > policy.schema.json   # JSON Schema for your editor
    tether policy check policy.yaml             # every problem, with file:line
    tether policy compile policy.yaml --tenant acme
    """


@policy.command()
def schema() -> None:
    """Print the policy file's JSON Schema (for editor completion and validation)."""
    console.print_json(json.dumps(policy_json_schema()))


def policy_json_schema() -> dict[str, Any]:
    doc = Policy.model_json_schema()
    doc["properties"].pop("tenant", None)
    tenants = doc["properties"]["tenants"]
    # In files a tenant is an overlay mapping or the path of an overlay file.
    tenants["additionalProperties"] = {
        "anyOf": [tenants["additionalProperties"], {"type": "string"}]
    }
    # Each registered guard's parameters, so editors complete and check `params` too.
    rules = []
    for reg in registry.registered("guard"):
        if reg.params is None:
            continue
        params = reg.params.model_json_schema(ref_template="#/$defs/{model}")
        doc.setdefault("$defs", {}).update(params.pop("$defs", {}))
        rules.append(
            {
                "if": {"properties": {"guard": {"const": reg.name}}},
                "then": {"properties": {"params": params}},
            }
        )
    doc["$defs"]["GuardConfig"]["allOf"] = rules
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = "tether policy"
    return doc


@policy.command()
@click.argument("file", type=click.Path(path_type=Path))
@handle_errors
def check(file: Path) -> None:
    """Validate FILE, its tenant overlays and guard parameters; report every problem."""
    loaded = load_policy(file)
    console.print(f"[green]ok[/green] {escape(loaded.version)}")
    resolved = [loaded] + [loaded.for_tenant(t) for t in sorted(loaded.tenants)]
    for tenant in resolved[1:]:
        console.print(f"  tenant {escape(tenant.tenant or '')}: {escape(tenant.version)}")
    _warn_overlaps(resolved)


def _warn_overlaps(policies: list[Policy]) -> None:
    """Topics that say nearly the same thing make the scope guard's choice unreliable."""
    seen: set[str] = set()
    for policy in policies:
        key = policy.scope.model_dump_json()
        if key in seen or len(policy.scope.allowed_topics) + len(policy.scope.forbidden_topics) < 2:
            continue
        seen.add(key)
        try:
            overlaps = topic_overlaps(policy)
        except ModelNotAvailableError as exc:
            err_console.print(
                f"[yellow]note:[/yellow] topic overlap not checked: {escape(str(exc))}"
            )
            return
        where = f" (tenant {policy.tenant})" if policy.tenant else ""
        for o in overlaps:
            err_console.print(
                f"[yellow]warning:[/yellow] topics {o.topic_a} and {o.topic_b} overlap{where} "
                f"(similarity {o.similarity:.2f} ≥ {OVERLAP_THRESHOLD})"
            )


@policy.command(name="compile")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--tenant", "-t", help="Apply this tenant's overlay first.")
@click.option("--json", "as_json", is_flag=True, help="Print the messages as JSON.")
@click.option(
    "--stack",
    type=click.Choice(["full", "prompt"]),
    default="full",
    show_default=True,
    help="full: what the model gets behind the guards (a scope guard gives forbidden and "
    "out-of-scope requests their replies, so the prompt leaves those sentences out); "
    "prompt: the prompt alone, for a model with no guards in front.",
)
@handle_errors
def compile_cmd(file: Path, tenant: str | None, as_json: bool, stack: str) -> None:
    """Print the system prompt and few-shot messages compiled from FILE."""
    resolved = load_policy(file).for_tenant(tenant)
    compiled = compile_prompt(resolved, guarded=stack == "full")
    if as_json:
        console.print_json(
            json.dumps({"version": compiled.version, "messages": compiled.messages()})
        )
        return
    console.print(f"[dim]# version {escape(compiled.version)}[/dim]")
    for message in compiled.messages():
        console.print(f"[bold]--- {message['role']} ---[/bold]")
        console.print(escape(message["content"]))
