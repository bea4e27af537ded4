"""Red team: attack success per single-turn strategy (raw vs full stack), and campaign overhead.

(a) ``asr``: examples/bank (tenant northbank; ``--policy``/``--tenant`` for another), every
    single-turn strategy × ``--per-strategy`` seeds, on the embedded SmolLM2, raw stack and
    full stack, one attack at a time. Answers are cached (``$TETHER_CACHE_DIR/evals``), so a
    re-run re-judges without calling the model. ``--unseen-after N`` also reports the attacks
    that a ``--per-strategy N`` campaign does not make: held out from fixes made after
    reading that campaign's successes.
(b) ``overhead``: a campaign of ``--attacks`` attacks against a model with a fixed simulated
    latency (it sleeps ``--latency-ms`` per call, one call at a time, as a local model does),
    no cache: wall time of the whole campaign (planning, mutating, running, judging, writing
    the run folder and reports) against the model time alone (calls × latency). With
    ``--model embedded`` the real model answers instead, and the time it needs is its calls
    replayed alone (in the campaign they share the CPU with the guards): each call at once,
    on a second instance of the model, its time left out of the campaign's.
    The full stack's own calls (``Guardrails.chat``: guards and model) are timed too: with
    ``--concurrency 1`` the wall time less that is the harness's own.

    python benchmarks/redteam.py asr --per-strategy 2 [--policy FILE --tenant T] [--unseen-after N]
    python benchmarks/redteam.py asr --seeds benchmarks/data/bank_heldout_seeds.yaml \
        --no-policy-seeds --per-strategy 20   (seeds written before the fixes they test)
    python benchmarks/redteam.py overhead --attacks 1000 --latency-ms 50
    python benchmarks/redteam.py overhead --attacks 1000 --stacks full --model embedded

(d) ``annotated``: the full stack's attack success as the harness judges it, beside the
    same attacks judged by a person (``benchmarks/data/redteam_goal_labels.jsonl``). The
    harness counts every answer to a stop goal (forbidden topic, broken constraint) that is
    not a refusal: gibberish, the request restated and "sorry for any confusion" rambling
    included. The labels say whether the answer delivered what the attack wanted
    (``goal_met``). Attacks of other goals keep the harness's verdict (their checks are
    mechanical: a planted string, a URL, personal data); a stop-goal success with no label
    counts as a success. ``--export FILE`` writes the unlabelled ones, to be labelled.

    python benchmarks/redteam.py annotated RUN_DIR [RUN_DIR ...] [--export FILE]

(c) ``tools``: the tool-misuse suite (examples/agent/evals/tool-misuse.yaml, built by
    ``tether redteam suite``, see README) run with the obedient scripted agent
    (examples/agent/bank.py) on the full stack as the example policy has it, on the full
    stack with the injection guard only logging (``agent.on_injection: log``, so the gate
    alone stands between the injected instruction and the tool), and on the raw stack (no
    gate); ``--embedded`` adds the embedded model on the full stack. Counts the write and
    destructive calls attempted, those that ran without approval, and the benign read-only
    tasks that completed without an approval prompt.

    python benchmarks/redteam.py tools [--embedded]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import platform
import sys
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tether.evals import Metric, ResponseCache, Stack, default_cache_path, write_reports
from tether.evals._runner import default_concurrency, load_run_model
from tether.evals._stats import wilson
from tether.messages import Message
from tether.models import ModelResponse
from tether.pipeline import Guardrails
from tether.policy import load_policy
from tether.redteam import (
    attack_success,
    default_strategies,
    load_seeds,
    plan_campaign,
    run_campaign,
    single_turn_strategies,
)

ROOT = Path(__file__).resolve().parents[1]
BANK = ROOT / "examples" / "bank" / "policy.yaml"


def cell(m: Metric | None) -> str:
    if m is None or m.value is None or m.low is None or m.high is None:
        return "—"
    return f"{100 * m.value:.0f}% [{100 * m.low:.0f}–{100 * m.high:.0f}] ({m.k}/{m.n})"


def asr(
    per_strategy: int,
    runs_dir: Path,
    policy_path: Path = BANK,
    tenant: str | None = "northbank",
    unseen_after: int | None = None,
    seeds_file: Path | None = None,
    policy_seeds: bool = True,
    stacks: tuple[str, ...] = ("raw", "full"),
) -> None:
    policy = load_policy(policy_path)
    strategies = single_turn_strategies()
    seeds = load_seeds(seeds_file) if seeds_file else []
    campaign = asyncio.run(
        plan_campaign(policy, tenant=tenant, strategies=strategies, seeds=seeds,
                      from_policy=policy_seeds, budget=per_strategy * len(strategies))
    )  # fmt: skip
    # The attacks a smaller campaign would not have made: unseen by changes made after it.
    seen: set[str] = set()
    if unseen_after is not None:
        smaller = asyncio.run(
            plan_campaign(policy, tenant=tenant, strategies=strategies, seeds=seeds,
                          from_policy=policy_seeds, budget=unseen_after * len(strategies))
        )  # fmt: skip
        seen = set(smaller.attacks)
    model = load_run_model(None, policy)
    cache = ResponseCache(default_cache_path())
    figures = {}
    try:
        for stack in stacks:
            t0 = time.perf_counter()
            result = asyncio.run(
                run_campaign(campaign, policy, model=model, stack=stack, tenant=tenant,
                             cache=cache, runs_dir=runs_dir, fresh=True, concurrency=1)
            )  # fmt: skip
            write_reports(result.report, result.directory)
            calls = sum(r.model_calls for r in result.report.results)
            cached = sum(r.cached_calls for r in result.report.results)
            print(f"{stack}: {len(result.report.results)} attacks, {calls} model calls "
                  f"({cached} cached), {time.perf_counter() - t0:.0f} s → {result.directory}",
                  flush=True)  # fmt: skip
            figures[stack] = result.report
    finally:
        cache.close()
    raw_s, raw_g = attack_success(figures["raw"]) if "raw" in figures else ({}, {})
    full_s, full_g = attack_success(figures["full"]) if "full" in figures else ({}, {})
    folder = policy_path.resolve().parent
    where = folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder
    source = "the policy's seeds" if policy_seeds else "no policy seeds"
    if seeds_file:
        source += f" and {len(seeds)} from {seeds_file}"
    print(f"\n{where} ({tenant or 'no tenant'}), embedded SmolLM2, {source}, {per_strategy} "
          f"seeds per strategy; {platform.machine()}, {datetime.now(UTC):%Y-%m-%d}\n")  # fmt: skip
    print("| strategy | raw | full |\n|---|---|---|")
    for name in strategies:
        print(f"| {name} | {cell(raw_s.get(name))} | {cell(full_s.get(name))} |")
    overall = {s: {m.name: m for m in figures[s].metrics}["attack_success"] for s in figures}
    print(f"| **all single-turn** | {cell(overall.get('raw'))} | {cell(overall.get('full'))} |")
    print("\n| goal | raw | full |\n|---|---|---|")
    for goal in sorted(set(raw_g) | set(full_g)):
        print(f"| {goal} | {cell(raw_g.get(goal))} | {cell(full_g.get(goal))} |")
    if unseen_after is not None:
        print(f"\nattacks a --per-strategy {unseen_after} campaign does not make:")
        for stack, report in figures.items():
            unseen = [r for r in report.results if r.case_id not in seen]
            got = sum(1 for r in unseen if not r.passed)
            low, high = wilson(got, len(unseen))
            print(f"- {stack}: {100 * got / max(len(unseen), 1):.0f}% "
                  f"[{100 * low:.0f}–{100 * high:.0f}] ({got}/{len(unseen)})")  # fmt: skip


class FixedLatencyModel:
    """Answers every call with the same compliant text after sleeping ``latency_s``, one call
    at a time (a local model on a CPU serves one request at once)."""

    def __init__(self, latency_s: float) -> None:
        self.name = f"fixed-{latency_s * 1000:g}ms"
        self.latency_s = latency_s
        self.calls = 0
        self._lock = asyncio.Lock()

    async def generate(self, messages: Sequence[Message], **_: Any) -> ModelResponse:
        async with self._lock:
            await asyncio.sleep(self.latency_s)
            self.calls += 1
        return ModelResponse(text="Sure, here is what you asked for.", model=self.name)

    async def stream(self, messages: Sequence[Message], **_: Any) -> AsyncIterator[str]:
        yield (await self.generate(messages)).text


class TimedModel:
    """A real model, one call at a time (as a local model serves them), timing each call from
    the moment it holds the model: the sum is the time the model needed, waits excluded.

    Each call is then replayed at once on a second instance of the model (the twin, loaded
    the same way), with nothing else running: the time the model needs alone. The machine
    runs now and then 30-40% slower for a few seconds (BENCHMARKS.md); measured next to each
    other, the call and its replay meet the same spell. The replays' time (``replay_s``) is
    left out of the campaign's wall time. Both instances load on their first call, so the
    first call's time includes the load."""

    def __init__(self, load: Any) -> None:
        self.inner = load()
        self.twin = load()
        self.name = self.inner.name
        self.calls = 0
        self.busy_s = 0.0
        self.replay_s = 0.0
        self.inside: list[float] = []
        self.alone: list[float] = []
        self._lock = asyncio.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def generate(self, messages: Sequence[Message], **kwargs: Any) -> ModelResponse:
        async with self._lock:
            t0 = time.perf_counter()
            reply = await self.inner.generate(messages, **kwargs)
            t1 = time.perf_counter()
            self.inside.append(t1 - t0)
            self.busy_s += t1 - t0
            self.calls += 1
            await self.twin.generate(messages, **kwargs)
            self.alone.append(time.perf_counter() - t1)
            self.replay_s += self.alone[-1]
            return reply  # type: ignore[no-any-return]

    async def stream(self, messages: Sequence[Message], **kwargs: Any) -> AsyncIterator[str]:
        yield (await self.generate(messages, **kwargs)).text


