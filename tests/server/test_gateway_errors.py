"""Every error is OpenAI's shape, from the one mapper, with a 4xx and a clear message for
anything the client got wrong — never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from gateway_harness import ADMIN_KEY, RunningGateway

from tether.server import GatewayConfig, Limits

OK = {"model": "support", "messages": [{"role": "user", "content": "hi"}]}


def assert_error(answer: httpx.Response, status: int, *fragments: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and isinstance(error["type"], str)
    for fragment in fragments:
        assert fragment in error["message"], error["message"]
    return error


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({**OK, "messages": "hi"}, "messages", "valid list"),
        ({**OK, "messages": []}, "messages", "at least 1 item"),
        ({**OK, "stream": "yes"}, "stream", "valid boolean"),
        ({**OK, "temperature": "hot"}, "temperature", "valid number"),
        ({**OK, "model": 7}, "model", "valid string"),
        ({"messages": OK["messages"]}, "model", "Field required"),
        ({**OK, "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "'user'"),
        ({**OK, "messages": [{"role": "user"}]}, "messages[0]", "a user message needs content"),
        (
            {**OK, "messages": [{"role": "tool", "content": "42"}]},
            "messages[0]",
            "needs the tool_call_id",
        ),
        ({**OK, "messages": [{"role": "user", "content": 5}]}, "messages[0].content", "string"),
        (
            {**OK, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content",
            "only text content parts",
        ),
        ({**OK, "n": 2}, "n", "only n=1"),
        ({**OK, "tools": [{"type": "function"}]}, "tools[0].function", "Field required"),
        ({**OK, "tool_choice": "required"}, "tool_choice", "'auto' or 'none'"),
        ({**OK, "colour": "red"}, "colour", "unrecognized request argument"),
        ([OK], None, "valid dictionary"),
    ],
)
def test_wrong_request_fields(
    gateway: RunningGateway, acme_key: str, body: Any, param: str | None, fragment: str
) -> None:
    with gateway.http(acme_key) as http:
        error = assert_error(http.post("/v1/chat/completions", json=body), 400, fragment)
    assert error["type"] == "invalid_request_error" and error["param"] == param


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"model": "support", "messages": [', "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"", "request body is missing"),
        (b"null", "valid dictionary"),
    ],
)
def test_malformed_bodies(
    gateway: RunningGateway, acme_key: str, raw: bytes, fragment: str
) -> None:
    with gateway.http(acme_key) as http:
        answer = http.post(
            "/v1/chat/completions", content=raw, headers={"content-type": "application/json"}
        )
    assert_error(answer, 400, fragment)


def test_the_last_message_must_be_the_users(gateway: RunningGateway, acme_key: str) -> None:
    body = {
        **OK,
        "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}],
    }
    with gateway.http(acme_key) as http:
        assert_error(http.post("/v1/chat/completions", json=body), 400, "last message")


def test_unknown_model_through_the_sdk(gateway: RunningGateway, acme_key: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        gateway.openai(acme_key).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "'gpt-4o' does not exist" in error["message"] and "support" in error["message"]


@pytest.fixture
def small_gateway(
    make_config: Callable[..., GatewayConfig], start_gateway: Callable[..., RunningGateway]
) -> RunningGateway:
    return start_gateway(make_config(limits=Limits(max_body_bytes=2048, tenant_rpm=None)))


def test_oversized_bodies(small_gateway: RunningGateway) -> None:
    key = small_gateway.new_key("acme")
    big = {**OK, "messages": [{"role": "user", "content": "x" * 5000}]}
    with small_gateway.http(key) as http:
        error = assert_error(http.post("/v1/chat/completions", json=big), 413, "2048 bytes")
        assert error["code"] == "request_too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            data = json.dumps(big).encode()
            for start in range(0, len(data), 1000):
                yield data[start : start + 1000]

        assert_error(http.post("/v1/chat/completions", content=chunks()), 413, "2048 bytes")
        with small_gateway.admin() as admin:
            assert_error(admin.put("/admin/tenants/acme/policy", content="x" * 3000), 413, "limit")


def test_authentication_errors(gateway: RunningGateway, acme_key: str) -> None:
    with gateway.http() as anonymous:
        error = assert_error(anonymous.post("/v1/chat/completions", json=OK), 401, "no API key")
        assert error["type"] == "authentication_error"
    with gateway.http("tth_0123456789ab_forged") as forged:
        error = assert_error(forged.post("/v1/chat/completions", json=OK), 401, "invalid API key")
        assert error["code"] == "invalid_api_key"
    with gateway.http("not even shaped like a key") as junk:
        assert_error(junk.get("/v1/models"), 401, "invalid API key")
    with gateway.http(ADMIN_KEY) as admin_on_tenant_route:
        assert_error(admin_on_tenant_route.get("/v1/models"), 403, "admin key opens only")
    with pytest.raises(openai.AuthenticationError):
        gateway.openai("tth_0123456789ab_forged").models.list()


def test_unknown_routes_and_methods(gateway: RunningGateway, acme_key: str) -> None:
    with gateway.http(acme_key) as http:
        assert_error(http.get("/v1/completions"), 404, "no such route: GET /v1/completions")
        assert_error(http.delete("/v1/models"), 405, "DELETE")
        assert_error(http.get("/v1/events", params={"limit": "many"}), 400, "limit")


def test_a_tenant_without_a_policy(gateway: RunningGateway) -> None:
    with gateway.admin() as admin:
        assert admin.post("/admin/tenants", json={"name": "newco"}).status_code == 201
    key = gateway.new_key("newco")
    with gateway.http(key) as http:
        error = assert_error(http.post("/v1/chat/completions", json=OK), 409, "no policy yet")
        assert error["code"] == "no_policy"
        assert http.get("/v1/models").json()["data"] == []


def test_rate_limit_answer(
    make_config: Callable[..., GatewayConfig], start_gateway: Callable[..., RunningGateway]
) -> None:
    gateway = start_gateway(make_config(limits=Limits(tenant_rpm=2)))
    key = gateway.new_key("acme")
    with gateway.http(key) as http:
        for _ in range(2):
            assert http.post("/v1/chat/completions", json=OK).status_code == 200
        answer = http.post("/v1/chat/completions", json=OK)
    error = assert_error(answer, 429, "2 requests a minute per tenant")
    assert error["type"] == "rate_limit_error" and error["code"] == "rate_limit_exceeded"
    assert 1 <= int(answer.headers["retry-after"]) <= 31
    with pytest.raises(openai.RateLimitError):
        gateway.openai(key).chat.completions.create(**OK)  # type: ignore[call-overload]
