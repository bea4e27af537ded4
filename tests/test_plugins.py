"""Third-party plugins register through the `tether.plugins` entry-point group."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

PLUGIN = '''
from tether.guards import GuardContext, GuardParams, Verdict
from tether.registry import register


class ShoutParams(GuardParams):
    limit: int = 3


@register("guard", "shout", params=ShoutParams, stages=("input",))
class Shout:
    """Flags messages with too many exclamation marks."""

    name = "shout"

    def __init__(self, params: ShoutParams) -> None:
        self.params = params

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        return Verdict(flagged=text.count("!") > self.params.limit, reason="too loud")
'''

SCRIPT = '''
from tether import Guardrails, load_policy_text
from tether.models import ScriptedModel
from tether.registry import registered

assert "shout" in [r.name for r in registered("guard")]
policy = load_policy_text("""
name: p
identity: {purpose: Help.}
guards:
  input:
    - {guard: shout, params: {limit: 1}}
""")
reply = Guardrails(policy, model=ScriptedModel(["fine"])).chat_sync("hi!!!")
print(reply.action, reply.flagged[0].guard)
'''


def test_entry_point_plugin_is_loaded_and_usable_in_a_policy(tmp_path: Path) -> None:
    (tmp_path / "shout_plugin.py").write_text(textwrap.dedent(PLUGIN))
    dist = tmp_path / "shout_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: shout-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tether.plugins]\nshout = shout_plugin\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "block shout"


def test_a_broken_plugin_is_a_clear_error(tmp_path: Path) -> None:
    dist = tmp_path / "broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[tether.plugins]\nbroken = no_such_module\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "tether", "guards", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    assert "plugin 'broken' (no_such_module)" in done.stderr
    assert "Traceback" not in done.stderr
