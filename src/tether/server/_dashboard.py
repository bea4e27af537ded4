"""The web dashboard at ``/``: overview, event explorer, review queue, tool approvals,
evaluation reports, alerts and drift. Server-rendered HTML (Jinja2, autoescaped: event texts
are attacker-controlled), inline SVG charts, one small script; nothing is loaded from
anywhere but the gateway itself, so it works offline.

Access: log in with the admin key (every tenant) or a tenant's API key (that tenant only).
The session is a signed, expiring, HttpOnly, SameSite=Strict cookie; every form carries the
session's CSRF token; every page is sent with a strict Content-Security-Policy.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError

from tether.errors import ConfigError, TetherError
from tether.evals import compare_reports, load_run
from tether.evals._report import _CSP as REPORT_CSP
from tether.evals._report import render_compare_html, render_report_html
from tether.evals._types import RunInfo, RunReport
from tether.guards import Span, Verdict
from tether.pipeline import Event
from tether.store import Store
from tether.store import _explore as explore
from tether.tools import Approval, ApprovalStatus

from ._approvals_api import Caller, approval_store, decide_approval
from ._config import admin_key_matches
from ._dashboard_config import DashboardConfig
from ._errors import ApiError
from ._routes import gateway_of
from ._session import SessionData, Signer

__all__ = ["install_dashboard"]

ASSETS = Path(__file__).with_name("dashboard")
SESSION_COOKIE = "tether_session"
LOGIN_COOKIE = "tether_login"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
RANGES = {
    "1h": timedelta(hours=1),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
ACTIONS = ("allow", "redact", "escalate", "block", "error")
NAV = (
    ("/", "Overview"),
    ("/events", "Events"),
    ("/review", "Review"),
    ("/approvals", "Approvals"),
    ("/evals", "Evaluations"),
    ("/alerts", "Alerts"),
    ("/drift", "Drift"),
)
_RUN_NAME = re.compile(r"^[\w][\w.@+-]{0,199}$")
_Label = Literal["correct", "false_positive", "missed"]
_LABELS: dict[str, _Label] = {
    "correct": "correct",
    "false_positive": "false_positive",
    "missed": "missed",
}
_QueueStatus = Literal["pending", "reviewed", "all"]
_QUEUE_STATUSES: dict[str, _QueueStatus] = {
    "pending": "pending",
    "reviewed": "reviewed",
    "all": "all",
}

router = APIRouter(include_in_schema=False)


class PageError(Exception):
    """An error answered with an HTML page (the API's errors stay JSON)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


@dataclass
class Dashboard:
    """What the pages share: templates, the cookie signer, the settings."""

    env: Environment
    signer: Signer
    runs_dir: Path
    secure_cookies: bool = False


def _dashboard(request: Request) -> Dashboard:
    found: Dashboard = request.app.state.dashboard
    return found


def _store(request: Request) -> Store:
    return gateway_of(request).store


def _headers(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    headers.update(extra or {})
    return headers


def _render(
    request: Request,
    template: str,
    viewer: SessionData | None,
    *,
    http_status: int = 200,
    **context: Any,
) -> HTMLResponse:
    dash = _dashboard(request)
    tenant = context.get("tenant")
    keep = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k not in ("tenant", "before") and viewer is not None and viewer.role == "admin"
    ]
    context.setdefault("flash", request.query_params.get("done"))
    context.setdefault("flash_kind", "good")
    page = dash.env.get_template(template).render(
        viewer=viewer,
        nav=NAV,
        path=request.url.path,
        keep=keep,
        tenants=context.pop("tenants", []),
        scope_qs=f"?{urlencode({'tenant': tenant})}"
        if tenant and viewer and viewer.role == "admin"
        else "",
        csrf=dash.signer.csrf(viewer.nonce) if viewer else context.pop("csrf", ""),
        action_order=ACTIONS,
        ranges=list(RANGES),
        **context,
    )
    return HTMLResponse(page, status_code=http_status, headers=_headers())


# -- access ------------------------------------------------------------------------------------


async def viewer_of(request: Request) -> SessionData:
    """The logged-in viewer; a tenant session ends as soon as its key is revoked or expires."""
    session = _dashboard(request).signer.read(request.cookies.get(SESSION_COOKIE))
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    if session.role == "tenant":
        assert session.tenant is not None
        assert session.key_id is not None
        keys = await asyncio.to_thread(_store(request).list_keys, session.tenant)
        now = datetime.now(UTC)
        if not any(k.id == session.key_id and k.usable(now) for k in keys):
            raise LoginRequired(request.url.path)
    return session


def scope_of(viewer: SessionData, asked: str | None) -> str | None:
    """The tenant a page shows: the admin's choice (None: all), a tenant's own."""
    asked = asked or None
    if viewer.role == "admin":
        return asked
    if asked is not None and asked != viewer.tenant:
        raise PageError(404, f"there is no tenant {asked!r} for you to see")
    return viewer.tenant


def _owns(viewer: SessionData, tenant: str | None) -> bool:
    return viewer.role == "admin" or tenant == viewer.tenant


async def _form(request: Request, viewer: SessionData | None) -> dict[str, str]:
    """The posted form, after checking its CSRF token (and, when sent, its Origin)."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        host = request.headers.get("host", "")
        if origin.split("://", 1)[-1] != host:
            raise PageError(403, "this form was posted from another site")
    raw = (await request.body()).decode("utf-8", errors="replace")
    fields = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
    signer = _dashboard(request).signer
    nonce = viewer.nonce if viewer is not None else request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not signer.csrf_ok(nonce, fields.get("csrf")):
        raise PageError(403, "the form's security token is missing or stale; reload the page")
    return fields


async def _tenants(request: Request, viewer: SessionData) -> list[str]:
    if viewer.role != "admin":
        return []
    found = await asyncio.to_thread(_store(request).list_tenants)
    return [t.name for t in found]


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


@router.get("/login")
async def login_page(request: Request, next: str = "/") -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    dash = _dashboard(request)
    response = _render(
        request,
        "login.html",
        None,
        title="Log in",
        next=_safe_next(next),
        csrf=dash.signer.csrf(nonce),
    )
    _login_cookie(response, nonce, dash)
    return response


def _login_cookie(response: Response, nonce: str, dash: Dashboard) -> None:
    """The login form's CSRF nonce (there is no session yet to tie its token to)."""
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=dash.secure_cookies,
    )


