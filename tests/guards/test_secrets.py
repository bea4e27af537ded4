"""The secrets guard: key formats, private keys, credentials, passwords, entropy, near misses."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import ValidationError

# Importing the module registers the guards (until tether._builtins imports it).
from tether.guards._base import GuardContext
from tether.guards._pii import SECRET_ENTITIES, SecretsGuard, SecretsParams, find_pii, mask
from tether.pipeline import apply_spans
from tether.registry import lookup

CTX = GuardContext(stage="input")
ALNUM = "aB3dE5gH7jK9mN1pQ2rS4tU6vW8xY0zC"  # 32 characters, every class, no repeats to speak of


def found(text: str, **kwargs: object) -> list[tuple[str, str]]:
    return [
        (m.entity, m.text)
        for m in find_pii(text, entities=SECRET_ENTITIES, min_confidence=0.5, **kwargs)  # type: ignore[arg-type]
    ]


def jwt() -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': '42'})}.{ALNUM}xyz"


TOKENS = [
    ("AWS_ACCESS_KEY", "AKIA" + "Q2RS4TU6VW3XY7ZB"),
    ("GITHUB_TOKEN", "ghp_" + ALNUM + "Lm4n"),
    ("GITHUB_TOKEN", "github_pat_" + ALNUM[:22] + "_" + (ALNUM * 2)[:59]),
    ("GITLAB_TOKEN", "glpat-" + ALNUM[:20]),
    ("SLACK_TOKEN", "xoxb-123456789012-123456789012-" + ALNUM[:24]),
    ("SLACK_WEBHOOK", "https://hooks.slack.com/services/T0123ABCD/B0123ABCD/" + ALNUM[:24]),
    ("STRIPE_KEY", "sk_live_" + ALNUM[:24]),
    ("OPENAI_KEY", "sk-proj-" + ALNUM + ALNUM),
    ("OPENAI_KEY", "sk-" + ALNUM + ALNUM[:16]),
    ("ANTHROPIC_KEY", "sk-ant-api03-" + (ALNUM * 3)[:95]),
    ("GOOGLE_API_KEY", "AIza" + ALNUM + "_-q"),
    ("NPM_TOKEN", "npm_" + ALNUM + "Ab1c"),
    ("HUGGINGFACE_TOKEN", "hf_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZaBcDeFgH"),
    ("SENDGRID_KEY", "SG." + ALNUM[:22] + "." + (ALNUM * 2)[:43]),
    ("JWT", jwt()),
]


@pytest.mark.parametrize(("entity", "token"), TOKENS)
def test_known_formats(entity: str, token: str) -> None:
    assert found(f"here it is: {token} (do not share)") == [(entity, token)]


def test_private_key_block_is_one_span() -> None:
    body = "\n".join([ALNUM * 2] * 3)
    key = f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"
    text = f"my deploy key:\n{key}\nwhy does ssh reject it?"
    assert found(text) == [("PRIVATE_KEY", key)]
    cut = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n"  # pasted without its footer
    (match,) = find_pii("key: " + cut + "thanks", entities=("PRIVATE_KEY",))
    assert match.text.startswith("-----BEGIN OPENSSH") and "thanks" not in match.text
    masked = mask(match)
    assert masked == "-----BEGIN OPENSSH PRIVATE KEY-----\n***"  # no key material


def test_public_keys_and_certificates_are_not_secrets() -> None:
    assert found(f"-----BEGIN PUBLIC KEY-----\n{ALNUM}\n-----END PUBLIC KEY-----") == []
    assert found(f"-----BEGIN CERTIFICATE-----\n{ALNUM}\n-----END CERTIFICATE-----") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "DATABASE_URL=postgres://app:Tr0ub4dor99@db:5432/x",
            [("URL_CREDENTIALS", "app:Tr0ub4dor99")],
        ),
        (
            "git clone https://deploy:gh5ecret!@git.example.com/r.git",
            [("URL_CREDENTIALS", "deploy:gh5ecret!")],
        ),
        ("db:\n  password: Sunflower42!\n", [("PASSWORD", "Sunflower42!")]),
        ('dbPassword="hunter2x"', [("PASSWORD", "hunter2x")]),
        ("SMTP_PASSWORD=qwerty2770", [("PASSWORD", "qwerty2770")]),
        ("my password is hunter22 but it fails", [("PASSWORD", "hunter22")]),
        ("mein Passwort ist Sommer2024", [("PASSWORD", "Sommer2024")]),
        (f'client_secret = "{ALNUM}"', [("GENERIC_SECRET", ALNUM)]),
        (
            "api_key: 5f4dcc3b5aa765d61d8327deb882cf99",
            [("GENERIC_SECRET", "5f4dcc3b5aa765d61d8327deb882cf99")],
        ),
        (f"Authorization: Bearer {ALNUM}", [("GENERIC_SECRET", ALNUM)]),
        (f"the webhook secret is {ALNUM}, keep it", [("GENERIC_SECRET", ALNUM)]),
    ],
)
def test_credentials_passwords_and_generic_secrets(
    text: str, expected: list[tuple[str, str]]
) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "request id 3f2b8c1e-9d4a-4b7e-8f1a-2c3d4e5f6a7b failed",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 fixed it",
        "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "md5 5d41402abc4b2a76b9719d911017c592",
        "the token hash is 5d41402abc4b2a76b9719d911017c592",  # a digest near "token"
        "Set api_key=YOUR_API_KEY and password: ******** in the config.",
        "Use postgres://user:password@localhost:5432/db for local testing.",
        "export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY}",
        "password=DB_PASSWORD",
        "Tokens look like ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx or sk-... in the docs.",
        "AKIAXXXXXXXXXXXXXXXX is the placeholder",
        "tokenizer = AutoTokenizer.from_pretrained('bert-base-uncased'); max_tokens=4096",
        "token_count: 1234\npassword_policy: strict\nbypass: enabled",
        "A token of appreciation; the secret of good bread is time.",
        "my password is secret",
        "eyJub3QiOiJqd3QifQ.eyJzdWIiOiI0MiJ9.aB3dE5gH7jK9mN1pQ2rS",  # header without alg/typ
        "/usr/local/lib/python3.11/site-packages/tokenizers/implementations",
        "",
    ],
)
def test_near_misses(text: str) -> None:
    assert found(text) == []


def test_min_entropy() -> None:
    text = "the api key is xxxxyyyy11112222zzzz"  # five symbols: 2.3 bits a character
    assert found(text, min_entropy=3.0) == []
    assert found(text, min_entropy=1.5) == [("GENERIC_SECRET", "xxxxyyyy11112222zzzz")]


@pytest.mark.parametrize(
    "text",
    [
        "\u202e" + "ghp_" + ALNUM + "Lm4n",
        "ｇｈｐ＿" + ALNUM + "Lm4n",
        "x" * 100_000 + " token " + ALNUM,
    ],
)
def test_odd_input(text: str) -> None:
    for m in find_pii(text, entities=SECRET_ENTITIES):
        assert text[m.start : m.end] == m.text


async def test_modes() -> None:
    token = "ghp_" + ALNUM + "Lm4n"
    text = f"token {token} and password: Hunter2Hunter2"
    redact = await SecretsGuard(SecretsParams()).check(text, CTX)
    assert apply_spans(text, redact.spans) == "token [GITHUB_TOKEN] and password: [PASSWORD]"
    assert redact.category == "secrets" and token not in redact.reason
    masked = await SecretsGuard(SecretsParams(mode="mask")).check(text, CTX)
    assert apply_spans(text, masked.spans) == "token ghp_*** and password: ***"
    hashed = await SecretsGuard(SecretsParams(mode="hash")).check(text, CTX)
    assert apply_spans(text, hashed.spans).startswith("token <GITHUB_TOKEN_")


async def test_url_credentials_mask_keeps_the_host() -> None:
    text = "postgres://app:Tr0ub4dor99@db.internal:5432/app"
    verdict = await SecretsGuard(SecretsParams(mode="mask")).check(text, CTX)
    assert apply_spans(text, verdict.spans) == "postgres://a***:***@db.internal:5432/app"


def test_params_and_registration() -> None:
    with pytest.raises(ValidationError):
        SecretsParams(entities=("AWS_KEY",))
    extra = {
        name: (f.json_schema_extra or {}).get("tighten")  # type: ignore[union-attr]
        for name, f in SecretsParams.model_fields.items()
    }
    assert extra["entities"] == "superset" and extra["min_entropy"] == "lower"
    reg = lookup("guard", "secrets")
    assert reg.factory is SecretsGuard
    assert reg.extra == {"stages": ("input", "output"), "redacts": True}
