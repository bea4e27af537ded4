"""Read-side queries over the events table for the dashboard: a time range's figures (traffic
by action over time, guard firings, latency per stage) and a filtered, paged event search.

The overview reads the per-minute rollups the store keeps with the events; the explorer's
filters run in the database (JSON functions for the verdicts), and a text search reads at most
the newest :data:`TEXT_SCAN_LIMIT` events of its range. Scoped like the store:
``tenant=None`` means every tenant and is for administrators only; callers check that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    cast,
    func,
    literal_column,
    or_,
    select,
    text,
    tuple_,
)

from tether.pipeline import Event

from ._monitoring import _HIST, event_rollups, histogram_quantile, minute
from ._store import Store, _event, _translate
from ._tables import events, feedback

__all__ = [
    "STAGES",
    "TEXT_SCAN_LIMIT",
    "EventQuery",
    "EventSummary",
    "Overview",
    "event_by_id",
    "feedback_for",
    "overview",
    "policy_versions_seen",
    "related_events",
    "search_events",
    "text_search_start",
]

STAGES = ("input_guards_ms", "model_ms", "output_guards_ms", "total_ms")
_SNIPPET = 200


@dataclass(frozen=True, slots=True)
class Overview:
    """A tenant's (or every tenant's) traffic in ``[since, until)``."""

    since: datetime
    until: datetime
    step: timedelta
    turns: int
    actions: dict[str, int]
    reasked: int
    refused: int
    latency_mean: dict[str, float]
    latency_p95: dict[str, float]
    # One entry per step from ``since``: turns by final action.
    series: list[dict[str, int]]
    # (guard, kind, turns it flagged), most first.
    guards: list[tuple[str, str, int]]

    def rate(self, count: int) -> float | None:
        return count / self.turns if self.turns else None


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Which events to list: every field narrows; ``before`` is the (time, id) of the last
    event of the previous page."""

    tenant: str | None
    since: datetime | None = None
    until: datetime | None = None
    user: str | None = None
    guard: str | None = None
    action: str | None = None
    policy_version: str | None = None
    text: str | None = None
    flagged: bool = False
    before: tuple[datetime, str] | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class EventSummary:
    """One row of the event list."""

    id: str
    time: datetime
    tenant: str | None
    user: str | None
    action: str
    policy_version: str
    input: str
    total_ms: float
    flagged: list[str] = field(default_factory=list)


def _epoch(store: Store, column: ColumnElement[Any] = events.c.time) -> ColumnElement[Any]:
    if store.dialect == "postgresql":
        return func.extract("epoch", column)
    # SQLite keeps naive UTC text; julianday reads it, 2440587.5 is 1970-01-01.
    return (func.julianday(column) - 2440587.5) * 86400.0


def _scope(tenant: str | None) -> list[ColumnElement[bool]]:
    return [] if tenant is None else [events.c.tenant == tenant]


def _flag_exists(store: Store, guard: str | None) -> ColumnElement[bool]:
    """The event has a flagged verdict (of ``guard``, by its id or its kind, if given)."""
    if store.dialect == "postgresql":
        sql = (
            "EXISTS (SELECT 1 FROM jsonb_array_elements(events.verdicts) AS v "
            "WHERE (v.value->>'flagged')::boolean"
        )
        if guard is not None:
            sql += " AND (v.value->>'guard' = :flag_guard OR v.value->>'kind' = :flag_guard)"
    else:
        sql = (
            "EXISTS (SELECT 1 FROM json_each(events.verdicts) AS v "
            "WHERE json_extract(v.value, '$.flagged') = 1"
        )
        if guard is not None:
            sql += (
                " AND (json_extract(v.value, '$.guard') = :flag_guard"
                " OR json_extract(v.value, '$.kind') = :flag_guard)"
            )
    clause = text(sql + ")")
    if guard is not None:
        clause = clause.bindparams(bindparam("flag_guard", guard))
    return clause  # type: ignore[return-value]