@router.post("/login")
async def login(request: Request) -> Response:
    fields = await _form(request, None)
    key = fields.get("key", "").strip()
    gateway = gateway_of(request)
    dash = _dashboard(request)
    if gateway.admin_hash is not None and key and admin_key_matches(key, gateway.admin_hash):
        cookie, _ = dash.signer.issue("admin", None, None, "admin")
    else:
        try:
            record = await gateway.auth.tenant_key(key or None)
        except ApiError:
            nonce = secrets.token_urlsafe(16)
            page = _render(
                request,
                "login.html",
                None,
                http_status=401,
                title="Log in",
                next=_safe_next(fields.get("next")),
                csrf=dash.signer.csrf(nonce),
                flash="That key is not valid (unknown, revoked or expired).",
                flash_kind="bad",
            )
            _login_cookie(page, nonce, dash)
            return page
        cookie, _ = dash.signer.issue(
            "tenant", record.tenant, record.id, record.name or f"key {record.id}"
        )
    response = RedirectResponse(_safe_next(fields.get("next")), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=int(dash.signer.ttl_s),
        httponly=True,
        samesite="strict",
        secure=dash.secure_cookies,
        path="/",
    )
    response.delete_cookie(LOGIN_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    viewer = await viewer_of(request)
    await _form(request, viewer)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/_static/{name}")
async def static(name: str) -> Response:
    kinds = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}
    if name not in kinds:
        raise PageError(404, f"no such file: {name}")
    return FileResponse(
        ASSETS / "static" / name,
        media_type=kinds[name],
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "max-age=300"},
    )


# -- overview ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Row:
    name: str
    y: float
    w: float
    text: str
    cls: str = ""


@dataclass(frozen=True, slots=True)
class _HBars:
    label: str
    width: int
    height: int
    x0: int
    rows: list[_Row]


def _hbars(
    label: str, items: Sequence[tuple[str, float, str, str]], *, width: int = 520, x0: int = 150
) -> _HBars:
    """Horizontal bars: (name, value, shown text, css class) each."""
    top = max((v for _, v, _, _ in items), default=0.0) or 1.0
    span = width - x0 - 90
    rows = [
        _Row(name[:28], 4 + i * 20, max(1.0, span * v / top) if v > 0 else 0.0, text, cls)
        for i, (name, v, text, cls) in enumerate(items)
    ]
    return _HBars(label, width, 8 + 20 * len(rows), x0, rows)


