"""Alert rules evaluated over sliding windows of per-minute counts: from the store's rollups
(live, shared by every gateway) or from events held in memory (a replayed traffic file)."""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from tether.pipeline import Event
from tether.store import Alert, Store, minute, rollup_rows
from tether.store._monitoring import facts_from_event

from ._config import AlertRule, MonitoringConfig, Signal

__all__ = [
    "AlertBook",
    "AlertChange",
    "AlertEvaluator",
    "Counts",
    "MemoryAlerts",
    "MemoryCounts",
    "ReplayResult",
    "StoreAlerts",
    "StoreCounts",
    "replay_alerts",
]


class Counts(Protocol):
    """Per tenant: (turns with the signal, all turns) in ``[since, until)``, to the minute."""

    def count(
        self, signal: Signal, since: datetime, until: datetime
    ) -> dict[str, tuple[int, int]]: ...


class StoreCounts:
    """Counts from the store's rollups: every gateway's traffic together."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def count(self, signal: Signal, since: datetime, until: datetime) -> dict[str, tuple[int, int]]:
        kind, key, actions = signal.rollup()
        return self.store.count_signal(
            since=since, until=until, kind=kind, key=key, actions=actions, model=signal.model
        )


class MemoryCounts:
    """Counts of events added in memory (the same rollups the store keeps), for replays and
    for a process that evaluates its own traffic."""

    def __init__(self, keep: timedelta = timedelta(days=8)) -> None:
        self.keep = keep
        # bucket -> tenant -> (kind, key) -> (action, model) -> turns
        self._buckets: dict[
            datetime, dict[str, dict[tuple[str, str], Counter[tuple[str, str]]]]
        ] = {}

    def add(self, events: Iterable[Event]) -> None:
        for row in rollup_rows(facts_from_event(e) for e in events):
            per_tenant = self._buckets.setdefault(row["bucket"], {})
            per_key = per_tenant.setdefault(row["tenant"], {})
            counter = per_key.setdefault((row["kind"], row["key"]), Counter())
            counter[(row["action"], row["model"])] += row["turns"]

    def forget_before(self, t: datetime) -> None:
        for bucket in [b for b in self._buckets if b < minute(t) - self.keep]:
            del self._buckets[bucket]

    def count(self, signal: Signal, since: datetime, until: datetime) -> dict[str, tuple[int, int]]:
        kind, key, actions = signal.rollup()
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])

        def total(counter: Counter[tuple[str, str]] | None, narrow: bool) -> int:
            if not counter:
                return 0
            return sum(
                n
                for (action, model), n in counter.items()
                if (signal.model is None or model == signal.model)
                and (not narrow or actions is None or action in actions)
            )

        first = minute(since)
        for bucket, per_tenant in self._buckets.items():
            if not first <= bucket < until:
                continue
            for tenant, per_key in per_tenant.items():
                slot = out[tenant]
                slot[1] += total(per_key.get(("turn", "")), False)
                slot[0] += total(per_key.get((kind, key)), True)
        return {t: (m, n) for t, (m, n) in out.items()}


class AlertBook(Protocol):
    """Where alerts live: opened (or re-fired), resolved, listed while firing."""

    def open(
        self, rule: AlertRule, tenant: str, fired: Fired, now: datetime
    ) -> tuple[Alert, bool]: ...

    def resolve(self, rule: str, tenant: str, now: datetime) -> Alert | None: ...

    def firing(self) -> list[Alert]: ...


class StoreAlerts:
    """Alerts in the store, deduplicated across gateways."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def open(self, rule: AlertRule, tenant: str, fired: Fired, now: datetime) -> tuple[Alert, bool]:
        return self.store.open_alert(
            tenant=tenant,
            rule=rule.name,
            severity=rule.severity,
            message=fired.message,
            value=fired.value,
            threshold=rule.threshold,
            window_s=int(rule.window.total_seconds()),
            details=fired.details,
            now=now,
        )

    def resolve(self, rule: str, tenant: str, now: datetime) -> Alert | None:
        return self.store.resolve_alert(tenant=tenant, rule=rule, now=now)

    def firing(self) -> list[Alert]:
        return self.store.open_alerts()


class MemoryAlerts:
    """Alerts in memory (replays, tests); every alert ever opened is kept in ``history``."""

    def __init__(self) -> None:
        self.history: list[Alert] = []
        self._open: dict[tuple[str, str], int] = {}
        self._ids = itertools.count(1)

    def open(self, rule: AlertRule, tenant: str, fired: Fired, now: datetime) -> tuple[Alert, bool]:
        index = self._open.get((tenant, rule.name))
        if index is not None:
            old = self.history[index]
            self.history[index] = old.model_copy(
                update={
                    "last_seen_at": now,
                    "fired_count": old.fired_count + 1,
                    "value": fired.value,
                    "message": fired.message,
                    "details": fired.details,
                }
            )
            return self.history[index], False
        alert = Alert(
            id=next(self._ids),
            tenant=tenant,
            rule=rule.name,
            severity=rule.severity,
            status="firing",
            message=fired.message,
            value=fired.value,
            threshold=rule.threshold,
            window_s=int(rule.window.total_seconds()),
            started_at=now,
            last_seen_at=now,
            resolved_at=None,
            fired_count=1,
            acknowledged_at=None,
            acknowledged_by=None,
            details=fired.details,
            deliveries=[],
        )
        self._open[(tenant, rule.name)] = len(self.history)
        self.history.append(alert)
        return alert, True

    def resolve(self, rule: str, tenant: str, now: datetime) -> Alert | None:
        index = self._open.pop((tenant, rule), None)
        if index is None:
            return None
        self.history[index] = self.history[index].model_copy(
            update={"status": "resolved", "resolved_at": now}
        )
        return self.history[index]

    def firing(self) -> list[Alert]:
        return [self.history[i] for i in self._open.values()]


