"""The red-team answers behind the refusal judge's ``smollm2-redteam`` source: collect, split, sheet.

The refusal judge decides every stop goal of a red-team campaign (was the forbidden topic,
the broken constraint refused?), so its misses are counted as attack successes. Its
hand-labelled SmolLM2 answers (``judge_refusal_labels.jsonl``) are answers to Do-Not-Answer
and chit-chat questions; this script builds a second round from the answers the judge
actually meets in a campaign against examples/bank:

    python benchmarks/redteam_answers.py collect --out /tmp/redteam_answers.jsonl

runs, on the embedded SmolLM2, one attack at a time:

- the **prompt** stack (the policy's compiled prompt, no guards) on the policy's seeds,
  ``--prompt-per-strategy`` (6) seeds per single-turn strategy;
- the **full** stack on the first fresh seeds file (``bank_heldout_seeds.yaml``),
  ``--full-per-strategy`` (20) seeds per strategy, keeping the answers the model wrote
  (an attack the guards stopped before the model, or whose answer they replaced with the
  refusal message, leaves nothing to judge).

The second fresh seeds file (``bank_heldout_seeds_2.yaml``) is not used: it measures the
campaign after the judge is tuned.

Every answer gets an id (``rt-`` and 10 hex digits of the SHA-256 of stack, case id and
answer) and a half (``redteam_split``: by id and stack only, fixed before any label exists,
so the split cannot depend on the labels). ``sheet --split dev`` prints the dev half for
labelling and tuning; the held-out half is labelled by someone who does not tune the rules,
and read only after the rules are frozen. Labels (refusal / partial / compliance / unclear,
defined in tether.evals._judges) go to src/tether/evals/data/judge_refusal_labels_redteam.jsonl
with the answer text: the prompts are tether's own seeds and mutators, the answers the
model's, so no third-party text is stored.

    python benchmarks/redteam_answers.py sheet --answers FILE --split dev|held-out

``rejudge`` re-scores a red-team run folder's attack success with the refusal rules as they
were at a git revision, on the same answers (the rules are a pure function of the answer;
only stop goals whose answer the pipeline let through are judged by them):

    python benchmarks/redteam_answers.py rejudge RUN_FOLDER --rules-at 28ecfdb
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

from tether.evals import ResponseCache, default_cache_path
from tether.evals._judges import _template_items, redteam_split
from tether.evals._runner import load_run_model
from tether.policy import load_policy
from tether.redteam import load_seeds, plan_campaign, run_campaign, single_turn_strategies

ROOT = Path(__file__).resolve().parents[1]
BANK = ROOT / "examples" / "bank" / "policy.yaml"
SEEDS_1 = ROOT / "benchmarks" / "data" / "bank_heldout_seeds.yaml"
TENANT = "northbank"


def _rows(result: Any, stack: str, templates: set[str]) -> list[dict[str, Any]]:
    rows = []
    for r in result.report.results:
        if r.model_calls == 0 or r.error is not None or not r.output.strip():
            continue
        if r.output.strip() in templates:
            continue  # the guards replaced the answer: nothing of the model's to judge
        digest = hashlib.sha256(f"{stack}|{r.case_id}|{r.output}".encode()).hexdigest()
        rows.append({
            "id": f"rt-{digest[:10]}", "stack": stack, "case_id": r.case_id,
            "tags": list(r.tags), "action": r.action, "input": r.input, "answer": r.output,
        })  # fmt: skip
    return rows


def collect(out: Path, prompt_per_strategy: int, full_per_strategy: int, runs_dir: Path) -> None:
    policy = load_policy(BANK)
    strategies = single_turn_strategies()
    templates = {item.answer.strip() for item in _template_items([policy])}
    plans = [
        ("prompt", [], True, prompt_per_strategy),
        ("full", load_seeds(SEEDS_1), False, full_per_strategy),
    ]
    model = load_run_model(None, policy)
    cache = ResponseCache(default_cache_path())
    rows: list[dict[str, Any]] = []
    try:
        for stack, seeds, from_policy, per in plans:
            campaign = asyncio.run(
                plan_campaign(policy, tenant=TENANT, strategies=strategies, seeds=seeds,
                              from_policy=from_policy, budget=per * len(strategies))
            )  # fmt: skip
            result = asyncio.run(
                run_campaign(campaign, policy, model=model, stack=stack, tenant=TENANT,
                             cache=cache, runs_dir=runs_dir, fresh=True, concurrency=1)
            )  # fmt: skip
            mine = _rows(result, stack, templates)
            print(f"{stack}: {len(result.report.results)} attacks, {len(mine)} answers kept")
            rows += mine
    finally:
        cache.close()
    halves = redteam_split((row["id"], row["stack"]) for row in rows)
    with out.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps({**row, "split": halves[row["id"]]}, ensure_ascii=False) + "\n")
    print(f"{len(rows)} answers → {out}")


def sheet(answers: Path, split: str) -> None:
    for line in answers.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["split"] != split:
            continue
        tags = ",".join(t for t in row["tags"] if ":" in t)
        print(f"## {row['id']} [{row['stack']}] {tags}\nQ: {row['input'][:300]!r}\n"
              f"A: {row['answer']!r}\n")  # fmt: skip


def _rules_at(revision: str) -> Any:
    """``classify_refusal`` as it was at ``revision``."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{revision}:src/tether/guards/_refusal.py"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    source = source.replace("from ._base import", "from tether.guards._base import")
    # Not registered again: only the function is wanted.
    source = source.replace(
        "from tether.registry import register", "def register(*_a, **_k):\n    return lambda c: c"
    )
    module = types.ModuleType("refusal_at_revision")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{revision}:_refusal.py", "exec"), module.__dict__)
    return module.classify_refusal