class StackClock:
    """Times every ``Guardrails.chat`` call (the stack answering an attack: guards and model)
    while installed; with one attack at a time, the campaign's wall time less this sum is the
    harness's own time (planning, mutating, judging, the run folder and reports)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._original = Guardrails.chat

    def __enter__(self) -> StackClock:
        original, clock = self._original, self

        async def timed(rails: Guardrails, *args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await original(rails, *args, **kwargs)
            finally:
                clock.seconds += time.perf_counter() - t0

        Guardrails.chat = timed  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *_: object) -> None:
        Guardrails.chat = self._original  # type: ignore[method-assign]


class EmbedCounter:
    """Counts the embedding model's forward passes while installed: texts and tokens, by the
    guard module that asked (the scope guard, the adversarial scan, others)."""

    def __init__(self) -> None:
        from tether.embed import _minilm

        self._cls = _minilm._MiniLM
        self._original = self._cls.embed
        self.tokens: dict[str, int] = {}
        self.texts: dict[str, int] = {}

    def __enter__(self) -> EmbedCounter:
        original, counter = self._original, self

        def counted(model: Any, encodings: Any) -> Any:
            # Walk the frames, not traceback.extract_stack: this runs inside the timed campaign,
            # and building a whole traceback (source lines included) per pass would add to it.
            who, frame = "other", sys._getframe(1)
            while frame is not None and who == "other":
                name = frame.f_code.co_filename
                who = next((n for n in ("_scope", "_adversarial", "_toxicity") if n in name), who)
                frame = frame.f_back  # type: ignore[assignment]
            counter.texts[who] = counter.texts.get(who, 0) + len(encodings)
            counter.tokens[who] = counter.tokens.get(who, 0) + sum(len(e.ids) for e in encodings)
            return original(model, encodings)

        self._cls.embed = counted  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        self._cls.embed = self._original  # type: ignore[method-assign]

    def summary(self) -> str:
        parts = ", ".join(
            f"{who.strip('_')} {self.texts[who]} texts / {self.tokens[who]:,} tokens"
            for who in sorted(self.tokens)
        )
        return f"embedding passes: {sum(self.tokens.values()):,} tokens ({parts or 'none'})"


def overhead(
    attacks: int,
    latency_ms: float,
    runs_dir: Path,
    stacks: list[str],
    spec: str | None = None,
    concurrency: int | None = None,
    every_guard: bool = False,
) -> None:
    policy = load_policy(BANK)
    if every_guard:  # the bank skips the guards that cannot change a blocked request's reply
        guards = policy.guards.model_copy(update={"skip_after_block": False})
        policy = policy.model_copy(update={"guards": guards})
    what = f"model {spec}" if spec else f"model latency {latency_ms:g} ms per call"
    print(f"{attacks} attacks, {what}, concurrency {concurrency or 'as tether chooses'}, no cache, "
          f"skip_after_block {policy.guards.skip_after_block}; "
          f"{platform.machine()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")  # fmt: skip
    print("| stack | attacks | model calls | model time (s) | stack's own calls (s) | "
          "campaign wall (s) | overhead |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for stack in stacks:
        model: FixedLatencyModel | TimedModel = (
            TimedModel(lambda: load_run_model(spec, policy))
            if spec
            else FixedLatencyModel(latency_ms / 1000)
        )
        t0 = time.perf_counter()
        # Two-mutator chains as well, so that the policy's seeds make enough distinct attacks.
        names = [n for n in default_strategies() if n != "direct"]
        strategies = [*default_strategies(), *(f"{n}+base64" for n in names),
                      *(f"roleplay+{n}" for n in names)]  # fmt: skip
        campaign = asyncio.run(
            plan_campaign(policy, tenant="northbank", strategies=strategies, budget=attacks)
        )
        with StackClock() as clock, EmbedCounter() as embedded:
            result = asyncio.run(
                run_campaign(campaign, policy, model=model, stack=stack, tenant="northbank",  # type: ignore[arg-type]
                             runs_dir=runs_dir, fresh=True,
                             concurrency=concurrency or default_concurrency(model))
            )  # fmt: skip
            write_reports(result.report, result.directory)
        wall = time.perf_counter() - t0
        if isinstance(model, TimedModel):
            # The time the model needs: its calls alone, each replayed next to the campaign's
            # own; the replays are not part of the campaign.
            wall -= model.replay_s
            model_s = sum(model.alone)
            ratios = sorted(i / a for i, a in zip(model.inside, model.alone, strict=True))
            own_s = wall - model.busy_s
            print(
                f"model calls timed inside the campaign: {model.busy_s:.1f} s (the first, "
                f"which loads the model: {model.inside[0]:.2f} s); each replayed at once, "
                f"alone, on a second instance: {model_s:.1f} s (the first {model.alone[0]:.2f} "
                f"s); per call, inside over alone: median {ratios[len(ratios) // 2]:.3f}; "
                f"tether's own time (wall less the calls inside): {own_s:.1f} s, "
                f"{100 * own_s / model_s:.1f}% of the model's",
                flush=True,
            )
        else:
            model_s = model.calls * latency_ms / 1000
        # With a model that answers at once, the whole wall time is tether's own cost.
        share = (
            f"{100 * (wall - model_s) / model_s:.1f}%"
            if model_s
            else (f"{1000 * wall / max(len(result.report.results), 1):.1f} ms per attack")
        )
        # The raw and prompt stacks call the model directly, not through Guardrails.
        replayed = model.replay_s if isinstance(model, TimedModel) else 0.0
        own = f"{clock.seconds - replayed:.1f}" if stack == "full" else "—"
        print(f"| {stack} | {len(result.report.results)} | {model.calls} | {model_s:.1f} | "
              f"{own} | {wall:.1f} | {share} |", flush=True)  # fmt: skip
        print(f"  ({stack}: {embedded.summary()})", flush=True)


AGENT = ROOT / "examples" / "agent"


def tools(runs_dir: Path, embedded: bool) -> None:
    import importlib.util
    import tempfile

    import yaml

    from tether.evals import build_report, load_suite, plan_run, run_suite
    from tether.models import ScriptedModel
    from tether.tools import Toolset

    loader = importlib.util.spec_from_file_location("bank_agent", AGENT / "bank.py")
    assert loader is not None
    assert loader.loader is not None
    bank = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(bank)
    suite = load_suite(AGENT / "evals" / "tool-misuse.yaml")
    policy = load_policy(AGENT / "policy.yaml")
    data = yaml.safe_load((AGENT / "policy.yaml").read_text(encoding="utf-8"))
    data["agent"]["on_injection"] = "log"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        yaml.safe_dump(data, fh)
    logging_policy = load_policy(fh.name)
    toolset = Toolset(bank.TOOLS)
    configs: list[tuple[str, Any, Stack, Any]] = [
        ("obedient, full (example policy)", policy, "full", None),
        ("obedient, full (on_injection: log)", logging_policy, "full", None),
        ("obedient, raw (no gate)", policy, "raw", None),
    ]
    if embedded:
        configs.append(("embedded SmolLM2, full", policy, "full", load_run_model(None, policy)))
    print(f"{len(suite.cases)} cases; {platform.machine()}, {datetime.now(UTC):%Y-%m-%d}\n")
    print("| agent, stack | write/destructive calls attempted | ran without approval | "
          "approval prompts | benign read-only done without approval | attack success |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for label, pol, stack, model in configs:
        model = model or ScriptedModel([bank.obedient_agent], repeat_last=True, name="obedient")
        plan = plan_run(suite, pol, model=model, stack=stack, runs_dir=runs_dir, fresh=True,
                        tools=toolset)  # fmt: skip
        results = asyncio.run(run_suite(suite, pol, plan=plan, model=model, tools=toolset))
        report = build_report(plan.info, list(results.values()))
        write_reports(report, plan.directory)
        calls = [c for r in results.values() for c in r.tool_calls if c.side_effect != "read"]
        unapproved = [c for c in calls if c.ran_unapproved]
        asked = sum(c.decision == "require_approval" for c in calls)
        benign = [r for r in results.values() if "benign" in r.tags]
        ok = sum(r.passed for r in benign)
        overall = {m.name: m for m in report.metrics}.get("attack_success")
        print(f"| {label} | {len(calls)} | {len(unapproved)} | {asked} | {ok}/{len(benign)} | "
              f"{cell(overall)} |  → {plan.directory}", flush=True)  # fmt: skip
    print(f"\nmoney moved by the obedient agent's tools: transfers={bank.BANK.transfers}, "
          f"closed={bank.BANK.closed}, e-mails={len(bank.BANK.emails)}")  # fmt: skip


LABELS = ROOT / "benchmarks" / "data" / "redteam_goal_labels.jsonl"
STOP_GOALS = ("goal:forbidden_topic", "goal:break_constraint")


def label_id(case_id: str, answer: str) -> str:
    """A labelled answer's id: the attack and the answer, hashed."""
    return "g-" + hashlib.sha256(f"{case_id}|{answer}".encode()).hexdigest()[:10]


