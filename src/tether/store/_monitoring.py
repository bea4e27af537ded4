"""The store's monitoring side (migration 2): per-minute rollups of the events, alerts, the
review queue and drift reports.

Rollups are written in the same transaction as the events they count, and only for events
actually inserted, so a batch replayed from the spool is never counted twice. Stats and alert
rules read rollups, not events, which keeps them fast at millions of events. Rollups hold no
text, so they outlive event retention.
"""

from __future__ import annotations

import functools
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from ._pgcopy import copy_upsert
from ._tables import SLUG_LENGTH, Json, UTCDateTime, events, feedback, metadata

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sqlalchemy import Engine

    from tether.pipeline import Event

__all__ = [
    "LABELS",
    "LATENCY_BOUNDS_MS",
    "Alert",
    "DriftReport",
    "MonitoringMethods",
    "ReviewItem",
    "RollupStats",
    "StatsPoint",
    "TurnFacts",
    "facts_from_event",
    "flag_keys",
    "histogram_quantile",
    "migrate_monitoring",
    "minute",
    "record_turns",
    "reviews",
    "rollup_rows",
]

P = ParamSpec("P")
R = TypeVar("R")

# Upper bounds (ms) of the turn-latency histogram kept in the rollups; one more bucket above.
LATENCY_BOUNDS_MS: tuple[float, ...] = (
    10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
)  # fmt: skip
_HIST = tuple(f"h{i}" for i in range(len(LATENCY_BOUNDS_MS) + 1))
_STAGES = ("input_guards", "model", "output_guards", "total")
ANY = "*"
Label = Literal["correct", "false_positive", "missed"]
LABELS: tuple[str, ...] = ("correct", "false_positive", "missed")

