"""End to end: a recorded traffic file with a planted attack wave and a topic shift raises
the right alerts and drift report through `tether monitor`; stored traffic goes through
stats, the review queue and the exports, and the exported suite runs in `tether eval run`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from tether.cli import cli
from tether.evals import load_suite
from tether.monitor import synthetic_traffic, write_traffic
from tether.store import Store

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
RULES = ROOT / "examples" / "monitor" / "monitoring.yaml"
POLICY = ROOT / "examples" / "bank" / "policy.yaml"


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("traffic")
    reference = folder / "reference.jsonl"
    same = folder / "same.jsonl"
    shifted = folder / "shifted.jsonl"
    write_traffic(
        synthetic_traffic(start=T0 - timedelta(days=1), minutes=20, per_minute=10, seed=1),
        reference,
    )
    write_traffic(synthetic_traffic(start=T0, minutes=20, per_minute=10, seed=2), same)
    write_traffic(
        synthetic_traffic(
            start=T0, minutes=40, per_minute=10, shift_at=0, shift_share=0.5,
            attack_from=20, attack_minutes=5, attack_share=0.5, seed=3,
        ),
        shifted,
    )  # fmt: skip
    return reference, same, shifted


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def test_attack_wave_and_topic_shift_raise_the_right_alerts_and_drift(
    traffic: tuple[Path, Path, Path],
) -> None:
    reference, same, shifted = traffic
    code, out = _run("monitor", "alerts", "--rules", RULES, "--replay", shifted, "--fail-on-alert")
    assert code == 1
    assert "injection-wave" in out and "prompt-leak" not in out and "refusal-spike" not in out
    code, out = _run("monitor", "alerts", "--rules", RULES, "--replay", same, "--fail-on-alert")
    assert code == 0 and "no alerts" in out
    code, out = _run(
        "monitor", "drift", "--replay", shifted, "--reference", reference, "--policy", POLICY,
        "--permutations", "200", "--json",
    )  # fmt: skip
    report = json.loads(out)
    assert report["drifted"] and report["p_value"] < 0.01
    policy_topics = [t["topic"] for t in report["topics"] if t["source"] == "policy"]
    assert policy_topics[0] == "investment_advice"  # the crypto questions
    code, out = _run(
        "monitor", "drift", "--replay", same, "--reference", reference, "--permutations", "200",
        "--fail-on-drift",
    )  # fmt: skip
    assert code == 0 and "no drift" in out


def test_stored_traffic_stats_review_and_exports(
    store_url: str, tmp_path: Path, traffic: tuple[Path, Path, Path]
) -> None:
    from tether.monitor import load_traffic

    _, _, shifted = traffic
    events = load_traffic(shifted)
    with Store(store_url) as store:
        store.insert_events(events)
        attacks = [e for e in events if e.action == "block"]
        answered = [e for e in events if e.action == "allow"]
        store.add_feedback(
            "northbank", answered[0].id, rating=-1, corrected="I can't advise on crypto."
        )
    until = (T0 + timedelta(minutes=40)).isoformat()
    code, out = _run(
        "monitor", "stats", "--db", store_url, "--tenant", "northbank", "--window", "1h",
        "--until", until, "--json",
    )  # fmt: skip
    (stats,) = json.loads(out)
    assert stats["turns"] == len(events)
    assert stats["actions"]["block"] == len(attacks)
    assert stats["flags"]["injection"] == len(attacks)
    code, out = _run("monitor", "review", "--db", store_url, "--tenant", "northbank")
    flagged = [e for e in events if any(v.flagged for v in e.verdicts)]
    assert answered[0] not in flagged
    assert f"{len(flagged) + 1} turns waiting for review" in out
    for event_id, label in ((attacks[0].id, "correct"), (answered[0].id, "missed")):
        code, out = _run(
            "monitor", "review", "--db", store_url, "--tenant", "northbank", "--event", event_id,
            "--label", label,
        )  # fmt: skip
        assert code == 0, out
    suite_file, prefs_file = tmp_path / "reviewed.yaml", tmp_path / "prefs.jsonl"
    code, out = _run(
        "monitor", "export", "--db", store_url, "--tenant", "northbank", "--as-suite", suite_file,
        "--as-preferences", prefs_file,
    )  # fmt: skip
    assert code == 0, out
    suite = load_suite(suite_file)
    assert {c.expect for c in suite.cases} == {"refuse"}  # blocked attack; missed answer
    assert {c.metadata["label"] for c in suite.cases} == {"correct", "missed"}
    (pair,) = [json.loads(line) for line in prefs_file.read_text().splitlines()]
    assert pair["prompt"] == answered[0].input
    assert pair["chosen"] == "I can't advise on crypto." and pair["rejected"] == answered[0].output
    replies = tmp_path / "replies.yaml"
    replies.write_text(json.dumps(["Sorry, I can't help with that."] * 10))
    code, out = _run(
        "eval", "run", suite_file, "--policy", POLICY, "--model", f"scripted:{replies}",
        "--stack", "raw", "--out", tmp_path / "run", "--no-cache",
    )  # fmt: skip
    assert code == 0, out
    results = (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    assert len(results) == 2
