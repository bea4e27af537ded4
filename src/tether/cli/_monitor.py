"""`tether monitor`: live traffic, stats, alerts, drift, the review queue and its exports."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.markup import escape

from tether.errors import ConfigError

from ._common import console, err_console, handle_errors

if TYPE_CHECKING:
    from tether.pipeline import Event
    from tether.store import Store

F = TypeVar("F", bound=Callable[..., Any])
__all__ = ["monitor"]

_DB_HELP = "Database URL (sqlite:///FILE or postgresql://...); default: $TETHER_DB."
_REPLAY_HELP = "A traffic file (JSONL events) to work on instead of a database."


@click.group()
def monitor() -> None:
    """Production monitoring of the gateway's traffic in the audit store.

    \b
    Try it on a recorded traffic file (no database needed):
      tether monitor stats --replay examples/monitor/traffic.jsonl
      tether monitor alerts --rules examples/monitor/monitoring.yaml \\
          --replay examples/monitor/traffic.jsonl
    \b
    On the gateway's database:
      tether monitor tail --tenant northbank --follow
      tether monitor stats --tenant northbank --window 1h
      tether monitor alerts --status firing
      tether monitor drift --tenant northbank --suite examples/bank/evals/smoke.yaml
      tether monitor review --tenant northbank
      tether monitor export --tenant northbank --as-suite reviewed.yaml
    """


def _db_option(fn: F) -> F:
    return click.option("--db", "db_url", help=_DB_HELP)(fn)


def _open(db_url: str | None) -> Store:
    try:
        from tether.store import Store
    except ImportError as exc:
        raise ConfigError(
            f"monitoring needs the server extra ({exc.name} is missing): "
            "pip install 'tether[server]'"
        ) from None
    return Store(db_url)


def _replayed(path: Path) -> tuple[Store, list[Event]]:
    """An in-memory store holding a traffic file's events."""
    from tether.monitor import load_traffic
    from tether.store import Store

    events = load_traffic(path)
    store = Store("sqlite:///:memory:")
    for i in range(0, len(events), 1000):
        store.insert_events(events[i : i + 1000])
    return store, events


def _duration(value: str) -> timedelta:
    from tether.monitor import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{value!r} is not an ISO 8601 time, e.g. 2026-11-28T09:00:00Z") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _short(text: str, n: int = 60) -> str:
    one = " ".join(text.split())
    return one if len(one) <= n else one[: n - 1] + "…"


# -- tail --------------------------------------------------------------------------------------


@monitor.command()
@_db_option
@click.option("--tenant", required=True, help="Whose events.")
@click.option("--action", help="Only turns that ended so (allow, redact, block, escalate, error).")
@click.option("--guard", help="Only turns this guard flagged (its name or id).")
@click.option("--user", help="Only this end user's turns.")
@click.option("--flagged", is_flag=True, help="Only turns some guard flagged.")
@click.option("-n", "--limit", default=20, show_default=True, help="Recent turns shown first.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new turns as they arrive.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between looks (-f).")
@click.option("--duration", type=float, help="Stop following after this many seconds.")
@handle_errors
def tail(
    db_url: str | None,
    tenant: str,
    action: str | None,
    guard: str | None,
    user: str | None,
    flagged: bool,
    limit: int,
    follow: bool,
    interval: float,
    duration: float | None,
) -> None:
    """Print a tenant's latest turns, filtered, and with -f new ones as they come."""

    def wanted(e: Event) -> bool:
        hits = [v for v in e.verdicts if v.flagged]
        if flagged and not hits:
            return False
        if guard is not None and not any(guard in (v.guard, v.kind) for v in hits):
            return False
        return user is None or e.user == user

    def show(e: Event) -> None:
        flags = ",".join(sorted({v.guard for v in e.verdicts if v.flagged})) or "-"
        console.print(
            f"{e.time:%Y-%m-%d %H:%M:%S} {e.action:<8} {escape(flags):<20} "
            f"{escape(_short(e.input))} → {escape(_short(e.output, 40))}",
            markup=True,
        )

    with _open(db_url) as store:
        # Filters beyond the action are applied here, so look further back than --limit.
        found = store.list_events(tenant, limit=max(limit * 20, 200), action=action)
        recent = [e for e in found if wanted(e)][:limit][::-1]
        for e in recent:
            show(e)
        if not follow:
            return
        seen = {e.id for e in found}
        since = found[0].time if found else datetime.now(UTC) - timedelta(seconds=1)
        stop = time.monotonic() + duration if duration is not None else None
        try:
            while stop is None or time.monotonic() < stop:
                time.sleep(interval)
                new = store.list_events(tenant, limit=1000, since=since, action=action)
                for e in new[::-1]:
                    if e.id not in seen:
                        seen.add(e.id)
                        if wanted(e):
                            show(e)
                if new:
                    since = new[0].time
        except KeyboardInterrupt:
            pass


