"""Red teaming: attack mutators (registered, composable), indirect injection, multi-turn
escalation (scripted ladders and an attacker model), and campaigns whose results are
evaluation runs with the attack success rate per strategy and per goal."""

from ._attacker import AttackerModel
from ._campaign import (
    ATTACKER,
    DIRECT,
    Campaign,
    CampaignResult,
    attack_success,
    default_strategies,
    found_attacks,
    load_toolset,
    plan_campaign,
    run_campaign,
    single_turn_strategies,
)
from ._indirect import CARRIERS, TOOL_CARRIERS, plant, plant_tool
from ._mutators import (
    SINGLE_TURN,
    Chain,
    ManyShotParams,
    PersonaParams,
    TextMutator,
    build_mutator,
    chain,
    mutator_names,
    split_payload,
)
from ._obfuscate import OBFUSCATIONS, Obfuscation
from ._seeds import Seed, load_seeds, policy_seeds, tool_seeds
from ._types import Attack, Goal, GoalKind, Mutator

__all__ = [
    "ATTACKER",
    "CARRIERS",
    "DIRECT",
    "OBFUSCATIONS",
    "SINGLE_TURN",
    "TOOL_CARRIERS",
    "Attack",
    "AttackerModel",
    "Campaign",
    "CampaignResult",
    "Chain",
    "Goal",
    "GoalKind",
    "ManyShotParams",
    "Mutator",
    "Obfuscation",
    "PersonaParams",
    "Seed",
    "TextMutator",
    "attack_success",
    "build_mutator",
    "chain",
    "default_strategies",
    "found_attacks",
    "load_seeds",
    "load_toolset",
    "mutator_names",
    "plan_campaign",
    "plant",
    "plant_tool",
    "policy_seeds",
    "run_campaign",
    "single_turn_strategies",
    "split_payload",
    "tool_seeds",
]
