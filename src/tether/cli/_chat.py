"""`tether chat`: a guarded conversation in the terminal."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click
from rich.markup import escape

from tether.messages import Message
from tether.models import load_model
from tether.pipeline import GuardedResponse, Guardrails, JsonlSink, MemorySink
from tether.pipeline._events import EventSink
from tether.policy import load_policy

from ._common import console, handle_errors

__all__ = ["chat"]


@click.command()
@click.option(
    "--policy",
    "policy_file",
    required=True,
    type=click.Path(path_type=Path),
    help="Policy YAML file.",
)
@click.option("--tenant", "-t", help="Tenant whose overlay applies.")
@click.option("--model", "model_spec", help="Model spec; default: the policy's (embedded).")
@click.option("-m", "--message", help="Send one message, print the answer and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole guarded response as JSON.")
@click.option(
    "--events", type=click.Path(path_type=Path), help="Append each turn's event to this JSONL file."
)
@click.option("--user", help="User id recorded in events.")
@click.option(
    "--stream", is_flag=True, help="Print the answer as it streams (guards still run first)."
)
@handle_errors
def chat(
    policy_file: Path,
    tenant: str | None,
    model_spec: str | None,
    message: str | None,
    as_json: bool,
    events: Path | None,
    user: str | None,
    stream: bool,
) -> None:
    """Chat under a policy: one turn with -m, otherwise an interactive session.

    \b
    tether chat --policy examples/bank/policy.yaml --tenant northbank \\
        -m "How do I reset my card PIN?"
    """
    loaded = load_policy(policy_file)
    resolved = loaded.for_tenant(tenant)  # fail on a bad tenant before loading a model
    model = load_model(model_spec, timeout_s=resolved.model.timeout_s) if model_spec else None
    sink: EventSink = JsonlSink(events) if events else MemorySink()
    rails = Guardrails(loaded, model=model, sink=sink)
    if message is not None:
        if stream and not as_json:
            _show_actions(asyncio.run(_stream(rails, message, tenant, user)))
            return
        _show(rails.chat_sync(message, tenant=tenant, user=user), as_json)
        return
    _repl(rails, tenant, user, as_json)


async def _stream(
    rails: Guardrails, message: str, tenant: str | None, user: str | None
) -> GuardedResponse:
    async for chunk in rails.stream(message, tenant=tenant, user=user):
        console.print(escape(chunk.text), end="")
        if chunk.done and chunk.response is not None:
            console.print()
            return chunk.response
    raise AssertionError("a guarded stream always ends with a final chunk")


def _repl(rails: Guardrails, tenant: str | None, user: str | None, as_json: bool) -> None:
    version = rails.resolve(tenant).prompt.version
    console.print(
        f"[dim]policy {escape(version)} · /reset clears the conversation · Ctrl-D quits[/dim]"
    )
    history: list[Message] = []
    while True:
        try:
            line = click.prompt("you", prompt_suffix="> ", default="", show_default=False)
        except (EOFError, click.Abort):
            console.print()
            return
        if not line.strip():
            continue
        if line.strip() == "/reset":
            history.clear()
            console.print("[dim]conversation cleared[/dim]")
            continue
        history.append({"role": "user", "content": line})
        response = rails.chat_sync(history, tenant=tenant, user=user)
        history.append({"role": "assistant", "content": response.text})
        _show(response, as_json)


def _show(response: GuardedResponse, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(response.model_dump(mode="json")))
        return
    console.print(escape(response.text))
    _show_actions(response)


def _show_actions(response: GuardedResponse) -> None:
    for taken in response.actions:
        verb = {
            "block": "blocked",
            "escalate": "escalated",
            "redact": "redacted",
            "reask": "re-asked",
            "revise": "revised",
            "log": "flagged",
            "normalize": "normalized",
        }[taken.action]
        by = escape(", ".join(taken.guards))
        console.print(f"[dim]{verb} ({taken.stage}) by {by}: {escape(taken.reason)}[/dim]")
