"""The pii guard and its detector: hits, near misses, odd input, modes, tenant tightening."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tether.errors import PolicyError

# Importing the module registers the guards (until tether._builtins imports it).
from tether.guards import _pii
from tether.guards._base import GuardContext
from tether.guards._pii import (
    PII_ENTITIES,
    PiiGuard,
    PiiMatch,
    PiiParams,
    find_pii,
    mask,
)
from tether.guards._vault import PseudonymVault
from tether.pipeline import apply_spans
from tether.policy import load_policy_text
from tether.registry import lookup

CTX = GuardContext(stage="input")


def found(text: str, **kwargs: object) -> list[tuple[str, str]]:
    return [(m.entity, m.text) for m in find_pii(text, min_confidence=0.5, **kwargs)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "entity", "value"),
    [
        ("write to jane.doe@example.com today", "EMAIL", "jane.doe@example.com"),
        ("mail: J.Smith+news@mail.example.co.uk.", "EMAIL", "J.Smith+news@mail.example.co.uk"),
        ("reach me at jane [at] example [dot] org", "EMAIL", "jane [at] example [dot] org"),
        ("call me at (415) 555-2671 tonight", "PHONE", "(415) 555-2671"),
        ("my mobile is +44 7400 123456", "PHONE", "+44 7400 123456"),
        ("Tel. 0049 30 12345678", "PHONE", "0049 30 12345678"),
        ("phone: 555-0123", "PHONE", "555-0123"),
        ("card 4111 1111 1111 1111 exp 04/27", "CREDIT_CARD", "4111 1111 1111 1111"),
        ("amex 3782-822463-10005", "CREDIT_CARD", "3782-822463-10005"),
        ("pay with 5555555555554444", "CREDIT_CARD", "5555555555554444"),
        ("IBAN GB82 WEST 1234 5698 7654 32 please", "IBAN", "GB82 WEST 1234 5698 7654 32"),
        ("to DE89370400440532013000.", "IBAN", "DE89370400440532013000"),
        ("my SSN is 123-45-6789", "US_SSN", "123-45-6789"),
        ("social security number 078051121", "US_SSN", "078051121"),
        ("Steuer-ID: 36574261809", "DE_TAX_ID", "36574261809"),
        ("numéro de sécurité sociale 2 95 10 99 126 111 93", "FR_NIR", "2 95 10 99 126 111 93"),
        ("DNI 54362315K", "ES_DNI", "54362315K"),
        ("NIE X-2482300W", "ES_NIE", "X-2482300W"),
        ("codice fiscale RCCMNL83S18D969H", "IT_FISCAL_CODE", "RCCMNL83S18D969H"),
        ("NHS number 943 476 5919", "GB_NHS", "943 476 5919"),
        ("national insurance AB 12 34 56 C", "GB_NINO", "AB 12 34 56 C"),
        ("login from 203.0.113.45 failed", "IP_ADDRESS", "203.0.113.45"),
        ("the host 2001:db8::8a2e:370:7334 answered", "IP_ADDRESS", "2001:db8::8a2e:370:7334"),
        ("I'm Alice Smith.", "PERSON", "Alice Smith"),
        ("Dear Mr. Johnson, thanks.", "PERSON", "Johnson"),
        ("Meeting with Maria Lopez at noon", "PERSON", "Maria Lopez"),
        ("Best regards,\nJane Doe", "PERSON", "Jane Doe"),
        ("Je m'appelle Camille Dupont.", "PERSON", "Camille Dupont"),
        (
            "Ship to 42 Elm Road, Riverton, WY 82501 asap",
            "ADDRESS",
            "42 Elm Road, Riverton, WY 82501",
        ),
        ("Lieferung an Goethestraße 12, 10115 Berlin.", "ADDRESS", "Goethestraße 12, 10115 Berlin"),
        ("au 12 rue de la Paix, 75002 Paris", "ADDRESS", "12 rue de la Paix, 75002 Paris"),
        ("en Calle de Alcalá 45, 28014 Madrid", "ADDRESS", "Calle de Alcalá 45, 28014 Madrid"),
        ("in Via Roma 10, 00184 Roma", "ADDRESS", "Via Roma 10, 00184 Roma"),
    ],
)
def test_hits(text: str, entity: str, value: str) -> None:
    assert (entity, value) in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112 fails Luhn",
        "ref 1234 5678 9012 3456",
        "GB00 WEST 1234 5698 7654 32 has a bad checksum",
        "SSNs 000-12-3456, 666-12-3456, 900-12-3456 and 123-00-4567 are never issued",
        "upgrade Windows to 10.0.19041.1, v1.2.3 or 1.2.3",
        "Chrome 120.0.6099.109 and the OID 1.3.6.1.4.1.311",
        "loopback 127.0.0.1, 0.0.0.0 and the netmask 255.255.255.0",
        "Order #2125551234 shipped; invoice 4155552671",
        "Part number 555-0123 is out of stock",
        "on 2023-04-12 at 10:30:45, MAC 00:1A:2B:3C:4D:5E",
        "totals: $1,234,567.89 and 1.234.567 and 3.14159265358",
        "count 1 2 3 4 5 6 7 8 9 10",
        "request 3f2b8c1e-9d4a-4b7e-8f1a-2c3d4e5f6a7b, commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        "the asset icon@2x.png and @alice",
        "std::vector<int> and a::b in C++",
        "Capitalized words like Wisdom and Discipline are often mistaken with names.",
        "Will you help? May I ask about the New York Times?",
        "",
    ],
)
def test_near_misses(text: str) -> None:
    assert found(text) == []


def test_spans_point_into_the_original_text() -> None:
    text = "ｃａｒｄ ４１１１ １１１１ １１１１ １１１１ and alice＠example.com and 4111\u200b1111 1111 1111"
    matches = find_pii(text)
    assert [m.entity for m in matches] == ["CREDIT_CARD", "EMAIL", "CREDIT_CARD"]
    for m in matches:
        assert text[m.start : m.end] == m.text
    assert matches[0].text == "４１１１ １１１１ １１１１ １１１１"
    assert matches[0].value == "4111111111111111"
    assert matches[1].value == "alice@example.com"


def test_name_lists_come_from_faker() -> None:
    lex = _pii._lexicon()
    assert len(lex.first) > 3000 and len(lex.last) > 5000 and len(lex.common) > 3000
    assert {"Alice", "Jane", "Giuseppe", "Jürgen"} <= lex.first
    assert {"Smith", "Müller", "Rossi", "García"} <= lex.last
    assert "may" in lex.common and "will" in lex.common


def test_match_records_what_validated_it() -> None:
    (card,) = find_pii("4111 1111 1111 1111")
    assert card == PiiMatch(
        "CREDIT_CARD", 0, 19, "4111 1111 1111 1111", 0.97, "luhn+iin:visa", "4111111111111111"
    )
    (iban,) = find_pii("GB82 WEST 1234 5698 7654 32")
    assert iban.validator == "stdnum.iban"
    assert iban.value == "GB82WEST12345698765432"


def test_overlaps_keep_the_more_specific_entity() -> None:
    # A card number is also a run of digits a phone parser might accept.
    assert found("4111111111111111") == [("CREDIT_CARD", "4111111111111111")]
    # The password of a URL is not an e-mail address.
    text = "postgres://admin:s3cr3tPw@db.example.com/app"
    assert found(text) == []
    assert found(text, entities=("URL_CREDENTIALS",)) == [("URL_CREDENTIALS", "admin:s3cr3tPw")]


def test_entities_narrow_the_search() -> None:
    text = "alice@example.com, +44 7400 123456, 4111 1111 1111 1111"
    assert [e for e, _ in found(text, entities=("EMAIL",))] == ["EMAIL"]
    with pytest.raises(ValueError, match="unknown entities"):
        find_pii(text, entities=("EMAILS",))


def test_private_ips_can_be_excluded() -> None:
    text = "from 10.1.2.3 and 192.0.2.10 and 8.8.8.8"
    assert len(found(text)) == 3
    assert found(text, exclude_private_ips=True) == [("IP_ADDRESS", "8.8.8.8")]


def test_phone_region() -> None:
    text = "ring me on 030 12345678"
    assert found(text) == []  # not a US number
    assert found(text, region="DE") == [("PHONE", "030 12345678")]


def test_allow_list_by_value_case_and_digits() -> None:
    text = "Write to Support@Acme.com or call +1 (415) 555-2671, not bob@acme.com"
    kept = found(text, allow=("support@acme.com", "+14155552671"))
    assert kept == [("EMAIL", "bob@acme.com")]


# --- odd input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "\u202eevil\u202c text with bidi \U0001f600 emoji and Z\u0335a\u0336l\u0337g\u0338o",
        "\x00\x01\x02 control characters 4111 1111 1111 1111",
        "日本語のテキスト、電話 03-1234-5678",
        "ﬁ ligatures and ß and İstanbul alice@example.com",
        "\ud800 lone surrogate",
        "@" * 500 + "." * 500,
    ],
)
def test_odd_unicode_never_raises(text: str) -> None:
    for m in find_pii(text):
        assert text[m.start : m.end] == m.text


@pytest.mark.parametrize(
    "unit",
    ["a", "1", "1.", "a@", "A ", "Aa ", "1 ", "x:", "-----BEGIN ", "ab12" * 3 + " ", "Mr. "],
)
def test_huge_pathological_input_is_linear(unit: str) -> None:
    small = unit * 2_000
    big = unit * 40_000
    t0 = time.perf_counter()
    find_pii(small)
    t_small = time.perf_counter() - t0
    t0 = time.perf_counter()
    find_pii(big)
    t_big = time.perf_counter() - t0
    # 20 times the text may cost 20 times the time (generous slack for a busy machine),
    # never the 400 times of a quadratic scan.
    assert t_big < max(60 * t_small, 0.5), (unit, t_small, t_big)


def _max_repeats(pattern: re.Pattern[str]) -> list[int]:
    parser = getattr(re, "_parser")  # noqa: B009 - the parser is how to read a pattern's shape
    out: list[int] = []

    def walk(items: object) -> None:
        for op, arg in items:  # type: ignore[attr-defined]
            name = str(op)
            if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                out.append(arg[1])
                walk(arg[2])
            elif name == "BRANCH":
                for branch in arg[1]:
                    walk(branch)
            elif name in ("SUBPATTERN",):
                walk(arg[3])
            elif name in ("ASSERT", "ASSERT_NOT"):
                walk(arg[1])
            elif name == "ATOMIC_GROUP":
                walk(arg)

    walk(parser.parse(pattern.pattern, pattern.flags))
    return out


def test_every_pattern_has_bounded_repetition() -> None:
    """The linearity argument of the module docstring: no unbounded repeat anywhere."""
    patterns = [v for v in vars(_pii).values() if isinstance(v, re.Pattern)]
    patterns += [p for p, _, _ in _pii._address_patterns()]
    patterns += [regex for _, regex, _, _, _ in _pii._TOKEN_RES]
    assert len(patterns) > 40
    unbounded = getattr(re, "_parser").MAXREPEAT  # noqa: B009
    for pattern in patterns:
        assert unbounded not in _max_repeats(pattern), pattern.pattern


# --- the guard -----------------------------------------------------------------------------

TEXT = "I'm Alice Smith, alice@example.com, card 4111 1111 1111 1111."


async def test_redact_mode_uses_labels() -> None:
    verdict = await PiiGuard(PiiParams()).check(TEXT, CTX)
    assert verdict.flagged and verdict.category == "pii"
    assert apply_spans(TEXT, verdict.spans) == "I'm [PERSON], [EMAIL], card [CREDIT_CARD]."
    assert verdict.reason == "pii found: 1 CREDIT_CARD, 1 EMAIL, 1 PERSON"
    assert "alice" not in verdict.reason.lower()  # values never reach logs through the reason


async def test_mask_mode_keeps_a_hint() -> None:
    verdict = await PiiGuard(PiiParams(mode="mask")).check(TEXT, CTX)
    assert (
        apply_spans(TEXT, verdict.spans)
        == "I'm A*** S***, a***@e***.com, card **** **** **** 1111."
    )


@pytest.mark.parametrize(
    ("entity", "text", "masked"),
    [
        ("US_SSN", "123-45-6789", "***-**-6789"),
        ("PHONE", "(415) 555-2671", "(***) ***-**71"),
        ("IBAN", "GB82 WEST 1234 5698 7654 32", "GB** **** **** **** **54 32"),
        ("IP_ADDRESS", "203.0.113.45", "203.*.*.*"),
        ("ADDRESS", "42 Elm Road", "4*** E*** R***"),
        ("ES_DNI", "54362315K", "*******5K"),
    ],
)
def test_masks(entity: str, text: str, masked: str) -> None:
    assert mask(PiiMatch(entity, 0, len(text), text, 1.0, "", text)) == masked


async def test_hash_mode_is_salted_and_stable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PII_SALT_A", "one")
    monkeypatch.setenv("PII_SALT_B", "two")
    a = PiiGuard(PiiParams(mode="hash", salt_env="PII_SALT_A", entities=("EMAIL",)))
    b = PiiGuard(PiiParams(mode="hash", salt_env="PII_SALT_B", entities=("EMAIL",)))
    first = apply_spans("x alice@example.com", (await a.check("x alice@example.com", CTX)).spans)
    again = apply_spans("y ALICE@example.com", (await a.check("y ALICE@example.com", CTX)).spans)
    other = apply_spans("x alice@example.com", (await b.check("x alice@example.com", CTX)).spans)
    assert re.fullmatch(r"x <EMAIL_[0-9a-f]{6}>", first)
    assert first[2:] == again[2:]  # same value (case aside), same token
    assert other != first  # another salt, another token


async def test_hash_without_salt_env_uses_a_process_salt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TETHER_PII_SALT", raising=False)
    guard = PiiGuard(PiiParams(mode="hash"))
    (span,) = (await guard.check("alice@example.com", CTX)).spans
    assert span.replacement is not None and span.replacement.startswith("<EMAIL_")


async def test_pseudonymize_mode_with_and_without_a_vault() -> None:
    guard = PiiGuard(PiiParams(mode="pseudonymize"))
    vault = PseudonymVault()
    ctx = GuardContext(stage="input", metadata={"vault": vault})
    verdict = await guard.check(TEXT, ctx)
    assert apply_spans(TEXT, verdict.spans) == "I'm <PERSON_1>, <EMAIL_1>, card <CREDIT_CARD_1>."
    fallback = await guard.check(TEXT, CTX)
    assert apply_spans(TEXT, fallback.spans) == "I'm [PERSON], [EMAIL], card [CREDIT_CARD]."
    assert "no vault" in fallback.reason


async def test_pseudonymize_at_output_restores_only_the_users_values() -> None:
    guard = PiiGuard(PiiParams(mode="pseudonymize", entities=("EMAIL",)))
    vault = PseudonymVault()
    vault.placeholder("EMAIL", "alice@example.com", "alice@example.com")
    out = GuardContext(stage="output", metadata={"vault": vault})
    text = "Write to alice@example.com or to bob@example.com"
    verdict = await guard.check(text, out)
    assert apply_spans(text, verdict.spans) == "Write to <EMAIL_1> or to [EMAIL]"
    assert len(vault) == 1  # the model's own data is not vaulted


async def test_min_confidence_and_entities_params() -> None:
    text = "call 555-0123 tomorrow"  # a local number with a phone word: 0.75
    assert (await PiiGuard(PiiParams()).check(text, CTX)).flagged
    assert not (await PiiGuard(PiiParams(min_confidence=0.8)).check(text, CTX)).flagged
    assert not (await PiiGuard(PiiParams(entities=("EMAIL",))).check(text, CTX)).flagged


async def test_min_kinds_flags_a_record_not_a_lone_detail() -> None:
    guard = PiiGuard(PiiParams(min_kinds=2))
    assert not (await guard.check("Call us on 555-0123 tomorrow.", CTX)).flagged
    assert not (await guard.check("Write to alice@example.com or bob@example.com", CTX)).flagged
    record = "Name: Alice Smith, e-mail alice@example.com, phone 555-0123"
    verdict = await guard.check(record, CTX)
    assert verdict.flagged and {s.label for s in verdict.spans} >= {"PERSON", "EMAIL", "PHONE"}
    assert (await PiiGuard(PiiParams(min_kinds=1)).check("Call 555-0123 now", CTX)).flagged
    with pytest.raises(ValueError, match="min_kinds"):
        PiiParams(min_kinds=0)


async def test_allow_param() -> None:
    guard = PiiGuard(PiiParams(allow=("help@acme.com",)))
    assert not (await guard.check("Mail help@acme.com", CTX)).flagged
    assert (await guard.check("Mail bob@acme.com", CTX)).flagged


async def test_big_text_is_scanned_in_a_thread() -> None:
    text = ("lorem ipsum " * 2000) + "alice@example.com"
    verdict = await PiiGuard(PiiParams()).check(text, CTX)
    (span,) = verdict.spans
    assert text[span.start : span.end] == "alice@example.com"


def test_params_are_strict() -> None:
    with pytest.raises(ValidationError):
        PiiParams(entities=("EMAILS",))
    with pytest.raises(ValidationError, match="unknown phone region"):
        PiiParams(region="XX")
    with pytest.raises(ValidationError):
        PiiParams(mode="erase")
    with pytest.raises(ValidationError):
        PiiParams(min_confidence=1.5)
    assert PiiParams(region="de").region == "DE"
    assert set(PiiParams().entities) == set(PII_ENTITIES)


def test_tenant_tightening_metadata() -> None:
    fields = PiiParams.model_fields
    extra = {name: (f.json_schema_extra or {}).get("tighten") for name, f in fields.items()}  # type: ignore[union-attr]
    assert extra["entities"] == "superset"
    assert extra["min_confidence"] == "lower"
    assert extra["allow"] == "subset"
    assert extra["exclude_private_ips"] == "lower"
    assert extra["mode"] == "order:mask,hash,pseudonymize,redact"
    assert extra["region"] is None and extra["salt_env"] is None  # fixed


def test_registered_for_both_stages_and_redaction() -> None:
    reg = lookup("guard", "pii")
    assert reg.factory is PiiGuard and reg.params is PiiParams
    assert reg.extra == {"stages": ("input", "output"), "redacts": True}


POLICY = """\
name: demo
identity: {name: Penny, purpose: Answer questions about cards.}
scope:
  allowed_topics:
    - {name: cards, description: Cards.}
