"""`tether approvals list|show|approve|deny` over a SQLite approvals file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tether.cli import cli
from tether.tools import SqliteApprovalStore, new_approval


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "approvals.db"
    store = SqliteApprovalStore(path)
    for tenant, amount in (("acme", 10.0), ("acme", 20.0), ("globex", 30.0), (None, 40.0)):
        store._insert(
            new_approval(
                timeout_s=3600,
                tenant=tenant,
                tool="transfer",
                call_id="c",
                arguments={"amount": amount},
                side_effect="destructive",
                reason="'transfer' is a destructive tool",
                context={"user_text": f"send {amount}"},
            )
        )
    return path


def ids(db: Path, *extra: str) -> list[str]:
    code, out, err = run("approvals", "list", "--db", str(db), "--json", *extra)
    assert code == 0, err
    return [json.loads(line)["id"] for line in out.splitlines()]


def test_list_is_tenant_scoped(db: Path) -> None:
    assert len(ids(db, "--tenant", "acme")) == 2
    assert len(ids(db, "--tenant", "globex")) == 1
    assert len(ids(db)) == 1  # requests made without a tenant
    assert ids(db, "--tenant", "initech") == []
    code, out, _ = run("approvals", "list", "--db", str(db), "--tenant", "initech")
    assert code == 0 and "no pending approvals for tenant 'initech'" in out
    code, out, _ = run("approvals", "list", "--db", str(db), "--tenant", "acme")
    assert code == 0 and all(i in out for i in ids(db, "--tenant", "acme"))


def test_another_tenants_approval_cannot_be_shown_or_decided(db: Path) -> None:
    (theirs,) = ids(db, "--tenant", "globex")
    for command in ("show", "approve", "deny"):
        code, _, err = run("approvals", command, theirs, "--db", str(db), "--tenant", "acme")
        assert code == 2
        assert f"there is no approval '{theirs}' for tenant 'acme'" in err
    code, out, _ = run("approvals", "show", theirs, "--db", str(db), "--tenant", "globex")
    assert code == 0 and "pending" in out and "send 30.0" in out


def test_approve_with_changed_arguments_and_deny(db: Path) -> None:
    first, second = ids(db, "--tenant", "acme")  # newest first: 20.0, then 10.0
    code, out, err = run(
        "approvals", "approve", first, "--db", str(db), "--tenant", "acme",
        "--approver", "alice", "--args", '{"amount": 5}', "--reason", "capped",
    )  # fmt: skip
    assert code == 0, err
    assert "approved" in out and "with changed arguments by alice" in out
    code, out, _ = run("approvals", "deny", second, "--db", str(db), "--tenant", "acme",
                       "--approver", "bob", "--reason", "injected")  # fmt: skip
    assert code == 0 and f"denied {second}" in out
    code, out, _ = run("approvals", "show", first, "--db", str(db), "--tenant", "acme", "--json")
    shown = json.loads(out)
    assert shown["status"] == "approved" and shown["approver"] == "alice"
    assert shown["approved_arguments"] == {"amount": 5} and shown["note"] == "capped"
    assert "context" not in shown
    code, out, _ = run(
        "approvals", "show", first, "--db", str(db), "--tenant", "acme", "--json", "--context"
    )
    assert json.loads(out)["context"] == {"user_text": "send 20.0"}
    assert ids(db, "--tenant", "acme") == []
    assert len(ids(db, "--tenant", "acme", "--status", "all")) == 2
    assert ids(db, "--tenant", "acme", "--status", "denied") == [second]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--args", "{nope"], "--args is not valid JSON"),
        (["--args", "[1]"], "--args must be a JSON object"),
        (["--approver", " "], "an approver name is required"),
    ],
)
def test_bad_input_is_a_clean_error(db: Path, args: list[str], needle: str) -> None:
    (approval_id,) = ids(db)
    code, _, err = run("approvals", "approve", approval_id, "--db", str(db), *args)
    assert code == 2 and needle in err and "Traceback" not in err


def test_a_missing_database_names_the_fix(tmp_path: Path) -> None:
    code, _, err = run("approvals", "list", "--db", str(tmp_path / "none.db"))
    assert code == 2 and "no approvals database at" in err and "--db" in err
    assert not (tmp_path / "none.db").exists()


def test_database_from_the_environment(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_APPROVALS_DB", str(db))
    code, out, _ = run("approvals", "list", "--json")
    assert code == 0 and len(out.splitlines()) == 1


def test_group_help_is_a_getting_started_guide() -> None:
    code, out, _ = run("approvals", "--help")
    assert code == 0
    assert "tether approvals approve ID --approver alice" in out
    assert "rails.resume(ID)" in out
