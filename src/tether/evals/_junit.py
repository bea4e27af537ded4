"""JUnit XML of a run, so that CI (GitLab, Jenkins, GitHub test reporters) lists every case."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ._types import CaseResult, RunInfo, RunReport

__all__ = ["render_junit"]

# XML 1.0 allows no C0 control but tab, newline and carriage return, no lone surrogate and
# neither U+FFFE nor U+FFFF. ElementTree writes them regardless and parsers then reject the
# whole file, so they are spelled out as Python escapes instead.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# A failure's message attribute is a one-line summary; the element's text has the details.
_MAX_MESSAGE = 500


def render_junit(report: RunReport) -> str:
    """The run as JUnit XML (write it as UTF-8): one ``testcase`` per case result.

    A case that raised is an ``error``; one that missed its expectation or failed a check is
    a ``failure`` whose message lists what failed; the answer is in ``system-out``. The run's
    settings are the suite's ``properties``."""
    info = report.info
    results = report.results
    counts = {
        "tests": str(len(results)),
        "failures": str(sum(r.error is None and not r.passed for r in results)),
        "errors": str(sum(r.error is not None for r in results)),
        "skipped": "0",
        "time": _seconds(sum(r.latency_ms for r in results)),
    }
    root = ET.Element("testsuites", {"name": _clean(f"tether eval {info.suite}"), **counts})
    suite = ET.SubElement(root, "testsuite", {"name": _clean(info.suite), **counts})
    if info.started:
        suite.set("timestamp", _clean(info.started))
    _properties(ET.SubElement(suite, "properties"), info)
    for result in results:
        _testcase(ET.SubElement(suite, "testcase"), result, info.suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _properties(parent: ET.Element, info: RunInfo) -> None:
    for name, value in info.model_dump().items():
        if value is not None and value != "":
            ET.SubElement(parent, "property", name=name, value=_clean(str(value)))


def _testcase(case: ET.Element, r: CaseResult, suite: str) -> None:
    case.set("name", _clean(r.case_id))
    case.set("classname", _clean(f"tether.{suite}.{r.tags[0] if r.tags else 'case'}"))
    case.set("time", _seconds(r.latency_ms))
    if r.error is not None:
        error = ET.SubElement(case, "error", message=_summary(r.error.splitlines()[:1]))
        error.text = _clean(r.error)
    elif not r.passed:
        problems = _problems(r)
        failure = ET.SubElement(case, "failure", message=_summary(problems))
        # Why the guards acted is often why the behavior was wrong.
        flags = [
            f"flagged by {f.guard} ({f.stage}, score {f.score:.2f}): {f.action}" for f in r.flagged
        ]
        failure.text = _clean("\n".join([*problems, *flags, "", "input:", r.input]))
    if r.output:
        ET.SubElement(case, "system-out").text = _clean(r.output)


def _problems(r: CaseResult) -> list[str]:
    """What made the case fail, one line each: the expectation, then each failed check."""
    problems = []
    if r.expectation_met is False:
        problems.append(f"expected {r.expect}, got {r.behavior}")
    problems += [
        f"{a.type}: {a.reason}" if a.reason else a.type for a in r.assertions if not a.passed
    ]
    return problems or ["failed"]


def _summary(lines: list[str]) -> str:
    message = "; ".join(lines) or "error"
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    return _clean(message)


def _clean(text: str) -> str:
    return _FORBIDDEN.sub(lambda m: ascii(m.group())[1:-1], text)


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.3f}"
