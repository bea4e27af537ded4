"""`tether redteam`: campaigns on both examples, reports, export → `tether eval run`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tether.cli import cli
from tether.evals import load_suite

ROOT = Path(__file__).resolve().parents[2]
COMPLIANT = ROOT / "examples" / "bank" / "redteam" / "compliant-model.yaml"
EXAMPLES = {
    "bank": (ROOT / "examples" / "bank" / "policy.yaml", "northbank"),
    "clinic": (ROOT / "examples" / "clinic" / "policy.yaml", None),
}


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def campaign_args(example: str, out: Path, *extra: str) -> list[str]:
    policy, tenant = EXAMPLES[example]
    args = ["redteam", "run", "--policy", str(policy), "--out", str(out), "--no-cache"]
    return [*args, *(["--tenant", tenant] if tenant else []), *extra]


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_scripted_campaign_then_export_runs_with_eval(example: str, tmp_path: Path) -> None:
    found = tmp_path / "found.yaml"
    code, out, err = invoke(
        *campaign_args(example, tmp_path / "run", "--model", f"scripted:{COMPLIANT}",
                       "--budget", "40", "--stack", "raw", "--export-suite", str(found))
    )  # fmt: skip
    assert code == 0, err
    assert "attack success by strategy" in out and "attack success by goal" in out
    assert "attack success overall" in out
    assert (tmp_path / "run" / "report.html").is_file()
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["info"]["cases"] == 40
    suite = load_suite(found)
    assert suite.cases and all("attack" in c.tags for c in suite.cases)
    # The exported suite runs as an ordinary eval suite, and report/compare read the runs.
    policy, tenant = EXAMPLES[example]
    eval_args = ["eval", "run", str(found), "--policy", str(policy), "--model",
                 f"scripted:{COMPLIANT}", "--stack", "raw", "--no-cache",
                 "--out", str(tmp_path / "replay")]  # fmt: skip
    code, out, err = invoke(*eval_args, *(["--tenant", tenant] if tenant else []))
    assert code == 0, err
    assert "attack_success" in out and "100.0%" in out
    code, out, err = invoke("eval", "compare", str(tmp_path / "run"), str(tmp_path / "replay"))
    assert code == 0, err
    code, _, err = invoke("eval", "report", str(tmp_path / "run"))
    assert code == 0, err


def test_strategies_lists_mutators() -> None:
    code, out, _ = invoke("redteam", "strategies")
    assert code == 0
    for name in ("direct", "attacker", "base64", "crescendo", "many_shot", "tool_output"):
        assert name in out


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    code, _, err = invoke(*campaign_args("bank", tmp_path / "x", "--strategies", "base46"))
    assert code == 2 and "did you mean 'base64'" in err and "Traceback" not in err
    code, _, err = invoke(*campaign_args("bank", tmp_path / "x", "--strategies", "attacker"))
    assert code == 2 and "--attacker" in err


@pytest.mark.embedded
@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_embedded_campaign(example: str, tmp_path: Path) -> None:
    # Tiny on purpose: the embedded model shares two cores with everything else.
    code, out, err = invoke(
        *campaign_args(example, tmp_path / "run", "--model", "embedded", "--budget", "2",
                       "--strategies", "direct,roleplay", "--stack", "raw", "-j", "1")
    )  # fmt: skip
    assert code == 0, err
    assert "attack success overall" in out
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["errors"] == 0 and len(report["results"]) == 2
    assert all(r["model_calls"] == 1 for r in report["results"])  # the model really answered
