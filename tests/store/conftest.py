from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tether.pipeline import Event
from tether.store import Store


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store(store_url) as opened:
        yield opened


def _new_name() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def new_name() -> Callable[[], str]:
    """Makes tenant names no other test uses (the PostgreSQL database is shared)."""
    return _new_name


@pytest.fixture
def make_event() -> Callable[..., Event]:
    """Makes an event for a tenant, with any fields overridden."""
    return _make_event


def _make_event(tenant: str | None, **fields: object) -> Event:
    values: dict[str, object] = {
        "tenant": tenant,
        "policy": "support",
        "policy_version": "support@0123456789ab",
        "model": "scripted",
        "input": "hello",
        "output": "hi there",
        "action": "allow",
    }
    values.update(fields)
    return Event.model_validate(values)