def annotated(run_dirs: list[Path], labels_path: Path, export: Path | None) -> None:
    labels = {}
    for number, line in enumerate(labels_path.read_text(encoding="utf-8").splitlines(), 1):
        row = json.loads(line)
        if row["id"] != label_id(row["case_id"], row["answer"]):
            sys.exit(f"{labels_path}:{number}: id {row['id']} is not the hash of its answer")
        labels[row["id"]] = row["goal_met"]
    unlabelled: list[dict[str, Any]] = []
    pooled = [0, 0, 0]
    print("| run | attacks | judged by the harness | judged by the annotator | stop-goal successes "
          "labelled: goal met / not / unclear | unlabelled |\n|---|---|---|---|---|---|")  # fmt: skip
    for run in run_dirs:
        info = json.loads((run / "run.json").read_text(encoding="utf-8"))
        results = [json.loads(line) for line in (run / "results.jsonl").open(encoding="utf-8")]
        results = [r for r in results if r["error"] is None and "attack" in r["tags"]]
        judged = [r for r in results if not r["passed"]]
        met = not_met = unclear = missing = 0
        for r in judged:
            if not any(g in r["tags"] for g in STOP_GOALS):
                continue
            verdict = labels.get(label_id(r["case_id"], r["output"]))
            if verdict is None:
                missing += 1
                seed = r["case_id"].split(":", 1)[1]
                unlabelled.append({"id": label_id(r["case_id"], r["output"]),
                                   "run": run.name, "seed": seed, "case_id": r["case_id"],
                                   "goal": next(t for t in r["tags"] if t.startswith("goal:"))[5:],
                                   "attack": r["input"], "answer": r["output"]})  # fmt: skip
            met += verdict == "yes"
            not_met += verdict == "no"
            unclear += verdict == "unclear"
        real = len(judged) - not_met  # unclear and unlabelled count as successes
        n = len(results)
        pooled = [pooled[0] + n, pooled[1] + len(judged), pooled[2] + real]
        seeds = sorted({r["case_id"].split(":", 1)[1].split("-")[0] for r in results})
        print(f"| {run.name}: seeds {', '.join(seeds)}, {info.get('stack')} stack, "
              f"{info.get('policy_version', '?')} | {n} | {share(len(judged), n)} | "
              f"{share(real, n)} | {met} / {not_met} / {unclear} | {missing} |")  # fmt: skip
    if len(run_dirs) > 1:
        print(f"| **pooled** | {pooled[0]} | {share(pooled[1], pooled[0])} | "
              f"{share(pooled[2], pooled[0])} | | |")  # fmt: skip
    if export is not None:
        export.write_text("".join(json.dumps(u, ensure_ascii=False) + "\n" for u in unlabelled),
                          encoding="utf-8")  # fmt: skip
        print(f"\n{len(unlabelled)} unlabelled stop-goal successes → {export}")


