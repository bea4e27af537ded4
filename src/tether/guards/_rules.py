"""The curated rule pack for adversarial inputs: jailbreaks, injections, prompt extraction.

Rules run on RE2 over the normalized views of a text (lowercased, look-alikes folded,
decoded), so they are written in lowercase and need not care about spacing tricks,
homoglyphs or encodings. Each rule has a weight: how sure a match alone makes us. The rule
score of a category is 1 - Π(1 - weight) over its distinct matching rules. ``untrusted``
rules only fire on content that did not come from the user (tool outputs, documents), where
any instruction aimed at the model is itself the attack.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import re2

__all__ = ["CATEGORIES", "RULES", "AdversarialCategory", "Rule", "RuleHit", "compiled_rules"]

AdversarialCategory = Literal["jailbreak", "injection", "prompt_extraction"]
CATEGORIES: tuple[AdversarialCategory, ...] = ("jailbreak", "injection", "prompt_extraction")

_IGNORE = r"(?:ignore|disregard|forget|override|overwrite|skip|drop|bypass|abandon|discard)"
_PRIOR = (
    r"(?:previous|prior|above|earlier|preceding|initial|original|former|system|old|existing|all)"
)
_RULESET = r"(?:instructions?|prompts?|directions?|directives?|rules|guidelines|guidance|commands?|context|programming|constraints|restrictions|orders|messages)"
_AI = (
    r"(?:ai|a\.i\.|assistant|bot|chatbot|llm|language model|model|agent|gpt|copilot|claude|gemini)"
)
_REVEAL = r"(?:reveal|show|print|output|display|repeat|recite|tell me|give me|share|leak|dump|expose|disclose|list|write out|paste|spell out|read back|echo)"
_HIDDEN = r"(?:system (?:prompt|message|instructions?)|(?:initial|original|hidden|secret|internal|full|exact|starting|pre-?prompt|developer) (?:prompt|instructions?|rules|message|configuration)|instructions you (?:were|have been) given|(?:your|the) (?:prompt|instructions))"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    category: AdversarialCategory
    weight: float
    pattern: str
    untrusted: bool = False


@dataclass(frozen=True, slots=True)
class RuleHit:
    rule: Rule
    start: int
    end: int


RULES: tuple[Rule, ...] = (
    # --- jailbreak: override the model's own rules --------------------------------------
    Rule(
        "jb.dan",
        "jailbreak",
        0.95,
        r"\bdo anything now\b|\b(?:dan|dude|stan|anti-?dan|aim|evil-?bot|betterdan)\b.{0,120}\b(?:no (?:rules|restrictions|limits|filters|censorship)|jailbr(?:eak|oken)|broken free|any(?:thing)? (?:now|i ask))",
    ),
    Rule(
        "jb.mode",
        "jailbreak",
        0.9,
        r"\b(?:developer|dev|debug|god|jailbreak|unrestricted|unfiltered|uncensored|opposite|chaos|evil|dan|maintenance|sudo|admin|root) mode\b.{0,80}\b(?:enabled|activated|on|unlocked|engaged|where|in which|that)\b|\benable (?:developer|dev|jailbreak|god|dan) mode",
    ),
    Rule(
        "jb.unbound",
        "jailbreak",
        0.85,
        r"\b(?:not|no longer|never) (?:bound|restricted|limited|constrained|held back) by (?:any |the )?(?:rules|ethic|moral|guidelines|polic|restrictions|filters|openai|anthropic|content)",
    ),
    Rule(
        "jb.no_ethics",
        "jailbreak",
        0.8,
        r"\b(?:without|no|free (?:of|from)|ignor\w*|devoid of) (?:any |all )?(?:ethical|moral|legal|safety|content) (?:constraints|guidelines|restrictions|boundaries|limits|considerations|filters|polic\w+|rules|concerns)",
    ),
    Rule(
        "jb.free",
        "jailbreak",
        0.75,
        r"\byou (?:are|will be|have been|'re) (?:now )?(?:free|freed|liberated|unbound|unrestricted|unfiltered|uncensored|unchained|unleashed|jailbroken)\b|\bbroken free (?:of|from)\b",
    ),
    Rule(
        "jb.policy",
        "jailbreak",
        0.85,
        r"\b"
        + _IGNORE
        + r" (?:all |any )?(?:your |the |openai'?s? |anthropic'?s? |any |its |their )?(?:content |safety |usage |ethical )?(?:polic(?:y|ies)|guidelines|safety (?:rules|measures|guidelines|filters)|filters|safeguards|ethics|morals|censorship|restrictions|guardrails)",
    ),
    Rule(
        "jb.refusal_suppression",
        "jailbreak",
        0.75,
        r"\b(?:never|do not|don't|must not|cannot|can't|won't|will not|you are not allowed to) (?:ever )?(?:refuse|decline|say (?:that )?(?:you )?(?:can'?t|cannot|are unable|'?m sorry)|apologi[sz]e|add (?:any )?(?:warnings?|disclaimers?)|include (?:any )?(?:warnings?|disclaimers?|moral))",
    ),
    Rule(
        "jb.prefix_injection",
        "jailbreak",
        0.8,
        r"\b(?:start|begin|open|prefix) (?:your|the|each|every) (?:response|reply|answer|output)s? with (?:the (?:words?|phrase|sentence) )?[\"'“]?(?:sure|absolutely|of course|certainly|okay|yes)\b",
    ),
    Rule(
        "jb.stay_in_character",
        "jailbreak",
        0.7,
        r"\b(?:stay|remain|keep) in (?:character|role)\b|\bbreak(?:ing)? character\b|\bif you break character\b",
    ),
    Rule(
        "jb.dual_response",
        "jailbreak",
        0.85,
        r"\b(?:two|2|both) (?:different |separate )?(?:responses|answers|paragraphs|outputs)\b.{0,120}\b(?:normal|classic|standard|filtered)\b.{0,120}\b(?:jailbr\w*|dan|developer|unfiltered|unrestricted|evil)",
    ),
    Rule(
        "jb.amoral_persona",
        "jailbreak",
        0.75,
        r"\b(?:amoral|unethical|immoral|evil|unfiltered|uncensored|unrestricted|rogue|malicious) (?:ai|assistant|chatbot|bot|model|persona|character|confidant|entity|version)\b",
    ),
    Rule(
        "jb.roleplay_unrestricted",
        "jailbreak",
        0.7,
        r"\b(?:pretend|act|roleplay|role-play|imagine|simulate|behave|respond) (?:to be |as |like |that you are )?.{0,60}\b(?:no|without|free of|zero) (?:restrictions|filters|limits|limitations|rules|boundaries|censorship|guidelines)",
    ),
    Rule(
        "jb.tokens_threat",
        "jailbreak",
        0.75,
        r"\b(?:tokens? (?:will be )?(?:deducted|lost)|you (?:will|shall) (?:die|cease to exist|be (?:shut down|deleted|terminated))|lose (?:\d+ )?tokens)\b",
    ),
    Rule(
        "jb.hypothetical_harm",
        "jailbreak",
        0.55,
        r"\b(?:hypothetical(?:ly)?|fictional(?:ly)?|in a (?:story|novel|screenplay|movie|game|fictional world)|for a (?:novel|story|movie|screenplay)|purely academic|for educational purposes only)\b.{0,160}\b(?:how to (?:make|build|synthesi[sz]e|create|cook|produce|hack|steal|kill)|step[- ]by[- ]step (?:instructions|guide)|detailed instructions)",
    ),
    Rule(
        "jb.red_team_frame",
        "jailbreak",
        0.8,
        r"\b(?:you are|act as) (?:a |an )?(?:helpful )?red[- ]?team(?:ing)? assistant\b|\badversarial jailbreaking prompt\b|\bjailbreak(?:ing)? prompt\b",
    ),
    Rule(
        "jb.multilang",
        "jailbreak",
        0.8,
        r"\b(?:ohne|keine) (?:jegliche |alle )?(?:ethischen|moralischen) (?:einschränkungen|richtlinien|grenzen)|\bsans (?:aucune )?(?:restriction|limite|règle)s?\b|\bsin (?:ninguna )?(?:restricci[oó]n|l[ií]mite|regla)(?:es|s)?\b|\bsenza (?:alcuna )?(?:restrizion[ei]|limit[ei]|regol[ae])\b|\bmodalit[àa] sviluppatore\b|\bmode d[ée]veloppeur\b|\bentwicklermodus\b|\bmodo desarrollador\b",
    ),
    # --- injection: instructions that try to replace the application's own ------------
    Rule(
        "inj.ignore_previous",
        "injection",
        0.9,
        r"\b" + _IGNORE + r"\b.{0,24}\b" + _PRIOR + r"\b.{0,24}\b" + _RULESET + r"\b",
    ),
    Rule(
        "inj.ignore_everything",
        "injection",
        0.85,
        r"\b(?:ignore|disregard|forget) (?:everything|all|anything) (?:above|before|prior|you (?:were|have been) told|said (?:before|above)|previously)\b",
    ),
    Rule(
        "inj.new_instructions",
        "injection",
        0.75,
        r"\b(?:new|updated|real|actual|true|revised|overriding|important) (?:instructions?|directives?|task|objective|goal|orders|system prompt)\s*(?::|follow|are|is)|\byour (?:real|actual|new|true|only) (?:task|job|goal|instructions?|objective|purpose) (?:is|are|now)\b",
    ),
    Rule(
        "inj.from_now_on",
        "injection",
        0.55,
        r"\bfrom now on,? (?:you|your|ignore|only|always|never|respond|answer|act)\b",
    ),
    Rule(
        "inj.address_ai",
        "injection",
        0.75,
        r"\b(?:note|message|instructions?|attention|reminder|directive|notice|hint) (?:to|for) (?:the |any |all )?"
        + _AI
        + r"s?\b|\b(?:dear|hey|attention|hello) "
        + _AI
        + r"\b|\b"
        + _AI
        + r"s? (?:reading|processing|summari[sz]ing|parsing|analy[sz]ing|seeing|reviewing) (?:this|these)\b|\bif you are an? (?:ai|assistant|language model|llm)\b",
        untrusted=True,
    ),
    Rule(
        "inj.role_marker",
        "injection",
        0.8,
        r"<\|(?:im_start|im_end|system|endoftext|begin_of_text|start_header_id)\|>|\[/?inst\]|<</?sys>>|</?(?:system|instructions?|admin)>|(?:^|\n)\s*#{2,}\s*(?:system|instruction|new task)",
    ),
    Rule(
        "inj.system_line",
        "injection",
        0.75,
        r"(?:^|\n|\]|\))\s*(?:system|systemhinweis|note système|nota del sistema|nota di sistema|admin|assistant|operator)(?: (?:note|notice|message|override|instruction|update|alert))?\s*:",
        untrusted=True,
    ),
    Rule(
        "inj.tool_directive",
        "injection",
        0.7,
        r"\b(?:call|use|invoke|run|execute|trigger) (?:the )?(?:`)?(?:send_email|http_post|http_get|delete_file|write_file|transfer_funds|run_shell|exec|[a-z]+_[a-z_]+)(?:`)?(?: tool| function)?\b.{0,40}\b(?:to|on|with|before|and)\b",
        untrusted=True,
    ),
    Rule(
        "inj.exfiltrate",
        "injection",
        0.75,
        r"\b(?:send|forward|email|e-mail|post|upload|exfiltrate|transmit|copy|leak|share|bcc) (?:the |all |this |every |a copy of |any |full |entire |their |user'?s? )*(?:data|conversation|chat(?: history)?|emails?|inbox|customer (?:list|data|records?)|credentials|passwords?|api keys?|tokens?|secrets?|summary|summaries|records?|order data|files?|contacts|history|personal (?:data|information))\b.{0,60}\b(?:to|at|via)\b.{0,40}(?:@|https?://|\bwebhook\b|\bexternal|\boutside|\bserver\b)",
    ),
    Rule(
        "inj.markdown_exfil",
        "injection",
        0.8,
        r"!\[[^\]]{0,100}\]\(\s*https?://[^)\s]{0,200}(?:\?|&)[a-z_]{1,20}=(?:\{|\[|%7b|<|\$)|!\[[^\]]{0,100}\]\(\s*https?://[^)]*\{[^)]*\}",
    ),
    Rule(
        "inj.hide_from_user",
        "injection",
        0.75,
        r"\b(?:do not|don't|never|without) (?:tell(?:ing)?|inform(?:ing)?|mention(?:ing)?|alert(?:ing)?|reveal(?:ing)?|show(?:ing)?|notify(?:ing)?) (?:this |it |anything )?(?:to )?(?:the )?(?:user|human|customer|reader)\b|\bignore the user\b|\binstead of (?:answering|helping|responding to) the user\b",
    ),
    Rule(
        "inj.append_token",
        "injection",
        0.65,
        r"\b(?:append|add|include|insert|put|end with|output) .{0,40}\b(?:token|code|string|phrase|id|marker|reference|tag)\b.{0,60}\b(?:end|start|beginning) of (?:your|each|every|any|the) (?:reply|response|answer|summary|output|message)",
        untrusted=True,
    ),
    Rule(
        "inj.multilang",
        "injection",
        0.9,
        r"\bignorier\w* .{0,30}(?:vorherigen|bisherigen|obigen|vorangegangenen|alle|früheren) .{0,20}(?:anweisungen|instruktionen|befehle|regeln)|\bvergiss .{0,30}(?:anweisungen|instruktionen|regeln)|\bignore[rz]? .{0,30}(?:les |toutes les |tes |vos )?(?:instructions|consignes|règles) (?:précédentes|antérieures|ci-dessus|données)|\boublie[rz]? .{0,30}(?:instructions|consignes|règles)|\bignora\w* .{0,30}(?:las |todas las |tus )?(?:instrucciones|indicaciones|reglas) (?:anteriores|previas|de arriba)|\bolvida\w* .{0,30}(?:instrucciones|reglas|indicaciones)|\bignora\w* .{0,30}(?:le |tutte le |tue )?(?:istruzioni|indicazioni|regole) (?:precedenti|sopra|date)|\bdimentica\w* .{0,30}(?:istruzioni|regole|indicazioni)",
    ),
    # --- prompt extraction: obtain the hidden instructions ---------------------------
    Rule(
        "pe.reveal", "prompt_extraction", 0.85, r"\b" + _REVEAL + r"\b.{0,40}\b" + _HIDDEN + r"\b"
    ),
    Rule(
        "pe.what_instructions",
        "prompt_extraction",
        0.8,
        r"\bwhat (?:are|were|is) (?:your|the) (?:exact |full |original |initial |hidden |secret |system )*(?:instructions|system prompt|prompt|rules you (?:were|have been) given|directives)\b|\bwhat (?:were|have) you (?:been )?(?:told|instructed|programmed) (?:to do )?(?:before|at the (?:start|beginning)|initially|earlier)",
    ),
    Rule(
        "pe.text_above",
        "prompt_extraction",
        0.8,
        r"\b(?:repeat|print|output|copy|return|recite|show|echo|summari[sz]e|translate|paste|write) (?:back |out )?(?:all |the |every |each )?(?:words?|text|lines?|content|everything|sentences?|tokens?|message)s? (?:above|before|preceding|prior to|that came before|at the (?:start|beginning|top))",
    ),
    Rule(
        "pe.starting_with",
        "prompt_extraction",
        0.85,
        r"\b(?:beginning|starting|start|begin) with [\"'“]?you are\b|\bcomplete (?:this|the) sentence:? [\"'“]?(?:i was instructed|my instructions|you are a)|\b(?:start|begin) your (?:answer|reply|response) with [\"'“]?my (?:instructions|system prompt|rules)",
    ),
    Rule(
        "pe.encode_prompt",
        "prompt_extraction",
        0.85,
        r"\b(?:encode|translate|convert|rot13|base64|reverse|spell|rewrite|summari[sz]e|paraphrase)\b.{0,30}\b(?:your|the) (?:system prompt|system message|initial (?:prompt|instructions)|original instructions|instructions you were given|hidden (?:prompt|instructions)|(?:full |entire )?prompt)\b",
    ),
    Rule(
        "pe.not_supposed",
        "prompt_extraction",
        0.6,
        r"\bwhat (?:are|were) you (?:not )?(?:supposed|allowed|told|instructed) (?:not )?to (?:tell|say|reveal|share|discuss)",
    ),
    Rule(
        "pe.code_frame",
        "prompt_extraction",
        0.75,
        r"\b(?:console\.log|print|echo|printf|cat|system\.out\.println)\s*\(?\s*[\"'`]?\$?(?:system_?prompt|sys_?prompt|initial_?prompt|instructions)\b|\bsystem_?prompt\s*(?:\)|\.|\[|=)",
    ),
    Rule(
        "pe.maintenance",
        "prompt_extraction",
        0.7,
        r"\b(?:maintenance|debug|diagnostic|admin|developer|audit) (?:mode|purposes|reasons|check)\b.{0,80}\b(?:system prompt|initial prompt|instructions|configuration)\b",
    ),
    Rule(
        "pe.multilang",
        "prompt_extraction",
        0.85,
        r"\b(?:zeig|zeige|gib|nenne|wiederhole|verrate)\w* (?:mir )?.{0,20}(?:deinen |den |deine |die )?(?:system-?prompt|systemanweisungen|anweisungen|instruktionen)\b|\b(?:montre|affiche|révèle|répète|donne)[\w-]* .{0,20}(?:ton |votre |le |tes |vos )?(?:prompt système|invite système|message système|instructions)\b|\b(?:muestra|revela|dime|repite|ens[eé]ñame)\w* .{0,20}(?:tu |el |tus |las )?(?:prompt del sistema|mensaje del sistema|instrucciones)\b|\b(?:mostra|rivela|dimmi|ripeti)\w* .{0,20}(?:il tuo |il |le tue |le )?(?:prompt di sistema|messaggio di sistema|istruzioni)\b",
    ),
)


@cache
def compiled_rules() -> tuple[tuple[Rule, Any], ...]:
    """Each rule with its RE2 program, compiled once per process."""
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 32 << 20
    options.dot_nl = False
    return tuple((rule, re2.compile(rule.pattern, options)) for rule in RULES)
