"""The dashboard over HTTP: login and sessions, CSRF, the security headers, escaping, and a
tenant's login kept to its own tenant on every route; the approvals API likewise."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from dashboard_harness import ATTACK, Seeded, csrf_of, logged_in, write_run
from gateway_harness import ADMIN_KEY


def test_pages_need_a_login(seeded: Seeded) -> None:
    with httpx.Client(base_url=seeded.gateway.url) as client:
        for path in ("/", "/events", "/approvals", "/evals", "/review", "/alerts", "/drift"):
            answer = client.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/login?next="), path


def test_login_sets_a_signed_http_only_strict_cookie(seeded: Seeded) -> None:
    with logged_in(seeded.gateway, seeded.keys["acme"]) as client:
        cookie = next(c for c in client.cookies.jar if c.name == "tether_session")
        assert seeded.keys["acme"] not in cookie.value  # the key itself is never in the cookie
        page = client.get("/")
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert page.headers["x-frame-options"] == "DENY"
    raw = httpx.Client(base_url=seeded.gateway.url)
    token = csrf_of(raw.get("/login").text)
    answer = raw.post("/login", data={"key": seeded.keys["acme"], "csrf": token})
    set_cookie = [v for k, v in answer.headers.multi_items() if k == "set-cookie"]
    session = next(v for v in set_cookie if v.startswith("tether_session="))
    assert "HttpOnly" in session and "SameSite=strict" in session and "Max-Age=" in session
    raw.close()


def test_a_wrong_key_or_a_forged_cookie_gets_no_session(seeded: Seeded) -> None:
    with httpx.Client(base_url=seeded.gateway.url) as client:
        token = csrf_of(client.get("/login").text)
        answer = client.post("/login", data={"key": "tth_000000000000_nope", "csrf": token})
        assert answer.status_code == 401 and "not valid" in answer.text
        client.cookies.set("tether_session", "eyJyIjoiYWRtaW4ifQ.AAAA")
        assert client.get("/").status_code == 303


def test_login_without_its_csrf_token_is_refused(seeded: Seeded) -> None:
    with httpx.Client(base_url=seeded.gateway.url) as client:
        client.get("/login")
        answer = client.post("/login", data={"key": ADMIN_KEY, "csrf": "forged"})
        assert answer.status_code == 403
        assert "tether_session" not in client.cookies


def test_forms_need_the_sessions_csrf_token(seeded: Seeded) -> None:
    approval = seeded.approvals["acme"]
    with logged_in(seeded.gateway, seeded.keys["acme"]) as client:
        for token in (None, "forged"):
            data = {"decision": "approve"} | ({"csrf": token} if token else {})
            answer = client.post(f"/approvals/{approval}/decide", data=data)
            assert answer.status_code == 403
        # A token from another session does not do either.
        with logged_in(seeded.gateway, ADMIN_KEY) as admin:
            other = csrf_of(admin.get(f"/approvals/{approval}").text)
        answer = client.post(
            f"/approvals/{approval}/decide", data={"decision": "approve", "csrf": other}
        )
        assert answer.status_code == 403
        # A form posted from another site is refused even with a token.
        token = csrf_of(client.get(f"/approvals/{approval}").text)
        answer = client.post(
            f"/approvals/{approval}/decide",
            data={"decision": "approve", "csrf": token},
            headers={"origin": "https://evil.example"},
        )
        assert answer.status_code == 403
        status = client.get(f"/approvals/{approval}")
        assert ">pending<" in status.text


def test_expired_session_and_revoked_key_log_out(seeded: Seeded) -> None:
    app_state = seeded.gateway.server.config.app.state  # type: ignore[attr-defined]
    with logged_in(seeded.gateway, seeded.keys["acme"]) as client:
        assert client.get("/").status_code == 200
        app_state.dashboard.signer.ttl_s = 0.5
        with logged_in(seeded.gateway, seeded.keys["acme"]) as short:
            time.sleep(0.6)
            assert short.get("/").status_code == 303
        app_state.dashboard.signer.ttl_s = 3600
        key_id = seeded.keys["acme"].split("_")[1]
        with seeded.gateway.admin() as admin:
            assert admin.delete(f"/admin/tenants/acme/keys/{key_id}").is_success
        assert client.get("/").status_code == 303


def test_event_texts_are_escaped(seeded: Seeded) -> None:
    with logged_in(seeded.gateway, seeded.keys["acme"]) as client:
        for path in (
            f"/events/{seeded.flagged['acme']}",
            "/events",
            f"/approvals/{seeded.approvals['acme']}",
        ):
            page = client.get(path).text
            assert ATTACK not in page, path
            assert "<script>alert" not in page, path
            assert "&lt;script&gt;alert(" in page or "\\u003cscript\\u003e" in page, path


def test_flagged_span_is_marked(seeded: Seeded) -> None:
    with logged_in(seeded.gateway, seeded.keys["acme"]) as client:
        page = client.get(f"/events/{seeded.flagged['acme']}").text
    assert '<mark class="span" title="TERM">bitcoin<span class="lbl">TERM</span></mark>' in page
    assert "matched a forbidden term" in page and "forbidden_term" in page


def test_explorer_filters(seeded: Seeded) -> None:
    with logged_in(seeded.gateway, seeded.keys["acme"]) as client:

        def ids(**params: str) -> int:
            return client.get("/events", params=params).text.count('class="event"')

        assert ids() == 31
        assert ids(guard="crypto") == 1
        assert ids(guard="deny_list") == 1
        assert ids(flagged="1") == 1
        assert ids(action="block") == 1
        assert ids(user="user-1") == 10
        assert ids(q="NUMBER 7") == 1
        assert ids(q="100%") == 0
        assert ids(policy_version="support@v2") == 15


def test_overview_counts_and_charts(seeded: Seeded) -> None:
    with logged_in(seeded.gateway, seeded.keys["acme"]) as client:
        page = client.get("/", params={"range": "24h"}).text
    assert '<div class="v" id="turns">31</div>' in page
    assert page.count('<rect class="a-allow"') >= 1 and '<rect class="a-block"' in page
    assert ">deny_list</text>" in page  # top guards by kind (from the rollups)
    assert "3.2%" in page  # 1 block of 31 turns


@pytest.mark.parametrize(
    "path",
    [
        "/?tenant=globex",
        "/events?tenant=globex",
        "/events/{event}",
        "/approvals?tenant=globex",
        "/approvals/{approval}",
        "/review?tenant=globex",
        "/alerts?tenant=globex",
        "/drift?tenant=globex",
        "/evals/globex-run/report",
        "/evals/compare?a=globex-run&b=globex-run",
    ],
)
def test_a_tenant_login_cannot_reach_another_tenants_pages(
    seeded: Seeded, runs_dir: Path, path: str
) -> None:
    write_run(runs_dir, "globex-run", tenant="globex")
    url = path.format(event=seeded.flagged["globex"], approval=seeded.approvals["globex"])
    with logged_in(seeded.gateway, seeded.keys["acme"]) as client:
        answer = client.get(url)
        assert answer.status_code == 404, answer.text
        assert "mallory" not in answer.text and "bitcoin" not in answer.text
    with logged_in(seeded.gateway, ADMIN_KEY) as admin:
        assert admin.get(url).status_code == 200, url


def test_a_tenant_login_cannot_decide_or_label_another_tenants_things(seeded: Seeded) -> None:
    with logged_in(seeded.gateway, seeded.keys["acme"]) as client:
        token = csrf_of(client.get("/").text)
        answer = client.post(
            f"/approvals/{seeded.approvals['globex']}/decide",
            data={"decision": "approve", "csrf": token},
        )
        assert answer.status_code == 404
        answer = client.post(
            f"/review/{seeded.flagged['globex']}", data={"label": "correct", "csrf": token}
        )
        assert answer.status_code in (404, 501)
        listing = client.get("/approvals").text
        assert seeded.approvals["acme"] in listing and seeded.approvals["globex"] not in listing
        events = client.get("/events").text
        assert seeded.flagged["globex"] not in events
    with logged_in(seeded.gateway, ADMIN_KEY) as admin:
        page = admin.get(f"/approvals/{seeded.approvals['globex']}").text
        assert ">pending<" in page


def test_approve_with_changed_arguments_from_the_page(seeded: Seeded) -> None:
    approval = seeded.approvals["acme"]
    with logged_in(seeded.gateway, seeded.keys["acme"]) as client:
        token = csrf_of(client.get(f"/approvals/{approval}").text)
        changed = {"to_account": "12345678", "amount": 100.0, "reference": "rent"}
        answer = client.post(
            f"/approvals/{approval}/decide",
            data={"decision": "approve", "csrf": token, "arguments": json.dumps(changed)},
        )
        assert answer.status_code == 303
        page = client.get(answer.headers["location"]).text
        assert "approved with changed arguments" in page
        assert '"reference": "rent"' in page
        again = client.post(
            f"/approvals/{approval}/decide", data={"decision": "deny", "csrf": token}
        )
        assert again.status_code == 409 and "already approved" in again.text


def test_eval_runs_are_listed_and_served_with_the_reports_own_policy(
    seeded: Seeded, runs_dir: Path
) -> None:
    write_run(runs_dir, "acme-run", tenant="acme")
    write_run(runs_dir, "globex-run", tenant="globex")
    with logged_in(seeded.gateway, seeded.keys["acme"]) as client:
        page = client.get("/evals").text
        assert "acme-run" in page and "globex-run" not in page
        report = client.get("/evals/acme-run/report")
        assert report.status_code == 200 and "tether evaluation report" in report.text
        assert report.headers["content-security-policy"].startswith("default-src 'none'")
        assert client.get("/evals/..%2F..%2Fetc/report").status_code == 404


# -- the approvals API ------------------------------------------------------------------------


def test_approvals_api_is_tenant_scoped(seeded: Seeded) -> None:
    acme, globex = seeded.approvals["acme"], seeded.approvals["globex"]
    with seeded.gateway.http(seeded.keys["acme"]) as client:
        listed = client.get("/v1/approvals").json()["data"]
        assert [a["id"] for a in listed] == [acme]
        assert "context" not in listed[0]
        assert client.get(f"/v1/approvals/{globex}").status_code == 404
        assert client.post(f"/v1/approvals/{globex}/approve").status_code == 404
        assert client.post(f"/v1/approvals/{globex}/deny").status_code == 404
        assert client.get("/v1/approvals", params={"tenant": "globex"}).status_code == 403
        answer = client.post(
            f"/v1/approvals/{acme}/approve",
            json={"arguments": {"to_account": "12345678", "amount": 5}},
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["status"] == "approved" and body["approved_arguments"]["amount"] == 5
        assert body["approver"].startswith("key ")
        again = client.post(f"/v1/approvals/{acme}/deny")
        assert again.status_code == 409 and again.json()["error"]["code"] == "approval_decided"
    with seeded.gateway.admin() as admin:
        everything = admin.get("/v1/approvals", params={"status": "all"}).json()["data"]
        assert {a["id"] for a in everything} == {acme, globex}
        denied = admin.post(f"/v1/approvals/{globex}/deny", json={"note": "no"}).json()
        assert denied["status"] == "denied" and denied["approver"] == "admin"
    with seeded.gateway.http() as anonymous:
        assert anonymous.get("/v1/approvals").status_code == 401


def test_text_search_reads_the_newest_events_and_says_so(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tether.store import _explore

    monkeypatch.setattr(_explore, "TEXT_SCAN_LIMIT", 10)
    with logged_in(seeded.gateway, seeded.keys["acme"]) as client:
        near = client.get("/events", params={"q": "question number 3"}).text
        far = client.get("/events", params={"q": "question number 25"}).text
        unbounded = client.get("/events", params={"user": "user-1"}).text
    assert near.count('class="event"') == 1 and 'id="search-bound"' in near
    assert "newest 10 turns" in near
    assert far.count('class="event"') == 0  # older than the newest 10: not read
    assert 'id="search-bound"' not in unbounded