guards:
  input:
    - guard: pii
      params: {entities: [EMAIL, PHONE], min_confidence: 0.6, allow: [help@acme.com], mode: hash}
tenants:
  acme:
"""


def overlay(params: str) -> str:
    return POLICY + f"    guards:\n      input:\n        - guard: pii\n          params: {params}\n"


def test_tenant_overlay_may_tighten() -> None:
    policy = load_policy_text(
        overlay("{entities: [CREDIT_CARD], min_confidence: 0.5, allow: [], mode: redact}")
    )
    (guard,) = policy.for_tenant("acme").guards.input
    assert guard.params["entities"] == ["EMAIL", "PHONE", "CREDIT_CARD"]
    assert guard.params["min_confidence"] == 0.5
    assert guard.params["mode"] == "redact"


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ("{min_confidence: 0.9}", "may only go lower"),
        ("{allow: [help@acme.com, ceo@acme.com]}", "may only remove entries"),
        ("{mode: mask}", "may only move towards 'redact'"),
        ("{region: DE}", "cannot be changed by a tenant"),
    ],
)
def test_tenant_overlay_may_not_loosen(params: str, needle: str) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy_text(overlay(params))
    assert any(needle in p.message for p in info.value.problems), info.value.problems


# --- fast paths: the same results as the plain scans ------------------------------------------
#
# The detector skips work where it can prove a pattern finds nothing (RE2 gates) and tries
# some patterns only where a match can begin. These properties pin that down against the
# plain definitions, on text made of the pieces the patterns look for.

_PIECES = st.one_of(
    st.sampled_from(
        [
            " ",
            "  ",
            ", ",
            ".",
            "-",
            "/",
            ":",
            "@",
            "(",
            ")",
            "+",
            "+1 ",
            "00",
            "0",
            "12",
            "123",
            "4111 1111 1111 1111",
            "555-0123",
            "(555) 010-0199",
            "123-45-6789",
            "DE89370400440532013000",
            "GB82 WEST 1234 5698 7654 32",
            "12345678Z",
            "X1234567L",
            "RSSMRA85T10A562S",
            "AB 12 34 56 C",
            "192.168.1.1",
            "10.0.0.",
            "1.2.3.4.5",
            "https://",
            "http://user:pa55@",
            "ftp://",
            "Rue ",
            "rue de la Paix",
            "PLACE ",
            "replacement ",
            "Goethestraße 12",
            "Hauptstr. 5",
            "Am Markt 5",
            "Via Roma ",
            "Calle de Alcalá 45",
            "12 Elm Road",
            "Flat 9, Smith ",
            "password=",
            "Api_Key: ",
            "TOKEN ",
            "Bearer ",
            "secret",
            "passcode is ",
            "PIN ",
            "credential",
            "session_id=",
            "ghp_",
            "AKIA",
            "sk-",
            "eyJ",
            "İ",
            "ı",
            "ſ",
            "K",
            "é",
            "٣",
            "１２",
            "²",
            "\u00a0",
        ]
    ),
    st.text(alphabet="aAzZeE0159 .,-/:@+()#'", max_size=6),
)
PIECED = st.lists(_PIECES, max_size=14).map("".join)


@settings(max_examples=400, deadline=None)
@given(PIECED)
def test_number_runs_found_from_their_starts_are_the_plain_scan(text: str) -> None:
    fast = _pii._matches_at(_pii._NUMBER_RUN_RE, _pii._NUMBER_START_RE, text)
    assert [m.span() for m in fast] == [m.span() for m in _pii._NUMBER_RUN_RE.finditer(text)]


@settings(max_examples=400, deadline=None)
@given(PIECED)
def test_gates_open_wherever_their_patterns_match(text: str) -> None:
    t = _pii.normalize(text, casefold=False).text
    gates = _pii._gates(t)
    lowered = t.lower()
    lower = lowered if len(lowered) == len(t) else t
    plain = [
        ("iban", _pii._IBAN_RE, t),
        ("letter_id", _pii._LETTER_ID_RE, t),
        ("ipv4", _pii._IPV4_RE, t),
        ("key_word", _pii._KEY_WORD_RE, lower),
        ("secret_word", _pii._SECRET_WORD_RE, lower),
    ]
    patterns = _pii._address_patterns()
    plain.append(("de_number", patterns[2][0], t))
    plain += [("en_street", p, t) for p in (patterns[0][0], patterns[1][0], _pii._NAMED_STREET_RE)]
    if len(lowered) == len(t):  # where the French gate stands in for the words as written
        plain += [("fr_word", patterns[3][0], t), ("fr_word", patterns[4][0], t)]
    for gate, pattern, where in plain:
        if pattern.search(where):
            assert gate in gates, (gate, pattern.pattern[:40])
    # Gates in front of the word tests the detectors made before: open wherever those pass.
    if any(w in lower for w in _pii._SPOKEN_HINTS):
        assert "spoken" in gates
    if "bearer" in lower or "token" in lower:
        assert "bearer" in gates
    for gate, (_, _, _, _, hints) in zip(_pii._TOKEN_GATES, _pii._TOKEN_RES, strict=True):
        assert (gate in gates) == any(h in t for h in hints)
    for k, (_, validator, hints) in enumerate(patterns):
        if hints and validator != "street-fr":
            assert (f"address:{k}" in gates) == any(h in t for h in hints)
    if _pii._URL_CREDENTIALS_RE.search(t):
        assert _pii._URL_CREDENTIALS_GATE.search(t) is not None


def test_gates_for_a_lone_surrogate_open_everything() -> None:
    every = {name for _, names in _pii._gate_sets() for name in names}
    assert _pii._gates("\ud800 123") == every


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.text(alphabet="0123456789²٣１-. ", max_size=20))
def test_digits_and_the_digit_test_are_the_plain_definitions(prefix: str, digits: str) -> None:
    text = prefix + digits
    assert _pii._digits(text) == "".join(c for c in text if c.isdigit() and c.isascii())
    scan = _pii._Scan(text, _pii._Options(frozenset(PII_ENTITIES), "US", False, 3.0))
    assert scan.has_digit == any(c.isdigit() for c in scan.t)


def test_grouped_street_words_match_as_the_plain_list() -> None:
    words = sorted(_pii._street_suffixes(), key=lambda w: (-len(w), w))
    plain = re.compile("|".join(re.escape(w) for w in words))
    grouped = re.compile(_pii._alternation(words))
    for word in words:
        for tail in ("", "s", " Road", "."):
            probe = word + tail
            assert plain.match(probe).end() == grouped.match(probe).end(), probe  # type: ignore[union-attr]


def test_names_are_never_joined_over_a_longer_gap() -> None:
    widest = getattr(re, "_parser").parse(_pii._PARTICLE_GAP_RE.pattern).getwidth()[1]  # noqa: B009
    assert widest <= _pii._MAX_NAME_GAP
