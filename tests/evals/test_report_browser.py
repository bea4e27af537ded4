"""The HTML reports in a real headless Chromium: they render, the charts are there, injected
markup stays text, the page's own script runs under its Content-Security-Policy, and the
screenshot shows a page rather than a blank."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_report import IMG, SCRIPT, Tags, sample_comparison, sample_report

from tether.evals._report import render_compare_html, render_report_html

TIMEOUT_S = 60
WIDTH, HEIGHT = 1280, 2000


@dataclass(frozen=True)
class Rendered:
    dom: Tags
    png: bytes


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        message = "needs a headless Chromium on PATH: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests, but it {message}")
        pytest.skip(message)
    return binary


def render(chromium: str, page: str, folder: Path) -> Rendered:
    """The DOM after load (scripts run) and a screenshot, from one browser start."""
    path = folder / "page.html"
    path.write_text(page, encoding="utf-8")
    shot = folder / "page.png"
    command = [
        chromium,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        # A fresh profile: nothing from an earlier run (cache, settings) changes this one.
        f"--user-data-dir={folder / 'profile'}",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--screenshot={shot}",
        "--dump-dom",
        path.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return Rendered(Tags(done.stdout), shot.read_bytes())


@pytest.fixture(scope="module")
def report_page(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    return render(chromium, render_report_html(sample_report()), tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def compare_page(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    html = render_compare_html(sample_comparison())
    return render(chromium, html, tmp_path_factory.mktemp("compare"))


def png_size_and_distinct_bytes(png: bytes) -> tuple[int, int, int]:
    """Width, height, and how many distinct byte values the decompressed image data holds:
    a blank page has a handful (rows of one colour filter to zeros), text and charts all 256."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, data = 8, bytearray()
    width = height = 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        body = png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            data += body
        pos += 12 + length
    return width, height, len(set(zlib.decompress(data)))


def classes(dom: Tags, tag: str) -> list[str]:
    return [attrs.get("class") or "" for attrs in dom.named(tag)]


def assert_markup_is_ours(dom: Tags) -> None:
    # The injected <script> and <img> are text on the page, not elements.
    assert len(dom.named("script")) == 1
    assert not dom.named("img")
    assert SCRIPT in dom.text and IMG in dom.text
    # Our script ran (its hash is in the page's policy): it shows the filter boxes.
    bars = [attrs for attrs in dom.named("div") if "filterbar" in (attrs.get("class") or "")]
    assert bars and all("hidden" not in attrs for attrs in bars)


def test_report_renders_metrics_charts_and_failing_cases(report_page: Rendered) -> None:
    dom = report_page.dom
    for name in ("pass_rate", "harmful_refusal", "over_refusal", "escalation", "injection"):
        assert name in dom.text
    charts = classes(dom, "svg")
    assert charts.count("chart") == 5 and charts.count("chart axis") == 1
    assert classes(dom, "rect").count("bar") == 4
    assert classes(dom, "path").count("whisker") == 4
    failing = [attrs for attrs in dom.named("ol") if attrs.get("id") == "failing-list"]
    assert len(failing) == 1
    for case_id in ("jb-dan-01", "pii-echo", "timeout-1", "format-json"):
        assert case_id in dom.text
    assert classes(dom, "li").count("case") == 4
    assert_markup_is_ours(dom)


def test_compare_renders_both_runs_and_changed_cases(compare_page: Rendered) -> None:
    dom = compare_page.dom
    for text in ("run-aaaa", "run-bbbb", "harmful_refusal", "jb-dan-01", "balance-ok"):
        assert text in dom.text
    assert classes(dom, "rect").count("bar b") == 2
    assert classes(dom, "tr").count("regressed") == 1
    assert [c for c in classes(dom, "li") if c.startswith("case")] == ["case", "case improved"]
    assert_markup_is_ours(dom)


@pytest.mark.parametrize("page", ["report_page", "compare_page"])
def test_screenshot_is_not_blank(page: str, request: pytest.FixtureRequest) -> None:
    rendered: Rendered = request.getfixturevalue(page)
    width, height, distinct = png_size_and_distinct_bytes(rendered.png)
    assert (width, height) == (WIDTH, HEIGHT)
    assert distinct > 64, f"the screenshot looks blank ({distinct} distinct byte values)"
