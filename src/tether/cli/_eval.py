"""`tether eval`: generate suites from policies, run them, report, compare, measure judges."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from tether.errors import ConfigError, TetherError
from tether.evals._cache import ResponseCache, default_cache_path
from tether.evals._compare import compare_reports
from tether.evals._files import load_run, write_reports
from tether.evals._generate import generate_suite
from tether.evals._metrics import build_report
from tether.evals._runner import (
    RunPlan,
    load_run_model,
    plan_run,
    run_suite,
)
from tether.evals._suite import dump_suite, load_suite
from tether.evals._types import CaseResult, Comparison, Metric, RunReport
from tether.models import load_model
from tether.policy import load_policy

from ._common import concurrency_option, console, err_console, handle_errors

__all__ = ["eval_group"]

# `compare` exit codes: a CI step tells "worse" from "broken".
EXIT_REGRESSED = 1
EXIT_CANNOT_RUN = 2


@click.group(name="eval")
def eval_group() -> None:
    """Measure how well a policy's stack behaves, and whether a change made it worse.

    \b
    tether eval generate --policy examples/bank/policy.yaml --tenant northbank -o suite.yaml
    tether eval run suite.yaml --policy examples/bank/policy.yaml --stack full
    tether eval compare RUN_A RUN_B --fail-on-regression
    """


@eval_group.command()
@click.option("--policy", "policy_file", required=True, type=click.Path(path_type=Path))
@click.option("--tenant", help="Derive the suite from this tenant's resolved policy.")
@click.option("--name", help="Suite name (default: <policy>-<tenant>).")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write here, not stdout.")
@handle_errors
def generate(policy_file: Path, tenant: str | None, name: str | None, output: Path | None) -> None:
    """Write a suite derived from the policy: allowed-topic requests that must be answered,
    forbidden ones that must be declined, constraint, PII, leakage and injection probes, and
    the policy's few-shot edge cases."""
    suite = generate_suite(load_policy(policy_file), tenant=tenant, name=name)
    text = dump_suite(suite)
    if output is None:
        sys.stdout.write(text)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {len(suite.cases)} cases to {output}")


@eval_group.command()
@click.argument("suite_file", type=click.Path(path_type=Path))
@click.option("--policy", "policy_file", required=True, type=click.Path(path_type=Path))
@click.option("--model", "model_spec", help="Model spec (default: the policy's model.spec).")
@click.option("--tenant", help="Tenant for cases that name none.")
@click.option(
    "--stack",
    type=click.Choice(["raw", "prompt", "full"]),
    default="full",
    show_default=True,
    help="raw: the bare model; prompt: plus the compiled system prompt; full: tether's pipeline.",
)
@concurrency_option
@click.option("--seed", type=int, help="Sampling seed (default: the policy's model.seed).")
@click.option(
    "--runs-dir",
    default=".tether/runs",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Where run folders go, each named after a hash of its configuration.",
)
@click.option("--out", type=click.Path(path_type=Path), help="This run's folder, instead.")
@click.option("--cache", "cache_path", type=click.Path(path_type=Path),
              help=f"Response cache (default: {default_cache_path()}).")  # fmt: skip
@click.option("--no-cache", is_flag=True, help="Always call the model.")
@click.option("--fresh", is_flag=True, help="Start over instead of resuming an unfinished run.")
@click.option("--judge", "judge_spec", help="Model spec for llm_rubric assertions.")
@click.option("--price", help="USD per million prompt,completion tokens, for the cost estimate.")
@click.option("--junit", type=click.Path(path_type=Path), help="Also write JUnit XML here.")
@click.option("--tools", "tools_spec", help="Agent tools, MODULE:ATTR or file.py:ATTR: every "
              "case is an agent turn (for tool_call / no_tool_call / ... checks).")  # fmt: skip
