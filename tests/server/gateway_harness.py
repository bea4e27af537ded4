"""The harness for gateway tests: a real uvicorn serving the app on a free port of 127.0.0.1,
in a thread; tests talk to it with the official `openai` SDK and httpx."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pytest
import uvicorn

from tether.messages import Message
from tether.models import ChatModel, ScriptedModel
from tether.server import Gateway, GatewayConfig, create_app

START_TIMEOUT_S = 60.0
ADMIN_KEY = "test-admin-key-0123456789"

# Two small policies with fast rule guards only, so most tests run in milliseconds.
SUPPORT_POLICY = r"""
name: support
identity: {name: Sam, purpose: Answer questions about the product.}
refusal: {message: "Sorry, I can't help with that."}
guards:
  input:
    - guard: deny_list
      id: crypto
      params: {terms: [bitcoin]}
      action: block
  output:
    - guard: deny_list
      id: card
      params: {patterns: ['\b\d(?:[ -]?\d){12,18}\b']}
      action: redact
    - guard: deny_list
      id: apikey
      params: {patterns: ['sk-[a-z0-9]{20,}']}
      action: block
"""

BILLING_POLICY = r"""
name: billing
identity: {name: Bill, purpose: Answer questions about invoices.}
refusal: {message: "Billing can't discuss that."}
guards:
  input:
    - guard: deny_list
      id: lawsuit
      params: {terms: [lawsuit]}
      action: block
"""


def echo(messages: list[Message]) -> str:
    """The fake upstream's answer: what the user said, so a test steers the output."""
    return f"You said: {messages[-1]['content']}"


def echo_model() -> ScriptedModel:
    return ScriptedModel([echo], repeat_last=True, name="echo")


@dataclass
class RunningGateway:
    url: str
    gateway: Gateway
    server: uvicorn.Server
    clients: list[openai.OpenAI] = field(default_factory=list)

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
        )

    def http(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def openai(self, key: str) -> openai.OpenAI:
        # No retries: a test that expects a 429 or a 5xx must see it. Closed with the gateway,
        # so no connection outlives the test (an unclosed socket fails a later test).
        client = openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, timeout=30)
        self.clients.append(client)
        return client

    def new_key(self, tenant: str, **body: Any) -> str:
        with self.admin() as admin:
            answer = admin.post(f"/admin/tenants/{tenant}/keys", json=body)
        assert answer.status_code == 201, answer.text
        key: str = answer.json()["key"]
        return key


@contextlib.contextmanager
def run_gateway(
    config: GatewayConfig, models: Mapping[str, ChatModel] | None = None
) -> Iterator[RunningGateway]:
    app = create_app(config, models=models)
    # Bound here and handed to uvicorn, so no other process can take the port meanwhile.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive():
            sock.close()
            pytest.fail("the gateway did not start; see the log above")
        if time.monotonic() > deadline:
            server.should_exit = True
            pytest.fail(f"the gateway did not start within {START_TIMEOUT_S:g} s")
        time.sleep(0.02)
    running = RunningGateway(f"http://127.0.0.1:{port}", app.state.gateway, server)
    try:
        yield running
    finally:
        for client in running.clients:
            client.close()
        server.should_exit = True
        thread.join(START_TIMEOUT_S)
        sock.close()
