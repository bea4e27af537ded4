"""numpy's BLAS threads stop spinning soon after a call once tether is imported (_compute)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

# One matrix product on every core, then the CPU time the process burns while it sleeps:
# OpenBLAS's idle workers spin (use CPU) until their timeout, then sleep (use none).
_IDLE_CPU = """
import time
{imports}
import numpy as np
a = np.ones((768, 768), dtype=np.float32)
for _ in range(3):
    a @ a
t0 = time.process_time()
time.sleep(0.3)
print(time.process_time() - t0)
"""


def _python(code: str, env: dict[str, str] | None = None) -> str:
    """What ``code`` prints, run in a fresh interpreter whose environment sets
    OPENBLAS_THREAD_TIMEOUT only if ``env`` does (this process's import of tether set it)."""
    clean = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return out.stdout.strip()


def _idle_cpu_s(imports: str) -> float:
    return float(_python(_IDLE_CPU.format(imports=imports)))


def _openblas_threads() -> bool:
    config = np.show_config(mode="dicts")  # type: ignore[func-returns-value]
    blas = config["Build Dependencies"]["blas"]["name"]
    return "openblas" in blas.lower() and (os.cpu_count() or 1) > 1


@pytest.mark.skipif(
    not _openblas_threads(), reason="numpy's BLAS here is not multi-threaded OpenBLAS"
)
def test_blas_workers_do_not_spin_after_a_call_once_tether_is_imported() -> None:
    # Control: numpy loaded first, OpenBLAS's own timeout (2**28 cycles, about 0.1 s).
    spun = _idle_cpu_s("")
    if spun < 0.02:
        pytest.skip(f"this OpenBLAS's workers did not spin here ({spun:.3f} s)")
    assert _idle_cpu_s("import tether") < spun / 3


def test_the_environment_s_own_setting_wins() -> None:
    code = "import os, tether; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])"
    assert _python(code) == "20"
    assert _python(code, {"OPENBLAS_THREAD_TIMEOUT": "26"}) == "26"


def test_tether_loads_its_setting_before_numpy() -> None:
    # Whatever a program imports from tether first, the package's __init__ runs first.
    for first in ("tether", "tether.embed", "tether.guards"):
        code = (
            f"import sys, {first}\n"
            "mods = list(sys.modules)\n"
            "print(mods.index('tether._compute') < mods.index('numpy'))"
        )
        assert _python(code) == "True", first