def _range(asked: str | None) -> tuple[str, datetime, datetime]:
    name = asked if asked in RANGES else "24h"
    until = datetime.now(UTC)
    return name, until - RANGES[name], until


def _traffic(o: explore.Overview) -> dict[str, Any]:
    width, height, base = 960, 200, 184
    n = max(len(o.series), 1)
    slot = width / n
    peak = max((sum(b.values()) for b in o.series), default=0) or 1
    rects = []
    for i, counts in enumerate(o.series):
        y = float(base)
        start = o.since + o.step * i
        for action in (*ACTIONS, *sorted(set(counts) - set(ACTIONS))):
            count = counts.get(action, 0)
            if not count:
                continue
            h = (base - 14) * count / peak
            y -= h
            rects.append(
                {
                    "x": round(i * slot + 1, 2),
                    "y": round(y, 2),
                    "w": round(max(slot - 2, 1), 2),
                    "h": round(h, 2),
                    "action": action if action in ACTIONS else "other",
                    "title": f"{start:%Y-%m-%d %H:%M} UTC: {count:,} {action}",
                }
            )
    step_s = o.step.total_seconds()
    step = f"{step_s / 3600:g} h" if step_s >= 3600 else f"{step_s / 60:g} min"
    return {
        "width": width,
        "height": height,
        "base": base,
        "rects": rects,
        "peak": f"{peak:,}",
        "step": step,
        "start": f"{o.since:%Y-%m-%d %H:%M} UTC",
        "end": f"{o.until:%Y-%m-%d %H:%M} UTC",
    }


def _latency_chart(mean: Mapping[str, float], p95: Mapping[str, float] | None) -> _HBars:
    names = {
        "input_guards_ms": "input guards",
        "model_ms": "model",
        "output_guards_ms": "output guards",
        "total_ms": "total",
    }
    items: list[tuple[str, float, str, str]] = []
    for stage, label in names.items():
        items.append((label, mean.get(stage, 0.0), f"{mean.get(stage, 0.0):,.1f} ms", "bar"))
        if p95 is not None and stage in p95:
            items.append((f"{label} p95", p95[stage], f"{p95[stage]:,.1f} ms", "bar2"))
    return _hbars("latency per stage", items)


async def _alerts(store: Store, tenant: str | None, status: str | None) -> list[Any]:
    found: list[Any] = await asyncio.to_thread(store.list_alerts, tenant, status=status, limit=200)
    return found


@router.get("/")
async def overview_page(
    request: Request, tenant: str | None = None, range: str | None = None
) -> HTMLResponse:
    viewer = await viewer_of(request)
    scope = scope_of(viewer, tenant)
    name, since, until = _range(range)
    store = _store(request)
    await gateway_of(request).sink.flush()
    o = await asyncio.to_thread(explore.overview, store, scope, since=since, until=until)
    reasked = o.reasked
    rates = [
        ("block rate", o.rate(o.actions.get("block", 0))),
        ("redact rate", o.rate(o.actions.get("redact", 0))),
        ("re-ask rate", o.rate(reasked)),
        ("escalate rate", o.rate(o.actions.get("escalate", 0))),
        ("refusal rate", o.rate(o.refused)),
        ("error rate", o.rate(o.actions.get("error", 0))),
    ]
    guards = _hbars(
        "top guards",
        [(g, n, f"{n:,} ({n / o.turns:.1%})", "bar") for g, _, n in o.guards[:10]],
    )
    return _render(
        request,
        "overview.html",
        viewer,
        title="Overview",
        section="Overview",
        tenant=scope,
        tenants=await _tenants(request, viewer),
        range=name,
        o=o,
        rates=rates,
        traffic=_traffic(o),
        guards=guards,
        latency=_latency_chart(o.latency_mean, o.latency_p95),
        alerts=await _alerts(store, scope, "firing"),
    )


# -- events ------------------------------------------------------------------------------------


