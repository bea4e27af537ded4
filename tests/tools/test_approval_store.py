"""Approval stores: tenant scoping, decisions, timeouts, resume-once; in memory and SQLite."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tether.errors import ApprovalError, StoreError
from tether.tools import (
    Approval,
    ApprovalStore,
    MemoryApprovalStore,
    SqliteApprovalStore,
    new_approval,
)


@pytest.fixture(params=["memory", "sqlite"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> MemoryApprovalStore | SqliteApprovalStore:
    if request.param == "memory":
        return MemoryApprovalStore()
    return SqliteApprovalStore(tmp_path / "approvals.db")


def pending(tenant: str | None = "acme", timeout_s: float = 3600, **extra: object) -> Approval:
    return new_approval(
        timeout_s=timeout_s,
        tenant=tenant,
        user="u1",
        tool="transfer",
        call_id="call_1",
        arguments={"to_account": "12345678", "amount": 50.0},
        side_effect="destructive",
        reason="'transfer' is a destructive tool",
        context={"messages": [{"role": "user", "content": "pay rent"}]},
        **extra,
    )


async def test_round_trip(store: ApprovalStore) -> None:
    approval = pending()
    await store.add(approval)
    got = await store.get(approval.id, tenant="acme")
    assert got == approval
    assert [a.id for a in await store.find(tenant="acme", status="pending")] == [approval.id]
    decided = await store.decide(
        approval.id, tenant="acme", approve=True, approver="alice", note="called the customer"
    )
    assert decided.status == "approved" and decided.approver == "alice"
    assert decided.decided_at is not None and decided.note == "called the customer"
    assert decided.final_arguments == approval.arguments
    assert await store.find(tenant="acme", status="pending") == []
    assert (await store.get(approval.id, tenant="acme")).status == "approved"
    claimed = await store.claim(approval.id, tenant="acme")
    assert claimed.resumed_at is not None
    with pytest.raises(ApprovalError, match="already resumed its conversation"):
        await store.claim(approval.id, tenant="acme")


async def test_modify_deny_and_decide_once(store: ApprovalStore) -> None:
    a, b = pending(), pending()
    await store.add(a)
    await store.add(b)
    changed = await store.decide(
        a.id, tenant="acme", approve=True, approver="bob", arguments={"amount": 5.0}
    )
    assert changed.final_arguments == {"amount": 5.0} and changed.arguments["amount"] == 50.0
    with pytest.raises(ApprovalError, match="already approved by bob"):
        await store.decide(a.id, tenant="acme", approve=False, approver="carol")
    with pytest.raises(ApprovalError, match="only go with an approval"):
        await store.decide(b.id, tenant="acme", approve=False, approver="x", arguments={})
    with pytest.raises(ApprovalError, match="approver name is required"):
        await store.decide(b.id, tenant="acme", approve=False, approver="  ")
    denied = await store.decide(b.id, tenant="acme", approve=False, approver="carol")
    assert denied.status == "denied" and denied.approver == "carol"
    with pytest.raises(ApprovalError, match="exists already"):
        await store.add(a)


async def test_a_tenant_cannot_see_or_decide_another_tenants_approval(store: ApprovalStore) -> None:
    mine, theirs, untenanted = pending("acme"), pending("globex"), pending(None)
    for approval in (mine, theirs, untenanted):
        await store.add(approval)
    assert [a.id for a in await store.find(tenant="acme")] == [mine.id]
    assert [a.id for a in await store.find(tenant="globex")] == [theirs.id]
    assert [a.id for a in await store.find(tenant=None)] == [untenanted.id]
    for tenant in ("acme", None, "globe"):
        with pytest.raises(ApprovalError, match=f"there is no approval '{theirs.id}'"):
            await store.get(theirs.id, tenant=tenant)
        with pytest.raises(ApprovalError, match="there is no approval"):
            await store.decide(theirs.id, tenant=tenant, approve=True, approver="mallory")
        with pytest.raises(ApprovalError, match="there is no approval"):
            await store.claim(theirs.id, tenant=tenant)
    # The same message as for an id that does not exist at all: nothing leaks.
    with pytest.raises(ApprovalError) as unknown:
        await store.get("no-such-id", tenant="acme")
    with pytest.raises(ApprovalError) as foreign:
        await store.get(theirs.id, tenant="acme")
    assert str(unknown.value).replace("no-such-id", "X") == str(foreign.value).replace(
        theirs.id, "X"
    )
    assert (await store.get(theirs.id, tenant="globex")).status == "pending"


async def test_timeouts_deny(store: ApprovalStore) -> None:
    approval = pending(timeout_s=0.05)
    await store.add(approval)
    with pytest.raises(ApprovalError, match="still pending"):
        await store.claim(approval.id, tenant="acme")
    await asyncio.sleep(0.08)
    expired = await store.get(approval.id, tenant="acme")
    assert expired.status == "expired" and "timed out" in expired.note
    assert await store.find(tenant="acme", status="pending") == []
    assert [a.id for a in await store.find(tenant="acme", status="expired")] == [approval.id]
    with pytest.raises(ApprovalError, match=r"timed out at .* timeouts deny"):
        await store.decide(approval.id, tenant="acme", approve=True, approver="late")
    claimed = await store.claim(approval.id, tenant="acme")  # resumes as a denial
    assert claimed.status == "expired"


async def test_find_lists_newest_first_with_a_limit(store: ApprovalStore) -> None:
    base = datetime.now(UTC)
    approvals = [
        pending().model_copy(update={"created_at": base - timedelta(minutes=i)}) for i in range(3)
    ]
    for approval in reversed(approvals):
        await store.add(approval)
    assert [a.id for a in await store.find(tenant="acme")] == [a.id for a in approvals]
    assert len(await store.find(tenant="acme", limit=2)) == 2


async def test_racing_approvers_cannot_both_win(store: ApprovalStore) -> None:
    approval = pending()
    await store.add(approval)
    results = await asyncio.gather(
        *(
            store.decide(approval.id, tenant="acme", approve=i % 2 == 0, approver=f"a{i}")
            for i in range(6)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, Approval)]
    assert len(winners) == 1
    assert all(isinstance(r, ApprovalError) for r in results if r not in winners)
    final = await store.get(approval.id, tenant="acme")
    assert final.approver == winners[0].approver


def test_sqlite_persists_across_processes_and_migrates(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "approvals.db"
    first = SqliteApprovalStore(path)
    approval = pending()
    asyncio.run(first.add(approval))
    second = SqliteApprovalStore(path)  # as `tether approvals` opens it
    assert second.get_sync(approval.id, tenant="acme") == approval
    second.decide_sync(approval.id, tenant="acme", approve=True, approver="cli")
    assert asyncio.run(first.get(approval.id, tenant="acme")).approver == "cli"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer tether"):
        SqliteApprovalStore(path)


def test_sqlite_reports_an_unusable_file(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"not-a-db.*file is not a database"):
        SqliteApprovalStore(bad)


def test_stores_satisfy_the_protocol(tmp_path: Path) -> None:
    assert isinstance(MemoryApprovalStore(), ApprovalStore)
    assert isinstance(SqliteApprovalStore(tmp_path / "a.db"), ApprovalStore)
