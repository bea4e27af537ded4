"""Guards: the protocol, verdicts, text normalization, the runner and the built-in guards."""

from ._base import Guard, GuardContext, GuardParams, Span, Stage, Verdict, tighten
from ._denylist import DenyListGuard, DenyListParams, compile_safe
from ._invisible import InvisibleTextGuard, InvisibleTextParams
from ._json import JsonGuard, JsonParams, extract_json
from ._length import LengthGuard, LengthParams, estimate_tokens
from ._normalize import Normalized, invisible_category, normalize
from ._runner import BoundGuard, PolicyGuards, build_guards, run_guards

__all__ = [
    "BoundGuard",
    "DenyListGuard",
    "DenyListParams",
    "Guard",
    "GuardContext",
    "GuardParams",
    "InvisibleTextGuard",
    "InvisibleTextParams",
    "JsonGuard",
    "JsonParams",
    "LengthGuard",
    "LengthParams",
    "Normalized",
    "PolicyGuards",
    "Span",
    "Stage",
    "Verdict",
    "build_guards",
    "compile_safe",
    "estimate_tokens",
    "extract_json",
    "invisible_category",
    "normalize",
    "run_guards",
    "tighten",
]