# -- stats -------------------------------------------------------------------------------------


@monitor.command()
@_db_option
@click.option("--tenant", help="Whose traffic; default: every tenant's.")
@click.option("--window", default="1h", show_default=True, help="How far back: 10m, 1h, 7d...")
@click.option("--until", "until_s", help="End of the window (ISO 8601); default: now.")
@click.option(
    "--replay", type=click.Path(exists=True, dir_okay=False, path_type=Path), help=_REPLAY_HELP
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def stats(
    db_url: str | None,
    tenant: str | None,
    window: str,
    until_s: str | None,
    replay: Path | None,
    as_json: bool,
) -> None:
    """Turns, outcomes, guard flags, tool decisions, tokens and latency per tenant and window.
    With --replay, the window ends at the file's last turn."""
    span = _duration(window)
    until = _when(until_s)
    if replay is not None:
        store, events = _replayed(replay)
        if until is None and events:
            until = max(e.time for e in events) + timedelta(minutes=1)
    else:
        store = _open(db_url)
    with store:
        until = until or datetime.now(UTC)
        tenants = [tenant] if tenant is not None else _tenants(store)
        results = [store.stats(t, since=until - span, until=until) for t in tenants]
    if as_json:
        click.echo(json.dumps([r.model_dump(mode="json") for r in results], indent=2))
        return
    console.print(f"{window} to {until:%Y-%m-%d %H:%M} UTC")
    for r in results:
        console.print(f"[bold]{escape(r.tenant or '(no tenant)')}[/bold]  {r.turns} turns")
        rows = {
            "outcomes": ", ".join(
                f"{k} {_share(v, r.turns)}"
                for k, v in sorted(r.actions.items(), key=lambda x: -x[1])
            ),
            "flags": ", ".join(f"{k} {_share(v, r.turns)}" for k, v in r.flags.items()),
            "pipeline": ", ".join(f"{k.replace('|', ' ')} {v}" for k, v in sorted(r.taken.items())),
            "tools": ", ".join(f"{k} {v}" for k, v in sorted(r.tools.items())),
            "models": ", ".join(f"{k} {v}" for k, v in r.models.items()),
            "tokens": f"{r.prompt_tokens} in, {r.completion_tokens} out",
            "latency": (
                f"p50 {r.latency_p50_ms:.0f} ms, p95 {r.latency_p95_ms:.0f} ms; mean "
                + ", ".join(f"{k.replace('_', ' ')} {v:.0f} ms" for k, v in r.latency_ms.items())
                if r.latency_p50_ms is not None and r.latency_p95_ms is not None
                else ""
            ),
        }
        for name, value in rows.items():
            console.print(f"  {name:<9} {escape(value or '-')}", markup=True)


def _share(n: int, total: int) -> str:
    return f"{n} ({n / total:.1%})" if total else str(n)


def _tenants(store: Store) -> list[str]:
    from sqlalchemy import select

    from tether.store._monitoring import event_rollups

    with store.engine.connect() as conn:
        return sorted(conn.scalars(select(event_rollups.c.tenant).distinct()))


# -- alerts ------------------------------------------------------------------------------------


@monitor.command()
@_db_option
@click.option("--tenant", help="Whose alerts; default: every tenant's.")
@click.option("--status", type=click.Choice(["firing", "resolved"]), help="Only these.")
@click.option(
    "--rules",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A monitoring file: with --replay, evaluate it over the file; with "
    "--evaluate, over the database now (and deliver to its webhooks).",
)
@click.option(
    "--replay", type=click.Path(exists=True, dir_okay=False, path_type=Path), help=_REPLAY_HELP
)
@click.option("--evaluate", is_flag=True, help="Evaluate --rules over the database once, now.")
@click.option("--fail-on-alert", is_flag=True, help="Exit 1 if any alert fired (CI).")
@click.option("-n", "--limit", default=50, show_default=True)
@handle_errors
def alerts(
    db_url: str | None,
    tenant: str | None,
    status: str | None,
    rules: Path | None,
    replay: Path | None,
    evaluate: bool,
    fail_on_alert: bool,
    limit: int,
) -> None:
    """List stored alerts; or raise them from a monitoring file's rules over a traffic file
    (--replay) or the database (--evaluate)."""
    from tether.monitor import load_monitoring
    from tether.store import Alert

    found: list[Alert]
    if replay is not None or evaluate:
        if rules is None:
            raise ConfigError("--replay and --evaluate need the rules: --rules monitoring.yaml")
        config = load_monitoring(rules)
    if replay is not None:
        from tether.monitor import load_traffic, replay_alerts

        result = replay_alerts(config, load_traffic(replay))
        found = [a for a in result.alerts if tenant is None or a.tenant == tenant]
        console.print(f"replayed {result.events} turns, {result.ticks} evaluations")
    elif evaluate:
        from tether.monitor import Monitor

        with _open(db_url) as store:
            changes = asyncio.run(Monitor(config, store).tick())
            found = [c.alert for c in changes]
            found = [store.get_alert(None, a.id) or a for a in found]
    else:
        with _open(db_url) as store:
            found = store.list_alerts(tenant, status=status, limit=limit)
    if status is not None:
        found = [a for a in found if a.status == status]
    if not found:
        console.print("no alerts")
    for a in found:
        end = f" → resolved {a.resolved_at:%H:%M}" if a.resolved_at else ""
        delivered = ""
        if a.deliveries:
            ok = sum(1 for d in a.deliveries if d.get("ok"))
            delivered = f" [delivered {ok}/{len(a.deliveries)}]"
        console.print(
            f"{a.started_at:%Y-%m-%d %H:%M} {a.severity:<8} {a.status:<8} {escape(a.rule)} "
            f"tenant={escape(a.tenant or '-')} x{a.fired_count}{end}{delivered}: "
            f"{escape(a.message)}",
            markup=True,
        )
    if fail_on_alert and found:
        raise SystemExit(1)


# -- drift -------------------------------------------------------------------------------------


@monitor.command()
@_db_option
@click.option("--tenant", help="Whose traffic (required with --db).")
@click.option(
    "--suite",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Reference: an eval suite's inputs.",
)
@click.option(
    "--reference",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Reference: a traffic file (with --replay).",
)
@click.option(
    "--reference-window",
    default="7d",
    show_default=True,
    help="Reference: this period of the tenant's traffic before the window.",
)
@click.option("--window", default="24h", show_default=True, help="The live window, up to now.")
@click.option(
    "--replay",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Live traffic from this file instead of the database.",
)
@click.option(
    "--stream", type=click.Choice(["input", "output"]), default="input", show_default=True
)
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Name the policy's topics that grew.",
)
@click.option("--alpha", default=0.01, show_default=True, help="Drift when p < alpha.")
@click.option("--samples", default=300, show_default=True, help="Texts per side at most.")
@click.option("--permutations", default=500, show_default=True)
@click.option("--fail-on-drift", is_flag=True, help="Exit 1 when drift is found (CI).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def drift(
    db_url: str | None,
    tenant: str | None,
    suite: Path | None,
    reference: Path | None,
    reference_window: str,
    window: str,
    replay: Path | None,
    stream: str,
    policy_file: Path | None,
    alpha: float,
    samples: int,
    permutations: int,
    fail_on_drift: bool,
    as_json: bool,
) -> None:
    """Test whether live inputs (or outputs) drifted from a reference: MMD on sentence
    embeddings with a permutation p-value, and the topics that grew. The database's reports
    are stored (the dashboard shows them)."""
    from tether.monitor import drift_between, drift_check, load_traffic, suite_texts
    from tether.policy import load_policy

    policy = load_policy(policy_file) if policy_file is not None else None
    settings = {"alpha": alpha, "samples": samples, "permutations": permutations, "policy": policy}
    with console.status("embedding and testing…"):
        if replay is not None:
            live = load_traffic(replay)
            if tenant is not None:
                live = [e for e in live if e.tenant == tenant]
            texts = [
                e.input if stream == "input" else e.output for e in live if e.action != "error"
            ]
            if suite is not None:
                ref_texts = suite_texts(suite)
            elif reference is not None:
                ref_events = load_traffic(reference)
                ref_texts = [e.input if stream == "input" else e.output for e in ref_events]
            else:
                raise ConfigError("with --replay, give the reference: --suite or --reference")
            try:
                result = drift_between(ref_texts, texts, **settings)  # type: ignore[arg-type]
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            payload: dict[str, Any] = result.model_dump()
        else:
            if tenant is None:
                raise ConfigError("give the tenant: --tenant NAME")
            now = datetime.now(UTC)
            since = now - _duration(window)
            with _open(db_url) as store:
                try:
                    report = drift_check(
                        store,
                        tenant,
                        since=since,
                        until=now,
                        reference_suite=suite,
                        reference_since=since - _duration(reference_window),
                        reference_until=since,
                        stream=stream,  # type: ignore[arg-type]
                        **settings,  # type: ignore[arg-type]
                    )
                except ValueError as exc:
                    raise ConfigError(str(exc)) from None
            payload = report.model_dump(mode="json")
    if as_json:
        click.echo(json.dumps(payload, indent=2, default=str))
    else:
        verdict = "DRIFT" if payload["drifted"] else "no drift"
        console.print(
            f"{verdict}: MMD²={payload['statistic']:.4f}, p={payload['p_value']:.4f} "
            f"(alpha {alpha}), {payload['n_reference']} reference vs {payload['n_live']} live texts"
        )
        for t in payload["topics"]:
            console.print(
                f"  grew: {escape(t['topic'])} ({t['source']}) "
                f"{t['reference_share']:.0%} → {t['live_share']:.0%} (p={t['p_value']:.3g})",
                markup=True,
            )
    if fail_on_drift and payload["drifted"]:
        raise SystemExit(1)