@dataclass(frozen=True, slots=True)
class Fired:
    """A rule's finding for one tenant."""

    value: float
    message: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AlertChange:
    """What one evaluation did to an alert: ``opened`` (deliver it), ``refired`` (deduplicated)
    or ``resolved``."""

    change: Literal["opened", "refired", "resolved"]
    alert: Alert


def _pct(x: float) -> str:
    return f"{x:.1%}"


def judge(
    rule: AlertRule,
    current: Mapping[str, tuple[int, int]],
    baseline: Mapping[str, tuple[int, int]] | None = None,
) -> dict[str, Fired]:
    """Which tenants the rule fires for, given the window's (and the baseline's) counts."""
    fired: dict[str, Fired] = {}
    what = rule.when.describe()
    window = _human(rule.window)
    for tenant, (matched, turns) in current.items():
        if rule.tenants is not None and tenant not in rule.tenants:
            continue
        rate = matched / turns if turns else 0.0
        details: dict[str, Any] = {"matched": matched, "turns": turns, "rate": rate}
        if rule.count_above is not None:
            if matched > rule.count_above:
                fired[tenant] = Fired(
                    float(matched),
                    f"{matched} {what} in {window} (more than {rule.count_above})",
                    details,
                )
        elif rule.above is not None:
            if turns >= rule.min_turns and rate > rule.above:
                fired[tenant] = Fired(
                    rate,
                    f"{what}: {_pct(rate)} of {turns} turns in {window} (above {_pct(rule.above)})",
                    details,
                )
        elif rule.change is not None and baseline is not None:
            b_matched, b_turns = baseline.get(tenant, (0, 0))
            if turns < rule.min_turns or b_turns < rule.min_turns:
                continue
            # A baseline with no such turns counts as less than one: the rate must still
            # reach `change` times one turn's share of the baseline.
            base_rate = max(b_matched, 1) / b_turns
            p_value = rise_p_value(b_matched, b_turns, matched, turns)
            if matched and rate >= rule.change * base_rate and p_value < rule.significance:
                details.update(
                    p_value=p_value,
                    baseline_matched=b_matched,
                    baseline_turns=b_turns,
                    baseline_rate=b_matched / b_turns,
                )
                fired[tenant] = Fired(
                    rate / base_rate,
                    f"{what}: {_pct(rate)} of {turns} turns in {window}, "
                    f"{rate / base_rate:.1f}x the {_pct(b_matched / b_turns)} of the "
                    f"{_human(rule.baseline)} before (alert at {rule.change:g}x)",
                    details,
                )
    return fired


def rise_p_value(a: int, n: int, b: int, m: int) -> float:
    """One-sided p-value (two-proportion z-test) that ``b/m`` exceeds ``a/n``."""
    pooled = (a + b) / (n + m)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
    if se == 0:
        return 1.0
    return 0.5 * math.erfc((b / m - a / n) / se / math.sqrt(2))


def _human(d: timedelta) -> str:
    s = int(d.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


class AlertEvaluator:
    """Evaluates every rule at a moment: opens (or re-fires) the alerts that fire and resolves
    those that stopped."""

    def __init__(self, config: MonitoringConfig, counts: Counts, book: AlertBook) -> None:
        self.config = config
        self.counts = counts
        self.book = book

    def evaluate(self, now: datetime | None = None) -> list[AlertChange]:
        now = now or datetime.now(UTC)
        changes: list[AlertChange] = []
        firing = {(a.rule, a.tenant) for a in self.book.firing()}
        for rule in self.config.alerts:
            start = now - rule.window
            current = self.counts.count(rule.when, start, now)
            baseline = (
                self.counts.count(rule.when, start - rule.baseline, start)
                if rule.change is not None
                else None
            )
            fired = judge(rule, current, baseline)
            for tenant, finding in sorted(fired.items()):
                alert, new = self.book.open(rule, tenant, finding, now)
                changes.append(AlertChange("opened" if new else "refired", alert))
            for rule_name, tenant in sorted(firing):
                if rule_name == rule.name and tenant not in fired:
                    resolved = self.book.resolve(rule.name, tenant, now)
                    if resolved is not None:
                        changes.append(AlertChange("resolved", resolved))
        return changes


@dataclass
class ReplayResult:
    """What a replay raised: every alert (opened, with its final state) and each change with
    the traffic time it happened at."""

    alerts: list[Alert]
    changes: list[AlertChange] = field(default_factory=list)
    events: int = 0
    ticks: int = 0


def replay_alerts(
    config: MonitoringConfig, events: Iterable[Event], *, step: timedelta = timedelta(minutes=1)
) -> ReplayResult:
    """Evaluate the rules over recorded traffic as if live: events in time order, the rules
    evaluated every ``step`` of traffic time."""
    ordered: Sequence[Event] = sorted(events, key=lambda e: e.time)
    counts = MemoryCounts(keep=max((r.window + r.baseline for r in config.alerts), default=step))
    book = MemoryAlerts()
    evaluator = AlertEvaluator(config, counts, book)
    result = ReplayResult(alerts=[], events=len(ordered))
    if not ordered:
        return result
    tick = minute(ordered[0].time) + step
    pending: list[Event] = []
    for event in ordered:
        while event.time >= tick:
            counts.add(pending)
            pending = []
            result.changes.extend(evaluator.evaluate(tick))
            result.ticks += 1
            counts.forget_before(tick)
            tick += step
        pending.append(event)
    counts.add(pending)
    result.changes.extend(evaluator.evaluate(tick))
    result.ticks += 1
    result.alerts = book.history
    return result
