"""The audit store on SQLite and PostgreSQL: schema, tenants, keys, policies, events, feedback,
and that every query sees one tenant's rows only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tether.cli import cli
from tether.errors import ConfigError, StoreUnavailableError
from tether.guards import Span, Verdict
from tether.models import Usage
from tether.pipeline import ActionTaken, Event, Latency, RevisionRound
from tether.store import KEY_PREFIX, MIGRATIONS, Store
from tether.store._tables import api_keys, metadata


def test_migrations_are_applied_on_open_and_recorded(store: Store) -> None:
    status = store.status()
    assert status.up_to_date and status.current == MIGRATIONS[-1].number
    assert store.upgrade() == []  # again: nothing to do


def test_a_new_database_starts_empty_and_upgrades(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    with Store(url, upgrade=False) as store:
        assert store.status().current == 0
        assert [m.number for m in store.upgrade()] == [m.number for m in MIGRATIONS]
        assert store.status().up_to_date


@pytest.mark.postgres
def test_fresh_postgres_database_gets_every_table(fresh_postgres_url: str) -> None:
    with Store(fresh_postgres_url) as store:
        from sqlalchemy import inspect

        assert set(inspect(store.engine).get_table_names()) == set(metadata.tables)


def test_db_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    pending = runner.invoke(cli, ["db", "status", "--db", url])
    latest = MIGRATIONS[-1].number
    assert pending.exit_code == 1 and f"schema version 0 of {latest}" in pending.stdout
    assert all(f"pending {m.number}:" in pending.stdout for m in MIGRATIONS)
    upgraded = runner.invoke(cli, ["db", "upgrade", "--db", url])
    assert upgraded.exit_code == 0
    assert all(f"applied {m.number}:" in upgraded.stdout for m in MIGRATIONS)
    done = runner.invoke(cli, ["db", "status", "--db", url])
    assert done.exit_code == 0 and f"schema version {latest} of {latest}" in done.stdout


def test_db_command_errors_are_one_line() -> None:
    runner = CliRunner()
    bad = runner.invoke(cli, ["db", "status", "--db", "mysql://localhost/x"])
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: database URL 'mysql://localhost/x'")
    down = runner.invoke(cli, ["db", "status", "--db", "postgresql://nobody:secret@127.0.0.1:1/x"])
    assert down.exit_code == 1 and "cannot reach" in down.stderr
    assert "secret" not in down.stderr  # passwords never show
    assert "Traceback" not in bad.stderr + down.stderr


def test_unsupported_url() -> None:
    with pytest.raises(ConfigError, match="SQLite or PostgreSQL"):
        Store("mysql://localhost/x")


def test_unreachable_postgres_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailableError, match="cannot reach"):
        Store("postgresql://postgres@127.0.0.1:1/nothing")


def test_tenants(store: Store, new_name: Callable[[], str]) -> None:
    name = new_name()
    created = store.create_tenant(name, retention_days=7)
    assert created is not None and created.retention_days == 7
    assert store.create_tenant(name) is None  # taken
    assert store.get_tenant(name) == created
    updated = store.ensure_tenant(name, retention_days=30)
    assert updated.retention_days == 30 and updated.created_at == created.created_at
    assert name in {t.name for t in store.list_tenants()}
    assert store.get_tenant(new_name()) is None


def test_keys_are_stored_hashed_shown_once_and_revocable(
    store: Store, new_name: Callable[[], str]
) -> None:
    acme, other = new_name(), new_name()
    store.create_tenant(acme)
    store.create_tenant(other)
    made = store.create_key(acme, name="ci")
    assert made is not None
    record, plaintext = made
    assert plaintext.startswith(f"{KEY_PREFIX}_{record.id}_") and len(plaintext) > 50
    # Nothing in the database holds the key or its secret part.
    # The secret part may itself hold "_" (URL-safe base64): take all after the id.
    secret = plaintext.removeprefix(f"{KEY_PREFIX}_{record.id}_")
    with store.engine.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.id == record.id)).one()
    assert all(secret not in str(value) for value in row)
    assert store.authenticate(plaintext) == record
    assert store.authenticate(plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")) is None
    assert store.authenticate("tth_nothing") is None and store.authenticate("") is None
    assert [k.id for k in store.list_keys(acme)] == [record.id]
    assert store.list_keys(other) == []
    # Another tenant cannot revoke it; its own tenant can.
    assert store.revoke_key(other, record.id) is None
    assert store.authenticate(plaintext) is not None
    revoked = store.revoke_key(acme, record.id)
    assert revoked is not None and revoked.revoked_at is not None
    assert store.authenticate(plaintext) is None
    assert store.create_key(new_name()) is None  # no such tenant


def test_keys_expire(store: Store, new_name: Callable[[], str]) -> None:
    name = new_name()
    store.create_tenant(name)
    soon = datetime.now(UTC) + timedelta(hours=1)
    made = store.create_key(name, expires_at=soon)
    assert made is not None
    record, plaintext = made
    assert store.authenticate(plaintext) == record
    assert store.authenticate(plaintext, now=soon + timedelta(seconds=1)) is None


def test_policy_versions_are_kept_and_one_is_in_force(
    store: Store, new_name: Callable[[], str]
) -> None:
    acme, other = new_name(), new_name()
    store.create_tenant(acme)
    store.create_tenant(other)
    first = store.add_policy_version(acme, version="p@1", policy={"n": 1}, source="a.yaml")
    second = store.add_policy_version(acme, version="p@2", policy={"n": 2}, source="b.yaml")
    assert first is not None and second is not None
    assert second.active and store.active_policy(acme) == second
    again = store.add_policy_version(acme, version="p@1", policy={"n": 1}, source="a.yaml")
    assert again is not None and again.id == first.id and again.active  # reused, back in force
    assert [v.version for v in store.policy_versions(acme)] == ["p@1", "p@2"]
    assert [v.active for v in store.policy_versions(acme)] == [True, False]
    rolled = store.activate_policy(acme, second.id)
    assert rolled is not None and rolled.policy == {"n": 2}
    assert store.active_versions()[acme] == (second.id, "p@2")
    # The other tenant sees none of it, and cannot activate it.
    assert store.policy_versions(other) == [] and store.active_policy(other) is None
    assert store.activate_policy(other, first.id) is None
    assert store.get_policy_version(other, first.id) is None
    assert store.add_policy_version(new_name(), version="x", policy={}, source="") is None


def _rich_event(make_event: Callable[..., Event], tenant: str) -> Event:
    return make_event(
        tenant,
        user="user-1",
        conversation_id="conv-1",
        input="card 4111 1111 1111 1111 and a NUL \x00 byte",
        action="redact",
        actions=(ActionTaken(stage="output", action="redact", guards=("pii",), reason="card"),),
        verdicts=(
            Verdict(
                guard="pii",
                kind="pii",
                stage="output",
                flagged=True,
                score=0.9,
                category="CREDIT_CARD",
                spans=(Span(start=5, end=24, label="CREDIT_CARD"),),
                reason="a card number",
                action="redact",
                latency_ms=0.5,
            ),
        ),
        revisions=(
            RevisionRound(round=1, reasons="r", draft="d", critique="c", revised="v", passed=True),
        ),
        reasks=1,
        latency=Latency(input_guards_ms=1.5, model_ms=20.0, output_guards_ms=2.5, total_ms=25.0),
        usage=Usage(prompt_tokens=12, completion_tokens=7),
        error=None,
    )


def test_events_round_trip_whole(
    store: Store, new_name: Callable[[], str], make_event: Callable[..., Event]
) -> None:
    name = new_name()
    event = _rich_event(make_event, name)
    store.insert_events([event])
    back = store.get_event(name, event.id)
    # PostgreSQL text cannot hold NUL: every backend stores U+FFFD in its place.
    expected = event.model_copy(update={"input": event.input.replace("\x00", "\ufffd")})
    assert back == expected


def test_inserting_an_event_twice_stores_it_once(
    store: Store, new_name: Callable[[], str], make_event: Callable[..., Event]
) -> None:
    name = new_name()
    events = [make_event(name, input=f"q{i}") for i in range(50)]
    store.insert_events(events)
    store.insert_events([*events[10:20], make_event(name)])
    assert store.count_events(name) == 51


def test_event_queries_see_one_tenant(
    store: Store, new_name: Callable[[], str], make_event: Callable[..., Event]
) -> None:
    acme, other = new_name(), new_name()
    now = datetime.now(UTC)
    mine = [
        make_event(acme, time=now - timedelta(minutes=i), action="block" if i % 2 else "allow")
        for i in range(5)
    ]
    theirs = make_event(other)
    store.insert_events([*mine, theirs])
    assert [e.id for e in store.list_events(acme)] == [e.id for e in mine]  # newest first
    assert {e.id for e in store.list_events(acme, action="block")} == {mine[1].id, mine[3].id}
    assert len(store.list_events(acme, limit=2)) == 2
    assert len(store.list_events(acme, since=now - timedelta(minutes=2, seconds=30))) == 3
    assert store.get_event(acme, theirs.id) is None
    assert store.get_event(other, theirs.id) == theirs
    assert store.count_events(acme) == 5 and store.count_events(other) == 1


def test_retention_deletes_only_old_events_of_tenants_that_set_it(
    store: Store, new_name: Callable[[], str], make_event: Callable[..., Event]
) -> None:
    short, keep = new_name(), new_name()
    store.create_tenant(short, retention_days=7)
    store.create_tenant(keep)
    now = datetime.now(UTC)
    old = make_event(short, time=now - timedelta(days=8))
    recent = make_event(short, time=now - timedelta(days=6))
    ancient = make_event(keep, time=now - timedelta(days=400))
    store.insert_events([old, recent, ancient])
    store.add_feedback(short, old.id, rating=1)
    deleted = store.apply_retention(now=now)
    assert deleted[short] == 1 and keep not in deleted
    assert store.get_event(short, old.id) is None and store.get_event(short, recent.id)
    assert store.get_event(keep, ancient.id) is not None
    assert store.list_feedback(short) == []  # feedback on a deleted event goes with it


def test_feedback_only_on_own_events(
    store: Store, new_name: Callable[[], str], make_event: Callable[..., Event]
) -> None:
    acme, other = new_name(), new_name()
    event = make_event(acme)
    store.insert_events([event])
    saved = store.add_feedback(acme, event.id, rating=-1, comment="wrong answer")
    assert saved is not None and saved.rating == -1
    assert store.add_feedback(other, event.id, rating=1) is None
    assert store.add_feedback(acme, "no-such-event", rating=1) is None
    assert [f.id for f in store.list_feedback(acme)] == [saved.id]
    assert store.list_feedback(other) == []


def test_event_fields_without_a_column_of_their_own_are_kept(
    store: Store, new_name: Callable[[], str], make_event: Callable[..., Event]
) -> None:
    """Fields added to Event later (agent steps, tool calls, ...) round-trip in ``details``."""
    from tether.store._pgcopy import EVENT_COLUMNS as _EVENT_COLUMNS

    assert set(Event.model_fields) >= _EVENT_COLUMNS
    extra: dict[str, object] = {}
    for name, field in Event.model_fields.items():
        if name in _EVENT_COLUMNS:
            continue
        if field.annotation is int:
            extra[name] = 3
        elif field.annotation in (str, str | None):
            extra[name] = "kept"
    event = make_event(new_name()).model_copy(update=extra)
    store.insert_events([event])
    assert store.get_event(event.tenant or "", event.id) == event
