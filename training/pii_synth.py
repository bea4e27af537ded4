"""Synthetic texts with labelled PII and secrets, for measuring the ``pii`` and ``secrets``
guards (benchmarks/pii.py).

Deterministic from a seed. Values come from generators that know nothing of the detector's
rules: Faker (names, street addresses, card numbers, SSNs, IBANs, e-mail addresses, IPs),
``phonenumbers`` example numbers with random subscriber digits (kept only when valid), and
random strings in each secret format. Names are drawn from two pools: Faker locales whose
name lists the detector uses ("listed") and locales it does not ("unlisted": Indian,
Dutch, Polish, Turkish, Brazilian), so recall on names the lists do not contain is
measured, not assumed. The same author wrote the detector and these templates: treat the
generated set as a regression check with hard negatives, and the presidio-evaluator
templates (written by others) as the fairer test.

Every sample carries gold spans ``(start, end, entity)``; a sample without spans is a hard
negative: something a careless detector flags (order numbers, UUIDs, version strings,
digests, placeholders such as ``YOUR_API_KEY``, capitalised words that are not names).
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import phonenumbers
from faker import Faker
from stdnum import iban as stdnum_iban

__all__ = [
    "LISTED_NAME_LOCALES",
    "PRESIDIO_TYPES",
    "UNLISTED_NAME_LOCALES",
    "Sample",
    "Values",
    "fill",
    "generate",
    "presidio_sample",
]

LISTED_NAME_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT")
UNLISTED_NAME_LOCALES = ("en_IN", "nl_NL", "pl_PL", "tr_TR", "pt_BR")
# The detector's street words include Faker's for en_US, es_ES and it_IT: the "unlisted"
# locales (Australia, New Zealand, Switzerland, Mexico) measure addresses it was not built on.
ADDRESS_LOCALES = {
    "en": "en_US", "gb": "en_GB", "de": "de_DE", "fr": "fr_FR", "es": "es_ES", "it": "it_IT",
    "au": "en_AU", "nz": "en_NZ", "ch": "de_CH", "frch": "fr_CH", "mx": "es_MX",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Sample:
    text: str
    spans: tuple[tuple[int, int, str], ...]
    family: str
    lang: str = "en"
    detail: tuple[str, ...] = field(default=())
    """Per gold span, what made it (a template family or presidio placeholder names)."""


class Values:
    """Fake values of each kind, from one random stream."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._fakers: dict[str, Faker] = {}

    def faker(self, locale: str) -> Faker:
        if locale not in self._fakers:
            fake = Faker(locale)
            fake.seed_instance(self.rng.randrange(1 << 30))
            self._fakers[locale] = fake
        return self._fakers[locale]

    # --- personal data ------------------------------------------------------------------

    def first_name(self, listed: bool = True) -> str:
        locale = self.rng.choice(LISTED_NAME_LOCALES if listed else UNLISTED_NAME_LOCALES)
        return self.faker(locale).first_name()

    def last_name(self, listed: bool = True) -> str:
        locale = self.rng.choice(LISTED_NAME_LOCALES if listed else UNLISTED_NAME_LOCALES)
        return self.faker(locale).last_name()

    def person(self, listed: bool = True) -> str:
        locale = self.rng.choice(LISTED_NAME_LOCALES if listed else UNLISTED_NAME_LOCALES)
        fake = self.faker(locale)
        return f"{fake.first_name()} {fake.last_name()}"

    def email(self) -> str:
        r = self.rng
        fake = self.faker(r.choice(LISTED_NAME_LOCALES))
        first = re.sub(r"[^a-z]", "", fake.first_name().lower()) or "sam"
        last = re.sub(r"[^a-z]", "", fake.last_name().lower()) or "lee"
        local = r.choice(
            [f"{first}.{last}", f"{first[0]}{last}", f"{first}{r.randrange(10, 99)}", f"{first}_{last}",
             f"{first}+news", last]
        )  # fmt: skip
        domain = r.choice(
            ["gmail.com", "outlook.com", "yahoo.co.uk", "web.de", "orange.fr", "libero.it",
             "acme-corp.com", "mail.example.org", "uni-heidelberg.de", "company.io", "bank.es"]
        )  # fmt: skip
        address = f"{local}@{domain}"
        return address.upper() if r.random() < 0.03 else address

    def phone(self) -> str:
        r = self.rng
        region = r.choice(
            ["US"] * 5 + ["GB", "DE", "FR", "ES", "IT", "IN", "BR", "AU", "NL", "CH", "CA"]
        )
        kind = r.choice(
            [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]
        )
        example = phonenumbers.example_number_for_type(region, kind)
        assert example is not None
        national = str(example.national_number)
        for _ in range(50):
            digits = national[:-5] + "".join(r.choice(string.digits) for _ in range(5))
            number = phonenumbers.parse(f"+{example.country_code}{digits}")
            if phonenumbers.is_valid_number(number):
                break
        else:
            number = example
        fmt = phonenumbers.PhoneNumberFormat
        if region in ("US", "CA"):
            style = r.choice(["national", "national", "dashes", "dots", "intl", "e164"])
            if style == "national":
                return phonenumbers.format_number(number, fmt.NATIONAL)
            nat = str(number.national_number)
            if style == "dashes":
                return f"{nat[:3]}-{nat[3:6]}-{nat[6:]}"
            if style == "dots":
                return f"{nat[:3]}.{nat[3:6]}.{nat[6:]}"
            return phonenumbers.format_number(
                number, fmt.INTERNATIONAL if style == "intl" else fmt.E164
            )
        style = r.choice(["intl", "intl", "e164", "00"])
        if style == "e164":
            return phonenumbers.format_number(number, fmt.E164)
        text = phonenumbers.format_number(number, fmt.INTERNATIONAL)
        return "00" + text[1:] if style == "00" else text

    def card(self) -> str:
        r = self.rng
        kind = r.choice(
            ["visa", "visa", "mastercard", "mastercard", "amex", "discover", "jcb", "diners"]
        )
        digits = self.faker("en_US").credit_card_number(kind)
        style = r.choice(["spaces", "spaces", "dashes", "plain"])
        if style == "plain":
            return digits
        sep = " " if style == "spaces" else "-"
        if len(digits) == 15:
            return sep.join([digits[:4], digits[4:10], digits[10:]])
        return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))

    def iban(self) -> str:
        r = self.rng
        locale = r.choice(
            ["en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "de_AT", "de_CH", "pl_PL"]
        )
        for _ in range(20):
            value = self.faker(locale).iban()
            if stdnum_iban.is_valid(value):
                break
        return stdnum_iban.format(value) if r.random() < 0.6 else value

    def ssn(self) -> str:
        value = self.faker("en_US").ssn()
        return value if self.rng.random() < 0.85 else value.replace("-", " ")

    def ip(self) -> str:
        r = self.rng
        fake = self.faker("en_US")
        kind = r.random()
        if kind < 0.6:
            return fake.ipv4_public()
        if kind < 0.8:
            return fake.ipv4_private()
        return str(__import__("ipaddress").IPv6Address(fake.ipv6()))

    def address(self, lang: str) -> str:
        fake = self.faker(ADDRESS_LOCALES[lang])
        text = fake.address() if self.rng.random() < 0.4 else fake.street_address()
        return ", ".join(line.strip() for line in text.splitlines() if line.strip())

    # --- secrets ------------------------------------------------------------------------

    def _random(self, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def aws_key(self) -> str:
        return "AKIA" + self._random(16, string.ascii_uppercase + "234567")

    def github_token(self) -> str:
        if self.rng.random() < 0.3:
            return f"github_pat_{self._random(22)}_{self._random(59)}"
        return self.rng.choice(["ghp_", "gho_", "ghs_"]) + self._random(36)

    def slack_token(self) -> str:
        r = self.rng
        return (
            f"xoxb-{r.randrange(10**10, 10**12)}-{r.randrange(10**10, 10**12)}-{self._random(24)}"
        )

    def stripe_key(self) -> str:
        return self.rng.choice(["sk_live_", "rk_live_", "sk_test_"]) + self._random(24)

    def openai_key(self) -> str:
        if self.rng.random() < 0.5:
            return "sk-proj-" + self._random(74, string.ascii_letters + string.digits + "_-")
        return "sk-" + self._random(48)

    def google_key(self) -> str:
        return "AIza" + self._random(35, string.ascii_letters + string.digits + "_-")

    def jwt(self) -> str:
        def part(obj: object) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

        header = part({"alg": "HS256", "typ": "JWT"})
        payload = part(
            {"sub": str(self.rng.randrange(10**6)), "iat": 1700000000 + self.rng.randrange(10**6)}
        )
        return f"{header}.{payload}.{self._random(43, string.ascii_letters + string.digits + '_-')}"

    def private_key(self) -> str:
        kind = self.rng.choice(["RSA ", "EC ", "OPENSSH ", ""])
        body = "\n".join(
            self._random(64, string.ascii_letters + string.digits + "+/") for _ in range(4)
        )
        return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"

    def password(self) -> str:
        r = self.rng
        word = r.choice(["Sunflower", "dragon", "Tr0ub4dor", "correcthorse", "Winter", "qwerty"])
        return f"{word}{r.randrange(10, 9999)}{r.choice('!#$%&*?')}"

    def generic_secret(self) -> str:
        return self._random(self.rng.choice([24, 32, 40]), string.ascii_letters + string.digits)

    def user(self) -> str:
        return self.rng.choice(["admin", "app", "deploy", "svc_reports", "postgres", "jenkins"])


# --- templates ----------------------------------------------------------------------------------

_SLOT = re.compile(r"\{([A-Z_0-9]+)\}")
# slot -> (entity, how to make the value)
_SLOTS: dict[str, tuple[str | None, Callable[[Values], str]]] = {
    "EMAIL": ("EMAIL", Values.email),
    "PHONE": ("PHONE", Values.phone),
    "CARD": ("CREDIT_CARD", Values.card),
    "IBAN": ("IBAN", Values.iban),
    "SSN": ("US_SSN", Values.ssn),
    "IP": ("IP_ADDRESS", Values.ip),
    "PERSON": ("PERSON", lambda v: v.person(True)),
    "FIRST": ("PERSON", lambda v: v.first_name(True)),
    "LAST": ("PERSON", lambda v: v.last_name(True)),
    "XPERSON": ("PERSON", lambda v: v.person(False)),
    "XFIRST": ("PERSON", lambda v: v.first_name(False)),
    "ADDR_EN": ("ADDRESS", lambda v: v.address("en")),
    "ADDR_GB": ("ADDRESS", lambda v: v.address("gb")),
    "ADDR_DE": ("ADDRESS", lambda v: v.address("de")),
    "ADDR_FR": ("ADDRESS", lambda v: v.address("fr")),
    "ADDR_ES": ("ADDRESS", lambda v: v.address("es")),
    "ADDR_IT": ("ADDRESS", lambda v: v.address("it")),
    "XADDR_AU": ("ADDRESS", lambda v: v.address("au")),
    "XADDR_NZ": ("ADDRESS", lambda v: v.address("nz")),
    "XADDR_CH": ("ADDRESS", lambda v: v.address("ch")),
    "XADDR_FRCH": ("ADDRESS", lambda v: v.address("frch")),
    "XADDR_MX": ("ADDRESS", lambda v: v.address("mx")),
    "AWS": ("AWS_ACCESS_KEY", Values.aws_key),
    "GITHUB": ("GITHUB_TOKEN", Values.github_token),
    "SLACK": ("SLACK_TOKEN", Values.slack_token),
    "STRIPE": ("STRIPE_KEY", Values.stripe_key),
    "OPENAI": ("OPENAI_KEY", Values.openai_key),
    "GOOGLE": ("GOOGLE_API_KEY", Values.google_key),
    "JWT": ("JWT", Values.jwt),
    "PEM": ("PRIVATE_KEY", Values.private_key),
    "PASSWORD": ("PASSWORD", Values.password),
    "SECRET": ("GENERIC_SECRET", Values.generic_secret),
    "USERPASS": ("URL_CREDENTIALS", lambda v: f"{v.user()}:{v.password().rstrip('#?')}"),
    "N": (None, lambda v: str(v.rng.randrange(2, 60))),
}

# (family, lang, template): every template of a family tests one thing.
_POSITIVE: tuple[tuple[str, str, str], ...] = (
    ("email", "en", "Please send the invoice to {EMAIL} by Friday."),
    ("email", "en", "You can reach me at {EMAIL} or {EMAIL}."),
    ("email", "en", "From: {PERSON} <{EMAIL}>\nSubject: meeting notes"),
    ("email", "de", "Meine E-Mail-Adresse lautet {EMAIL}, bitte antworten Sie dorthin."),
    ("email", "fr", "Écrivez-moi à {EMAIL} si besoin."),
    ("email", "en", "my email is {EMAIL} thanks"),
    ("phone", "en", "Call me at {PHONE} after 5pm."),
    ("phone", "en", "My number is {PHONE}, text is fine too."),
    ("phone", "en", "Tel: {PHONE}\nFax: {PHONE}"),
    ("phone", "en", "Please update my contact number to {PHONE}."),
    ("phone", "de", "Sie erreichen mich unter {PHONE}."),
    ("phone", "es", "Mi teléfono es {PHONE}."),
    ("phone", "en", "Reach our office on {PHONE} or the hotline {PHONE}."),
    ("card", "en", "My card number is {CARD}, expiry 04/27."),
    ("card", "en", "Please charge {CARD} for the {N} tickets."),
    ("card", "en", "I was billed twice on card {CARD} yesterday."),
    ("card", "de", "Bitte buchen Sie von meiner Karte {CARD} ab."),
    ("iban", "en", "Please transfer the deposit to {IBAN}."),
    ("iban", "en", "IBAN: {IBAN}\nBIC: DEUTDEFF"),
    ("iban", "de", "Meine IBAN lautet {IBAN}, Kontoinhaber {PERSON}."),
    ("iban", "fr", "Voici mon IBAN : {IBAN}"),
    ("ssn", "en", "My SSN is {SSN}."),
    ("ssn", "en", "Social security number: {SSN}, date of birth 1984-02-11."),
    ("ssn", "en", "For the tax form, the employee's SSN is {SSN}."),
    ("ip", "en", "We saw {N} failed logins from {IP} last night."),
    ("ip", "en", "Whitelist my home IP {IP} please."),
    ("ip", "en", "ssh deploy@{IP} -p 2222 keeps timing out"),
    ("ip", "en", "The request came from {IP}, user agent curl/8.1."),
    ("names-listed", "en", "{PERSON} will join the call tomorrow."),
    ("names-listed", "en", "Dear {FIRST},\nthanks for your quick reply."),
    ("names-listed", "en", "Hi {FIRST}, can you send me the slides?"),
    ("names-listed", "en", "I'm {PERSON} and I need help with my account."),
    ("names-listed", "en", "My name is {PERSON}."),
    ("names-listed", "en", "Meeting with {PERSON} and {PERSON} at noon."),
    ("names-listed", "en", "Please ask {FIRST} about the contract."),
    ("names-listed", "en", "Best regards,\n{PERSON}"),
    ("names-listed", "en", "Mr. {LAST} called about the refund."),
    ("names-listed", "en", "According to {PERSON}, the shipment left on Monday."),
    ("names-listed", "de", "Sehr geehrte Frau {LAST}, vielen Dank für Ihre Nachricht."),
    ("names-listed", "fr", "Je m'appelle {PERSON} et j'ai une question."),
    ("names-listed", "es", "Me llamo {PERSON}, necesito ayuda."),
    ("names-listed", "it", "Mi chiamo {PERSON} e vorrei chiudere il conto."),
    ("names-listed", "en", "{FIRST} said the report is late again."),
    ("names-unlisted", "en", "{XPERSON} will join the call tomorrow."),
    ("names-unlisted", "en", "Dear {XFIRST},\nthanks for your quick reply."),
    ("names-unlisted", "en", "My name is {XPERSON}."),
    ("names-unlisted", "en", "Meeting with {XPERSON} at noon."),
    ("names-unlisted", "en", "Best regards,\n{XPERSON}"),
    ("names-unlisted", "en", "According to {XPERSON}, the shipment left on Monday."),
    ("names-unlisted", "en", "Please ask {XFIRST} about the contract."),
    ("address", "en", "Please ship it to {ADDR_EN}."),
    ("address", "en", "I moved to {ADDR_EN} last month."),
    ("address", "en", "Billing address: {ADDR_GB}"),
    ("address", "de", "Bitte liefern Sie an {ADDR_DE}."),
    ("address", "de", "Meine neue Adresse: {ADDR_DE}"),
    ("address", "fr", "Mon adresse est {ADDR_FR}."),
    ("address", "fr", "Livraison au {ADDR_FR}, merci."),
    ("address", "es", "Mi dirección es {ADDR_ES}."),
    ("address", "es", "Envíelo a {ADDR_ES}, por favor."),
    ("address", "it", "Il mio indirizzo è {ADDR_IT}."),
    ("address", "it", "Spedire a {ADDR_IT}."),
    ("address-unlisted", "en", "Please ship it to {XADDR_AU}."),
    ("address-unlisted", "en", "I moved to {XADDR_NZ} last month."),
    ("address-unlisted", "de", "Bitte liefern Sie an {XADDR_CH}."),
    ("address-unlisted", "fr", "Mon adresse est {XADDR_FRCH}."),
    ("address-unlisted", "es", "Mi dirección es {XADDR_MX}."),
    ("keys", "en", "export AWS_ACCESS_KEY_ID={AWS}"),
    ("keys", "en", "here is my github token {GITHUB}, can you check why it fails?"),
    ("keys", "en", "SLACK_BOT_TOKEN={SLACK}"),
    ("keys", "en", 'stripe.api_key = "{STRIPE}"'),
    ("keys", "en", "OPENAI_API_KEY={OPENAI}\nMODEL=gpt-4o"),
    ("keys", "en", "Maps key: {GOOGLE}"),
    ("keys", "en", "curl -H 'Authorization: Bearer {JWT}' https://api.example.com/v1/me"),
    ("keys", "en", "I pasted {GITHUB} into the CI settings by mistake"),
    ("private_key", "en", "Here is the deploy key:\n{PEM}\nwhy doesn't ssh accept it?"),
    ("credentials", "en", "DATABASE_URL=postgres://{USERPASS}@db.internal:5432/app"),
    ("credentials", "en", "git clone https://{USERPASS}@git.example.com/team/repo.git"),
    ("password", "en", "db:\n  host: localhost\n  password: {PASSWORD}\n"),
    ("password", "en", "my password is {PASSWORD} but it doesn't work"),
    ("password", "en", "SMTP_PASSWORD={PASSWORD}"),
    ("generic_secret", "en", 'client_secret = "{SECRET}"'),
    ("generic_secret", "en", "api_key: {SECRET}"),
    ("generic_secret", "en", "The webhook secret is {SECRET}, keep it safe."),
)

_NEGATIVE: tuple[tuple[str, str], ...] = (
    ("order", "Order #4031557812 shipped yesterday, tracking 1Z999AA10123456784."),
    ("order", "Invoice INV-2023-000123 is due on 2024-05-01."),
    ("order", "Your ticket number is 558812, reference 2025-0098."),
    ("order", "Part number 555-0123 is out of stock."),
    ("order", "Customer ID 8675309112 was merged into account 1100293847."),
    ("card-like", "Reference 4111 1111 1111 1112 does not pass the check."),
    ("card-like", "The serial is 1234 5678 9012 3456."),
    ("iban-like", "GB00 WEST 1234 5698 7654 32 is not a valid IBAN."),
    ("ssn-like", "Test values 000-12-3456, 666-12-3456 and 900-12-3456 are never issued."),
    ("ssn-like", "Group 00 as in 123-00-4567 is invalid."),
    ("version", "Upgrade Windows to 10.0.19041.1 before installing."),
    ("version", "Requires Python 3.11.7 and Chrome 120.0.6099.109 or later."),
    ("version", "The OID 1.3.6.1.4.1.311 identifies the vendor; v1.2.3 fixed it."),
    ("version", "Bump the package from 2.4.1 to 2.5.0."),
    ("network", "Use 127.0.0.1 or 0.0.0.0 and the netmask 255.255.255.0."),
    ("network", "The MAC address is 00:1A:2B:3C:4D:5E and the time 10:30:45."),
    ("code", "std::vector<int> v; auto it = v.begin();"),
    ("code", "tokenizer = AutoTokenizer.from_pretrained('bert-base-uncased'); max_tokens=4096"),
    ("code", "token_count: 1234\npassword_policy: strict\nsecret_santa: true"),
    ("digest", "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 fixed the build"),
    ("digest", "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (
        "digest",
        "md5 5d41402abc4b2a76b9719d911017c592, request id 3f2b8c1e-9d4a-4b7e-8f1a-2c3d4e5f6a7b",
    ),
    ("placeholder", "Set api_key=YOUR_API_KEY and password: ******** in the config."),
    ("placeholder", "Use postgres://user:password@localhost:5432/db for local testing."),
    (
        "placeholder",
        "Tokens look like ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx or sk-... in the docs.",
    ),
    ("placeholder", "export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY}"),
    ("numbers", "The total was $1,234,567.89, or € 1.234,56 per unit."),
    ("numbers", "We met on 12/05/2023 at 14:30 and scored 3.14159265."),
    ("numbers", "Coordinates 40.7128, -74.0060; ISBN 978-3-16-148410-0."),
    ("numbers", "Counts: 1 2 3 4 5 6 7 8 9 10 and 1700000000 seconds."),
    ("emails", "The retina asset is icon@2x.png; ping @alice in the channel."),
    ("words", "Capitalized words like Wisdom and Discipline are often mistaken with names."),
    ("words", "Will you help? May I ask about the New York Times article on Apple Watch sales?"),
    ("words", "The Great Gatsby and War and Peace are on the reading list for Monday."),
    ("words", "Microsoft Teams and Google Docs are both fine for the Quarterly Review."),
    ("words", "A token of appreciation; the secret of good bread is time."),
    ("words", "Happy New Year from the Customer Support Team!"),
    ("places", "I flew from Paris to Florence and watched Chelsea play on Sunday."),
    (
        "places",
        "We met at Times Square, walked through Central Park and took the train to Jersey City.",
    ),
    ("places", "The Virginia office moved next to the Lincoln Memorial."),
)

_FILLER = (
    "Thanks in advance.",
    "Let me know if you need anything else.",
    "I have been a customer for years.",
    "This is the third time I am asking.",
    "The app crashed again this morning.",
    "Could you check what went wrong?",
    "Sorry for the long message.",
    "Our team meets every Tuesday.",
)


def fill(template: str, values: Values) -> tuple[str, list[tuple[int, int, str]], list[str]]:
    """The template with each {SLOT} filled, the gold spans of the filled slots, and the
    slot name of each span."""
    out: list[str] = []
    spans: list[tuple[int, int, str]] = []
    slots: list[str] = []
    pos = 0
    length = 0
    for m in _SLOT.finditer(template):
        literal = template[pos : m.start()]
        out.append(literal)
        length += len(literal)
        entity, make = _SLOTS[m.group(1)]
        value = make(values)
        if entity is not None:
            spans.append((length, length + len(value), entity))
            slots.append(m.group(1))
        out.append(value)
        length += len(value)
        pos = m.end()
    out.append(template[pos:])
    return "".join(out), spans, slots


def generate(n: int = 2000, *, seed: int = 7, negatives: float = 0.3) -> list[Sample]:
    """``n`` samples: positives from every family in turn, hard negatives mixed in, some
    padded with filler sentences so the entity sits inside ordinary text."""
    rng = random.Random(seed)
    values = Values(rng)
    out: list[Sample] = []
    for i in range(n):
        if rng.random() < negatives:
            family, text = _NEGATIVE[i % len(_NEGATIVE)]
            out.append(Sample(text, (), f"negative:{family}"))
            continue
        family, lang, template = _POSITIVE[i % len(_POSITIVE)]
        text, spans, slots = fill(template, values)
        if lang == "en" and rng.random() < 0.4:
            prefix = rng.choice(_FILLER) + " "
            text = prefix + text + " " + rng.choice(_FILLER)
            spans = [(s + len(prefix), e + len(prefix), k) for s, e, k in spans]
        out.append(Sample(text, tuple(spans), family, lang, tuple(slots)))
    return out


# --- presidio-evaluator templates ----------------------------------------------------------------

# Placeholder names of the presidio-evaluator templates -> entity scored here (None: not
# scored; a detection there counts neither way).
PRESIDIO_TYPES: dict[str, str | None] = {
    "person": "PERSON", "name": "PERSON", "name_female": "PERSON", "name_male": "PERSON",
    "first_name": "PERSON", "first_name_female": "PERSON", "first_name_male": "PERSON",
    "first_name_nonbinary": "PERSON", "last_name": "PERSON", "last_name_female": "PERSON",
    "last_name_male": "PERSON", "address": "ADDRESS", "street_name": "ADDRESS",
    "building_number": "ADDRESS", "secondary_address": "ADDRESS", "city": "LOCATION",
    "state_abbr": "LOCATION", "postcode": "LOCATION", "zipcode": "LOCATION", "country": "LOCATION",
    "credit_card_number": "CREDIT_CARD", "iban": "IBAN", "phone_number": "PHONE", "email": "EMAIL",
    "ip_address": "IP_ADDRESS", "ssn": "US_SSN",
}  # fmt: skip
_PRESIDIO_SLOT = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}|\{([A-Za-z_]+)\}")
_STREET_PARTS = {"address", "street_name", "building_number"}


def presidio_sample(template: str, values: Callable[[str, int], str], family: str) -> Sample:
    """A presidio-evaluator template filled by ``values(placeholder, occurrence)``, with gold
    spans. Adjacent address parts (separated by spaces or commas) form one ADDRESS; a group
    without a street (a city alone, a flat number alone) is LOCATION, which is not scored."""
    parts: list[tuple[int, int, str, str | None]] = []  # start, end, key, entity
    out: list[str] = []
    seen: dict[str, int] = {}
    pos = length = 0
    for m in _PRESIDIO_SLOT.finditer(template):
        literal = template[pos : m.start()]
        out.append(literal)
        length += len(literal)
        key = (m.group(1) or m.group(2)).lower()
        value = values(key, seen.get(key, 0))
        seen[key] = seen.get(key, 0) + 1
        parts.append((length, length + len(value), key, PRESIDIO_TYPES.get(key)))
        out.append(value)
        length += len(value)
        pos = m.end()
    out.append(template[pos:])
    text = "".join(out)
    spans: list[tuple[int, int, str]] = []
    detail: list[str] = []
    for group in _groups(text, parts):
        keys = {k for _, _, k, _ in group}
        entity = group[0][3]
        if entity in ("ADDRESS", "LOCATION"):
            entity = "ADDRESS" if keys & _STREET_PARTS else "LOCATION"
        if entity is not None:
            spans.append((group[0][0], group[-1][1], entity))
            detail.append("+".join(k for _, _, k, _ in group))
    return Sample(text, tuple(spans), family, detail=tuple(detail))


def _groups(
    text: str, parts: list[tuple[int, int, str, str | None]]
) -> Iterator[list[tuple[int, int, str, str | None]]]:
    group: list[tuple[int, int, str, str | None]] = []
    place = {"ADDRESS", "LOCATION"}
    for part in parts:
        if group:
            last = group[-1]
            gap = text[last[1] : part[0]]
            person = last[3] == part[3] == "PERSON" and gap == " "
            address = (
                last[3] in place
                and part[3] in place
                and re.fullmatch(r"[ ,]{0,3}\n?[ ,]{0,3}", gap)
            )
            if person or address:
                group.append(part)
                continue
            yield group
        group = [part]
    if group:
        yield group