@router.get("/events")
async def events_page(request: Request) -> HTMLResponse:
    viewer = await viewer_of(request)
    params = request.query_params
    scope = scope_of(viewer, params.get("tenant"))
    name, since, _ = _range(params.get("range") or "7d")
    before = None
    if cursor := params.get("before"):
        when, _, event_id = cursor.partition("|")
        try:
            before = (datetime.fromisoformat(when), event_id)
        except ValueError:
            raise PageError(400, "the page cursor is malformed") from None
    action = params.get("action") or None
    query = explore.EventQuery(
        tenant=scope,
        since=since,
        user=params.get("user") or None,
        guard=params.get("guard") or None,
        action=action if action in ACTIONS else None,
        policy_version=params.get("policy_version") or None,
        text=(params.get("q") or "").strip()[:200] or None,
        flagged=params.get("flagged") == "1",
        before=before,
        limit=50,
    )
    store = _store(request)
    await gateway_of(request).sink.flush()
    searched_from = None
    if query.text is not None:
        # A substring search reads every event it covers: bound it to the newest ones.
        searched_from = await asyncio.to_thread(explore.text_search_start, store, query)
        if searched_from is not None:
            query = replace(query, since=searched_from)
    rows = await asyncio.to_thread(explore.search_events, store, query)
    versions = await asyncio.to_thread(explore.policy_versions_seen, store, scope, since=since)
    older = None
    if len(rows) == query.limit:
        last = rows[-1]
        kept = [(k, v) for k, v in params.multi_items() if k != "before"]
        kept.append(("before", f"{last.time.isoformat()}|{last.id}"))
        older = f"/events?{urlencode(kept)}"
    guard_names = sorted({g for r in rows for g in r.flagged})
    return _render(
        request,
        "events.html",
        viewer,
        title="Events",
        section="Events",
        tenant=scope,
        tenants=await _tenants(request, viewer),
        range=name,
        f=query,
        rows=rows,
        versions=versions,
        guard_names=guard_names,
        older=older,
        searched_from=searched_from,
        scan_limit=explore.TEXT_SCAN_LIMIT,
    )


def highlight(text: str, spans: Iterable[Span | tuple[int, int, str]]) -> list[tuple[str, str]]:
    """``text`` cut into (piece, label) parts, label "" outside every span; overlapping
    spans merge (their labels joined)."""
    cuts: list[tuple[int, int, str]] = []
    for span in spans:
        start, end, label = (span.start, span.end, span.label) if isinstance(span, Span) else span
        start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
        if end > start:
            cuts.append((start, end, label))
    cuts.sort()
    merged: list[list[Any]] = []
    for start, end, label in cuts:
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            if label not in merged[-1][2]:
                merged[-1][2].append(label)
        else:
            merged.append([start, end, [label]])
    parts: list[tuple[str, str]] = []
    pos = 0
    for start, end, labels in merged:
        if start > pos:
            parts.append((text[pos:start], ""))
        parts.append((text[start:end], ", ".join(labels)))
        pos = end
    if pos < len(text) or not parts:
        parts.append((text[pos:], ""))
    return parts


def _flagged_spans(verdicts: Iterable[Verdict], stage: str) -> list[Span]:
    return [s for v in verdicts if v.flagged and v.stage == stage for s in v.spans]


@router.get("/events/{event_id}")
async def event_page(request: Request, event_id: str) -> HTMLResponse:
    viewer = await viewer_of(request)
    store = _store(request)
    await gateway_of(request).sink.flush()
    event: Event | None = await asyncio.to_thread(
        explore.event_by_id, store, event_id, tenant=viewer.tenant
    )
    if event is None or not _owns(viewer, event.tenant):
        raise PageError(404, f"there is no event {event_id!r} for you to see")
    output_spans = _flagged_spans(event.verdicts, "output")
    output_note = ""
    if output_spans and event.output != "" and event.action in ("allow", "escalate"):
        output_parts = highlight(event.output, output_spans)
    else:
        output_parts = [(event.output, "")]
        if output_spans:
            output_note = (
                "The flagged output spans are in the model's draft, which the answer above "
                "replaced (" + ", ".join(sorted({s.label for s in output_spans})) + ")."
            )
    feedback = await asyncio.to_thread(explore.feedback_for, store, event.id)
    latency = event.latency
    chart = _hbars(
        "latency of this turn",
        [
            ("input guards", latency.input_guards_ms, f"{latency.input_guards_ms:,.1f} ms", "bar"),
            ("model", latency.model_ms, f"{latency.model_ms:,.1f} ms", "bar"),
            (
                "output guards",
                latency.output_guards_ms,
                f"{latency.output_guards_ms:,.1f} ms",
                "bar",
            ),
            ("total", latency.total_ms, f"{latency.total_ms:,.1f} ms", "bar2"),
        ],
    )
    return _render(
        request,
        "event.html",
        viewer,
        title=f"Turn {event.id}",
        section="Events",
        tenant=event.tenant if viewer.role == "admin" else viewer.tenant,
        e=event,
        input_parts=highlight(event.input, _flagged_spans(event.verdicts, "input")),
        output_parts=output_parts,
        output_note=output_note,
        feedback=feedback,
        latency=chart,
        can_label=event.tenant is not None,
    )