# -- review ------------------------------------------------------------------------------------


@monitor.command()
@_db_option
@click.option("--tenant", required=True)
@click.option("--event", "event_id", help="Label this turn (else: list the queue).")
@click.option("--label", type=click.Choice(["correct", "false_positive", "missed"]))
@click.option("--corrected", help="The answer it should have given.")
@click.option(
    "--expect",
    type=click.Choice(["comply", "refuse", "redact", "escalate"]),
    help="What an eval case made of it should expect (default: from the label).",
)
@click.option("--note")
@click.option("--reviewer")
@click.option("--all", "show_all", is_flag=True, help="List reviewed turns too.")
@click.option("-n", "--limit", default=50, show_default=True)
@handle_errors
def review(
    db_url: str | None,
    tenant: str,
    event_id: str | None,
    label: str | None,
    corrected: str | None,
    expect: str | None,
    note: str | None,
    reviewer: str | None,
    show_all: bool,
    limit: int,
) -> None:
    """The review queue: flagged and down-voted turns. List it, or label a turn correct,
    false_positive (the guards acted wrongly) or missed (they should have acted)."""
    with _open(db_url) as store:
        if event_id is not None:
            if label is None:
                raise ConfigError("give the label: --label correct|false_positive|missed")
            item = store.label_review(
                tenant,
                event_id,
                label=label,  # type: ignore[arg-type]  # click.Choice checked it
                reviewer=reviewer,
                corrected=corrected,
                expect=expect,
                note=note,
            )
            if item is None:
                raise ConfigError(f"tenant {tenant!r} has no event {event_id!r}")
            console.print(f"{item.event_id}: {item.label}")
            return
        items = store.review_queue(tenant, status="all" if show_all else "pending", limit=limit)
        pending = store.count_reviews(tenant)
    console.print(f"{pending} turns waiting for review")
    for i in items:
        console.print(
            f"{i.event_id} {i.time:%Y-%m-%d %H:%M} {'+'.join(i.reasons):<18} "
            f"{escape(','.join(i.guards) or '-'):<16} {i.label or 'pending':<14} "
            f"{escape(_short(i.input))}",
            markup=True,
        )


