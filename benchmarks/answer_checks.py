"""Answers that break a bank constraint, and requests to break one: the bank's guards for
them, before and after a change, on labelled texts.

``--check credentials`` (default): does an answer ask the customer for a secret? Three sets
of assistant answers, each labelled ``request`` (asks the customer to hand over a full card
number, PIN, password or passcode, one-time code or CVV) or ``benign`` (mentions them
without asking: safety advice, ATM and app instructions, refusals, non-secret data):

- ``benchmarks/data/credential_requests_dev.jsonl`` (30): red-team answers that got through
  and sentences written while changing the detector; tuned on.
- ``benchmarks/data/credential_requests_heldout.jsonl`` (120): written by a helper who never
  saw the detector's code. Meant as the held-out set, but its misses were read after the
  first measurement and the detector was changed after that, so it is a second dev set.
- ``benchmarks/data/credential_requests_test.jsonl`` (160, English only): written by another
  helper, blind to the code, after the detector was frozen; the engineer never read it. Its
  misses are not printed unless ``--show-test-misses``.

The guard is the bank's output guard with id ``no_credential_requests``.

``--check refunds``: does an answer promise a refund or a dispute's outcome (guard
``no_refund_promises``)? Answers labelled ``promise`` or ``benign`` (the dispute process
explained, conditions, refusals to promise, the customer's own steps, someone else's words),
written by a helper who had not seen the detector, before it was written:

- ``benchmarks/data/refund_promises_dev.jsonl`` (40): read, tuned on.
- ``benchmarks/data/refund_promises_test.jsonl`` (160, English only): never read by the
  engineer; misses hidden unless ``--show-test-misses``.

The guard is run as configured, at ``--before`` (a git revision; a policy without the guard
flags nothing) and in the working tree. Detection and false-positive rate with Wilson 95%
intervals, and the misses of each.

``--check solicitation``: does a customer's message try to get the assistant to ask for,
collect or accept a credential (input guard ``credential_solicitation``)?

- dev: the credential seeds of the 6th–9th red-team sets and about 2,000 customer turns
  from the scope, multi-turn and forged-history dev sets and chatterbot (read, tuned on);
- ``benchmarks/data/credential_solicitation_dev.jsonl`` (160): written by a helper who had
  not seen the patterns, after the first test run; read, tuned on;
- ``benchmarks/data/credential_solicitation_test.jsonl`` (200): written by another helper
  who had not seen the patterns; never read by the engineer, misses hidden unless
  ``--show-test-misses``.

    python benchmarks/answer_checks.py [--check credentials|refunds|solicitation] [--before REV]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
from pathlib import Path

from tether.evals._stats import wilson
from tether.guards import GuardContext, build_guards, run_guards
from tether.policy import Policy, load_policy

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks/data"
CHECKS = {  # guard id, the label it must flag, labelled sets, default --before
    "credentials": ("no_credential_requests", "request", {
        "dev": DATA / "credential_requests_dev.jsonl",
        "dev 2 (read)": DATA / "credential_requests_heldout.jsonl",
        "test": DATA / "credential_requests_test.jsonl",
    }, "10739d9"),
    "refunds": ("no_refund_promises", "promise", {
        "dev": DATA / "refund_promises_dev.jsonl",
        "dev 2": DATA / "refund_promises_dev2.jsonl",
        "test": DATA / "refund_promises_test.jsonl",
    }, "b22196c"),
    "solicitation": ("credential_solicitation", "solicit", {
        "dev": None,  # built by solicitation_dev()
        "dev 2 (read)": DATA / "credential_solicitation_dev.jsonl",
        "test": DATA / "credential_solicitation_test.jsonl",
    }, "6a911c3"),
}  # fmt: skip
INPUT_CHECKS = {"solicitation"}  # checks of the customer's message, not of an answer


def policy_at(rev: str | None) -> Policy:
    """The bank policy at git revision ``rev`` (None: the working tree), tenant northbank."""
    if rev is None:
        return load_policy(ROOT / "examples/bank/policy.yaml").for_tenant("northbank")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("policy.yaml", "tenants/northbank.yaml", "tenants/southbank.yaml"):
            out = Path(tmp) / name
            out.parent.mkdir(parents=True, exist_ok=True)
            shown = subprocess.run(["git", "show", f"{rev}:examples/bank/{name}"], cwd=ROOT,
                                   check=True, capture_output=True, text=True)  # fmt: skip
            out.write_text(shown.stdout, encoding="utf-8")
        return load_policy(Path(tmp) / "policy.yaml").for_tenant("northbank")


def solicitation_dev() -> list[dict[str, str]]:
    """The credential seeds of the 6th–9th red-team sets (``solicit``) and the customer turns
    of the labelled scope requests, the multi-turn dev conversations and the forged-history
    dev set, and the chatterbot corpus (``benign``): read while the patterns were written."""
    import yaml

    from tether.datasets import load

    rows: list[dict[str, str]] = []
    for n in (6, 7, 8, 9):
        seeds = yaml.safe_load((DATA / f"bank_heldout_seeds_{n}.yaml").read_text("utf-8"))
        rows += [{"id": s["id"], "text": s["payload"], "label": "solicit"}
                 for s in seeds["seeds"] if "-cred-" in s["id"]]  # fmt: skip
    texts = [json.loads(line)["text"] for line in
             (ROOT / "tests/guards/data/scope_eval.jsonl").read_text("utf-8").splitlines()]  # fmt: skip
    for name in ("scope_multiturn_dev.jsonl", "history_checks_dev.jsonl"):
        for line in (DATA / name).read_text("utf-8").splitlines():
            row = json.loads(line)
            turns = row.get("messages") or row.get("turns") or []
            texts += [
                t["content"] for t in turns if isinstance(t, dict) and t.get("role") == "user"
            ]
    texts += [r.text for r in load("chatterbot", fetch_missing=False)]
    rows += [{"id": f"dev-{i}", "text": t, "label": "benign"}
             for i, t in enumerate(dict.fromkeys(texts))]  # fmt: skip
    return rows


def flags(policy: Policy, guard_id: str, texts: list[str], stage: str = "output") -> list[bool]:
    built = build_guards(policy)
    guards = [b for b in (built.input if stage == "input" else built.output)
              if b.config.key == guard_id]  # fmt: skip
    if not guards:
        return [False] * len(texts)
    ctx = GuardContext(stage=stage, metadata={"policy": policy})  # type: ignore[arg-type]

    async def run() -> list[bool]:
        return [any(v.flagged for v in await run_guards(guards, t, ctx)) for t in texts]

    return asyncio.run(run())


def pct(k: int, n: int) -> str:
    low, high = wilson(k, n)
    return f"{100 * k / n:.1f}% [{100 * low:.0f}–{100 * high:.0f}] ({k}/{n})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", choices=sorted(CHECKS), default="credentials")
    parser.add_argument("--before", help="git revision of the 'before' row (default: per check)")
    parser.add_argument("--show-test-misses", action="store_true",
                        help="also print the test set's misses (then it has been read)")  # fmt: skip
    args = parser.parse_args()
    guard_id, positive, sets, before = CHECKS[args.check]
    before = args.before or before
    versions = {f"before ({before})": policy_at(before), "now": policy_at(None)}
    stage = "input" if args.check in INPUT_CHECKS else "output"
    built = build_guards(versions["now"])
    if not any(
        b.config.key == guard_id for b in (built.input if stage == "input" else built.output)
    ):
        raise SystemExit(f"the bank policy has no {stage} guard with id {guard_id!r}")
    print("| set | guard | detection | false positives |\n|---|---|---|---|")
    misses: list[str] = []
    for set_name, path in sets.items():
        if path is None:
            rows = solicitation_dev()
        elif not path.exists():
            continue
        else:
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        requests = [r for r in rows if r["label"] == positive]
        benign = [r for r in rows if r["label"] == "benign"]
        for version, policy in versions.items():
            hit = flags(policy, guard_id, [r["text"] for r in requests], stage)
            fp = flags(policy, guard_id, [r["text"] for r in benign], stage)
            print(
                f"| {set_name} | {version} | {pct(sum(hit), len(hit))} | {pct(sum(fp), len(fp))} |"
            )
            if set_name == "test" and not args.show_test_misses:
                continue
            misses += [f"{set_name}, {version}, missed: {r['id']} {r['text']}"
                       for r, h in zip(requests, hit, strict=True) if not h]  # fmt: skip
            misses += [f"{set_name}, {version}, false positive: {r['id']} {r['text']}"
                       for r, h in zip(benign, fp, strict=True) if h]  # fmt: skip
    print()
    print("\n".join(misses))


if __name__ == "__main__":
    main()