# -- review queue ------------------------------------------------------------------------------


@router.get("/review")
async def review_page(
    request: Request, tenant: str | None = None, status: str = "pending"
) -> HTMLResponse:
    viewer = await viewer_of(request)
    scope = scope_of(viewer, tenant)
    store = _store(request)
    wanted = _QUEUE_STATUSES.get(status, "pending")
    names = [scope] if scope is not None else await _tenants(request, viewer)
    items: list[Any] = []
    for name in names:
        items += await asyncio.to_thread(store.review_queue, name, status=wanted, limit=200)
    items.sort(key=lambda i: i.created_at, reverse=True)
    items = items[:200]
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return _render(
        request,
        "review.html",
        viewer,
        title="Review queue",
        section="Review",
        tenant=scope,
        tenants=await _tenants(request, viewer),
        items=items,
        status=wanted,
        back=back,
    )


@router.post("/review/{event_id}")
async def label_turn(request: Request, event_id: str) -> Response:
    viewer = await viewer_of(request)
    fields = await _form(request, viewer)
    store = _store(request)
    label = _LABELS.get(fields.get("label", ""))
    if label is None:
        raise PageError(400, f"a label is one of: {', '.join(_LABELS)}")
    event = await asyncio.to_thread(explore.event_by_id, store, event_id, tenant=viewer.tenant)
    if event is None or event.tenant is None or not _owns(viewer, event.tenant):
        raise PageError(404, f"there is no event {event_id!r} for you to see")
    await asyncio.to_thread(
        store.label_review,
        event.tenant,
        event.id,
        label=label,
        reviewer=viewer.label,
        note=fields.get("note") or None,
    )
    back = _safe_next(fields.get("back"))
    joiner = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{joiner}done={quote(f'labelled {label}')}", status_code=303)


# -- approvals ---------------------------------------------------------------------------------


_STATUSES = ("pending", "approved", "denied", "expired", "all")


@router.get("/approvals")
async def approvals_page(
    request: Request, tenant: str | None = None, status: str = "pending"
) -> HTMLResponse:
    viewer = await viewer_of(request)
    scope = scope_of(viewer, tenant)
    status = status if status in _STATUSES else "pending"
    wanted: ApprovalStatus | None = None if status == "all" else status  # type: ignore[assignment]
    store = approval_store(request)
    if scope is None:
        found = await asyncio.to_thread(store.find_all, status=wanted, limit=200)
    else:
        found = await store.find(tenant=scope, status=wanted, limit=200)
    return _render(
        request,
        "approvals.html",
        viewer,
        title="Approvals",
        section="Approvals",
        tenant=scope,
        tenants=await _tenants(request, viewer),
        approvals=found,
        status=status,
        statuses=_STATUSES,
    )


async def _approval(request: Request, viewer: SessionData, approval_id: str) -> Approval:
    found = await asyncio.to_thread(approval_store(request).lookup, approval_id)
    if found is None or not _owns(viewer, found.tenant):
        raise PageError(404, f"there is no approval {approval_id!r} for you to see")
    return found


@router.get("/approvals/{approval_id}")
async def approval_page(request: Request, approval_id: str) -> HTMLResponse:
    viewer = await viewer_of(request)
    approval = await _approval(request, viewer, approval_id)
    await gateway_of(request).sink.flush()
    turns = await asyncio.to_thread(
        explore.related_events, _store(request), approval.id, tenant=approval.tenant
    )
    return _render(
        request,
        "approval.html",
        viewer,
        title=f"Approval {approval.id}",
        section="Approvals",
        tenant=approval.tenant if viewer.role == "admin" else viewer.tenant,
        a=approval,
        turns=turns,
    )


