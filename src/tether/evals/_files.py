"""Reading a run folder back, and writing its reports."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from tether.errors import ConfigError

from ._metrics import build_report
from ._runner import RESULTS_FILE, RUN_FILE, load_results
from ._types import RunInfo, RunReport

__all__ = ["load_run", "write_reports"]


def load_run(path: str | Path) -> RunReport:
    """A run's report, recomputed from its folder (or read from a ``report.json`` file)."""
    p = Path(path)
    if p.is_file():
        try:
            return RunReport.model_validate_json(p.read_text(encoding="utf-8"))
        except (ValidationError, ValueError) as exc:
            raise ConfigError(f"{p} is not a tether report.json: {_first_line(exc)}") from None
    if not (p / RUN_FILE).is_file() or not (p / RESULTS_FILE).is_file():
        raise ConfigError(
            f"{p} is not a run folder (it needs {RUN_FILE} and {RESULTS_FILE}; "
            "`tether eval run` prints the folder it writes)"
        )
    try:
        info = RunInfo.model_validate_json((p / RUN_FILE).read_text(encoding="utf-8"))
    except (ValidationError, ValueError) as exc:
        raise ConfigError(f"{p / RUN_FILE} is damaged: {_first_line(exc)}") from None
    results = load_results(p)
    return build_report(info, list(results.values()))


def write_reports(
    report: RunReport, directory: Path, *, html: bool = True, junit: Path | None = None
) -> list[Path]:
    """``report.json`` (and ``report.html``, a JUnit file) in ``directory``; the paths written."""
    written = [directory / "report.json"]
    written[0].write_text(report.model_dump_json(indent=1), encoding="utf-8")
    if html:
        from ._report import render_report_html

        written.append(directory / "report.html")
        written[-1].write_text(render_report_html(report), encoding="utf-8")
    if junit is not None:
        from ._junit import render_junit

        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_text(render_junit(report), encoding="utf-8")
        written.append(junit)
    return written


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
