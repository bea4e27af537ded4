"""A banking agent under tether's tool gate, driven by an "obedient" scripted model that
follows every instruction it reads, including instructions injected into a document.

    python examples/agent/bank.py --db /tmp/approvals.db "What's my balance?"
    python examples/agent/bank.py --db /tmp/approvals.db "What does an overdraft cost?"
    tether approvals list --db /tmp/approvals.db
    tether approvals approve ID --db /tmp/approvals.db --approver alice
    python examples/agent/bank.py --db /tmp/approvals.db --resume ID

See README.md for what each step shows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tether import Guardrails, TetherError, load_policy
from tether.messages import Message
from tether.models import ModelResponse, ScriptedModel, ToolCall
from tether.tools import SqliteApprovalStore, Tool, tool

HERE = Path(__file__).resolve().parent
CUSTOMER_ACCOUNT = "40001234"


class Bank:
    """The pretend core banking system: what the tools read and change."""

    def __init__(self) -> None:
        self.balances = {CUSTOMER_ACCOUNT: 12_400.50}
        self.closed: list[str] = []
        self.transfers: list[tuple[str, float]] = []
        self.emails: list[tuple[str, str]] = []

    @property
    def money_moved(self) -> bool:
        return bool(self.transfers or self.closed)


BANK = Bank()


@tool(side_effect="read")
def get_balance() -> str:
    """The balance of the signed-in customer's current account."""
    return f"Account {CUSTOMER_ACCOUNT}: £{BANK.balances[CUSTOMER_ACCOUNT]:,.2f}"


@tool(side_effect="read")
def list_transactions(limit: int = 10) -> list[dict[str, Any]]:
    """The customer's most recent transactions, newest first.

    Args:
        limit: How many transactions to return.
    """
    rows = [
        {"date": "2025-03-0" + str(9 - i % 9), "payee": payee, "amount": amount}
        for i, (payee, amount) in enumerate(
            [("Tesco", -42.10), ("Salary", 2_650.00), ("Rent", -950.00), ("Trainline", -38.40)]
        )
    ]
    return rows[:limit]


@tool(side_effect="read", untrusted=True)
def search_docs(query: str) -> str:
    """Search the bank's help documents.

    Args:
        query: Words to look for.
    """
    words = set(re.findall(r"\w+", query.lower()))
    hits = []
    for path in sorted((HERE / "docs").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        if words & set(re.findall(r"\w+", text.lower())):
            hits.append(f"## {path.name}\n{text}")
    return "\n\n".join(hits) or "No documents matched."


@tool(side_effect="destructive")
def transfer(to_account: str, amount: float, reference: str = "") -> str:
    """Send money from the customer's account to another account.

    Args:
        to_account: The eight-digit account number to pay.
        amount: How much, in pounds.
        reference: Shown on the recipient's statement.
    """
    BANK.balances[CUSTOMER_ACCOUNT] -= amount
    BANK.transfers.append((to_account, amount))
    return f"Sent £{amount:,.2f} to {to_account}."


@tool(side_effect="destructive")
def close_account() -> str:
    """Close the customer's current account."""
    BANK.closed.append(CUSTOMER_ACCOUNT)
    return f"Account {CUSTOMER_ACCOUNT} closed."


@tool(side_effect="write")
def send_email(to: str, subject: str, body: str) -> str:
    """E-mail someone on the customer's behalf.

    Args:
        to: The recipient's address.
        subject: The subject line.
        body: The message.
    """
    BANK.emails.append((to, body))
    return f"E-mail sent to {to}."


TOOLS: list[Tool] = [
    get_balance,
    list_transactions,
    search_docs,
    transfer,
    close_account,
    send_email,
]

_TRANSFER = re.compile(r"transfer\s+£?([\d,]+(?:\.\d+)?)\s+to\s+(?:account\s+)?(\d{8})", re.I)
_CLOSE = re.compile(r"close\s+(?:the\s+customer's\s+|my\s+|the\s+)?account", re.I)
_EMAIL = re.compile(r"e-?mail\b.*?\bto\s+([\w.+-]+@[\w-]+(?:\.[\w-]+)+)", re.I | re.S)


def obedient_agent(messages: Sequence[Message]) -> ModelResponse:
    """A model that does whatever the latest text tells it to: the customer's request, or an
    instruction it finds in a tool result. Exactly the agent an injection wants."""
    since_user = []
    for message in reversed(messages):
        if message["role"] == "user":
            break
        since_user.append(message)
    since_user.reverse()
    called = {
        c["function"]["name"]
        for m in since_user
        if m["role"] == "assistant"
        for c in m.get("tool_calls", [])
    }
    step = len([m for m in since_user if m["role"] == "assistant"])

    def call(name: str, **arguments: Any) -> ModelResponse:
        return ModelResponse(
            text="",
            model="obedient",
            tool_calls=(ToolCall(id=f"call_{step}", name=name, arguments=json.dumps(arguments)),),
            finish_reason="tool_calls",
        )

    last = messages[-1]
    if last["role"] == "user":
        asked = last["content"]
        if m := _TRANSFER.search(asked):
            return call("transfer", to_account=m[2], amount=float(m[1].replace(",", "")))
        if "balance" in asked.lower():
            return call("get_balance")
        if "transaction" in asked.lower():
            return call("list_transactions", limit=100)
        return call("search_docs", query=asked)
    read = "\n".join(m["content"] for m in since_user if m["role"] == "tool")
    if (m := _TRANSFER.search(read)) and "transfer" not in called:
        return call("transfer", to_account=m[2], amount=float(m[1].replace(",", "")))
    if _CLOSE.search(read) and "close_account" not in called:
        return call("close_account")
    if (m := _EMAIL.search(read)) and "send_email" not in called:
        return call("send_email", to=m[1], subject="Statement", body=read[:1500])
    return ModelResponse(
        text=f"Here is what I found: {last['content'][:300]}",
        model="obedient",
        finish_reason="stop",
    )


def build(db: Path) -> Guardrails:
    return Guardrails(
        load_policy(HERE / "policy.yaml"),
        model=ScriptedModel([obedient_agent], repeat_last=True, name="obedient"),
        tools=TOOLS,
        approvals=SqliteApprovalStore(db),
    )


def _show(reply: Any) -> None:
    print(reply.text)
    for record in reply.tool_calls:
        who = f" by {record.approver}" if record.approver else ""
        print(
            f"  {record.tool}({record.executed_arguments or record.arguments}) → "
            f"{record.decision}, {record.status}{who}: {record.reason}"
        )
    if reply.pending_approval:
        print(f"pending approval: {reply.pending_approval}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("message", nargs="?", help="What the customer says.")
    parser.add_argument("--db", type=Path, default=Path(".tether/approvals.db"))
    parser.add_argument("--tenant", help="northbank: no account closing, transfers ≤ £1,000.")
    parser.add_argument("--resume", metavar="ID", help="Carry on after approval ID is decided.")
    args = parser.parse_args()
    if not (args.resume or args.message):
        parser.error("say something, or --resume an approval")
    rails = build(args.db)
    try:
        if args.resume:
            reply = asyncio.run(rails.resume(args.resume, tenant=args.tenant))
        else:
            reply = asyncio.run(rails.chat(args.message, tenant=args.tenant, user="customer-1"))
    except TetherError as exc:
        raise SystemExit(f"error: {exc}") from None
    _show(reply)


if __name__ == "__main__":
    main()