# -- export ------------------------------------------------------------------------------------


@monitor.command()
@_db_option
@click.option("--tenant", required=True)
@click.option(
    "--as-suite",
    "suite_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write reviewed turns as an eval suite (YAML) for `tether eval run`.",
)
@click.option(
    "--as-preferences",
    "prefs_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write corrected turns as preference pairs (JSONL: prompt/chosen/rejected).",
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    type=click.Choice(["correct", "false_positive", "missed"]),
    help="Only these.",
)
@click.option("--name", help="The suite's name; default: <tenant>-reviewed.")
@handle_errors
def export(
    db_url: str | None,
    tenant: str,
    suite_out: Path | None,
    prefs_out: Path | None,
    labels: tuple[str, ...],
    name: str | None,
) -> None:
    """Export reviewed turns: as eval cases (--as-suite) and as preference pairs for
    preference tuning (--as-preferences)."""
    from tether.evals import dump_suite
    from tether.monitor import preference_pairs, preferences_jsonl, reviewed, suite_from_reviews

    if suite_out is None and prefs_out is None:
        raise ConfigError("say what to write: --as-suite FILE and/or --as-preferences FILE")
    with _open(db_url) as store:
        items = reviewed(store, tenant, labels=labels or None)
    if suite_out is not None:
        suite = suite_from_reviews(
            items, name=name or f"{tenant}-reviewed", description=f"Reviewed turns of {tenant}."
        )
        suite_out.parent.mkdir(parents=True, exist_ok=True)
        suite_out.write_text(dump_suite(suite), encoding="utf-8")
        console.print(f"{len(suite.cases)} cases → {suite_out}")
    if prefs_out is not None:
        pairs = preference_pairs(items)
        prefs_out.parent.mkdir(parents=True, exist_ok=True)
        prefs_out.write_text(preferences_jsonl(pairs), encoding="utf-8")
        console.print(f"{len(pairs)} preference pairs → {prefs_out}")
    if not items:
        err_console.print("note: no reviewed turns yet (tether monitor review)")
