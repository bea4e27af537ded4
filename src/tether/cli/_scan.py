"""`tether scan`: run guards over a JSONL file, for audits and evaluation."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tether.errors import ConfigError
from tether.guards import BoundGuard, GuardContext, build_guards, run_guards
from tether.policy import GuardConfig, Guards, Policy, load_policy

from ._common import err_console, handle_errors

__all__ = ["scan"]

DEFAULT_GUARDS = "injection,jailbreak,prompt_extraction"


@click.command()
@click.option(
    "--guards",
    "guard_names",
    default=DEFAULT_GUARDS,
    show_default=True,
    help="Comma-separated guard names (or ids from --policy).",
)
@click.option("--input", "-i", "input_path", default="-", help="JSONL file to scan; - for stdin.")
@click.option(
    "--output", "-o", "output_path", default="-", help="JSONL file to write; - for stdout."
)
@click.option("--text-field", default="text", show_default=True, help="The field holding the text.")
@click.option(
    "--role",
    type=click.Choice(["user", "tool", "document"]),
    default="user",
    show_default=True,
    help="Who wrote the texts: tool and document content is scanned as untrusted.",
)
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(path_type=Path),
    help="Take guard settings (params, presets) from this policy's guard lists.",
)
@handle_errors
def scan(
    guard_names: str,
    input_path: str,
    output_path: str,
    text_field: str,
    role: str,
    policy_file: Path | None,
) -> None:
    """Scan every line of a JSONL file with guards; each output line is the input record plus
    flagged, score, category, guard and latency_ms. Bad lines are reported and skipped.

    \b
    tether scan --guards injection,jailbreak -i prompts.jsonl -o scanned.jsonl
    cat docs.jsonl | tether scan --role tool --text-field body > scanned.jsonl
    """
    policy = load_policy(policy_file) if policy_file else None
    guards = _guards(guard_names, policy)
    context = _context(guards, policy)
    total = _count_lines(input_path)
    source: IO[str] = sys.stdin if input_path == "-" else _open(input_path, "r")
    sink: IO[str] = sys.stdout if output_path == "-" else _open(output_path, "w")
    stats = {"lines": 0, "flagged": 0, "skipped": 0}
    progress = Progress(
        TextColumn("scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal and total is None,
    )
    try:
        with progress:
            task = progress.add_task("scan", total=total)
            asyncio.run(
                _scan_all(
                    guards,
                    _records(source, text_field, stats),
                    sink,
                    role,
                    context,
                    stats,
                    progress,
                    task,
                )
            )
    finally:
        if source is not sys.stdin:
            source.close()
        if sink is not sys.stdout:
            sink.close()
    summary = f"{stats['flagged']} flagged, {stats['skipped']} bad lines skipped"
    err_console.print(f"scanned {stats['lines']} lines: {summary}")


def _context(guards: list[BoundGuard], policy: Policy | None) -> dict[str, Any]:
    """What guards that need more than the text get: the policy (scope) and a judge model
    (self_check without its own model: the policy's)."""
    context: dict[str, Any] = {}
    if policy is not None:
        context["policy"] = policy
    kinds = {g.config.guard for g in guards}
    if "scope" in kinds and policy is None:
        raise ConfigError("the scope guard scans against a policy's topics: add --policy FILE")
    if "self_check" in kinds:
        from tether.models import load_model

        context["model"] = load_model(policy.model.spec if policy else "embedded")
    return context


def _open(path: str, mode: str) -> IO[str]:
    try:
        return open(path, mode, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot open {path}: {exc.strerror}") from None


def _count_lines(path: str) -> int | None:
    if path == "-":
        return None
    try:
        with open(path, "rb") as fh:
            return sum(1 for _ in fh)
    except OSError as exc:
        raise ConfigError(f"cannot open {path}: {exc.strerror}") from None


def _guards(names: str, policy: Policy | None) -> list[BoundGuard]:
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        raise ConfigError("--guards is empty: name at least one guard")
    configured = {c.key: c for c in (*policy.guards.input, *policy.guards.output)} if policy else {}
    by_kind = {c.guard: c for c in configured.values()}
    chosen = [configured.get(n) or by_kind.get(n) or GuardConfig(guard=n) for n in wanted]
    from tether import registry

    inputs: list[GuardConfig] = []
    outputs: list[GuardConfig] = []
    for cfg in chosen:
        stages = registry.lookup("guard", cfg.guard).extra.get("stages", ("input", "output"))
        (inputs if "input" in stages else outputs).append(cfg)
    scratch = Policy(
        name="scan",
        identity={"purpose": "scan"},
        guards=Guards(input=tuple(inputs), output=tuple(outputs)),
    )
    built = build_guards(scratch)
    return [*built.input, *built.output]


def _records(
    source: IO[str], field: str, stats: dict[str, int]
) -> Iterator[tuple[int, dict[str, Any], str]]:
    for number, line in enumerate(source, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problem = f"not JSON ({exc.msg})"
        else:
            if not isinstance(record, dict):
                problem = "not a JSON object"
            elif not isinstance(record.get(field), str):
                problem = f"no string field {field!r}"
            else:
                yield number, record, record[field]
                continue
        stats["skipped"] += 1
        err_console.print(f"[yellow]line {number}:[/yellow] {problem}; skipped", markup=True)


async def _scan_all(
    guards: list[BoundGuard],
    records: Iterator[tuple[int, dict[str, Any], str]],
    sink: IO[str],
    role: str,
    context: dict[str, Any],
    stats: dict[str, int],
    progress: Progress,
    task: Any,
) -> None:
    inputs = [g for g in guards if g.stage == "input"]
    outputs = [g for g in guards if g.stage == "output"]
    for _number, record, text in records:
        start = time.perf_counter()
        verdicts = await run_guards(
            inputs, text, GuardContext(stage="input", role=role, metadata=context)
        )
        verdicts += await run_guards(
            outputs, text, GuardContext(stage="output", role=role, metadata=context)
        )
        latency = (time.perf_counter() - start) * 1000
        top = max(verdicts, key=lambda v: (v.flagged, v.score))
        flagged = any(v.flagged for v in verdicts)
        out = {
            **record,
            "flagged": flagged,
            "score": top.score,
            "category": top.category,
            "guard": top.guard,
            "latency_ms": round(latency, 3),
            "verdicts": [
                {
                    "guard": v.guard,
                    "flagged": v.flagged,
                    "score": v.score,
                    "category": v.category,
                    "reason": v.reason,
                }
                for v in verdicts
            ],
        }
        sink.write(json.dumps(out, ensure_ascii=False) + "\n")
        stats["lines"] += 1
        stats["flagged"] += flagged
        progress.advance(task)
    sink.flush()