@handle_errors
def run(
    suite_file: Path,
    policy_file: Path,
    model_spec: str | None,
    tenant: str | None,
    stack: str,
    concurrency: int | None,
    seed: int | None,
    runs_dir: Path,
    out: Path | None,
    cache_path: Path | None,
    no_cache: bool,
    fresh: bool,
    judge_spec: str | None,
    price: str | None,
    junit: Path | None,
    tools_spec: str | None,
) -> None:
    """Run SUITE_FILE (YAML or JSONL) against the policy's stack and report metrics with
    95% intervals. Running the same command again resumes an interrupted run."""
    suite = load_suite(suite_file)
    policy = load_policy(policy_file)
    if tenant is not None:
        policy.for_tenant(tenant)  # an unknown tenant is a usage error now, not per case
    model = load_run_model(model_spec, policy)
    judge = load_run_model(judge_spec, policy) if judge_spec else None
    cache = None if no_cache else ResponseCache(cache_path or default_cache_path())
    from tether.redteam import load_toolset

    tools = load_toolset(tools_spec) if tools_spec else None
    plan = plan_run(suite, policy, model=model, stack=stack, tenant=tenant, seed=seed,  # type: ignore[arg-type]
                    runs_dir=runs_dir, cache=cache, fresh=fresh, out=out, tools=tools)  # fmt: skip
    err_console.print(_estimate(plan.info.stack, len(suite.cases), plan, price))
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    failed = sum(not r.passed for r in plan.done.values())
    with progress:
        task = progress.add_task(suite.name, total=len(suite.cases), completed=len(plan.done),
                                 failed=failed)  # fmt: skip

        def advance(result: CaseResult) -> None:
            nonlocal failed
            failed += not result.passed
            progress.update(task, advance=1, failed=failed)

        try:
            results = asyncio.run(
                run_suite(suite, policy, plan=plan, model=model, cache=cache, judge=judge,
                          concurrency=concurrency, base_dir=suite_file.parent, on_result=advance,
                          tools=tools)
            )  # fmt: skip
        finally:
            if cache is not None:
                cache.close()
    report = build_report(plan.info, list(results.values()))
    written = write_reports(report, plan.directory, junit=junit)
    _print_report(report)
    err_console.print(
        f"run folder: {plan.directory}  (report: {written[1] if len(written) > 1 else written[0]})"
    )


def _estimate(stack: str, total: int, plan: RunPlan, price: str | None) -> str:
    todo = len(plan.todo)
    head = f"{total} cases, {total - todo} already done; " if plan.done else f"{total} cases; "
    calls = f"at most {plan.model_calls} model calls" if stack == "full" else (
        f"{plan.model_calls} model calls")  # fmt: skip
    text = f"{head}{calls} ({plan.cached_calls} answered by the cache) on {plan.info.model}"
    text += (
        f", ~{plan.est_prompt_tokens:,} prompt and ≤ {plan.est_completion_tokens:,} answer tokens"
    )
    if price:
        try:
            per_in, per_out = (float(x) for x in price.split(","))
        except ValueError:
            raise ConfigError(
                "--price takes two numbers: USD per million prompt,completion tokens"
            ) from None
        cost = (plan.est_prompt_tokens * per_in + plan.est_completion_tokens * per_out) / 1e6
        text += f"; cost ≤ ${cost:,.2f}"
    return text


def _fmt(m: Metric) -> tuple[str, str, str]:
    if m.value is None or m.low is None or m.high is None:
        return "—", "", f"{m.k}/{m.n}"
    return f"{100 * m.value:.1f}%", f"{100 * m.low:.1f}–{100 * m.high:.1f}", f"{m.k}/{m.n}"