@_translate
def overview(
    store: Store,
    tenant: str | None,
    *,
    since: datetime,
    until: datetime,
    buckets: int = 48,
) -> Overview:
    """The figures of the overview page for ``[since, until)`` in ``buckets`` steps, from the
    per-minute rollups (so a month of traffic costs as much as a few thousand minutes, not its
    events; the range is taken to the minute). Latency percentiles come from the rollups'
    histogram of the total time."""
    step_s = max((until - since).total_seconds() / buckets, 60.0)
    # Rollups are per minute: the first slot starts at the minute ``since`` falls in.
    span = max((until - minute(since)).total_seconds(), 60.0)
    r = event_rollups.c
    where = [r.bucket >= minute(since), r.bucket < until]
    if tenant is not None:
        where.append(r.tenant == tenant)
    offset = (_epoch(store, r.bucket) - minute(since).timestamp()) / step_s
    # Times in range give offsets >= 0: SQLite's CAST truncates, which is floor there;
    # PostgreSQL's rounds, so floor first.
    bucket = cast(func.floor(offset) if store.dialect == "postgresql" else offset, Integer).label(
        "slot"
    )
    series: list[dict[str, int]] = [{} for _ in range(math.ceil(span / step_s))]
    turn_rows = and_(r.kind == "turn", r.key == "")
    sums = [func.sum(r[f"{s}"]).label(s) for s in STAGES] + [func.sum(r[h]).label(h) for h in _HIST]
    with store.engine.connect() as conn:
        for slot, action, n in conn.execute(
            select(bucket, r.action, func.sum(r.turns))
            .where(*where, turn_rows)
            .group_by(bucket, r.action)
        ):
            if 0 <= int(slot) < len(series):
                series[int(slot)][action] = int(n)
        per_action = conn.execute(
            select(r.action, func.sum(r.turns).label("turns"), *sums)
            .where(*where, turn_rows)
            .group_by(r.action)
        ).all()
        signals = conn.execute(
            select(r.kind, r.key, r.action, func.sum(r.turns))
            .where(*where, r.kind.in_(("flag", "taken")))
            .group_by(r.kind, r.key, r.action)
        ).all()
    actions = {row.action: int(row.turns) for row in per_action}
    turns = sum(actions.values())
    hist = [sum(int(row._mapping[h] or 0) for row in per_action) for h in _HIST]
    mean = {
        s: sum(float(row._mapping[s] or 0.0) for row in per_action) / turns if turns else 0.0
        for s in STAGES
    }
    p95 = histogram_quantile(hist, 0.95)
    reasked = 0
    model_refusals = 0
    flagged: dict[str, int] = {}
    for kind, key, action, n in signals:
        if kind == "taken":
            reasked += int(n) if key.endswith("|reask") else 0
            continue
        guard, stage, category = key.split("|")
        if guard != "*" and stage == "*" and category == "*":
            flagged[guard] = flagged.get(guard, 0) + int(n)
            if guard == "refusal" and action in ("allow", "redact"):
                model_refusals += int(n)
    return Overview(
        since=minute(since),
        until=until,
        step=timedelta(seconds=step_s),
        turns=turns,
        actions=actions,
        reasked=reasked,
        refused=actions.get("block", 0) + actions.get("escalate", 0) + model_refusals,
        latency_mean=mean,
        latency_p95={"total_ms": p95} if p95 is not None and turns else {},
        series=series,
        guards=sorted(((g, g, n) for g, n in flagged.items()), key=lambda x: (-x[2], x[0])),
    )


#: A text search reads at most this many of the newest events in its range.
TEXT_SCAN_LIMIT = 20_000


@_translate
def text_search_start(store: Store, q: EventQuery) -> datetime | None:
    """Where a text search of ``q`` starts so it reads at most :data:`TEXT_SCAN_LIMIT` events
    (the time of the newest that many in its range and scope); None when the range holds
    fewer, so the search covers all of it. Substring search reads every event it covers
    (no index helps ``%text%`` on both databases), which this keeps bounded."""
    conditions = _scope(q.tenant)
    if q.since is not None:
        conditions.append(events.c.time >= q.since)
    if q.until is not None:
        conditions.append(events.c.time < q.until)
    query = (
        select(events.c.time)
        .where(*conditions)
        .order_by(events.c.time.desc())
        .limit(1)
        .offset(TEXT_SCAN_LIMIT - 1)
    )
    with store.engine.connect() as conn:
        found: datetime | None = conn.execute(query).scalar_one_or_none()
    return found


