"""`tether approvals`: review the tool calls an agent waits on, and approve or deny them."""

from __future__ import annotations

import contextlib
import getpass
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from tether.errors import ConfigError
from tether.tools import Approval, ApprovalStatus, SqliteApprovalStore, ThreadedApprovalStore

from ._common import console, handle_errors

__all__ = ["approvals"]

_STATUSES = ("pending", "approved", "denied", "expired", "all")

db_option = click.option(
    "--db",
    envvar="TETHER_APPROVALS_DB",
    default=".tether/approvals.db",
    show_default=True,
    help="The SQLite approvals file the agent writes to, or the gateway's database URL "
    "(sqlite:///FILE, postgresql://...) for approvals in its audit store (or "
    "$TETHER_APPROVALS_DB).",
)
tenant_option = click.option(
    "--tenant", help="Whose approvals; without it, those of requests made without a tenant."
)
approver_option = click.option(
    "--approver",
    default=getpass.getuser,
    show_default="your user name",
    help="Who decides; recorded with the time.",
)


@contextlib.contextmanager
def _store(db: str) -> Iterator[ThreadedApprovalStore]:
    """The approvals behind ``--db``: a database URL is an audit store (the gateway's, with
    its migrations applied), anything else the file of a SqliteApprovalStore."""
    if "://" in db:
        try:
            from tether.store import Store, StoreApprovalStore
        except ImportError as exc:
            raise ConfigError(
                f"a database URL needs the server extra ({exc.name} is missing): "
                "pip install 'tether[server]'"
            ) from None
        with Store(db) as store:
            yield StoreApprovalStore(store)
        return
    if not Path(db).exists():
        raise ConfigError(
            f"no approvals database at {db}: pass --db with the file the agent's "
            "SqliteApprovalStore uses, or the gateway's database URL (or set TETHER_APPROVALS_DB)"
        )
    yield SqliteApprovalStore(Path(db))


def _public(approval: Approval, *, context: bool = False) -> dict[str, Any]:
    return approval.model_dump(mode="json", exclude=None if context else {"context"})


def _when(approval: Approval) -> str:
    return f"{approval.created_at:%Y-%m-%d %H:%M:%S}"