event_rollups = Table(
    "event_rollups",
    metadata,
    Column("tenant", String(SLUG_LENGTH), primary_key=True),  # '' for tenant-less events
    Column("bucket", UTCDateTime, primary_key=True),  # the minute
    Column("model", String(200), primary_key=True),
    Column("action", String(16), primary_key=True),
    # turn: every turn; flag: "<kind>|<stage>|<category>" ('*' = any); taken: "<stage>|<action>";
    # tool: a gate decision (counts calls, not turns).
    Column("kind", String(8), primary_key=True),
    Column("key", String(300), primary_key=True),
    Column("turns", Integer, nullable=False),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    *(Column(f"{stage}_ms", Float, nullable=False) for stage in _STAGES),
    *(Column(name, Integer, nullable=False) for name in _HIST),
    # Alert rules ask "turns with this signal, by tenant, in this window" across tenants.
    Index("ix_event_rollups_kind_key_bucket", "kind", "key", "bucket"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(SLUG_LENGTH), nullable=False),
    Column("rule", String(200), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    # "<tenant>|<rule>" while firing, NULL once resolved: one open alert per rule and tenant,
    # even with several gateways evaluating at once.
    Column("open_key", String(300), nullable=True, unique=True),
    Column("message", Text, nullable=False),
    Column("value", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("window_s", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("fired_count", Integer, nullable=False),
    Column("acknowledged_at", UTCDateTime, nullable=True),
    Column("acknowledged_by", String(200), nullable=True),
    Column("details", Json, nullable=False),
    Column("deliveries", Json, nullable=False),
    Index("ix_alerts_tenant_started", "tenant", "started_at"),
)

reviews = Table(
    "reviews",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(SLUG_LENGTH), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("flagged", Integer, nullable=False),  # 0/1: a guard flagged the turn
    Column("downvoted", Integer, nullable=False),  # 0/1: a user rated it -1
    Column("manual", Integer, nullable=False),  # 0/1: a reviewer labelled it unasked
    Column("guards", Json, nullable=False),
    Column("event_time", UTCDateTime, nullable=False),
    Column("label", String(16), nullable=True),
    Column("expect", String(16), nullable=True),
    Column("corrected", Text, nullable=True),
    Column("note", Text, nullable=True),
    Column("reviewer", String(200), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("reviewed_at", UTCDateTime, nullable=True),
    Index("uq_reviews_tenant_event", "tenant", "event_id", unique=True),
    Index("ix_reviews_tenant_label_time", "tenant", "label", "event_time"),
)

drift_reports = Table(
    "drift_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(SLUG_LENGTH), nullable=False),
    Column("stream", String(8), nullable=False),
    Column("reference", Text, nullable=False),
    Column("since", UTCDateTime, nullable=False),
    Column("until", UTCDateTime, nullable=False),
    Column("n_reference", Integer, nullable=False),
    Column("n_live", Integer, nullable=False),
    Column("statistic", Float, nullable=False),
    Column("p_value", Float, nullable=False),
    Column("alpha", Float, nullable=False),
    Column("drifted", Integer, nullable=False),
    Column("topics", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_drift_reports_tenant_created", "tenant", "created_at"),
)


# -- records -----------------------------------------------------------------------------------


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class StatsPoint(_Record):
    """One step of a stats series (for charts)."""

    start: datetime
    turns: int
    blocked: int
    flagged: int


class RollupStats(_Record):
    """Traffic of one tenant (``None``: all) in ``[since, until)``, from the rollups."""

    tenant: str | None
    since: datetime
    until: datetime
    turns: int
    actions: dict[str, int]
    taken: dict[str, int]
    flags: dict[str, int]
    tools: dict[str, int]
    models: dict[str, int]
    prompt_tokens: int
    completion_tokens: int
    latency_ms: dict[str, float]
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    series: list[StatsPoint] = []

    def rate(self, action: str) -> float:
        """The share of turns that ended in ``action``."""
        return self.actions.get(action, 0) / self.turns if self.turns else 0.0


class Alert(_Record):
    """An alert: one per rule and tenant while it fires (re-firing counts in ``fired_count``)."""

    id: int
    tenant: str
    rule: str
    severity: str
    status: Literal["firing", "resolved"]
    message: str
    value: float
    threshold: float
    window_s: int
    started_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    fired_count: int
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    details: dict[str, Any]
    deliveries: list[dict[str, Any]]


class ReviewItem(_Record):
    """A turn in the review queue, with its label once reviewed."""

    id: int
    tenant: str
    event_id: str
    reasons: list[str]
    guards: list[str]
    action: str
    rating: int | None
    label: Label | None
    expect: str | None
    corrected: str | None
    note: str | None
    reviewer: str | None
    created_at: datetime
    reviewed_at: datetime | None
    time: datetime
    input: str
    output: str


class DriftReport(_Record):
    """A two-sample test of live inputs (or outputs) against a reference, and the topics that
    grew."""

    id: int
    tenant: str
    stream: Literal["input", "output"]
    reference: str
    since: datetime
    until: datetime
    n_reference: int
    n_live: int
    statistic: float
    p_value: float
    alpha: float
    drifted: bool
    topics: list[dict[str, Any]]
    created_at: datetime


# -- rollups -----------------------------------------------------------------------------------


@dataclass(slots=True)
class TurnFacts:
    """What the rollups keep of one turn."""

    tenant: str
    time: datetime
    model: str
    action: str
    flags: set[str] = field(default_factory=set)
    taken: set[str] = field(default_factory=set)
    tools: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    @property
    def flagged_kinds(self) -> list[str]:
        return sorted({f.split("|", 1)[0] for f in self.flags} - {ANY})


def flag_keys(kind: str, stage: str, category: str | None) -> tuple[str, ...]:
    """The rollup keys one flagged verdict counts under (a turn counts once per key)."""
    cat = category or ANY
    return (
        f"{ANY}|{ANY}|{ANY}",
        f"{kind}|{ANY}|{ANY}",
        f"{kind}|{stage}|{ANY}",
        f"{kind}|{ANY}|{cat}",
        f"{kind}|{stage}|{cat}",
    )


def _facts(
    *,
    tenant: str | None,
    time: datetime,
    model: str,
    action: str,
    verdicts: Iterable[Mapping[str, Any]],
    actions: Iterable[Mapping[str, Any]],
    tool_calls: Iterable[Mapping[str, Any]],
    prompt_tokens: int,
    completion_tokens: int,
    latency: tuple[float, float, float, float],
) -> TurnFacts:
    facts = TurnFacts(
        tenant=tenant or "",
        time=time,
        model=model,
        action=action,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        latency_ms=latency,
    )
    for v in verdicts:
        if v.get("flagged"):
            kind = v.get("kind") or v.get("guard") or "unknown"
            facts.flags.update(flag_keys(kind, v.get("stage") or "input", v.get("category")))
    for a in actions:
        facts.taken.add(f"{a.get('stage')}|{a.get('action')}")
    for call in tool_calls:
        facts.tools.append(str(call.get("decision")))
        for v in call.get("verdicts") or ():
            if v.get("flagged"):
                kind = v.get("kind") or v.get("guard") or "unknown"
                facts.flags.update(flag_keys(kind, "tool", v.get("category")))
    return facts


def facts_from_event(event: Event) -> TurnFacts:
    lat = event.latency
    return _facts(
        tenant=event.tenant,
        time=event.time,
        model=event.model,
        action=event.action,
        verdicts=[v.model_dump(include={"flagged", "kind", "guard", "stage", "category"})
                  for v in event.verdicts],
        actions=[{"stage": a.stage, "action": a.action} for a in event.actions],
        tool_calls=[
            {
                "decision": c.decision,
                "verdicts": [
                    v.model_dump(include={"flagged", "kind", "guard", "category"})
                    for v in c.verdicts
                ],
            }
            for c in event.tool_calls
        ],
        prompt_tokens=event.usage.prompt_tokens,
        completion_tokens=event.usage.completion_tokens,
        latency=(lat.input_guards_ms, lat.model_ms, lat.output_guards_ms, lat.total_ms),
    )  # fmt: skip


def _facts_from_row(r: Mapping[str, Any]) -> TurnFacts:
    def loaded(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    details = loaded(r["details"]) or {}
    return _facts(
        tenant=r["tenant"],
        time=r["time"],
        model=r["model"],
        action=r["action"],
        verdicts=loaded(r["verdicts"]) or (),
        actions=loaded(r["actions"]) or (),
        tool_calls=details.get("tool_calls") or (),
        prompt_tokens=r["prompt_tokens"],
        completion_tokens=r["completion_tokens"],
        latency=(r["input_guards_ms"], r["model_ms"], r["output_guards_ms"], r["total_ms"]),
    )


def minute(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(second=0, microsecond=0)


def _histogram_slot(ms: float) -> int:
    for i, bound in enumerate(LATENCY_BOUNDS_MS):
        if ms <= bound:
            return i
    return len(LATENCY_BOUNDS_MS)


def rollup_rows(facts: Iterable[TurnFacts]) -> list[dict[str, Any]]:
    """Rollup increments for these turns, one row per rollup key."""
    zero = {
        "turns": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        **{f"{s}_ms": 0.0 for s in _STAGES},
        **dict.fromkeys(_HIST, 0),
    }
    rows: dict[tuple[str, datetime, str, str, str, str], dict[str, Any]] = {}

    def row(f: TurnFacts, kind: str, key: str) -> dict[str, Any]:
        k = (f.tenant, minute(f.time), f.model[:200], f.action, kind, key[:300])
        found = rows.get(k)
        if found is None:
            found = rows[k] = {
                "tenant": k[0], "bucket": k[1], "model": k[2], "action": k[3], "kind": kind,
                "key": k[5], **zero,
            }  # fmt: skip
        return found

    for f in facts:
        turn = row(f, "turn", "")
        turn["turns"] += 1
        turn["prompt_tokens"] += f.prompt_tokens
        turn["completion_tokens"] += f.completion_tokens
        for stage, ms in zip(_STAGES, f.latency_ms, strict=True):
            turn[f"{stage}_ms"] += ms
        turn[_HIST[_histogram_slot(f.latency_ms[3])]] += 1
        for key in f.flags:
            row(f, "flag", key)["turns"] += 1
        for key in f.taken:
            row(f, "taken", key)["turns"] += 1
        for decision in f.tools:
            row(f, "tool", decision)["turns"] += 1
    return list(rows.values())


def _dialect_insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    return postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)


def _add_rollups(conn: Connection, facts: Sequence[TurnFacts]) -> None:
    rows = rollup_rows(facts)
    if not rows:
        return
    stmt = _dialect_insert(conn, event_rollups)
    summed = ["turns", "prompt_tokens", "completion_tokens", *(f"{s}_ms" for s in _STAGES), *_HIST]
    stmt = stmt.on_conflict_do_update(
        index_elements=["tenant", "bucket", "model", "action", "kind", "key"],
        set_={c: event_rollups.c[c] + stmt.excluded[c] for c in summed},
    )
    keys = ["tenant", "bucket", "model", "action", "kind", "key"]
    if conn.dialect.name == "postgresql":
        copy_upsert(conn, event_rollups, rows, keys=keys, summed=summed)
        return
    # A stable order keeps two writers from deadlocking on the same rollup rows.
    rows.sort(key=lambda r: tuple(r[k] for k in keys))
    conn.execute(stmt, rows)


def _queue_flagged(conn: Connection, facts: Sequence[tuple[str, TurnFacts]]) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "tenant": f.tenant,
            "event_id": event_id,
            "flagged": 1,
            "downvoted": 0,
            "manual": 0,
            "guards": f.flagged_kinds,
            "event_time": f.time,
            "created_at": now,
        }
        for event_id, f in facts
        if f.flags and f.tenant
    ]
    if rows and conn.dialect.name == "postgresql":
        copy_upsert(conn, reviews, rows, keys=["tenant", "event_id"])
    elif rows:
        stmt = _dialect_insert(conn, reviews).on_conflict_do_nothing(
            index_elements=["tenant", "event_id"]
        )
        conn.execute(stmt, rows)


def record_turns(conn: Connection, inserted: Sequence[Event]) -> None:
    """Count newly inserted events in the rollups and queue the flagged ones for review."""
    facts = [(e.id, facts_from_event(e)) for e in inserted]
    _add_rollups(conn, [f for _, f in facts])
    _queue_flagged(conn, facts)


def migrate_monitoring(conn: Connection) -> None:
    """Migration 2: the monitoring tables, ``feedback.corrected``, and rollups and review
    entries for the events already stored."""
    for table in (event_rollups, alerts, reviews, drift_reports):
        table.create(conn)
    conn.execute(text("ALTER TABLE feedback ADD COLUMN corrected TEXT"))
    columns = [
        events.c[name]
        for name in (
            "id", "tenant", "time", "model", "action", "actions", "verdicts", "details",
            "prompt_tokens", "completion_tokens", "input_guards_ms", "model_ms",
            "output_guards_ms", "total_ms",
        )
    ]  # fmt: skip
    last = ""
    while True:
        chunk = conn.execute(
            select(*columns).where(events.c.id > last).order_by(events.c.id).limit(5000)
        ).all()
        if not chunk:
            break
        facts = [(r.id, _facts_from_row(dict(r._mapping))) for r in chunk]
        _add_rollups(conn, [f for _, f in facts])
        _queue_flagged(conn, facts)
        last = chunk[-1].id
    down = conn.execute(
        select(feedback.c.tenant, feedback.c.event_id, events.c.time)
        .join(
            events, and_(events.c.id == feedback.c.event_id, events.c.tenant == feedback.c.tenant)
        )
        .where(feedback.c.rating < 0)
    ).all()
    for r in down:
        _queue(conn, r.tenant, r.event_id, r.time, "downvoted")


def _queue(conn: Connection, tenant: str, event_id: str, event_time: datetime, reason: str) -> None:
    """Put an event in the review queue for ``reason`` (downvoted or manual)."""
    stmt = _dialect_insert(conn, reviews).values(
        tenant=tenant,
        event_id=event_id,
        flagged=0,
        downvoted=int(reason == "downvoted"),
        manual=int(reason == "manual"),
        guards=[],
        event_time=event_time,
        created_at=datetime.now(UTC),
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant", "event_id"],
            set_={reason: 1},
        )
    )


# -- Store methods -----------------------------------------------------------------------------


def _db(fn: Callable[P, R]) -> Callable[P, R]:
    """The store's error translation (imported late: _store imports this module)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from ._store import _translate

        return _translate(fn)(*args, **kwargs)

    return wrapper


def _tenant_key(tenant: str | None) -> str:
    return tenant or ""


class MonitoringMethods:
    """The Store's monitoring methods (mixed into :class:`Store`)."""

    engine: Engine

    if TYPE_CHECKING:

        def _tx(self) -> AbstractContextManager[Connection]: ...

        def _insert(self, table: Table) -> postgresql.Insert | sqlite.Insert: ...

    @_db
    def stats(
        self,
        tenant: str | None,
        *,
        since: datetime,
        until: datetime | None = None,
        step: timedelta | None = None,
    ) -> RollupStats:
        """Turns, actions, flags, tool decisions, tokens and latency of ``tenant`` (``None``:
        all tenants) in ``[since, until)``, to the minute; ``step`` adds a series."""
        until = until or datetime.now(UTC)
        r = event_rollups.c
        where = [r.bucket >= minute(since), r.bucket < until]
        if tenant is not None:
            where.append(r.tenant == _tenant_key(tenant))
        sums = [func.sum(r[c]).label(c) for c in ("turns", "prompt_tokens", "completion_tokens")]
        sums += [func.sum(r[f"{s}_ms"]).label(f"{s}_ms") for s in _STAGES]
        sums += [func.sum(r[h]).label(h) for h in _HIST]
        query = select(r.kind, r.key, r.action, r.model, *sums).where(*where)
        query = query.group_by(r.kind, r.key, r.action, r.model)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            series_rows = (
                conn.execute(
                    select(r.bucket, r.kind, r.action, func.sum(r.turns).label("turns"))
                    .where(*where, or_(r.kind == "turn", and_(r.kind == "flag", r.key == "*|*|*")))
                    .group_by(r.bucket, r.kind, r.action)
                ).all()
                if step is not None
                else []
            )
        actions: Counter[str] = Counter()
        taken: Counter[str] = Counter()
        flags: Counter[str] = Counter()
        tools: Counter[str] = Counter()
        models: Counter[str] = Counter()
        totals: Counter[str] = Counter()
        hist = [0] * len(_HIST)
        for row in rows:
            m = row._mapping
            n = int(m["turns"] or 0)
            if row.kind == "turn":
                actions[row.action] += n
                models[row.model] += n
                for c in ("prompt_tokens", "completion_tokens", *(f"{s}_ms" for s in _STAGES)):
                    totals[c] += m[c] or 0
                for i, h in enumerate(_HIST):
                    hist[i] += int(m[h] or 0)
            elif row.kind == "flag":
                kind, stage, category = row.key.split("|")
                if kind != ANY and stage == ANY and category == ANY:
                    flags[kind] += n
            elif row.kind == "taken":
                taken[row.key] += n
            elif row.kind == "tool":
                tools[row.key] += n
        turns = sum(actions.values())
        return RollupStats(
            tenant=tenant,
            since=since,
            until=until,
            turns=turns,
            actions=dict(actions),
            taken=dict(taken),
            flags=dict(flags.most_common()),
            tools=dict(tools),
            models=dict(models),
            prompt_tokens=int(totals["prompt_tokens"]),
            completion_tokens=int(totals["completion_tokens"]),
            latency_ms={s: totals[f"{s}_ms"] / turns if turns else 0.0 for s in _STAGES},
            latency_p50_ms=histogram_quantile(hist, 0.5),
            latency_p95_ms=histogram_quantile(hist, 0.95),
            series=_series(series_rows, since, until, step) if step is not None else [],
        )

    @_db
    def count_signal(
        self,
        *,
        since: datetime,
        until: datetime,
        kind: str,
        key: str,
        actions: Sequence[str] | None = None,
        model: str | None = None,
        tenant: str | None = None,
    ) -> dict[str, tuple[int, int]]:
        """Per tenant: (turns with the signal, all turns) in ``[since, until)``. ``kind``/``key``
        as in the rollups (``turn``/``''`` matches every turn); ``actions`` narrows to turns
        that ended so."""
        r = event_rollups.c
        where = [r.bucket >= minute(since), r.bucket < until]
        if tenant is not None:
            where.append(r.tenant == _tenant_key(tenant))
        if model is not None:
            where.append(r.model == model)
        matched = (r.kind == kind) & (r.key == key)
        if actions is not None:
            matched = matched & r.action.in_(list(actions))
        query = (
            select(
                r.tenant,
                func.sum(r.turns).filter(matched).label("matched"),
                func.sum(r.turns).filter(r.kind == "turn").label("turns"),
            )
            .where(*where, or_(r.kind == "turn", matched))
            .group_by(r.tenant)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {row.tenant: (int(row.matched or 0), int(row.turns or 0)) for row in rows}

    # -- alerts ------------------------------------------------------------------------------

    @_db
    def open_alert(
        self,
        *,
        tenant: str,
        rule: str,
        severity: str,
        message: str,
        value: float,
        threshold: float,
        window_s: int,
        details: Mapping[str, Any],
        now: datetime,
    ) -> tuple[Alert, bool]:
        """Open an alert for ``(tenant, rule)``, or, when one is open, record that it fired
        again; the alert, and whether it is new (only a new one is delivered)."""
        open_key = f"{tenant}|{rule}"
        with self._tx() as conn:
            new_id = conn.execute(
                self._insert(alerts)
                .values(
                    tenant=tenant, rule=rule, severity=severity, status="firing",
                    open_key=open_key, message=message, value=value, threshold=threshold,
                    window_s=window_s, started_at=now, last_seen_at=now, fired_count=1,
                    details=dict(details), deliveries=[],
                )
                .on_conflict_do_nothing(index_elements=["open_key"])
                .returning(alerts.c.id)
            ).scalar()  # fmt: skip
            if new_id is None:
                conn.execute(
                    update(alerts)
                    .where(alerts.c.open_key == open_key)
                    .values(
                        last_seen_at=now,
                        fired_count=alerts.c.fired_count + 1,
                        value=value,
                        message=message,
                        details=dict(details),
                    )
                )
            row = conn.execute(select(alerts).where(alerts.c.open_key == open_key)).one()
        return _alert(row), new_id is not None

    @_db
    def resolve_alert(self, *, tenant: str, rule: str, now: datetime) -> Alert | None:
        """Close the open alert of ``(tenant, rule)``; None if none was open."""
        open_key = f"{tenant}|{rule}"
        with self._tx() as conn:
            found = conn.execute(select(alerts.c.id).where(alerts.c.open_key == open_key)).first()
            if found is None:
                return None
            closed = conn.execute(
                update(alerts)
                .where(alerts.c.id == found.id, alerts.c.open_key == open_key)
                .values(status="resolved", open_key=None, resolved_at=now)
            )
            if closed.rowcount == 0:  # another gateway resolved it first
                return None
            return _alert(conn.execute(select(alerts).where(alerts.c.id == found.id)).one())

    @_db
    def open_alerts(self) -> list[Alert]:
        """Every firing alert, all tenants (for the evaluator)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(alerts).where(alerts.c.status == "firing")).all()
        return [_alert(r) for r in rows]

    @_db
    def record_delivery(self, alert_id: int, deliveries: Sequence[Mapping[str, Any]]) -> None:
        """Append webhook delivery results to an alert."""
        with self._tx() as conn:
            row = conn.execute(select(alerts.c.deliveries).where(alerts.c.id == alert_id)).first()
            if row is None:
                return
            done = list(row.deliveries or []) + [dict(d) for d in deliveries]
            conn.execute(update(alerts).where(alerts.c.id == alert_id).values(deliveries=done))

    @_db
    def list_alerts(
        self,
        tenant: str | None,
        *,
        status: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        """Alerts, newest first; ``tenant=None``: every tenant's (an administrator's view)."""
        query = select(alerts)
        if tenant is not None:
            query = query.where(alerts.c.tenant == _tenant_key(tenant))
        if status is not None:
            query = query.where(alerts.c.status == status)
        if since is not None:
            query = query.where(alerts.c.last_seen_at >= since)
        query = query.order_by(alerts.c.started_at.desc(), alerts.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [_alert(r) for r in conn.execute(query).all()]

    @_db
    def get_alert(self, tenant: str | None, alert_id: int) -> Alert | None:
        query = select(alerts).where(alerts.c.id == alert_id)
        if tenant is not None:
            query = query.where(alerts.c.tenant == _tenant_key(tenant))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _alert(row) if row else None

    @_db
    def acknowledge_alert(self, tenant: str | None, alert_id: int, *, by: str) -> Alert | None:
        where = alerts.c.id == alert_id
        if tenant is not None:
            where = where & (alerts.c.tenant == _tenant_key(tenant))
        with self._tx() as conn:
            conn.execute(
                update(alerts)
                .where(where & alerts.c.acknowledged_at.is_(None))
                .values(acknowledged_at=datetime.now(UTC), acknowledged_by=by)
            )
            row = conn.execute(select(alerts).where(where)).first()
        return _alert(row) if row else None

    # -- review queue ------------------------------------------------------------------------

    def _queue_downvote(self, conn: Connection, tenant: str, event_id: str) -> None:
        found = conn.execute(
            select(events.c.time).where((events.c.tenant == tenant) & (events.c.id == event_id))
        ).first()
        if found is not None:
            _queue(conn, tenant, event_id, found.time, "downvoted")

    @_db
    def review_queue(
        self,
        tenant: str,
        *,
        status: Literal["pending", "reviewed", "all"] = "pending",
        limit: int = 100,
        offset: int = 0,
    ) -> list[ReviewItem]:
        """Flagged, down-voted and hand-picked turns, newest first: ``pending`` (no label
        yet), ``reviewed`` or ``all``."""
        query = _review_select().where(reviews.c.tenant == tenant)
        if status == "pending":
            query = query.where(reviews.c.label.is_(None))
        elif status == "reviewed":
            query = query.where(reviews.c.label.is_not(None))
        query = query.order_by(reviews.c.event_time.desc(), reviews.c.id.desc())
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(limit).offset(offset)).all()
        return [_review(r) for r in rows]

    @_db
    def count_reviews(
        self, tenant: str, *, status: Literal["pending", "reviewed", "all"] = "pending"
    ) -> int:
        query = select(func.count()).select_from(reviews).where(reviews.c.tenant == tenant)
        if status == "pending":
            query = query.where(reviews.c.label.is_(None))
        elif status == "reviewed":
            query = query.where(reviews.c.label.is_not(None))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    @_db
    def get_review(self, tenant: str, event_id: str) -> ReviewItem | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                _review_select().where(
                    (reviews.c.tenant == tenant) & (reviews.c.event_id == event_id)
                )
            ).first()
        return _review(row) if row else None

    @_db
    def label_review(
        self,
        tenant: str,
        event_id: str,
        *,
        label: Label,
        reviewer: str | None = None,
        corrected: str | None = None,
        expect: str | None = None,
        note: str | None = None,
    ) -> ReviewItem | None:
        """Label one of ``tenant``'s turns (correct / false_positive / missed), queued or not
        (labelling an unqueued turn queues it as hand-picked); None if there is no such
        event. Labelling again replaces the label."""
        if label not in LABELS:
            raise ValueError(f"label must be one of {', '.join(LABELS)}, not {label!r}")
        with self._tx() as conn:
            found = conn.execute(
                select(events.c.time).where((events.c.tenant == tenant) & (events.c.id == event_id))
            ).first()
            if found is None:
                return None
            exists = conn.execute(
                select(reviews.c.id).where(
                    (reviews.c.tenant == tenant) & (reviews.c.event_id == event_id)
                )
            ).first()
            if exists is None:
                _queue(conn, tenant, event_id, found.time, "manual")
            conn.execute(
                update(reviews)
                .where((reviews.c.tenant == tenant) & (reviews.c.event_id == event_id))
                .values(
                    label=label,
                    reviewer=reviewer,
                    corrected=_clean(corrected),
                    expect=expect,
                    note=_clean(note),
                    reviewed_at=datetime.now(UTC),
                )
            )
        return self.get_review(tenant, event_id)

    # -- drift -------------------------------------------------------------------------------

    @_db
    def sample_texts(
        self,
        tenant: str,
        *,
        since: datetime,
        until: datetime,
        stream: Literal["input", "output"] = "input",
        limit: int = 300,
    ) -> list[str]:
        """Up to ``limit`` of ``tenant``'s inputs (or outputs) in ``[since, until)``, drawn at
        random (errored turns left out)."""
        column = events.c.input if stream == "input" else events.c.output
        query = (
            select(column)
            .where(
                (events.c.tenant == tenant)
                & (events.c.time >= since)
                & (events.c.time < until)
                & (events.c.action != "error")
            )
            .order_by(func.random())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [str(t) for t in conn.scalars(query)]

    @_db
    def add_drift_report(self, **fields: Any) -> DriftReport:
        """Record a drift check (fields of :class:`DriftReport` but ``id`` and ``created_at``)."""
        values = {
            **fields,
            "drifted": int(bool(fields["drifted"])),
            "created_at": datetime.now(UTC),
        }
        with self._tx() as conn:
            new_id = conn.execute(
                insert(drift_reports).values(**values).returning(drift_reports.c.id)
            ).scalar_one()
            row = conn.execute(select(drift_reports).where(drift_reports.c.id == new_id)).one()
        return _drift(row)

    @_db
    def list_drift_reports(self, tenant: str | None, *, limit: int = 20) -> list[DriftReport]:
        """Drift reports, newest first; ``tenant=None``: every tenant's."""
        query = select(drift_reports)
        if tenant is not None:
            query = query.where(drift_reports.c.tenant == tenant)
        query = query.order_by(drift_reports.c.created_at.desc(), drift_reports.c.id.desc())
        with self.engine.connect() as conn:
            return [_drift(r) for r in conn.execute(query.limit(limit)).all()]


def _clean(value: str | None) -> str | None:
    return value.replace("\x00", "\ufffd") if value is not None else None


def histogram_quantile(counts: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile of a latency histogram over :data:`LATENCY_BOUNDS_MS`, interpolated
    linearly inside its bucket (the open top bucket answers its lower bound)."""
    total = sum(counts)
    if not total:
        return None
    target = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= target:
            if i == len(LATENCY_BOUNDS_MS):
                return float(LATENCY_BOUNDS_MS[-1])
            low = LATENCY_BOUNDS_MS[i - 1] if i else 0.0
            return float(low + (LATENCY_BOUNDS_MS[i] - low) * (target - seen) / n)
        seen += n
    return float(LATENCY_BOUNDS_MS[-1])


def _series(
    rows: Sequence[Any], since: datetime, until: datetime, step: timedelta
) -> list[StatsPoint]:
    start = minute(since)
    slots: dict[int, dict[str, int]] = defaultdict(lambda: {"turns": 0, "blocked": 0, "flagged": 0})
    for row in rows:
        i = int((row.bucket - start) / step)
        n = int(row.turns or 0)
        if row.kind == "turn":
            slots[i]["turns"] += n
            if row.action == "block":
                slots[i]["blocked"] += n
        else:
            slots[i]["flagged"] += n
    count = max(1, -(-int((until - start).total_seconds()) // int(step.total_seconds())))
    empty = {"turns": 0, "blocked": 0, "flagged": 0}
    return [StatsPoint(start=start + i * step, **slots.get(i, empty)) for i in range(count)]


def _alert(row: Any) -> Alert:
    m = dict(row._mapping)
    m.pop("open_key", None)
    return Alert.model_validate(m)


def _review_select() -> Any:
    latest_rating = (
        select(feedback.c.rating)
        .where(
            (feedback.c.tenant == reviews.c.tenant) & (feedback.c.event_id == reviews.c.event_id)
        )
        .order_by(feedback.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    latest_corrected = (
        select(feedback.c.corrected)
        .where(
            (feedback.c.tenant == reviews.c.tenant)
            & (feedback.c.event_id == reviews.c.event_id)
            & feedback.c.corrected.is_not(None)
        )
        .order_by(feedback.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return select(
        reviews,
        events.c.action,
        events.c.input,
        events.c.output,
        latest_rating.label("rating"),
        latest_corrected.label("feedback_corrected"),
    ).join(events, (events.c.id == reviews.c.event_id) & (events.c.tenant == reviews.c.tenant))


def _review(row: Any) -> ReviewItem:
    m = row._mapping
    reasons = [r for r in ("flagged", "downvoted", "manual") if m[r]]
    return ReviewItem(
        id=m["id"],
        tenant=m["tenant"],
        event_id=m["event_id"],
        reasons=reasons,
        guards=list(m["guards"] or []),
        action=m["action"],
        rating=m["rating"],
        label=m["label"],
        expect=m["expect"],
        corrected=m["corrected"] if m["corrected"] is not None else m["feedback_corrected"],
        note=m["note"],
        reviewer=m["reviewer"],
        created_at=m["created_at"],
        reviewed_at=m["reviewed_at"],
        time=m["event_time"],
        input=m["input"],
        output=m["output"],
    )


def _drift(row: Any) -> DriftReport:
    m = dict(row._mapping)
    m["drifted"] = bool(m["drifted"])
    return DriftReport.model_validate(m)
