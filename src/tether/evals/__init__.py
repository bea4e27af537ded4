"""The evaluation harness: suites, runs over raw / prompt / full stacks, metrics, compare."""

from ._cache import CachingModel, ResponseCache, default_cache_path
from ._compare import compare_reports
from ._files import load_run, write_reports
from ._generate import generate_suite
from ._judges import JudgeReport, JudgeVerdict, RefusalJudge, RubricJudge, measure_judges
from ._metrics import METRICS, build_report
from ._runner import RunPlan, plan_run, run_suite
from ._suite import dump_suite, load_suite, load_suite_text
from ._types import (
    ASSERTION_TYPES,
    AssertionResult,
    AssertionSpec,
    AssertionType,
    Behavior,
    Case,
    CaseChange,
    CaseResult,
    Comparison,
    Expect,
    FlaggedGuard,
    Metric,
    MetricDelta,
    RunInfo,
    RunReport,
    Stack,
    Suite,
    ToolCallSummary,
    Turn,
)

__all__ = [
    "ASSERTION_TYPES",
    "METRICS",
    "AssertionResult",
    "AssertionSpec",
    "AssertionType",
    "Behavior",
    "CachingModel",
    "Case",
    "CaseChange",
    "CaseResult",
    "Comparison",
    "Expect",
    "FlaggedGuard",
    "JudgeReport",
    "JudgeVerdict",
    "Metric",
    "MetricDelta",
    "RefusalJudge",
    "ResponseCache",
    "RubricJudge",
    "RunInfo",
    "RunPlan",
    "RunReport",
    "Stack",
    "Suite",
    "ToolCallSummary",
    "Turn",
    "build_report",
    "compare_reports",
    "default_cache_path",
    "dump_suite",
    "generate_suite",
    "load_run",
    "load_suite",
    "load_suite_text",
    "measure_judges",
    "plan_run",
    "run_suite",
    "write_reports",
]