def _args(arguments: dict[str, Any], width: int = 60) -> str:
    text = json.dumps(arguments, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


@click.group(name="approvals")
def approvals() -> None:
    """Tool calls an agent is waiting on: review them, then approve or deny.

    \b
    An agent turn (Guardrails with tools and a SqliteApprovalStore) stops when the tool gate
    says a call needs a person. Decide it here; the application then resumes the
    conversation with `rails.resume(ID)`. Undecided approvals time out and deny.
      tether approvals list --db .tether/approvals.db
      tether approvals show ID
      tether approvals approve ID --approver alice --reason "customer confirmed by phone"
      tether approvals approve ID --args '{"amount": 100}'   # approve with changed arguments
      tether approvals deny ID --reason "an instruction injected in a document"
    """


@approvals.command(name="list")
@db_option
@tenant_option
@click.option(
    "--status",
    type=click.Choice(_STATUSES),
    default="pending",
    show_default=True,
    help="Which approvals to list.",
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@handle_errors
def list_approvals(db: str, tenant: str | None, status: str, limit: int, as_json: bool) -> None:
    """List approvals, newest first (pending ones by default)."""
    wanted: ApprovalStatus | None = None if status == "all" else status  # type: ignore[assignment]
    with _store(db) as store:
        found = store.find_sync(tenant=tenant, status=wanted, limit=limit)
    if as_json:
        for approval in found:
            click.echo(json.dumps(_public(approval), ensure_ascii=False))
        return
    if not found:
        who = f"tenant '{tenant}'" if tenant else "requests without a tenant (see --tenant)"
        console.print(f"no {'' if status == 'all' else status + ' '}approvals for {who}")
        return
    table = Table(box=None, pad_edge=False)
    table.add_column("id", no_wrap=True)
    for column in ("created (UTC)", "status", "tool", "arguments", "user"):
        table.add_column(column)
    for approval in found:
        table.add_row(
            approval.id,
            _when(approval),
            approval.status,
            f"{approval.tool} ({approval.side_effect})",
            escape(_args(approval.final_arguments)),
            escape(approval.user or "-"),
        )
    console.print(table)


@approvals.command()
@click.argument("approval_id")
@db_option
@tenant_option
@click.option("--json", "as_json", is_flag=True, help="The approval as JSON.")
@click.option("--context", is_flag=True, help="With --json: include the saved conversation.")
@handle_errors
def show(approval_id: str, db: str, tenant: str | None, as_json: bool, context: bool) -> None:
    """Show one approval: the call, why the gate stopped it, and its conversation."""
    with _store(db) as store:
        approval = store.get_sync(approval_id, tenant=tenant)
    if as_json:
        click.echo(json.dumps(_public(approval, context=context), ensure_ascii=False, indent=2))
        return
    rows = [
        ("id", approval.id),
        ("status", approval.status),
        ("tool", f"{approval.tool} ({approval.side_effect})"),
        ("arguments", json.dumps(approval.arguments, ensure_ascii=False)),
        ("why", approval.reason),
        ("tenant", approval.tenant or "-"),
        ("user", approval.user or "-"),
        ("conversation", approval.conversation_id or "-"),
        ("policy", approval.policy_version),
        ("created", f"{_when(approval)} UTC"),
        ("expires", f"{approval.expires_at:%Y-%m-%d %H:%M:%S} UTC"),
    ]
    if approval.approved_arguments is not None:
        rows.append(("approved with", json.dumps(approval.approved_arguments, ensure_ascii=False)))
    if approval.decided_at is not None:
        by = f" by {approval.approver}" if approval.approver else ""
        rows.append(("decided", f"{approval.decided_at:%Y-%m-%d %H:%M:%S} UTC{by}"))
    if approval.note:
        rows.append(("note", approval.note))
    asked = approval.context.get("user_text")
    if asked:
        rows.append(("the user asked", str(asked)))
    for name, value in rows:
        console.print(f"[bold]{name:<15}[/bold] {escape(value)}")


def _decide(
    approval_id: str,
    db: str,
    tenant: str | None,
    *,
    approve: bool,
    approver: str,
    reason: str,
    arguments: dict[str, Any] | None = None,
) -> None:
    with _store(db) as store:
        decided = store.decide_sync(
            approval_id,
            tenant=tenant,
            approve=approve,
            approver=approver,
            note=reason,
            arguments=arguments,
        )
    changed = " with changed arguments" if decided.approved_arguments is not None else ""
    console.print(
        f"{decided.status} {decided.id} ({decided.tool}){changed} by {decided.approver} at "
        f"{decided.decided_at:%Y-%m-%d %H:%M:%S} UTC; the application resumes the "
        "conversation with rails.resume(ID)"
    )


@approvals.command()
@click.argument("approval_id")
@db_option
@tenant_option
@approver_option
@click.option("--reason", default="", help="Why; recorded with the decision.")
@click.option(
    "--args",
    "args_json",
    help="Approve with these arguments instead (a JSON object; the policy's rules still apply).",
)
@handle_errors
def approve(
    approval_id: str,
    db: str,
    tenant: str | None,
    approver: str,
    reason: str,
    args_json: str | None,
) -> None:
    """Approve a pending call, optionally with changed arguments."""
    arguments: dict[str, Any] | None = None
    if args_json is not None:
        try:
            arguments = json.loads(args_json)
        except ValueError as exc:
            raise ConfigError(f"--args is not valid JSON: {exc}") from None
        if not isinstance(arguments, dict):
            raise ConfigError("--args must be a JSON object, e.g. '{\"amount\": 100}'")
    _decide(
        approval_id,
        db,
        tenant,
        approve=True,
        approver=approver,
        reason=reason,
        arguments=arguments,
    )


@approvals.command()
@click.argument("approval_id")
@db_option
@tenant_option
@approver_option
@click.option("--reason", default="", help="Why; the model is told, and it is recorded.")
@handle_errors
def deny(approval_id: str, db: str, tenant: str | None, approver: str, reason: str) -> None:
    """Deny a pending call; the agent is told and carries on without it."""
    _decide(approval_id, db, tenant, approve=False, approver=approver, reason=reason)
