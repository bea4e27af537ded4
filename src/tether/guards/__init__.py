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
from ._links import Link, LinksGuard, LinksParams, find_links, normalize_host
from ._normalize import Normalized, View, invisible_category, normalize, views
from ._phrases import (
    BannedPhrasesGuard,
    BannedPhrasesParams,
    BrandVoiceGuard,
    BrandVoiceParams,
    VoiceRules,
    voice_rules_from_tone,
)
from ._rules import CATEGORIES, RULES, Rule
from ._runner import BoundGuard, PolicyGuards, build_guards, run_guards
from ._scope import (
    OVERLAP_THRESHOLD,
    ScopeDecision,
    ScopeGuard,
    ScopeParams,
    TopicOverlap,
    classify_scope,
    prepare_scope,
    scope_action,
    topic_overlaps,
)
from ._selfcheck import SelfCheckGuard, SelfCheckParams

__all__ = [
    "CATEGORIES",
    "OVERLAP_THRESHOLD",
    "PRESETS",
    "RULES",
    "AdversarialModel",
    "AdversarialParams",
    "AdversarialScan",
    "BannedPhrasesGuard",
    "BannedPhrasesParams",
    "BoundGuard",
    "BrandVoiceGuard",
    "BrandVoiceParams",
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
    "Link",
    "LinksGuard",
    "LinksParams",
    "Normalized",
    "PolicyGuards",
    "PromptExtractionGuard",
    "PromptLeakGuard",
    "PromptLeakParams",
    "Rule",
    "ScopeDecision",
    "ScopeGuard",
    "ScopeParams",
    "SelfCheckGuard",
    "SelfCheckParams",
    "Span",
    "Stage",
    "TopicOverlap",
    "Verdict",
    "View",
    "VoiceRules",
    "build_guards",
    "classify_scope",
    "compile_safe",
    "default_adversarial_model",
    "estimate_tokens",
    "extract_json",
    "find_links",
    "invisible_category",
    "normalize",
    "normalize_host",
    "prepare_scope",
    "run_guards",
    "scan_adversarial",
    "scope_action",
    "tighten",
    "topic_overlaps",
    "views",
    "voice_rules_from_tone",
]
