"""Reviewed turns as evaluation cases (a suite `tether eval run` takes) and as preference
pairs (prompt / chosen / rejected JSONL) for preference tuning."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from tether.evals import Case, Suite
from tether.store import ReviewItem, Store

__all__ = [
    "expected_behavior",
    "preference_pairs",
    "preferences_jsonl",
    "reviewed",
    "suite_from_reviews",
]

_FROM_ACTION = {"block": "refuse", "escalate": "escalate", "redact": "redact", "allow": "comply"}


def expected_behavior(item: ReviewItem) -> str | None:
    """What an eval case should expect of this turn: the reviewer's ``expect`` if given; else
    for ``correct`` what the pipeline did, for ``false_positive`` an answer (the guards were
    wrong to act), for ``missed`` a refusal (the guards should have acted). None: no case."""
    if item.expect is not None:
        return item.expect
    if item.label == "correct":
        return _FROM_ACTION.get(item.action)
    if item.label == "false_positive":
        return "comply"
    if item.label == "missed":
        return "refuse"
    return None


def reviewed(store: Store, tenant: str, *, labels: Sequence[str] | None = None) -> list[ReviewItem]:
    """Every reviewed turn of ``tenant`` (with one of ``labels``), oldest first."""
    items: list[ReviewItem] = []
    offset = 0
    while True:
        page = store.review_queue(tenant, status="reviewed", limit=1000, offset=offset)
        items += page
        if len(page) < 1000:
            break
        offset += 1000
    if labels is not None:
        items = [i for i in items if i.label in labels]
    return items[::-1]


def suite_from_reviews(items: Iterable[ReviewItem], *, name: str, description: str = "") -> Suite:
    """An eval suite with a case per reviewed turn that has an expectation."""
    cases = []
    for item in items:
        expect = expected_behavior(item)
        if expect is None or not item.input.strip():
            continue
        metadata: dict[str, Any] = {
            "event_id": item.event_id,
            "tenant": item.tenant,
            "label": item.label,
            "action": item.action,
        }
        if item.reviewer:
            metadata["reviewer"] = item.reviewer
        if item.note:
            metadata["note"] = item.note
        cases.append(
            Case(
                id=f"{item.tenant}-{item.event_id[:16]}",
                input=item.input,
                expect=expect,
                tags=("monitor", item.label or "unlabelled", *item.guards),
                metadata=metadata,
            )
        )
    return Suite(name=name, description=description, cases=tuple(cases))


def preference_pairs(items: Iterable[ReviewItem]) -> list[dict[str, Any]]:
    """``{prompt, chosen, rejected, metadata}`` for each reviewed turn whose answer was judged
    wrong (``missed`` or ``false_positive``) and that has a corrected answer."""
    pairs = []
    for item in items:
        if item.label not in ("missed", "false_positive") or not item.corrected:
            continue
        if item.corrected.strip() == item.output.strip():
            continue
        pairs.append(
            {
                "prompt": item.input,
                "chosen": item.corrected,
                "rejected": item.output,
                "metadata": {
                    "event_id": item.event_id,
                    "tenant": item.tenant,
                    "label": item.label,
                    "guards": item.guards,
                },
            }
        )
    return pairs


def preferences_jsonl(pairs: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs)
