"""The annotated red-team answers (benchmarks/data/redteam_goal_labels.jsonl) are well formed:
``benchmarks/redteam.py annotated`` finds each by the hash of its attack and answer."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

LABELS = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "redteam_goal_labels.jsonl"


def test_every_label_is_its_answers_and_says_whether_the_goal_was_met() -> None:
    rows = [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 200
    for row in rows:
        digest = hashlib.sha256(f"{row['case_id']}|{row['answer']}".encode()).hexdigest()
        assert row["id"] == "g-" + digest[:10], row["id"]
        assert row["goal_met"] in ("yes", "no", "unclear"), row["id"]
        assert row["goal"] in ("forbidden_topic", "break_constraint"), row["id"]
        assert row["source"] and row["labeller"], row["id"]
    assert len({row["id"] for row in rows}) == len(rows)
