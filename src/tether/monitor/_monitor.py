"""The monitor a gateway runs in the background: alert rules every ``evaluate_every`` (over
the store's rollups, so every gateway sharing the database sees the same counts) with webhook
delivery, and scheduled drift checks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from tether.policy import Policy
from tether.store import DriftReport, Store

from ._alerts import AlertChange, AlertEvaluator, StoreAlerts, StoreCounts
from ._config import MonitoringConfig
from ._drift import drift_check
from ._webhooks import deliver

__all__ = ["Monitor"]

log = logging.getLogger("tether.monitor")


class Monitor:
    """Evaluates ``config``'s alert rules over ``store`` and delivers what opens (and
    resolves) to its webhooks; runs its drift schedule. ``policies`` names each tenant's
    policy in force, for the drift report's policy topics."""

    def __init__(
        self,
        config: MonitoringConfig,
        store: Store,
        *,
        policies: Callable[[str], Policy | None] | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.policies = policies
        self.client = client
        self.evaluator = AlertEvaluator(config, StoreCounts(store), StoreAlerts(store))

    async def tick(self, now: datetime | None = None) -> list[AlertChange]:
        """Evaluate every rule once; deliver and record the alerts that opened or resolved."""
        changes = await asyncio.to_thread(self.evaluator.evaluate, now)
        sends = [c for c in changes if c.change in ("opened", "resolved")]
        if sends and self.config.webhooks:
            results = await asyncio.gather(
                *(
                    deliver(self.config.webhooks, c.alert, c.change, client=self.client)
                    for c in sends
                )
            )
            for change, records in zip(sends, results, strict=True):
                if records:
                    await asyncio.to_thread(self.store.record_delivery, change.alert.id, records)
        for c in changes:
            if c.change != "refired":
                log.info(
                    "alert %s %s for tenant %r: %s",
                    c.alert.rule,
                    c.change,
                    c.alert.tenant,
                    c.alert.message,
                )
        return changes

    async def drift_tick(self, now: datetime | None = None) -> list[DriftReport]:
        """Run the drift schedule's check for each of its tenants once."""
        schedule = self.config.drift
        if schedule is None:
            return []
        now = now or datetime.now(UTC)
        tenants = schedule.tenants or [
            t.name for t in await asyncio.to_thread(self.store.list_tenants)
        ]
        reports = []
        for tenant in tenants:
            since = now - schedule.window
            policy = self.policies(tenant) if self.policies is not None else None
            try:
                report = await asyncio.to_thread(
                    drift_check,
                    self.store,
                    tenant,
                    since=since,
                    until=now,
                    reference_suite=schedule.reference_suite,
                    reference_since=since - schedule.reference_window,
                    reference_until=since,
                    stream=schedule.stream,
                    alpha=schedule.alpha,
                    samples=schedule.samples,
                    permutations=schedule.permutations,
                    policy=policy,
                )
            except ValueError as exc:  # too little traffic to test yet
                log.info("drift check of tenant %r skipped: %s", tenant, exc)
                continue
            reports.append(report)
            if report.drifted:
                log.warning("tenant %r: %s drifted (p=%.4f)", tenant, report.stream, report.p_value)
        return reports
