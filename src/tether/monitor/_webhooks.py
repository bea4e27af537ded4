"""Alert delivery: a JSON POST to each webhook, retried with exponential backoff."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from tether.store import Alert

from ._config import Webhook

__all__ = ["alert_payload", "deliver", "post_with_retries"]

log = logging.getLogger("tether.monitor")
_RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


def alert_payload(alert: Alert, change: str) -> dict[str, Any]:
    """The body POSTed for an alert that ``change``\\ d (opened or resolved)."""
    return {
        "type": "tether.alert",
        "change": change,
        "status": alert.status,
        "alert": alert.model_dump(mode="json", exclude={"deliveries"}),
    }


async def post_with_retries(
    client: httpx.AsyncClient, hook: Webhook, payload: dict[str, Any]
) -> dict[str, Any]:
    """POST ``payload`` to one webhook; the delivery record (ok, attempts, status, error)."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "tether-monitor", **hook.headers}
    record: dict[str, Any] = {"url": hook.url, "ok": False, "attempts": 0, "status": None}
    try:
        secret = hook.secret()
    except ValueError as exc:
        record["error"] = str(exc)
        return record
    if secret is not None:
        digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
        headers["X-Tether-Signature"] = f"sha256={digest}"
    wait = hook.backoff_s
    for attempt in range(1, hook.retries + 2):
        record["attempts"] = attempt
        try:
            response = await client.post(
                hook.url, content=body, headers=headers, timeout=hook.timeout_s
            )
        except httpx.HTTPError as exc:
            record["status"], record["error"] = None, f"{type(exc).__name__}: {exc}"
        else:
            record["status"] = response.status_code
            if response.is_success:
                record["ok"], record["error"] = True, None
                break
            record["error"] = f"HTTP {response.status_code}"
            if response.status_code not in _RETRYABLE:
                break
        if attempt <= hook.retries:
            await asyncio.sleep(wait)
            wait *= 2
    record["at"] = datetime.now(UTC).isoformat()
    if not record["ok"]:
        log.warning(
            "alert webhook %s failed after %d attempts: %s",
            hook.url,
            record["attempts"],
            record.get("error"),
        )
    return record


async def deliver(
    webhooks: Sequence[Webhook],
    alert: Alert,
    change: str,
    *,
    client: httpx.AsyncClient | None = None,
) -> list[dict[str, Any]]:
    """Send an alert's change to every webhook that wants it, all at once."""
    wanted = [h for h in webhooks if change == "opened" or h.send_resolved]
    if not wanted:
        return []
    payload = alert_payload(alert, change)
    own = client is None
    http = client or httpx.AsyncClient()
    try:
        records = await asyncio.gather(*(post_with_retries(http, h, payload) for h in wanted))
    finally:
        if own:
            await http.aclose()
    return [{**r, "change": change} for r in records]
