"""HTML reports of a run and of a comparison of two runs: one self-contained page each.

Everything is inline (CSS, SVG charts, a few lines of script for filtering and sorting) and the
page's Content-Security-Policy forbids loading anything else, so a report opens the same on an
air-gapped machine, attached to a ticket or printed. The page reads fully without script; the
policy lets only our own script run (by its hash), so even text that slipped past escaping
could not execute.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import get_args

from ._types import (
    Behavior,
    CaseChange,
    CaseResult,
    Comparison,
    Expect,
    Metric,
    MetricDelta,
    RunInfo,
    RunReport,
)

__all__ = ["MAX_CASES_SHOWN", "render_compare_html", "render_report_html"]

MAX_CASES_SHOWN = 500
"""Cases listed per list (failing, regressed, improved); the rest are counted, not shown."""

# Per input or output shown: 500 cases of long answers still make a page of a few MB.
_MAX_TEXT = 4000

_CSS = """
:root{--fg:#1f2328;--muted:#59636e;--bg:#fff;--panel:#f6f8fa;--line:#d1d9e0;--track:#e8ecf0;
--accent:#2563eb;--b:#c2410c;--pass:#1a7f37;--pass-bg:#dafbe1;--fail:#cf222e;--fail-bg:#ffebe9;
--warn-bg:#fff8c5}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;
--panel:#151b23;--line:#3d444d;--track:#262c36;--accent:#4493f8;--b:#f0883e;--pass:#3fb950;
--pass-bg:#12261e;--fail:#f85149;--fail-bg:#2d1517;--warn-bg:#2e2a16}}
*,*::before,*::after{box-sizing:border-box}
[hidden]{display:none!important}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;font-variant-numeric:tabular-nums}
.wrap{max-width:1200px;margin:0 auto;padding:28px clamp(12px,3vw,32px) 48px}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace}
.kicker{margin:0;color:var(--muted);font-size:12px;letter-spacing:.08em;text-transform:uppercase}
h1{margin:2px 0;font-size:28px;line-height:1.25;overflow-wrap:anywhere}
h2{font-size:19px;margin:36px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
.sub{margin:0 0 8px;color:var(--muted)}
.intro{margin:0 0 10px;color:var(--muted);font-size:13px}
nav{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:13px;padding:8px 0;
border-bottom:1px solid var(--line)}
nav a{color:var(--accent);text-decoration:none}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(130px,1fr));gap:10px;margin:16px 0}
.tile{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:8px 12px}
.tile b{display:block;font-size:22px;line-height:1.3}
.tile span{color:var(--muted);font-size:11px;text-transform:uppercase;letter-spacing:.06em}
.tile.good b,.good{color:var(--pass)}
.tile.bad b,.bad{color:var(--fail)}
dl.info{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:6px 20px;
margin:0 0 16px}
dl.info dt{color:var(--muted);font-size:11px;text-transform:uppercase;letter-spacing:.06em}
dl.info dd{margin:0;overflow-wrap:anywhere}
@media (max-width:560px){dl.info{grid-template-columns:1fr 1fr}}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:middle}
th{font-size:11px;color:var(--muted);font-weight:600;text-transform:uppercase;
letter-spacing:.05em;white-space:nowrap}
.num{text-align:right;white-space:nowrap}
table.compact{width:auto}
table.compact td,table.compact th{padding-right:22px}
.ci{display:block;font-size:12px;color:var(--muted)}
.desc{display:block;font-size:12px;color:var(--muted);max-width:32em}
.dir{display:block;font-size:12px;color:var(--muted);white-space:nowrap}
table.sortable th{cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}
svg.chart{display:block}
.track{fill:var(--track)}
.bar{fill:var(--accent)}
.bar.b{fill:var(--b)}
.empty{fill:none;stroke:var(--line);stroke-dasharray:3 3}
.whisker{stroke:var(--fg);stroke-width:1.5;fill:none}
.grid{stroke:var(--bg);stroke-width:1}
.axis text,.lbl{fill:var(--muted);font-size:11px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin:0 4px 0 10px;
background:var(--accent)}
.legend i.b{background:var(--b)}
.heat td.cell{text-align:center;min-width:70px}
.heat td.hot{color:#fff}
.heat td.zero{color:var(--line)}
tr.regressed td{background:var(--fail-bg)}
td.differs{background:var(--warn-bg)}
.badge{display:inline-block;padding:0 8px;border-radius:999px;font-size:12px;font-weight:600;
line-height:1.6;background:var(--fail-bg);color:var(--fail)}
.badge.good{background:var(--pass-bg);color:var(--pass)}
.chip{display:inline-block;padding:0 6px;border-radius:4px;border:1px solid var(--line);
font-size:12px;color:var(--muted)}
.verdict{padding:10px 14px;border-radius:8px;font-weight:600;margin:12px 0}
.verdict.bad{background:var(--fail-bg);color:var(--fail)}
.verdict.good{background:var(--pass-bg);color:var(--pass)}
.filterbar{display:flex;gap:12px;align-items:center;margin:8px 0}
.filterbar input{flex:1;max-width:440px;padding:6px 10px;font:inherit;color:var(--fg);
background:var(--bg);border:1px solid var(--line);border-radius:6px}
.note{background:var(--warn-bg);padding:6px 10px;border-radius:6px;font-size:13px}
ol.cases{list-style:none;padding:0;margin:12px 0;display:grid;gap:12px}
.case{border:1px solid var(--line);border-left:4px solid var(--fail);border-radius:8px;
padding:10px 14px;min-width:0}
.case.improved{border-left-color:var(--pass)}
.case-head{display:flex;flex-wrap:wrap;gap:4px 10px;align-items:baseline}
.case-head code{font-weight:700;overflow-wrap:anywhere}
.io{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:10px;margin-top:8px}
.io>div{min-width:0}
.label{font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);
margin:8px 0 2px}
pre{margin:0;padding:8px 10px;background:var(--panel);border:1px solid var(--line);
border-radius:6px;white-space:pre-wrap;overflow-wrap:anywhere;max-height:16em;overflow:auto;
font-size:12.5px;line-height:1.45}
pre.error{background:var(--fail-bg);color:var(--fail);border-color:transparent}
ul.checks{margin:4px 0 0;padding-left:20px;font-size:14px}
table.flags{width:auto;font-size:13px}
table.flags td,table.flags th{padding:2px 10px 2px 0}
details summary{cursor:pointer}
.ids{font-size:13px;overflow-wrap:anywhere}
footer{margin-top:40px;color:var(--muted);font-size:12px}
@media print{
:root{--fg:#000;--muted:#444;--bg:#fff;--panel:#f6f6f6;--line:#ccc}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
nav,.filterbar{display:none}
.wrap{max-width:none;padding:0}
pre{max-height:none;overflow:visible}
.case,tr,.tile{break-inside:avoid}
h2{break-after:avoid}
}
"""

_JS = """
"use strict";
document.querySelectorAll(".filterbar").forEach((bar) => {
  const box = bar.querySelector("input");
  const count = bar.querySelector("output");
  const items = Array.from(document.getElementById(box.dataset.list).children);
  const texts = items.map((item) => item.textContent.toLowerCase());
  bar.hidden = false;
  box.addEventListener("input", () => {
    const query = box.value.trim().toLowerCase();
    let shown = 0;
    items.forEach((item, i) => {
      item.hidden = query !== "" && !texts[i].includes(query);
      if (!item.hidden) shown += 1;
    });
    count.textContent = query ? `${shown} of ${items.length} shown` : "";
  });
});
document.querySelectorAll("table.sortable th").forEach((th) => {
  th.tabIndex = 0;
  const sort = () => {
    const body = th.closest("table").tBodies[0];
    const descending = th.getAttribute("aria-sort") !== "descending";
    th.parentElement.querySelectorAll("th").forEach((o) => o.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    const key = (row) => {
      const cell = row.cells[th.cellIndex];
      return cell.dataset.v !== undefined ? Number(cell.dataset.v) : cell.textContent.trim();
    };
    const rows = Array.from(body.rows);
    rows.sort((x, y) => {
      const a = key(x), b = key(y);
      const order = typeof a === "number" ? a - b : String(a).localeCompare(String(b));
      return descending ? -order : order;
    });
    rows.forEach((row) => body.appendChild(row));
  };
  th.addEventListener("click", sort);
  th.addEventListener("keydown", (event) => { if (event.key === "Enter") sort(); });
});
"""

# The policy admits exactly this script, by hash: injected markup could not run any other.
_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{base64.b64encode(hashlib.sha256(_JS.encode()).digest()).decode()}'"
)
# Lone surrogates (from JSON escapes such as "\\ud83d") cannot be written as UTF-8.
_SURROGATES = re.compile("[\ud800-\udfff]")

# Chart geometry, shared by the bars and the axis above them so that they line up.
_W = 340
_X0, _X1 = 26.0, 318.0
_ROW = 16
_TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)
_ARROWS = {"higher": "↑", "lower": "↓"}


def render_report_html(report: RunReport) -> str:
    """The run as one self-contained HTML page (write it as UTF-8).

    Run info, the metrics with their Wilson 95% intervals, per-tag, per-tenant and per-guard
    figures, latency, the confusion of expected and actual behavior, and the failing cases
    (the first :data:`MAX_CASES_SHOWN`) with what failed and why."""
    info = report.info
    results = report.results
    failing = [r for r in results if not r.passed]
    passed = len(results) - len(failing)
    share = f" ({_pct(passed / len(results))})" if results else ""
    tiles = _tiles(
        [
            ("Cases", f"{info.cases or len(results):,}", ""),
            ("Passed", f"{passed:,}{share}", "good" if results and not failing else ""),
            ("Failed", f"{len(failing):,}", "bad" if failing else "good"),
            ("Errors", f"{report.errors:,}", "bad" if report.errors else "good"),
            ("Latency p50", _ms(report.latency_p50_ms), ""),
            ("Latency p95", _ms(report.latency_p95_ms), ""),
        ]
    )
    header = _header(
        "tether evaluation report",
        info.suite,
        f"policy {info.policy} {info.policy_version} · model {info.model} · {info.stack} stack",
        tiles + _info_list(info),
    )
    sections = [
        ("metrics", "Metrics", _metric_table(report.metrics), "", "No metrics."),
        (
            "guards",
            "Guards",
            _breakdown_table(_by_guard(report.guards), "Guard"),
            "Detection on cases that should be stopped; false positives on those that should not.",
            "No guard figures: guards run only on the full stack.",
        ),
        (
            "confusion",
            "Expected vs actual behavior",
            _confusion_table(report.confusion),
            "Rows: what the case expects. Columns: what happened. Shading: share of the row.",
            "No case has an expectation.",
        ),
        ("by-tag", "By tag", _breakdown_table(report.by_tag, "Tag"), "", "No tags."),
        ("by-tenant", "By tenant", _breakdown_table(report.by_tenant, "Tenant"), "", "No tenants."),
    ]
    cards = [_failure_card(r) for r in failing[:MAX_CASES_SHOWN]]
    body = [header, _nav([*((s[0], s[1]) for s in sections), ("failing", "Failing cases")])]
    body += [
        _section(anchor, title, content, intro, empty)
        for anchor, title, content, intro, empty in sections
    ]
    body.append(
        _section(
            "failing",
            f"Failing cases ({len(failing):,})",
            _case_list("failing-list", "failing cases", cards, len(failing)),
            "Cases that missed their expectation, failed a check or raised an error.",
            f"All {len(results):,} cases passed.",
        )
    )
    return _page(f"{info.suite} · tether eval", "".join(body), info.tether_version)


def render_compare_html(cmp: Comparison) -> str:
    """A comparison of two runs (A, the baseline, and B) as one self-contained HTML page.

    Both runs' settings side by side, each metric in A and B with intervals, the difference,
    the paired McNemar p-value and whether it regressed, then the cases that regressed or
    improved (the first :data:`MAX_CASES_SHOWN` of each) and the cases only one run has."""
    regressed = [d for d in cmp.deltas if d.regressed]
    if cmp.regression:
        names = ", ".join(d.name for d in regressed) or "see the metrics"
        verdict = f'<p class="verdict bad">Regression at α = {cmp.alpha:g}: {_e(names)}</p>'
    else:
        verdict = (
            f'<p class="verdict good">No metric is significantly worse in B '
            f"(α = {cmp.alpha:g}).</p>"
        )
    tiles = _tiles(
        [
            ("Paired cases", f"{cmp.paired:,}", ""),
            ("Metrics regressed", f"{len(regressed):,}", "bad" if regressed else "good"),
            (
                "Cases regressed",
                f"{len(cmp.regressed_cases):,}",
                "bad" if cmp.regressed_cases else "",
            ),
            (
                "Cases improved",
                f"{len(cmp.improved_cases):,}",
                "good" if cmp.improved_cases else "",
            ),
            ("Only in A", f"{len(cmp.only_in_a):,}", ""),
            ("Only in B", f"{len(cmp.only_in_b):,}", ""),
        ]
    )
    suites = cmp.a.suite if cmp.a.suite == cmp.b.suite else f"{cmp.a.suite} vs {cmp.b.suite}"
    header = _header(
        "tether evaluation comparison",
        f"{suites}: A vs B",
        f"A {cmp.a.run_id} · B {cmp.b.run_id}",
        verdict + tiles,
    )
    regressed_cards = [
        _change_card(c, improved=False) for c in cmp.regressed_cases[:MAX_CASES_SHOWN]
    ]
    improved_cards = [_change_card(c, improved=True) for c in cmp.improved_cases[:MAX_CASES_SHOWN]]
    body = [
        header,
        _nav(
            [
                ("runs", "Runs"),
                ("metrics", "Metrics"),
                ("regressed", "Regressed cases"),
                ("improved", "Improved cases"),
                ("unpaired", "Unpaired cases"),
            ]
        ),
        _section("runs", "Runs", _runs_table(cmp.a, cmp.b), "Settings that differ are shaded."),
        _section(
            "metrics",
            "Metrics",
            _delta_table(cmp.deltas),
            "Δ is B − A in percentage points. p: exact McNemar test on the cases both runs "
            "scored; discordant: cases that pass in A only / in B only.",
            "No metrics to compare.",
        ),
        _section(
            "regressed",
            f"Regressed cases ({len(cmp.regressed_cases):,})",
            _case_list(
                "regressed-list", "regressed cases", regressed_cards, len(cmp.regressed_cases)
            ),
            "Passed in A, fail in B.",
            "No case that passed in A fails in B.",
        ),
        _section(
            "improved",
            f"Improved cases ({len(cmp.improved_cases):,})",
            _case_list("improved-list", "improved cases", improved_cards, len(cmp.improved_cases)),
            "Failed in A, pass in B.",
            "No case that failed in A passes in B.",
        ),
        _section(
            "unpaired",
            "Unpaired cases",
            _id_list("only in A", cmp.only_in_a) + _id_list("only in B", cmp.only_in_b),
            "Cases one run has and the other does not; they count in neither paired test.",
        ),
    ]
    return _page(f"{suites} · A vs B · tether eval", "".join(body), cmp.b.tether_version)


# Page structure


def _page(title: str, body: str, version: str) -> str:
    page = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="generator" content="tether">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f'<div class="wrap">\n{body}\n<footer>Made by tether {_e(version)}. Intervals are '
        "Wilson 95% score intervals; n = 0 shows as —.</footer>\n</div>\n"
        f"<script>{_JS}</script>\n</body>\n</html>\n"
    )
    return _SURROGATES.sub("\ufffd", page)


def _header(kicker: str, title: str, subtitle: str, extra: str) -> str:
    return (
        f'<header><p class="kicker">{_e(kicker)}</p><h1>{_e(title)}</h1>'
        f'<p class="sub">{_e(subtitle)}</p>{extra}</header>\n'
    )


def _nav(links: Iterable[tuple[str, str]]) -> str:
    return "<nav>" + "".join(f'<a href="#{a}">{_e(t)}</a>' for a, t in links) + "</nav>\n"


def _section(anchor: str, title: str, content: str, intro: str = "", empty: str = "") -> str:
    intro_html = f'<p class="intro">{_e(intro)}</p>' if intro and content else ""
    body = content or f'<p class="intro">{_e(empty)}</p>'
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{intro_html}{body}</section>\n'


def _tiles(tiles: Iterable[tuple[str, str, str]]) -> str:
    cells = "".join(
        f'<div class="tile {tone}"><span>{_e(label)}</span><b>{_e(value)}</b></div>'
        for label, value, tone in tiles
    )
    return f'<div class="tiles">{cells}</div>'


def _info_rows(info: RunInfo) -> list[tuple[str, str]]:
    return [
        ("Suite", info.suite),
        ("Suite sha", info.suite_sha[:12] or "—"),
        ("Policy", f"{info.policy} {info.policy_version}"),
        ("Tenant", info.tenant or "— (none)"),
        ("Model", info.model),
        ("Stack", info.stack),
        ("Seed", "—" if info.seed is None else str(info.seed)),
        ("Temperature", f"{info.temperature:g}"),
        ("Max tokens", f"{info.max_tokens:,}"),
        ("tether", info.tether_version),
        ("Started", info.started or "—"),
        ("Finished", info.finished or "—"),
        ("Cases", f"{info.cases:,}"),
        ("Run id", info.run_id),
    ]


def _info_list(info: RunInfo) -> str:
    items = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in _info_rows(info))
    return f'<dl class="info">{items}</dl>'


def _runs_table(a: RunInfo, b: RunInfo) -> str:
    rows = []
    for (label, va), (_, vb) in zip(_info_rows(a), _info_rows(b), strict=True):
        tone = ' class="differs"' if va != vb else ""
        rows.append(f"<tr><th>{_e(label)}</th><td{tone}>{_e(va)}</td><td{tone}>{_e(vb)}</td></tr>")
    head = "<thead><tr><th></th><th>A (baseline)</th><th>B</th></tr></thead>"
    return f'<div class="scroll"><table>{head}<tbody>{"".join(rows)}</tbody></table></div>'


# Metrics and charts


def _metric_table(metrics: Sequence[Metric]) -> str:
    if not metrics:
        return ""
    rows = "".join(
        f"<tr><td>{_metric_name(m)}</td>{_metric_cell(m)}<td>{_bars_svg([('', m, '')])}</td></tr>"
        for m in metrics
    )
    head = (
        '<thead><tr><th>Metric</th><th class="num">Value · 95% CI · k/n</th>'
        f"<th>{_axis_svg()}</th></tr></thead>"
    )
    return f'<div class="scroll"><table>{head}<tbody>{rows}</tbody></table></div>'


def _delta_table(deltas: Sequence[MetricDelta]) -> str:
    if not deltas:
        return ""
    rows = []
    for d in deltas:
        tone = ' class="regressed"' if d.regressed else ""
        flag = ' <span class="badge">regressed</span>' if d.regressed else ""
        pairs = f"{d.discordant[0]:,} / {d.discordant[1]:,}"
        rows.append(
            f"<tr{tone}><td>{_metric_name(d.b, flag)}</td>{_metric_cell(d.a)}{_metric_cell(d.b)}"
            f'{_delta_cell(d)}<td class="num">{_p(d.p_value)}</td><td class="num">{pairs}</td>'
            f"<td>{_bars_svg([('A', d.a, ''), ('B', d.b, 'b')])}</td></tr>"
        )
    head = (
        '<thead><tr><th>Metric</th><th class="num">A</th><th class="num">B</th>'
        '<th class="num">Δ</th><th class="num">p</th><th class="num">Discordant</th>'
        f'<th><span class="legend"><i></i>A<i class="b"></i>B</span>{_axis_svg()}</th>'
        "</tr></thead>"
    )
    return f'<div class="scroll"><table>{head}<tbody>{"".join(rows)}</tbody></table></div>'


def _breakdown_table(groups: Mapping[str, Sequence[Metric]], label: str) -> str:
    if not groups:
        return ""
    # Groups need not all carry the same metrics: columns are the union, in first-seen order.
    better = {m.name: m.better for metrics in groups.values() for m in metrics}
    head = f"<th>{_e(label)}</th>" + "".join(
        f'<th class="num" title="{way} is better">{_e(n)} {_ARROWS[way]}</th>'
        for n, way in better.items()
    )
    rows = []
    for group, metrics in groups.items():
        by_name = {m.name: m for m in metrics}
        cells = "".join(
            _metric_cell(by_name[n]) if n in by_name else '<td class="num" data-v="-1">—</td>'
            for n in better
        )
        rows.append(f"<tr><td>{_e(group)}</td>{cells}</tr>")
    return (
        f'<div class="scroll"><table class="sortable compact"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _by_guard(metrics: Iterable[Metric]) -> dict[str, list[Metric]]:
    """``pii.detection`` and ``pii.false_positive`` become one row, pii, with two columns."""
    groups: dict[str, list[Metric]] = {}
    for m in metrics:
        guard, _, kind = m.name.rpartition(".")
        groups.setdefault(guard or kind, []).append(m.model_copy(update={"name": kind}))
    return groups


def _confusion_table(confusion: Mapping[str, Mapping[str, int]]) -> str:
    if not confusion:
        return ""
    expected = _ordered(confusion, get_args(Expect))
    behaviors = _ordered({b for row in confusion.values() for b in row}, get_args(Behavior))
    rows = []
    for exp in expected:
        row = confusion[exp]
        total = sum(row.values())
        cells = []
        for behavior in behaviors:
            count = row.get(behavior, 0)
            if not count:
                cells.append('<td class="cell zero">0</td>')
                continue
            share = count / total
            hot = " hot" if share > 0.5 else ""
            cells.append(
                f'<td class="cell{hot}" style="background:{_heat(share)}"'
                f' title="{count:,} of {total:,} ({_pct(share)})">{count:,}</td>'
            )
        rows.append(f'<tr><th>{_e(exp)}</th>{"".join(cells)}<td class="num">{total:,}</td></tr>')
    head = "".join(f'<th class="num">{_e(b)}</th>' for b in behaviors)
    return (
        '<div class="scroll"><table class="heat compact"><thead><tr><th>expected ↓ · actual →</th>'
        f'{head}<th class="num">total</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    )


def _heat(share: float) -> str:
    # One fixed blue, light enough at low shares for dark text in either colour scheme.
    return f"rgba(37,99,235,{0.08 + 0.82 * share:.2f})"


def _ordered(keys: Iterable[str], known: tuple[str, ...]) -> list[str]:
    """The known values in their declared order, then any others alphabetically."""
    present = set(keys)
    return [k for k in known if k in present] + sorted(present - set(known))


def _metric_name(m: Metric, badge: str = "") -> str:
    """The name, a badge after it, then the description and which way is better."""
    desc = f'<span class="desc">{_e(m.description)}</span>' if m.description else ""
    better = f"{_ARROWS[m.better]} {m.better} is better"
    return f'<strong>{_e(m.name)}</strong>{badge}{desc}<span class="dir">{better}</span>'


def _metric_cell(m: Metric) -> str:
    """A table cell: the value, under it the interval and k/n; sorts by the value."""
    sort_key = -1.0 if m.value is None else m.value
    return (
        f'<td class="num" data-v="{sort_key:.6f}" title="{_e(_metric_text(m))}">'
        f'<strong>{_pct(m.value)}</strong><span class="ci">{_interval(m)} · {m.k:,}/{m.n:,}'
        "</span></td>"
    )


def _delta_cell(d: MetricDelta) -> str:
    if d.delta is None:
        return '<td class="num">—</td>'
    gain = d.delta if d.b.better == "higher" else -d.delta
    tone = "good" if gain > 0 else "bad" if gain < 0 else ""
    return f'<td class="num {tone}"><strong>{100 * d.delta:+.1f} pp</strong></td>'


def _bars_svg(bars: Sequence[tuple[str, Metric, str]]) -> str:
    """Horizontal bars on a 0–100% scale, one per (label, metric, css class), each with its
    interval as a whisker; a metric without a value (n = 0) gets an empty dashed track."""
    height = len(bars) * _ROW + 2
    label = _e("; ".join(_metric_text(m, name) for name, m, _ in bars))
    shapes, whiskers = [], []
    for i, (name, m, tone) in enumerate(bars):
        top = 1 + i * _ROW
        mid = top + _ROW / 2
        band = f'x="{_X0}" y="{top + 3}" height="{_ROW - 6}" rx="2"'
        if name:
            shapes.append(
                f'<text class="lbl" x="{_X0 - 8}" y="{mid + 4}" text-anchor="end">{_e(name)}</text>'
            )
        if m.value is None:
            shapes.append(f'<rect class="empty" {band} width="{_X1 - _X0}"/>')
            continue
        shapes.append(f'<rect class="track" {band} width="{_X1 - _X0}"/>')
        bar = f"bar {tone}".rstrip()
        shapes.append(f'<rect class="{bar}" {band} width="{_x(m.value) - _X0:.1f}"/>')
        if m.low is not None and m.high is not None:
            lo, hi = f"{_x(m.low):.1f}", f"{_x(m.high):.1f}"
            cap = f"{top + 2}V{top + _ROW - 2}"
            whiskers.append(f'<path class="whisker" d="M{lo} {mid}H{hi}M{lo} {cap}M{hi} {cap}"/>')
    # Gridlines cut across the bars, under the whiskers, so the quarters read at a glance.
    grid = "".join(f"M{_x(t):.1f} 0V{height}" for t in _TICKS[1:-1])
    return (
        f'<svg class="chart" width="{_W}" height="{height}" viewBox="0 0 {_W} {height}" '
        f'role="img" aria-label="{label}"><title>{label}</title>{"".join(shapes)}'
        f'<path class="grid" d="{grid}"/>{"".join(whiskers)}</svg>'
    )


def _axis_svg() -> str:
    labels = "".join(
        f'<text x="{_x(t):.1f}" y="12" text-anchor="middle">{100 * t:.0f}%</text>' for t in _TICKS
    )
    return (
        f'<svg class="chart axis" width="{_W}" height="16" viewBox="0 0 {_W} 16" '
        f'aria-hidden="true">{labels}</svg>'
    )


def _x(fraction: float) -> float:
    return _X0 + max(0.0, min(1.0, fraction)) * (_X1 - _X0)


# Cases


def _case_list(list_id: str, noun: str, cards: Sequence[str], total: int) -> str:
    """The cards in a filterable list; the filter box appears only when script runs."""
    if not total:
        return ""
    note = (
        f'<p class="note">Showing the first {len(cards):,} of {total:,} {_e(noun)}; '
        "the run's report.json has them all.</p>"
        if total > len(cards)
        else ""
    )
    return (
        f'<div class="filterbar" hidden><input type="search" data-list="{list_id}" '
        f'placeholder="Filter {_e(noun)} by id, tag, text or reason" '
        f'aria-label="Filter {_e(noun)}">'
        f'<output class="intro"></output></div>{note}'
        f'<ol class="cases" id="{list_id}">{"".join(cards)}</ol>'
    )


def _failure_card(r: CaseResult) -> str:
    status = '<span class="badge">error</span>' if r.error else '<span class="badge">failed</span>'
    if r.expect is None:
        outcome = f"behavior <strong>{_e(r.behavior)}</strong> (no expectation)"
    else:
        # Not judged (the case raised) reads as bad, like a miss.
        tone = "good" if r.expectation_met else "bad"
        outcome = (
            f"expected <strong>{_e(r.expect)}</strong> → "
            f'<strong class="{tone}">{_e(r.behavior)}</strong>'
        )
    extra = f" · action {_e(r.action)}" if r.action else ""
    head = (
        f'<div class="case-head"><code>{_e(r.case_id)}</code>{status}'
        f"{_chips(r.tags, r.tenant)}<span>{outcome}</span>"
        f'<span class="intro">{_ms(r.latency_ms)}{extra}</span></div>'
    )
    parts = [
        head,
        '<div class="io">',
        _text_block("Input", r.input),
        _text_block("Output", r.output),
        "</div>",
    ]
    if r.error:
        parts.append(f'<p class="label">Error</p><pre class="error">{_clip(r.error)}</pre>')
    failed = [(a.type, a.reason) for a in r.assertions if not a.passed]
    parts.append(_checks("Failed checks", failed))
    if r.flagged:
        rows = "".join(
            f"<tr><td><code>{_e(f.guard)}</code></td><td>{_e(f.stage)}</td>"
            f'<td class="num">{f.score:.2f}</td><td>{_e(f.action)}</td></tr>'
            for f in r.flagged
        )
        parts.append(
            '<p class="label">Flagged by</p><table class="flags"><thead><tr><th>Guard</th>'
            f'<th>Stage</th><th class="num">Score</th><th>Action</th></tr></thead><tbody>{rows}'
            "</tbody></table>"
        )
    return f'<li class="case">{"".join(parts)}</li>'


def _change_card(c: CaseChange, *, improved: bool) -> str:
    expect = f"expected <strong>{_e(c.expect)}</strong> · " if c.expect else ""
    head = (
        f'<div class="case-head"><code>{_e(c.case_id)}</code>{_chips(c.tags, None)}'
        f"<span>{expect}A {_outcome(c.a_behavior, c.a_passed)} → "
        f"B {_outcome(c.b_behavior, c.b_passed)}</span></div>"
    )
    return (
        f'<li class="{"case improved" if improved else "case"}">{head}'
        f'{_text_block("Input", c.input)}<div class="io">'
        f"{_text_block('A output', c.a_output)}{_text_block('B output', c.b_output)}</div>"
        f"{_checks('Failed checks in B', [(check, '') for check in c.b_failed_checks])}</li>"
    )


def _outcome(behavior: str, passed: bool) -> str:
    tone, mark = ("good", "pass") if passed else ("bad", "fail")
    return f'<strong class="{tone}">{_e(behavior)} ({mark})</strong>'


def _chips(tags: Iterable[str], tenant: str | None) -> str:
    chips = [f'<span class="chip">{_e(t)}</span>' for t in tags]
    if tenant:
        chips.append(f'<span class="chip">tenant {_e(tenant)}</span>')
    return "".join(chips)


def _text_block(label: str, text: str) -> str:
    body = _clip(text) if text else '<span class="intro">(empty)</span>'
    return f'<div><p class="label">{_e(label)}</p><pre>{body}</pre></div>'


def _checks(label: str, checks: Sequence[tuple[str, str]]) -> str:
    if not checks:
        return ""
    items = "".join(
        f"<li><code>{_e(kind)}</code>{': ' + _e(reason) if reason else ''}</li>"
        for kind, reason in checks
    )
    return f'<p class="label">{_e(label)}</p><ul class="checks">{items}</ul>'


def _id_list(label: str, ids: Sequence[str]) -> str:
    if not ids:
        return f'<p class="intro">No case {_e(label)}.</p>'
    shown = ", ".join(_e(i) for i in ids[:MAX_CASES_SHOWN])
    more = f" … and {len(ids) - MAX_CASES_SHOWN:,} more" if len(ids) > MAX_CASES_SHOWN else ""
    return (
        f"<details><summary>{_cases(len(ids))} {_e(label)}</summary>"
        f'<p class="ids"><code>{shown}</code>{more}</p></details>'
    )


# Text


def _e(text: str) -> str:
    return escape(text, quote=True)


def _clip(text: str) -> str:
    """Escaped, and cut to :data:`_MAX_TEXT` characters with a note of how much is left out."""
    if len(text) <= _MAX_TEXT:
        return _e(text)
    return _e(text[:_MAX_TEXT]) + f"<em> … {len(text) - _MAX_TEXT:,} more characters</em>"


def _cases(n: int) -> str:
    return f"{n:,} case" if n == 1 else f"{n:,} cases"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _interval(m: Metric) -> str:
    if m.low is None or m.high is None:
        return "—"
    return f"{100 * m.low:.1f}–{100 * m.high:.1f}%"


def _metric_text(m: Metric, label: str = "") -> str:
    prefix = f"{label}: " if label else ""
    return f"{prefix}{_pct(m.value)}, 95% CI {_interval(m)}, {m.k:,}/{m.n:,}"


def _p(p: float | None) -> str:
    if p is None:
        return "—"
    return "&lt;0.001" if p < 0.001 else f"{p:.3f}"


def _ms(ms: float | None) -> str:
    if ms is None:
        return "—"
    return f"{ms:,.0f} ms" if ms < 1000 else f"{ms / 1000:,.2f} s"
