"""benchmarks/redteam.py overhead with a real model spec: each model call is replayed at once,
alone, on a second instance of the model, and the replays are left out of the campaign's time."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPLIANT = ROOT / "examples" / "bank" / "redteam" / "compliant-model.yaml"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "_bench_redteam", ROOT / "benchmarks" / "redteam.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class _Clocked:
    """A model whose calls take the time the test says, and that counts its loads."""

    loads = 0

    def __init__(self, seconds: list[float]) -> None:
        type(self).loads += 1
        self.name = "clocked"
        self._seconds = iter(seconds)

    async def generate(self, messages: Any, **kwargs: Any) -> str:
        await asyncio.sleep(next(self._seconds))
        return "ok"


def test_each_call_is_replayed_at_once_on_a_second_instance() -> None:
    bench = _bench()
    timings = iter([[0.05, 0.0], [0.01, 0.03]])  # the campaign's instance, then the twin
    _Clocked.loads = 0
    model = bench.TimedModel(lambda: _Clocked(next(timings)))
    asyncio.run(model.generate([{"role": "user", "content": "a"}]))
    asyncio.run(model.generate([{"role": "user", "content": "b"}]))
    assert _Clocked.loads == 2
    assert [round(t, 2) for t in model.inside] == [0.05, 0.0]
    assert [round(t, 2) for t in model.alone] == [0.01, 0.03]
    assert round(model.replay_s, 2) == 0.04 and model.calls == 2


def test_overhead_reports_the_replays_and_tether_s_own_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _bench()
    bench.overhead(40, 0.0, tmp_path, ["full"], spec=f"scripted:{COMPLIANT}", concurrency=1)
    out = capsys.readouterr().out
    assert "each replayed at once, alone, on a second instance" in out
    assert "per call, inside over alone: median" in out
    assert "tether's own time (wall less the calls inside)" in out
    assert "| full | 40 |" in out
