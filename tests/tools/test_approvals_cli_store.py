"""`tether approvals --db URL` decides the approvals the gateway keeps in its audit store
(SQLite or PostgreSQL), tenant by tenant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tether.cli import cli
from tether.store import Store, StoreApprovalStore
from tether.tools import new_approval


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.db'}"
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url


def test_the_cli_decides_an_audit_store_approval(db_url: str) -> None:
    approval = new_approval(
        timeout_s=3600,
        tenant="acme",
        tool="transfer",
        call_id="c1",
        arguments={"to_account": "12345678", "amount": 250.0},
        side_effect="destructive",
        reason="destructive: a person decides",
    )
    with Store(db_url) as store:
        StoreApprovalStore(store)._insert(approval)
    runner = CliRunner()
    listed = runner.invoke(cli, ["approvals", "list", "--db", db_url, "--tenant", "acme", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [approval.id]
    other = runner.invoke(
        cli, ["approvals", "approve", approval.id, "--db", db_url, "--tenant", "globex"]
    )
    assert other.exit_code == 2 and "no approval" in other.stderr
    approved = runner.invoke(
        cli,
        [
            "approvals",
            "approve",
            approval.id,
            "--db",
            db_url,
            "--tenant",
            "acme",
            "--approver",
            "alice",
        ],
    )
    assert approved.exit_code == 0, approved.output
    with Store(db_url) as store:
        decided = StoreApprovalStore(store).get_sync(approval.id, tenant="acme")
    assert decided.status == "approved" and decided.approver == "alice"
