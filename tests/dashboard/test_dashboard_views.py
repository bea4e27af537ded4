"""The alerts, drift and compare views with data in them: a tenant sees its firing alert and
acknowledges it, sees its drift report with the topics that grew, and compares two of its
own eval runs; the administrator acknowledges another tenant's alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from dashboard_harness import Seeded, csrf_of, logged_in, write_run
from gateway_harness import ADMIN_KEY


def _alert(seeded: Seeded, tenant: str, rule: str) -> int:
    alert, opened = seeded.gateway.gateway.store.open_alert(
        tenant=tenant,
        rule=rule,
        severity="critical",
        message=f"{rule}: 12% of turns flagged in 10 min",
        value=0.12,
        threshold=0.05,
        window_s=600,
        details={},
        now=datetime.now(UTC),
    )
    assert opened
    return alert.id


def test_a_firing_alert_is_shown_and_acknowledged(seeded: Seeded) -> None:
    mine = _alert(seeded, "acme", "injection_wave")
    theirs = _alert(seeded, "globex", "prompt_leak")
    with logged_in(seeded.gateway, seeded.keys["acme"]) as client:
        page = client.get("/alerts").text
        assert "injection_wave" in page and "prompt_leak" not in page
        token = csrf_of(page)
        assert client.post(f"/alerts/{theirs}/ack", data={"csrf": token}).status_code == 404
        done = client.post(f"/alerts/{mine}/ack", data={"csrf": token})
        assert done.status_code == 303
        assert "acknowledge</button>" not in client.get("/alerts").text
    store = seeded.gateway.gateway.store
    (acked,) = [a for a in store.list_alerts("acme") if a.id == mine]
    assert acked.acknowledged_at is not None and acked.acknowledged_by
    with logged_in(seeded.gateway, ADMIN_KEY) as admin:
        page = admin.get("/alerts?tenant=globex").text
        answer = admin.post(
            f"/alerts/{theirs}/ack", data={"csrf": csrf_of(page), "tenant": "globex"}
        )
        assert answer.status_code == 303
    (other,) = [a for a in store.list_alerts("globex") if a.id == theirs]
    assert other.acknowledged_at is not None


def test_a_drift_report_shows_its_test_and_the_topics_that_grew(seeded: Seeded) -> None:
    now = datetime.now(UTC)
    seeded.gateway.gateway.store.add_drift_report(
        tenant="acme",
        stream="input",
        reference="suite:heldout.yaml",
        since=now - timedelta(days=1),
        until=now,
        n_reference=200,
        n_live=180,
        statistic=0.0412,
        p_value=0.001,
        alpha=0.05,
        drifted=True,
        topics=[{"topic": "investment_advice", "reference": 0.01, "live": 0.22}],
    )
    with logged_in(seeded.gateway, seeded.keys["acme"]) as client:
        page = client.get("/drift").text
    assert "investment_advice" in page and "suite:heldout.yaml" in page
    with logged_in(seeded.gateway, seeded.keys["globex"]) as other:
        assert "investment_advice" not in other.get("/drift").text


def test_two_of_a_tenants_runs_are_compared(seeded: Seeded, runs_dir: Path) -> None:
    write_run(runs_dir, "acme-before", tenant="acme")
    write_run(runs_dir, "acme-after", tenant="acme")
    with logged_in(seeded.gateway, seeded.keys["acme"]) as client:
        listing = client.get("/evals").text
        assert "acme-before" in listing and "acme-after" in listing
        answer = client.get("/evals/compare", params={"a": "acme-before", "b": "acme-after"})
    assert answer.status_code == 200, answer.text
    assert "acme-before" in answer.text and "acme-after" in answer.text