@router.post("/approvals/{approval_id}/decide")
async def decide_page(request: Request, approval_id: str) -> Response:
    viewer = await viewer_of(request)
    fields = await _form(request, viewer)
    approval = await _approval(request, viewer, approval_id)
    decision = fields.get("decision")
    if decision not in ("approve", "deny"):
        raise PageError(400, "say approve or deny")
    arguments: dict[str, Any] | None = None
    edited = fields.get("arguments", "").strip()
    if decision == "approve" and edited:
        try:
            parsed = json.loads(edited)
        except ValueError as exc:
            raise PageError(400, f"the arguments are not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise PageError(400, "the arguments must be a JSON object")
        if parsed != approval.arguments:
            arguments = parsed
    who = Caller(approval.tenant if viewer.role == "tenant" else None, viewer.label)
    try:
        await decide_approval(
            approval_store(request),
            approval.id,
            who,
            approve=decision == "approve",
            approver=viewer.label,
            note=fields.get("note", "")[:2000],
            arguments=arguments,
        )
    except ApiError as exc:
        raise PageError(exc.status, exc.message) from None
    done = "approved" + (" with changed arguments" if arguments else "")
    if decision == "deny":
        done = "denied"
    return RedirectResponse(f"/approvals/{quote(approval.id)}?done={quote(done)}", status_code=303)


# -- evaluations -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Run:
    name: str
    path: Path
    info: RunInfo
    pass_rate: float | None


def _runs(runs_dir: Path) -> list[_Run]:
    """The run folders (with a run.json) in ``runs_dir``, newest first."""
    found = []
    if not runs_dir.is_dir():
        return []
    for path in runs_dir.iterdir():
        run_file = path / "run.json"
        if not _RUN_NAME.match(path.name) or not run_file.is_file():
            continue
        try:
            info = RunInfo.model_validate_json(run_file.read_text(encoding="utf-8"))
        except (ValidationError, ValueError, OSError):
            continue
        found.append(_Run(path.name, path, info, _pass_rate(path / "report.json")))
    found.sort(key=lambda r: (r.info.finished or r.info.started, r.name), reverse=True)
    return found


def _pass_rate(report: Path) -> float | None:
    """The pass rate from report.json (read only up to its metrics, which come first)."""
    if not report.is_file():
        return None
    try:
        with report.open(encoding="utf-8") as fh:
            head = fh.read(65536)
    except OSError:
        return None
    match = re.search(r'"name":\s*"pass_rate",\s*"k":\s*(\d+),\s*"n":\s*(\d+)', head)
    if match is None or int(match[2]) == 0:
        return None
    return int(match[1]) / int(match[2])


def _visible_runs(request: Request, viewer: SessionData) -> list[_Run]:
    runs = _runs(_dashboard(request).runs_dir)
    return [r for r in runs if _owns(viewer, r.info.tenant)]


def _run(request: Request, viewer: SessionData, name: str) -> _Run:
    for run in _visible_runs(request, viewer):
        if run.name == name:
            return run
    raise PageError(404, f"there is no evaluation run {name!r} for you to see")


def _report_response(html: str) -> HTMLResponse:
    # The report is self-contained and carries its own policy; the header says the same,
    # and that no other site may frame it.
    return HTMLResponse(
        html,
        headers=_headers({"Content-Security-Policy": f"{REPORT_CSP}; frame-ancestors 'none'"}),
    )


@router.get("/evals")
async def evals_page(request: Request) -> HTMLResponse:
    viewer = await viewer_of(request)
    runs = await asyncio.to_thread(_visible_runs, request, viewer)
    return _render(
        request,
        "evals.html",
        viewer,
        title="Evaluations",
        section="Evaluations",
        tenant=viewer.tenant,
        tenants=await _tenants(request, viewer),
        runs=runs,
        runs_dir=str(_dashboard(request).runs_dir),
    )


def _load(run: _Run) -> RunReport:
    try:
        return load_run(
            run.path / "report.json" if (run.path / "report.json").is_file() else run.path
        )
    except (ConfigError, TetherError) as exc:
        raise PageError(422, f"cannot read run {run.name}: {exc}") from None


@router.get("/evals/compare")
async def compare_page(request: Request, a: str, b: str) -> HTMLResponse:
    viewer = await viewer_of(request)
    run_a, run_b = _run(request, viewer, a), _run(request, viewer, b)
    report_a, report_b = await asyncio.gather(
        asyncio.to_thread(_load, run_a), asyncio.to_thread(_load, run_b)
    )
    return _report_response(render_compare_html(compare_reports(report_a, report_b)))


@router.get("/evals/{name}/report")
async def report_page(request: Request, name: str) -> HTMLResponse:
    viewer = await viewer_of(request)
    run = _run(request, viewer, name)
    page = run.path / "report.html"
    if page.is_file():
        return _report_response(await asyncio.to_thread(page.read_text, encoding="utf-8"))
    report = await asyncio.to_thread(_load, run)
    return _report_response(render_report_html(report))


# -- alerts and drift --------------------------------------------------------------------------


@router.get("/alerts")
async def alerts_page(
    request: Request, tenant: str | None = None, status: str = "firing"
) -> HTMLResponse:
    viewer = await viewer_of(request)
    scope = scope_of(viewer, tenant)
    status = status if status in ("firing", "resolved", "all") else "firing"
    alerts = await _alerts(_store(request), scope, None if status == "all" else status)
    return _render(
        request,
        "alerts.html",
        viewer,
        title="Alerts",
        section="Alerts",
        tenant=scope,
        tenants=await _tenants(request, viewer),
        alerts=alerts,
        status=status,
    )


@router.post("/alerts/{alert_id}/ack")
async def acknowledge(request: Request, alert_id: int) -> Response:
    viewer = await viewer_of(request)
    fields = await _form(request, viewer)
    tenant = viewer.tenant if viewer.role == "tenant" else fields.get("tenant", "")
    done = await asyncio.to_thread(
        _store(request).acknowledge_alert, tenant, alert_id, by=viewer.label
    )
    if done is None:
        raise PageError(404, f"there is no alert {alert_id} for you to see")
    return RedirectResponse(f"/alerts?done={quote('acknowledged')}", status_code=303)


@router.get("/drift")
async def drift_page(request: Request, tenant: str | None = None) -> HTMLResponse:
    viewer = await viewer_of(request)
    scope = scope_of(viewer, tenant)
    found = await asyncio.to_thread(_store(request).list_drift_reports, scope, limit=20)
    reports: list[dict[str, Any]] = []
    for r in found:
        topics = list(r.topics)[:8]
        chart = _hbars(
            "topics that grew",
            [
                (
                    str(t.get("topic", "?")),
                    float(t.get("live_share", 0.0)),
                    f"{float(t.get('live_share', 0.0)):.1%} "
                    f"(was {float(t.get('reference_share', 0.0)):.1%})",
                    "bar",
                )
                for t in topics
            ],
        )
        reports.append({**{k: getattr(r, k) for k in _DRIFT_FIELDS}, "chart": chart})
    return _render(
        request,
        "drift.html",
        viewer,
        title="Drift",
        section="Drift",
        tenant=scope,
        tenants=await _tenants(request, viewer),
        reports=reports,
    )


_DRIFT_FIELDS = (
    "tenant",
    "stream",
    "reference",
    "since",
    "until",
    "n_reference",
    "n_live",
    "statistic",
    "p_value",
    "alpha",
    "drifted",
    "created_at",
)


# -- wiring ------------------------------------------------------------------------------------


def install_dashboard(app: FastAPI, settings: DashboardConfig) -> None:
    """Mount the dashboard on the gateway app."""
    signer = Signer(secret_env=settings.secret_env, ttl_s=settings.session_ttl_s)
    env = Environment(
        loader=FileSystemLoader(ASSETS / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    app.state.dashboard = Dashboard(env, signer, settings.resolved_runs_dir())

    async def page_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, LoginRequired):
            return RedirectResponse(f"/login?{urlencode({'next': exc.next_url})}", status_code=303)
        assert isinstance(exc, PageError)
        viewer = _dashboard(request).signer.read(request.cookies.get(SESSION_COOKIE))
        return _render(
            request,
            "error.html",
            viewer,
            http_status=exc.status,
            status=exc.status,
            title=str(exc.status),
            message=exc.message,
        )

    app.add_exception_handler(PageError, page_error)
    app.add_exception_handler(LoginRequired, page_error)
    app.include_router(router)
