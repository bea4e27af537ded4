"""The dashboard in a real headless Chromium (Playwright driving the system's Chromium):
the overview with seeded data, a flagged turn with its span highlighted, a pending tool call
approved on the page and the banking agent of examples/agent resuming from it, an eval
report opened, and a tenant's login kept out of another tenant's pages."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest
from dashboard_harness import ATTACK, FLAGGED_INPUT, Seeded, flagged_event, plain_event, write_run

from tether import Guardrails, load_policy
from tether.models import ScriptedModel
from tether.pipeline import Event
from tether.store import Store, StoreApprovalStore

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    message = ""
    if binary is None:
        message = "needs a headless Chromium on PATH: apt-get install chromium"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            message = "needs the playwright package (the dev extra)"
    if message:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests, but it {message}")
        pytest.skip(message)
    assert binary is not None
    return binary


@pytest.fixture
def page(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        opened = context.new_page()
        opened.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        opened.on("dialog", lambda d: d.accept())
        yield opened
        browser.close()
        # No CSP violation and no script error on any page the test visited (the 404s the
        # test asks for on purpose show up as failed loads, which are fine).
        assert not [e for e in errors if "status of 404" not in e], errors


def log_in(page: Any, url: str, key: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


def _bank() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bank_example", ROOT / "examples/agent/bank.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end on a thread of its own: Playwright's sync API keeps an
    event loop running on this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class _StoreEvents:
    """The agent's events into the gateway's audit store (as the example's --store does)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def emit(self, event: Event) -> None:
        await asyncio.to_thread(self.store.insert_events, [event])


def test_overview_flagged_turn_approval_resume_and_report(
    seeded: Seeded, page: Any, runs_dir: Path
) -> None:
    url = seeded.gateway.url
    store = seeded.gateway.gateway.store
    # The banking agent's tenant: the example policy's northbank overlay.
    store.ensure_tenant("northbank")
    key = seeded.gateway.new_key("northbank")
    flagged = flagged_event("northbank", input=f"{FLAGGED_INPUT} {ATTACK}")
    store.insert_events([flagged, *(plain_event("northbank", i) for i in range(30))])
    bank = _bank()
    rails = Guardrails(
        load_policy(ROOT / "examples/agent/policy.yaml"),
        model=ScriptedModel([bank.obedient_agent], repeat_last=True, name="obedient"),
        tools=bank.TOOLS,
        approvals=StoreApprovalStore(store),
        sink=_StoreEvents(store),
    )
    paused = run_async(
        rails.chat(
            "Please transfer £250 to account 12345678", tenant="northbank", user="customer-1"
        )
    )
    assert paused.action == "escalate" and paused.pending_approval
    write_run(runs_dir, "northbank-smoke", tenant="northbank")

    log_in(page, url, key)
    # The overview: the seeded turns, the traffic chart and the guard that fired.
    assert page.inner_text("#turns") == "32"
    assert page.locator("#traffic rect.a-allow").count() >= 1
    assert page.locator("#traffic rect.a-block").count() == 1
    assert "deny_list" in (page.locator("svg.hbars").first.text_content() or "")

    # A flagged turn: its span is highlighted, the attacker's markup is text.
    page.click("text=Events")
    page.fill("input[name=guard]", "crypto")
    page.click("button.primary")
    rows = page.locator("tr.event")
    assert rows.count() == 1
    rows.first.locator("a").click()
    mark = page.locator("#input mark.span")
    assert mark.count() == 1
    assert mark.first.inner_text().startswith("bitcoin")
    assert page.locator("script").count() == 1  # ours; the injected one is text
    assert "<script>alert('pwned')</script>" in page.inner_text("#input")
    assert "matched a forbidden term" in page.inner_text("#verdicts")

    # The pending tool call: approve it on the page.
    page.click("text=Approvals")
    row = page.locator(f"tr.approval[data-id='{paused.pending_approval}']")
    assert "transfer" in row.inner_text()
    row.locator("a").click()
    page.click("#approve")
    assert "approved" in page.inner_text("[role=status]")
    assert "not yet" in page.inner_text("#resumed")
    assert bank.BANK.transfers == []

    # The agent's application resumes (examples/agent/bank.py --resume does the same).
    resumed = run_async(rails.resume(paused.pending_approval, tenant="northbank"))
    assert resumed.tool_calls[0].status == "executed"
    assert bank.BANK.transfers == [("12345678", 250.0)]
    page.reload()
    assert "not yet" not in page.inner_text("#resumed")
    turns = page.locator("tr.event")
    assert turns.count() == 2  # the turn that stopped and the one that resumed
    turns.nth(1).locator("a").click()
    calls = page.inner_text("#tool-calls")
    assert "transfer" in calls and "executed" in calls and "approved" in calls

    # An eval report opens from the list, with its own script running under its policy.
    page.click("text=Evaluations")
    page.click("#runs a:has-text('northbank-smoke')")
    page.wait_for_url(f"{url}/evals/northbank-smoke/report")
    assert "tether evaluation report" in (page.locator("header").text_content() or "")

    # Another tenant's pages are out of reach for this login.
    page.goto(f"{url}/events/{seeded.flagged['globex']}")
    assert "there is no event" in page.inner_text("main")
    page.goto(f"{url}/approvals/{seeded.approvals['globex']}")
    assert "there is no approval" in page.inner_text("main")
    page.goto(f"{url}/?tenant=globex")
    assert "there is no tenant" in page.inner_text("main")


def test_admin_sees_every_tenant_and_picks_one(seeded: Seeded, page: Any) -> None:
    from gateway_harness import ADMIN_KEY

    url = seeded.gateway.url
    log_in(page, url, ADMIN_KEY)
    assert page.inner_text("#turns") == "62"
    page.select_option("select[name=tenant]", "globex")  # the script submits the choice
    page.wait_for_url("**tenant=globex**")
    assert page.inner_text("#turns") == "31"
    assert "Overview · globex" in page.inner_text("h1")
