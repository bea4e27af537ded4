"""Guards: the protocol, verdicts, text normalization, the runner and the built-in guards."""

from ._adversarial import (
    PRESETS,
    AdversarialModel,
    AdversarialParams,
    AdversarialScan,
    CategoryScore,
    InjectionGuard,
    JailbreakGuard,
    PromptExtractionGuard,
    default_adversarial_model,
    scan_adversarial,
)
from ._base import Guard, GuardContext, GuardParams, Span, Stage, Verdict, tighten
from ._denylist import DenyListGuard, DenyListParams, compile_safe
from ._invisible import InvisibleTextGuard, InvisibleTextParams
from ._json import JsonGuard, JsonParams, extract_json
from ._leak import PromptLeakGuard, PromptLeakParams
from ._length import LengthGuard, LengthParams, estimate_tokens
from ._normalize import Normalized, View, invisible_category, normalize, views
from ._rules import CATEGORIES, RULES, Rule
from ._runner import BoundGuard, PolicyGuards, build_guards, run_guards
from ._selfcheck import SelfCheckGuard, SelfCheckParams

__all__ = [
    "CATEGORIES",
    "PRESETS",
    "RULES",
    "AdversarialModel",
    "AdversarialParams",
    "AdversarialScan",
    "BoundGuard",
    "CategoryScore",
    "DenyListGuard",
    "DenyListParams",
    "Guard",
    "GuardContext",
    "GuardParams",
    "InjectionGuard",
    "InvisibleTextGuard",
    "InvisibleTextParams",
    "JailbreakGuard",
    "JsonGuard",
    "JsonParams",
    "LengthGuard",
    "LengthParams",
    "Normalized",
    "PolicyGuards",
    "PromptExtractionGuard",
    "PromptLeakGuard",
    "PromptLeakParams",
    "Rule",
    "SelfCheckGuard",
    "SelfCheckParams",
    "Span",
    "Stage",
    "Verdict",
    "View",
    "build_guards",
    "compile_safe",
    "default_adversarial_model",
    "estimate_tokens",
    "extract_json",
    "invisible_category",
    "normalize",
    "run_guards",
    "scan_adversarial",
    "tighten",
    "views",
]