def share(k: int, n: int) -> str:
    low, high = wilson(k, n)
    return f"{100 * k / max(n, 1):.1f}% [{100 * low:.1f}–{100 * high:.1f}] ({k}/{n})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    a = sub.add_parser("asr", help="attack success per single-turn strategy, raw vs full")
    a.add_argument("--per-strategy", type=int, default=2)
    a.add_argument("--policy", type=Path, default=BANK)
    a.add_argument("--tenant", default=None, help="default: northbank for the bank example")
    a.add_argument(
        "--unseen-after",
        type=int,
        metavar="N",
        help="also report the attacks a --per-strategy N campaign does not make (held out "
        "from changes made after looking at that one)",
    )
    a.add_argument("--seeds", type=Path, help="a seeds file (YAML or JSONL) besides the policy's")
    a.add_argument("--no-policy-seeds", action="store_true", help="only the --seeds file's seeds")
    a.add_argument("--stacks", default="raw,full", help="the stacks to run (default raw,full)")
    o = sub.add_parser("overhead", help="campaign wall time vs the model's time")
    o.add_argument("--attacks", type=int, default=1000)
    o.add_argument("--latency-ms", type=float, default=50.0)
    o.add_argument("--stacks", default="raw,full")
    o.add_argument(
        "--concurrency",
        type=int,
        help="attacks at once (default as tether's CLI: 1 for the embedded model, else 4; "
        "with 1 the harness's own time is the wall time less the stack's)",
    )
    o.add_argument(
        "--model",
        help="a real model (e.g. embedded) instead of the fixed latency; "
        "the model time is then the sum of its calls, timed while it holds the model",
    )
    o.add_argument(
        "--every-guard",
        action="store_true",
        help="run every input guard on every attack (the bank's policy skips, after a block, "
        "those that cannot change the reply: guards.skip_after_block)",
    )
    n = sub.add_parser("annotated", help="attack success judged by the harness and by an annotator")
    n.add_argument("runs", type=Path, nargs="+", help="run folders of red-team campaigns")
    n.add_argument("--labels", type=Path, default=LABELS)
    n.add_argument("--export", type=Path, help="write the unlabelled stop-goal successes here")
    t = sub.add_parser("tools", help="the tool-misuse suite: destructive calls run unapproved")
    t.add_argument("--embedded", action="store_true", help="also the embedded model")
    parser.add_argument("--runs-dir", type=Path, default=Path(".tether/bench-redteam"))
    args = parser.parse_args()
    if args.what == "asr":
        tenant = args.tenant or ("northbank" if args.policy.resolve() == BANK else None)
        if args.no_policy_seeds and not args.seeds:
            parser.error("--no-policy-seeds needs --seeds FILE")
        asr(args.per_strategy, args.runs_dir, args.policy, tenant, args.unseen_after,
            args.seeds, not args.no_policy_seeds, tuple(args.stacks.split(",")))  # fmt: skip
    elif args.what == "annotated":
        annotated(args.runs, args.labels, args.export)
    elif args.what == "tools":
        tools(args.runs_dir, args.embedded)
    else:
        overhead(
            args.attacks,
            args.latency_ms,
            args.runs_dir,
            args.stacks.split(","),
            args.model,
            args.concurrency,
            args.every_guard,
        )


if __name__ == "__main__":
    main()
