"""Fixtures shared by the guard tests: the example policies, loaded once per module."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.policy import Policy, load_policy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def bank() -> Policy:
    return load_policy(EXAMPLES / "bank" / "policy.yaml")


@pytest.fixture(scope="module")
def clinic() -> Policy:
    return load_policy(EXAMPLES / "clinic" / "policy.yaml")
