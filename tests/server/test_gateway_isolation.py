"""A tenant's key reads and writes only its own tenant's data, on every route."""

from __future__ import annotations

from typing import Any

import pytest
from gateway_harness import RunningGateway

CHAT = "/v1/chat/completions"
# Every route of the app, and the test below that tries it across tenants. A new route fails
# test_every_route_is_covered until it is added here, with its cross-tenant test.
TENANT_ROUTES = {
    ("POST", "/v1/chat/completions"),
    ("GET", "/v1/models"),
    ("POST", "/v1/scan"),
    ("GET", "/v1/events"),
    ("GET", "/v1/events/{event_id}"),
    ("POST", "/v1/feedback"),
    # Approvals across tenants: tests/server/test_gateway_tools.py (resume, show, approve)
    # and tests/dashboard/test_dashboard_http.py (list, show, approve, deny).
    ("GET", "/v1/approvals"),
    ("GET", "/v1/approvals/{approval_id}"),
    ("POST", "/v1/approvals/{approval_id}/approve"),
    ("POST", "/v1/approvals/{approval_id}/deny"),
    ("POST", "/v1/approvals/{approval_id}/resume"),
}
ADMIN_ROUTES = {
    ("POST", "/admin/tenants"),
    ("GET", "/admin/tenants"),
    ("POST", "/admin/tenants/{tenant}/keys"),
    ("GET", "/admin/tenants/{tenant}/keys"),
    ("DELETE", "/admin/tenants/{tenant}/keys/{key_id}"),
    ("PUT", "/admin/tenants/{tenant}/policy"),
    ("GET", "/admin/tenants/{tenant}/policies"),
    ("POST", "/admin/tenants/{tenant}/policies/{version_id}/activate"),
    ("GET", "/admin/tenants/{tenant}/events"),
    ("GET", "/metrics"),
}
# No tenant data: liveness, readiness and the API's own description.
PUBLIC_ROUTES = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
}


def test_every_route_is_covered(gateway: RunningGateway) -> None:
    with gateway.http() as http:
        paths = http.get("/openapi.json").json()["paths"]
        for docs in ("/docs", "/docs/oauth2-redirect", "/redoc"):
            assert http.get(docs).status_code == 200
    found = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    documentation = {
        ("GET", p) for p in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
    }
    assert found == TENANT_ROUTES | ADMIN_ROUTES | PUBLIC_ROUTES - documentation


@pytest.fixture
def two_tenants(gateway: RunningGateway, acme_key: str, globex_key: str) -> dict[str, Any]:
    """One turn each; globex also rates its answer."""
    ids = {}
    for tenant, key, model in (("acme", acme_key, "support"), ("globex", globex_key, "billing")):
        with gateway.http(key) as http:
            answer = http.post(
                CHAT,
                json={
                    "model": model,
                    "messages": [{"role": "user", "content": f"hi from {tenant}"}],
                },
            )
            assert answer.status_code == 200, answer.text
            ids[tenant] = answer.json()["tether"]["event_id"]
    with gateway.http(globex_key) as http:
        assert (
            http.post("/v1/feedback", json={"event_id": ids["globex"], "rating": 1}).status_code
            == 201
        )
    return ids


def test_chat_runs_the_keys_tenant_whatever_the_request_says(
    gateway: RunningGateway, acme_key: str, globex_key: str
) -> None:
    with gateway.http(acme_key) as http:
        other_model = http.post(
            CHAT, json={"model": "billing", "messages": [{"role": "user", "content": "x"}]}
        )
        assert other_model.status_code == 404  # globex's policy is not acme's to use
        answer = http.post(
            CHAT,
            headers={"X-Tether-Tenant": "globex"},
            json={
                "model": "support",
                "messages": [{"role": "user", "content": "lawsuit"}],  # globex blocks this word
                "metadata": {"tenant": "globex"},
                "user": "globex",
            },
        )
    body = answer.json()
    assert body["tether"]["action"] == "allow"
    assert body["tether"]["policy_version"].startswith("support@")
    event_path = f"/v1/events/{body['tether']['event_id']}"
    with gateway.http(acme_key) as http:
        assert http.get(event_path).json()["tenant"] == "acme"
    with gateway.http(globex_key) as http:
        assert http.get(event_path).status_code == 404


def test_models_are_the_keys_tenants(
    gateway: RunningGateway, acme_key: str, globex_key: str
) -> None:
    with gateway.http(acme_key) as http:
        assert [m["id"] for m in http.get("/v1/models").json()["data"]] == ["support", "echo"]
    with gateway.http(globex_key) as http:
        assert [m["id"] for m in http.get("/v1/models").json()["data"]] == ["billing", "echo"]


def test_scan_runs_the_keys_tenants_guards(gateway: RunningGateway, acme_key: str) -> None:
    with gateway.http(acme_key) as http:
        result = http.post("/v1/scan", json={"input": "a lawsuit about bitcoin"}).json()
        assert [v["guard"] for v in result["results"][0]["verdicts"]] == ["crypto"]
        other = http.post("/v1/scan", json={"input": "x", "guards": ["lawsuit"]})
        assert other.status_code == 400 and "no input guard 'lawsuit'" in other.text


def test_events_are_the_keys_tenants(
    gateway: RunningGateway, acme_key: str, two_tenants: dict[str, Any]
) -> None:
    with gateway.http(acme_key) as http:
        listed = http.get("/v1/events", params={"limit": 1000}).json()["data"]
        assert [e["id"] for e in listed] == [two_tenants["acme"]]
        assert http.get(f"/v1/events/{two_tenants['acme']}").status_code == 200
        theirs = http.get(f"/v1/events/{two_tenants['globex']}")
        assert theirs.status_code == 404
        assert theirs.json()["error"]["message"] == (
            f"this tenant has no event {two_tenants['globex']!r}"  # as if it did not exist
        )


def test_feedback_only_on_the_keys_tenants_events(
    gateway: RunningGateway, acme_key: str, two_tenants: dict[str, Any]
) -> None:
    with gateway.http(acme_key) as http:
        answer = http.post("/v1/feedback", json={"event_id": two_tenants["globex"], "rating": -1})
    assert answer.status_code == 404
    store = gateway.gateway.store
    assert [f.rating for f in store.list_feedback("globex")] == [1]
    assert store.list_feedback("acme") == []


@pytest.mark.parametrize(("method", "path"), sorted(ADMIN_ROUTES))
def test_admin_routes_refuse_tenant_keys(
    gateway: RunningGateway, acme_key: str, two_tenants: dict[str, Any], method: str, path: str
) -> None:
    concrete = path.format(tenant="globex", key_id="0123456789ab", version_id=1)
    with gateway.http(acme_key) as http:
        answer = http.request(method, concrete, json={"name": "x"})
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"]["code"] == "admin_only"


def test_the_admin_cannot_mix_tenants_up_either(
    gateway: RunningGateway, acme_key: str, globex_key: str
) -> None:
    """A key id under the wrong tenant is not found, and the key keeps working."""
    with gateway.admin() as admin:
        keys = admin.get("/admin/tenants/globex/keys").json()["data"]
        globex_key_id = keys[0]["id"]
        wrong = admin.delete(f"/admin/tenants/acme/keys/{globex_key_id}")
        assert wrong.status_code == 404
    with gateway.http(globex_key) as http:
        assert http.get("/v1/models").status_code == 200