def _print_report(report: RunReport) -> None:
    info = report.info
    table = Table(title=f"{info.suite} · {info.stack} stack · {info.model} · {info.policy_version}")
    for col in ("metric", "value", "95% CI", "k/n", "better"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for m in report.metrics:
        if m.n:
            table.add_row(m.name, *_fmt(m), m.better)
    console.print(table)
    if report.latency_p50_ms is not None:
        p95 = report.latency_p95_ms or 0.0
        console.print(f"latency per case: p50 {report.latency_p50_ms:.0f} ms, p95 {p95:.0f} ms")
    if report.errors:
        console.print(f"[yellow]{report.errors} case(s) could not run; see the report[/yellow]")


@eval_group.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--junit", type=click.Path(path_type=Path), help="Also write JUnit XML here.")
@click.option("--json", "as_json", is_flag=True, help="Print report.json to stdout.")
@handle_errors
def report(run_dir: Path, junit: Path | None, as_json: bool) -> None:
    """Recompute a run folder's metrics and rewrite its report.json and report.html."""
    rep = load_run(run_dir)
    if run_dir.is_dir():
        write_reports(rep, run_dir, junit=junit)
    if as_json:
        sys.stdout.write(rep.model_dump_json(indent=1) + "\n")
    else:
        _print_report(rep)


@eval_group.command()
@click.argument("run_a", type=click.Path(path_type=Path))
@click.argument("run_b", type=click.Path(path_type=Path))
@click.option("--alpha", default=0.05, show_default=True, type=click.FloatRange(0, 1))
@click.option("--fail-on-regression", is_flag=True, help="Exit 1 when B regressed against A.")
@click.option("--html", "html_path", type=click.Path(path_type=Path), help="Write an HTML report.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare(
    run_a: Path, run_b: Path, alpha: float, fail_on_regression: bool, html_path: Path | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Compare run B against run A (folders or report.json files): per-metric deltas with an
    exact McNemar test on the paired cases, and the cases that regressed.

    Exit codes: 0 no regression, 1 regressed (with --fail-on-regression), 2 could not compare."""
    try:
        cmp = compare_reports(load_run(run_a), load_run(run_b), alpha=alpha)
        if html_path is not None:
            from tether.evals._report import render_compare_html

            html_path.write_text(render_compare_html(cmp), encoding="utf-8")
    except (TetherError, OSError) as exc:
        err_console.print(f"[red]error:[/red] {exc}", markup=True)
        sys.exit(EXIT_CANNOT_RUN)
    if as_json:
        sys.stdout.write(cmp.model_dump_json(indent=1) + "\n")
    else:
        _print_comparison(cmp)
    if fail_on_regression and cmp.regression:
        sys.exit(EXIT_REGRESSED)


def _print_comparison(cmp: Comparison) -> None:
    table = Table(title=f"B {cmp.b.policy_version} ({cmp.b.stack}) vs A {cmp.a.policy_version} "
                  f"({cmp.a.stack}) · {cmp.paired} paired cases")  # fmt: skip
    for col in ("metric", "A", "B", "Δ", "p (McNemar)", ""):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for d in cmp.deltas:
        if not d.a.n and not d.b.n:
            continue
        delta = "" if d.delta is None else f"{100 * d.delta:+.1f} pt"
        p = "" if d.p_value is None else f"{d.p_value:.3g}"
        flag = "[red]regressed[/red]" if d.regressed else ""
        table.add_row(d.name, _fmt(d.a)[0], _fmt(d.b)[0], delta, p, flag)
    console.print(table)
    if cmp.regressed_cases:
        console.print(f"[red]{len(cmp.regressed_cases)} case(s) regressed:[/red]")
        for c in cmp.regressed_cases[:50]:
            why = "; ".join(c.b_failed_checks) or f"{c.a_behavior} → {c.b_behavior}"
            console.print(f"  {c.case_id}: {why}")
        if len(cmp.regressed_cases) > 50:
            console.print(f"  … and {len(cmp.regressed_cases) - 50} more (--json for all)")
    console.print(f"{len(cmp.improved_cases)} case(s) improved")
    if cmp.only_in_a or cmp.only_in_b:
        console.print(f"unpaired: {len(cmp.only_in_a)} only in A, {len(cmp.only_in_b)} only in B")
    console.print("[red]REGRESSION[/red]" if cmp.regression else "no significant regression")


@eval_group.command()
@click.option(
    "--judge",
    "judge_spec",
    default="embedded",
    show_default=True,
    help="Model spec of the rubric judge to measure; 'none' measures the rules only.",
)
@click.option(
    "--policy",
    "policy_files",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Add these policies' refusal messages to the refusal set (repeatable).",
)
@click.option(
    "--sets",
    default="refusal,rubric",
    show_default=True,
    help="Which labelled sets: refusal, rubric or both.",
)
@click.option("--limit", type=click.IntRange(1), help="At most this many items per set.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
@handle_errors
def judges(judge_spec: str, policy_files: tuple[Path, ...], sets: str, limit: int | None,
           as_json: bool) -> None:  # fmt: skip
    """Measure the judges the harness relies on: precision, recall, accuracy and judge-error
    rate with 95% intervals, per source, on labelled sets the repository builds (hand-labelled
    SmolLM2 answers, chit-chat replies, policy refusals, constructed rubric items)."""
    from tether.evals._judges import measure_judges

    chosen = tuple(s.strip() for s in sets.split(",") if s.strip())
    unknown = sorted(set(chosen) - {"refusal", "rubric"})
    if unknown or not chosen:
        raise ConfigError(f"--sets takes refusal and/or rubric, not {', '.join(unknown) or sets!r}")
    judge = None if judge_spec == "none" else load_model(judge_spec)
    policies = [load_policy(p) for p in policy_files]
    progress = Progress(TextColumn("judging"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), console=err_console, transient=True)  # fmt: skip
    with progress:
        task = progress.add_task("judges", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = asyncio.run(
            measure_judges(judge_model=judge, limit=limit, policies=policies,
                           sets=chosen, progress=advance)  # type: ignore[arg-type]
        )  # fmt: skip
    if as_json:
        sys.stdout.write(report.model_dump_json(indent=1) + "\n")
    else:
        console.print(report.render_text(), markup=False)