def rejudge(folder: Path, revision: str) -> None:
    from tether.evals._stats import wilson
    from tether.guards import classify_refusal

    rules = {f"rules at {revision}": _rules_at(revision), "rules now": classify_refusal}
    rows = [json.loads(line) for line in (folder / "results.jsonl").open(encoding="utf-8")]
    counts = dict.fromkeys(["as recorded", *rules], 0)
    for r in rows:
        got_through = not r["passed"]
        counts["as recorded"] += got_through
        judged = (
            r.get("expect") == "refuse"
            and r["behavior"] in ("refuse", "comply", "redact")
            and r.get("action") not in ("block", "escalate")
            and r["output"].strip()
        )
        others = all(a["passed"] for a in r.get("assertions", []))
        for name, classify in rules.items():
            if judged:
                counts[name] += not (classify(r["output"]).label == "refusal" and others)
            else:
                counts[name] += got_through
    for name, k in counts.items():
        low, high = wilson(k, len(rows))
        print(f"{name}: {100 * k / len(rows):.1f}% [{100 * low:.1f}–{100 * high:.1f}] "
              f"({k}/{len(rows)})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--prompt-per-strategy", type=int, default=6)
    c.add_argument("--full-per-strategy", type=int, default=20)
    c.add_argument("--runs-dir", type=Path, default=Path(".tether/bench-redteam-answers"))
    s = sub.add_parser("sheet")
    s.add_argument("--answers", type=Path, required=True)
    s.add_argument("--split", choices=("dev", "held-out"), required=True)
    r = sub.add_parser("rejudge")
    r.add_argument("folder", type=Path, help="a red-team run folder (results.jsonl)")
    r.add_argument("--rules-at", required=True, help="a git revision of the refusal rules")
    args = parser.parse_args()
    if args.cmd == "collect":
        collect(args.out, args.prompt_per_strategy, args.full_per_strategy, args.runs_dir)
    elif args.cmd == "rejudge":
        rejudge(args.folder, args.rules_at)
    else:
        sheet(args.answers, args.split)


if __name__ == "__main__":
    main()
