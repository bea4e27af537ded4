"""The admin API: tenants, keys shown once and revocable, policy upload with hot reload."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway_harness import SUPPORT_POLICY, RunningGateway

from tether.server import GatewayConfig

CHAT = "/v1/chat/completions"
HELLO = {"model": "support", "messages": [{"role": "user", "content": "hello"}]}
STRICTER = SUPPORT_POLICY.replace("terms: [bitcoin]", "terms: [bitcoin, hello]")


def test_tenants(gateway: RunningGateway) -> None:
    with gateway.admin() as admin:
        created = admin.post("/admin/tenants", json={"name": "initech", "retention_days": 30})
        assert created.status_code == 201 and created.json()["retention_days"] == 30
        assert admin.post("/admin/tenants", json={"name": "initech"}).status_code == 409
        bad = admin.post("/admin/tenants", json={"name": "Not A Slug"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "name"
        listed = {t["name"]: t for t in admin.get("/admin/tenants").json()["data"]}
    assert set(listed) == {"acme", "globex", "initech"}
    assert listed["acme"]["policy_version"].startswith("support@")
    assert listed["initech"]["policy_version"] is None


def test_keys_are_shown_once_listed_without_secrets_and_revoked_at_once(
    gateway: RunningGateway,
) -> None:
    with gateway.admin() as admin:
        made = admin.post("/admin/tenants/acme/keys", json={"name": "mobile app"}).json()
        key = made["key"]
        listed = admin.get("/admin/tenants/acme/keys").json()["data"]
        assert [k["id"] for k in listed] == [made["id"]]
        assert "key" not in listed[0] and "hash" not in listed[0] and "salt" not in listed[0]
        assert key.split("_", 2)[2] not in admin.get("/admin/tenants/acme/keys").text
        assert admin.post("/admin/tenants/nobody/keys", json={}).status_code == 404
    with gateway.http(key) as http:
        assert http.get("/v1/models").status_code == 200
        with gateway.admin() as admin:
            revoked = admin.delete(f"/admin/tenants/acme/keys/{made['id']}")
            assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
        after = http.get("/v1/models")
    assert after.status_code == 401 and after.json()["error"]["code"] == "invalid_api_key"


def test_expired_keys_stop_working(gateway: RunningGateway) -> None:
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    key = gateway.new_key("acme", expires_at=past)
    with gateway.http(key) as http:
        assert http.get("/v1/models").status_code == 401
    with gateway.admin() as admin:
        naive = admin.post("/admin/tenants/acme/keys", json={"expires_at": "2030-01-01T00:00:00"})
        assert naive.status_code == 400 and "time zone" in naive.text


def test_policy_upload_is_in_force_at_once_and_versions_are_kept(
    gateway: RunningGateway, acme_key: str
) -> None:
    with gateway.http(acme_key) as http:
        before = http.post(CHAT, json=HELLO).json()["tether"]
        assert before["action"] == "allow"
        with gateway.admin() as admin:
            uploaded = admin.put(
                "/admin/tenants/acme/policy",
                content=STRICTER,
                headers={"content-type": "application/yaml"},
            )
            assert uploaded.status_code == 201, uploaded.text
            new_version = uploaded.json()["version"]
            assert uploaded.json()["active"] and new_version != before["policy_version"]
        after = http.post(CHAT, json=HELLO).json()["tether"]
        assert after["action"] == "block" and after["policy_version"] == new_version
        events = http.get("/v1/events").json()["data"]
        assert [e["policy_version"] for e in events] == [new_version, before["policy_version"]]
        with gateway.admin() as admin:
            versions = admin.get("/admin/tenants/acme/policies").json()["data"]
            assert [v["version"] for v in versions] == [before["policy_version"], new_version]
            assert "policy" not in versions[0] and versions[1]["source"] == STRICTER
            rolled = admin.post(f"/admin/tenants/acme/policies/{versions[0]['id']}/activate")
            assert rolled.status_code == 200
            missing = admin.post("/admin/tenants/globex/policies/999/activate")
            assert missing.status_code == 404
        back = http.post(CHAT, json=HELLO).json()["tether"]
    assert back["action"] == "allow" and back["policy_version"] == before["policy_version"]


def test_a_bad_policy_is_refused_with_its_lines_and_changes_nothing(
    gateway: RunningGateway, acme_key: str
) -> None:
    with gateway.admin() as admin:
        typo = admin.put("/admin/tenants/acme/policy", content=SUPPORT_POLICY + "colour: red\n")
        assert typo.status_code == 400
        error = typo.json()["error"]
        assert error["code"] == "invalid_policy"
        assert error["message"].startswith("<policy for acme>:20:1: colour: unknown field")
        looser = admin.put(
            "/admin/tenants/acme/policy",
            content=SUPPORT_POLICY + "tenants:\n  acme: ../../etc/passwd\n",
        )
        assert looser.status_code == 400
        assert "write the overlay inline, not as a file path" in looser.text
        no_overlay = admin.put("/admin/tenants/acme/policy?overlay=zeta", content=SUPPORT_POLICY)
        assert no_overlay.status_code == 400 and "no tenant overlay 'zeta'" in no_overlay.text
        assert admin.put("/admin/tenants/nobody/policy", content=SUPPORT_POLICY).status_code == 404
        assert len(admin.get("/admin/tenants/acme/policies").json()["data"]) == 1


def test_an_uploaded_overlay_named_like_the_tenant_applies(
    gateway: RunningGateway, acme_key: str
) -> None:
    overlaid = SUPPORT_POLICY + (
        "tenants:\n  acme:\n    guards:\n      input:\n"
        "        - guard: deny_list\n          id: rival\n          params: {terms: [initech]}\n"
    )
    with gateway.admin() as admin:
        uploaded = admin.put("/admin/tenants/acme/policy", content=overlaid)
    assert uploaded.status_code == 201 and uploaded.json()["version"].startswith("support/acme@")
    with gateway.http(acme_key) as http:
        body = {**HELLO, "messages": [{"role": "user", "content": "is initech better?"}]}
        assert http.post(CHAT, json=body).json()["tether"]["action"] == "block"


def test_admin_api_off_without_an_admin_key(
    make_config: Callable[..., GatewayConfig], start_gateway: Callable[..., RunningGateway]
) -> None:
    gateway = start_gateway(make_config(admin_key_sha256=None))
    with gateway.admin() as admin:
        answer = admin.get("/admin/tenants")
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "admin_disabled"


def test_another_gateway_on_the_same_database_picks_up_the_new_policy(
    make_config: Callable[..., GatewayConfig], start_gateway: Callable[..., RunningGateway]
) -> None:
    config = make_config(policy_poll_s=0.1)
    first, second = start_gateway(config), start_gateway(config)
    key = first.new_key("acme")
    with first.admin() as admin:
        version = admin.put("/admin/tenants/acme/policy", content=STRICTER).json()["version"]
    with second.http(key) as http:
        deadline = time.monotonic() + 30
        while True:
            tether = http.post(CHAT, json=HELLO).json()["tether"]
            if tether["policy_version"] == version or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert tether["policy_version"] == version and tether["action"] == "block"


def test_a_restart_keeps_an_uploaded_policy_unless_the_file_changed(
    make_config: Callable[..., GatewayConfig],
    start_gateway: Callable[..., RunningGateway],
    policies: dict[str, Path],
) -> None:
    config = make_config()
    with_upload = start_gateway(config)
    with with_upload.admin() as admin:
        uploaded = admin.put("/admin/tenants/acme/policy", content=STRICTER).json()["version"]
    with_upload.server.should_exit = True
    restarted = start_gateway(config)
    assert restarted.gateway.runtime("acme").version == uploaded
    policies["support"].write_text(SUPPORT_POLICY.replace("bitcoin", "dogecoin"))
    changed = start_gateway(config)
    assert changed.gateway.runtime("acme").version not in (uploaded, None)
    assert "dogecoin" in str(changed.gateway.runtime("acme").policy.guards.input[0].params)
