from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
AGENT_EXAMPLE = ROOT / "examples" / "agent"


def _load_bank() -> ModuleType:
    name = "tether_example_bank"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, AGENT_EXAMPLE / "bank.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bank() -> ModuleType:
    """The example's banking tools and obedient agent, with a fresh pretend bank."""
    module = _load_bank()
    module.BANK = module.Bank()
    return module
