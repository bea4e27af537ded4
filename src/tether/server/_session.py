"""The dashboard's sessions: a signed, expiring cookie that says who logged in (the admin, or
one tenant's API key, by id: never the key itself), and the CSRF token of each session.

A cookie is ``base64(json).base64(hmac-sha256)``. The signing secret comes from the
environment variable the config names (so that several gateways accept each other's
cookies), else it is random per process (a restart logs everyone out).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

from tether.errors import ConfigError

__all__ = ["SessionData", "Signer"]


@dataclass(frozen=True, slots=True)
class SessionData:
    """A logged-in viewer: ``tenant`` is None for the admin, who sees every tenant."""

    role: Literal["admin", "tenant"]
    tenant: str | None
    key_id: str | None
    label: str
    nonce: str
    expires: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs and checks session cookies and CSRF tokens."""

    def __init__(self, *, secret_env: str | None, ttl_s: float) -> None:
        if secret_env is not None:
            value = os.environ.get(secret_env)
            if not value:
                raise ConfigError(
                    f"dashboard.secret_env names ${secret_env}, which is not set; set it to a "
                    "long random string shared by the gateways"
                )
            secret = hashlib.sha256(value.encode()).digest()
        else:
            secret = secrets.token_bytes(32)
        self._key = secret
        self.ttl_s = ttl_s

    def _mac(self, purpose: str, payload: bytes) -> bytes:
        return hmac.new(self._key, purpose.encode() + b"\0" + payload, hashlib.sha256).digest()

    def issue(self, role: Literal["admin", "tenant"], tenant: str | None, key_id: str | None,
              label: str) -> tuple[str, SessionData]:  # fmt: skip
        data = SessionData(
            role=role,
            tenant=tenant,
            key_id=key_id,
            label=label,
            nonce=secrets.token_urlsafe(16),
            expires=time.time() + self.ttl_s,
        )
        payload = json.dumps(
            {
                "r": data.role,
                "t": data.tenant,
                "k": data.key_id,
                "l": data.label,
                "n": data.nonce,
                "e": data.expires,
            },
            separators=(",", ":"),
        ).encode()
        return f"{_b64(payload)}.{_b64(self._mac('session', payload))}", data

    def read(self, cookie: str | None) -> SessionData | None:
        """The session a cookie carries; None if it is missing, forged or expired."""
        if not cookie or "." not in cookie:
            return None
        body, _, mac = cookie.partition(".")
        try:
            payload = _unb64(body)
            given = _unb64(mac)
        except ValueError:
            return None
        if not hmac.compare_digest(self._mac("session", payload), given):
            return None
        try:
            raw: dict[str, Any] = json.loads(payload)
            data = SessionData(
                role=raw["r"],
                tenant=raw["t"],
                key_id=raw["k"],
                label=str(raw["l"]),
                nonce=str(raw["n"]),
                expires=float(raw["e"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        if data.expires <= time.time() or data.role not in ("admin", "tenant"):
            return None
        return data

    def csrf(self, nonce: str) -> str:
        """The CSRF token of the session (or login form) with ``nonce``."""
        return _b64(self._mac("csrf", nonce.encode()))

    def csrf_ok(self, nonce: str, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(self.csrf(nonce), token)