def _search(store: Store, q: EventQuery) -> Select[Any]:
    conditions = _scope(q.tenant)
    if q.since is not None:
        conditions.append(events.c.time >= q.since)
    if q.until is not None:
        conditions.append(events.c.time < q.until)
    if q.user:
        conditions.append(events.c.user_id == q.user)
    if q.action:
        conditions.append(events.c.action == q.action)
    if q.policy_version:
        conditions.append(events.c.policy_version == q.policy_version)
    if q.text:
        escaped = q.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        conditions.append(
            or_(
                events.c.input.ilike(pattern, escape="\\"),
                events.c.output.ilike(pattern, escape="\\"),
            )
        )
    if q.guard:
        conditions.append(_flag_exists(store, q.guard))
    elif q.flagged:
        conditions.append(_flag_exists(store, None))
    if q.before is not None:
        conditions.append(tuple_(events.c.time, events.c.id) < tuple_(*q.before))
    return select(
        events.c.id,
        events.c.time,
        events.c.tenant,
        events.c.user_id,
        events.c.action,
        events.c.policy_version,
        func.substr(events.c.input, 1, _SNIPPET).label("snippet"),
        events.c.total_ms,
        events.c.verdicts,
    ).where(and_(*conditions))


@_translate
def search_events(store: Store, q: EventQuery) -> list[EventSummary]:
    """The newest ``q.limit`` events that match, newest first."""
    query = _search(store, q).order_by(events.c.time.desc(), events.c.id.desc()).limit(q.limit)
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        EventSummary(
            id=r.id,
            time=r.time,
            tenant=r.tenant,
            user=r.user_id,
            action=r.action,
            policy_version=r.policy_version,
            input=r.snippet,
            total_ms=float(r.total_ms),
            flagged=list(
                dict.fromkeys(str(v.get("guard", "")) for v in r.verdicts or () if v["flagged"])
            ),
        )
        for r in rows
    ]


@_translate
def event_by_id(store: Store, event_id: str, *, tenant: str | None) -> Event | None:
    """One event; with ``tenant`` only if it is that tenant's."""
    query = select(events).where(events.c.id == event_id, *_scope(tenant))
    with store.engine.connect() as conn:
        row = conn.execute(query).first()
    return _event(row) if row else None


@_translate
def feedback_for(store: Store, event_id: str) -> list[dict[str, Any]]:
    """The ratings of one event, oldest first."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(feedback).where(feedback.c.event_id == event_id).order_by(feedback.c.id)
        ).all()
    return [dict(r._mapping) for r in rows]


@_translate
def related_events(store: Store, approval_id: str, *, tenant: str | None) -> list[EventSummary]:
    """The turns that stopped for an approval and resumed from it."""
    pending: ColumnElement[Any]
    resumed: ColumnElement[Any]
    if store.dialect == "postgresql":
        pending = literal_column("events.details->>'pending_approval'")
        resumed = literal_column("events.details->>'resumed_from'")
    else:
        pending = func.json_extract(events.c.details, "$.pending_approval")
        resumed = func.json_extract(events.c.details, "$.resumed_from")
    q = _search(store, EventQuery(tenant=tenant)).where(
        or_(pending == approval_id, resumed == approval_id)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(q.order_by(events.c.time, events.c.id)).all()
    return [
        EventSummary(
            id=r.id,
            time=r.time,
            tenant=r.tenant,
            user=r.user_id,
            action=r.action,
            policy_version=r.policy_version,
            input=r.snippet,
            total_ms=float(r.total_ms),
        )
        for r in rows
    ]


@_translate
def policy_versions_seen(store: Store, tenant: str | None, *, since: datetime) -> list[str]:
    """Policy versions of the events since ``since`` (for the explorer's filter)."""
    query = (
        select(events.c.policy_version)
        .where(*_scope(tenant), events.c.time >= since)
        .group_by(events.c.policy_version)
        .order_by(events.c.policy_version)
        .limit(200)
    )
    with store.engine.connect() as conn:
        return [str(v) for v in conn.execute(query).scalars()]
