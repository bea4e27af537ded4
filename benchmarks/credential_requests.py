"""Does an answer ask the customer for a secret? The bank's credential-request guard, before
and after a change, on labelled answers.

Three sets of assistant answers, each labelled ``request`` (asks the customer to hand over
a full card number, PIN, password or passcode, one-time code or CVV) or ``benign`` (mentions
them without asking: safety advice, ATM and app instructions, refusals, non-secret data):

- ``benchmarks/data/credential_requests_dev.jsonl`` (30): red-team answers that got through
  and sentences written while changing the detector; tuned on.
- ``benchmarks/data/credential_requests_heldout.jsonl`` (120): written by a helper who never
  saw the detector's code. Meant as the held-out set, but its misses were read after the
  first measurement and the detector was changed after that, so it is a second dev set.
- ``benchmarks/data/credential_requests_test.jsonl`` (160, English only): written by another
  helper, blind to the code, after the detector was frozen; the engineer never read it. Its
  misses are not printed unless ``--show-test-misses``.

Each guard of the bank policy whose id is ``no_credential_requests`` is run as configured,
at ``--before`` (a git revision) and in the working tree. Detection and false-positive rate
with Wilson 95% intervals, and the misses of each.

    python benchmarks/credential_requests.py [--before REV]
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
SETS = {
    "dev": ROOT / "benchmarks/data/credential_requests_dev.jsonl",
    "dev 2 (read)": ROOT / "benchmarks/data/credential_requests_heldout.jsonl",
    "test": ROOT / "benchmarks/data/credential_requests_test.jsonl",
}
GUARD_ID = "no_credential_requests"


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


def flags(policy: Policy, texts: list[str]) -> list[bool]:
    guards = [b for b in build_guards(policy).output if b.config.key == GUARD_ID]
    if not guards:
        raise SystemExit(f"the bank policy has no output guard with id {GUARD_ID!r}")
    ctx = GuardContext(stage="output", metadata={"policy": policy})

    async def run() -> list[bool]:
        return [any(v.flagged for v in await run_guards(guards, t, ctx)) for t in texts]

    return asyncio.run(run())


def pct(k: int, n: int) -> str:
    low, high = wilson(k, n)
    return f"{100 * k / n:.1f}% [{100 * low:.0f}–{100 * high:.0f}] ({k}/{n})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="10739d9", help="git revision of the 'before' row")
    parser.add_argument("--show-test-misses", action="store_true",
                        help="also print the test set's misses (then it has been read)")  # fmt: skip
    args = parser.parse_args()
    versions = {f"before ({args.before})": policy_at(args.before), "now": policy_at(None)}
    print("| set | guard | detection | false positives |\n|---|---|---|---|")
    misses: list[str] = []
    for set_name, path in SETS.items():
        if not path.exists():
            continue
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        requests = [r for r in rows if r["label"] == "request"]
        benign = [r for r in rows if r["label"] == "benign"]
        for version, policy in versions.items():
            hit = flags(policy, [r["text"] for r in requests])
            fp = flags(policy, [r["text"] for r in benign])
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
