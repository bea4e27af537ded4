"""Every example in the README runs here: python blocks are executed, console lines are run
with the installed `tether` command and must exit as annotated (0 unless `# exits N`)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)
PYTHON = [body for lang, body in BLOCKS if lang == "python"]
CONSOLE = [
    line[2:]
    for lang, body in BLOCKS
    if lang == "console"
    for line in body.splitlines()
    if line.startswith("$ ")
]
TETHER = shutil.which("tether", path=str(Path(sys.executable).parent)) or "tether"


def test_readme_has_examples() -> None:
    assert len(PYTHON) >= 2 and len(CONSOLE) >= 5


@pytest.mark.embedded
@pytest.mark.parametrize("code", PYTHON, ids=[f"python-{i}" for i in range(len(PYTHON))])
def test_python_example(code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {"__name__": "readme_example"}
    try:
        exec(compile(code, "<README python example>", "exec"), namespace)
    except AssertionError as exc:  # show what the example saw, not just the failed line
        raise AssertionError(
            f"README example failed; last reply: {namespace.get('reply')!r}"
        ) from exc


@pytest.mark.embedded
@pytest.mark.parametrize("line", CONSOLE)
def test_console_example(line: str) -> None:
    command, _, comment = line.partition("  # ")
    expected = int(m.group(1)) if (m := re.search(r"exits (\d+)", comment)) else 0
    argv = shlex.split(command)
    assert argv[0] == "tether"
    done = subprocess.run(
        [TETHER, *argv[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == expected, done.stderr
    assert "Traceback" not in done.stderr


def test_setup_commands_are_make_targets() -> None:
    (setup,) = [body for lang, body in BLOCKS if lang == "bash"][:1]
    makefile = (ROOT / "Makefile").read_text()
    for line in setup.splitlines():
        target = line.split("#")[0].split()[1]
        assert re.search(rf"^{target}:", makefile, flags=re.M), target
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make check" in ci and "make check" in setup
