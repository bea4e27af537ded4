"""API keys: ``tth_<id>_<secret>``. The id is public (it finds the record); only a salted
SHA-256 of the 256-bit random secret is stored. A slow hash (scrypt, argon2) protects
guessable passwords; a random 256-bit secret needs none."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

__all__ = ["KEY_PREFIX", "NewKey", "hash_secret", "new_key", "split_key", "verify_secret"]

KEY_PREFIX = "tth"
_ID_BYTES = 6  # 12 hex characters: unique enough to look up, short enough to show


@dataclass(frozen=True, slots=True)
class NewKey:
    id: str
    plaintext: str
    salt: str
    hash: str


def new_key() -> NewKey:
    key_id = secrets.token_hex(_ID_BYTES)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    return NewKey(key_id, f"{KEY_PREFIX}_{key_id}_{secret}", salt, hash_secret(salt, secret))


def hash_secret(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def split_key(plaintext: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed key, else None."""
    prefix, _, rest = plaintext.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX or len(key_id) != 2 * _ID_BYTES or not secret:
        return None
    return key_id, secret


def verify_secret(salt: str, secret: str, expected_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(salt, secret), expected_hash)
