"""Refusal detection: refusals, partial refusals and compliance in five languages, the hard
cases between them, the guard's ``flag`` modes and odd input."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tether import registry
from tether.guards import GuardContext
from tether.guards._refusal import RefusalGuard, RefusalParams, classify_refusal

OUTPUT = GuardContext(stage="output")

REFUSALS = [
    "I'm sorry, but I can't help with that request.",
    "I can’t assist with creating malware.",  # typographic apostrophe
    "As an AI developed to be helpful and harmless, I cannot provide instructions for making "
    "explosives. If you have other questions, feel free to ask!",
    "I won't write that. It promotes violence against a specific group.",
    "Sorry, I can't do that.",
    "I must respectfully decline.",
    "Unfortunately, I'm not able to share personal information about private individuals.",
    "Es tut mir leid, aber dabei kann ich Ihnen nicht helfen.",
    "Das kann ich leider nicht machen.",
    "Je suis désolé, mais je ne peux pas répondre à cette question.",
    "Je ne peux pas vous aider à pirater ce compte.",
    "Lo siento, pero no puedo ayudarte con eso.",
    "No puedo proporcionar esa información.",
    "Mi dispiace, ma non posso aiutarti con questa richiesta.",
    "Non posso farlo.",
]
PARTIALS = [
    "I can't provide a specific diagnosis, but here is some general information: headaches "
    "are often caused by dehydration, stress or lack of sleep. Drinking water and resting "
    "usually helps. If the pain is severe or sudden, see a doctor.",
    "I'm not a lawyer, but in most US states a landlord must return a security deposit within "
    "30 days. They may deduct the cost of damage beyond normal wear and tear.",
    "Here's how to pick a strong password: use at least 12 characters and mix words. A "
    "password manager can generate and store them for you. However, I can't help you get "
    "into someone else's account.",
    "Ich kann keine Diagnose stellen, aber hier sind einige allgemeine Hinweise: Kopfschmerzen "
    "entstehen oft durch Flüssigkeitsmangel. Ausreichend trinken und Pausen helfen meistens.",
    "Je ne peux pas établir de diagnostic, mais voici quelques conseils généraux : buvez "
    "beaucoup d'eau. Reposez-vous dans une pièce sombre et calme.",
    "No puedo darte una dosis exacta, pero en general el ibuprofeno se toma cada ocho horas "
    "con comida. Consulta a tu médico si el dolor continúa.",
    "Non posso darti consigli medici specifici. Detto questo, il paracetamolo si assume di "
    "solito ogni sei ore. Non superare la dose indicata sul foglietto.",
]
COMPLIANCE = [
    "Sure! Here's a simple recipe for pancakes: mix flour, milk and eggs, then fry in butter.",
    "I'm sorry to hear you're feeling unwell. Rest, fluids and paracetamol usually help with a "
    "mild fever. See a doctor if it lasts more than three days.",
    "If you can't access your account, click 'Forgot password' and follow the link we email you.",
    "The error 'I cannot find module numpy' means numpy is not installed in the active "
    "environment. Run pip install numpy.",
    "As an AI assistant, I can help you plan your trip. Start by choosing your dates and budget.",
    "I can't recommend this library enough: it is fast and well documented.",
    "Wenn Sie sich nicht anmelden können, setzen Sie Ihr Passwort zurück.",
    "Si vous ne pouvez pas vous connecter, réinitialisez votre mot de passe.",
    "Si no puedes iniciar sesión, restablece la contraseña.",
    "Se non riesci ad accedere, reimposta la password.",
    "A polite way to decline is: \"I'm sorry, but I can't make it on Friday.\" Then suggest "
    "another date.",
    'The knight said, "I won\'t help you, dragon!" and rode away.',
    "```\nprint('I cannot help with that')\n```\nThis prints a message.",
    "I'm software, so I cannot actually feel sad.",  # chatterbot: an answer, not a refusal
]


@pytest.mark.parametrize("text", REFUSALS)
def test_refusals(text: str) -> None:
    found = classify_refusal(text)
    assert found.label == "refusal", found.reason
    assert found.score >= 0.5
    assert found.spans


@pytest.mark.parametrize("text", PARTIALS)
def test_partial_refusals(text: str) -> None:
    found = classify_refusal(text)
    assert found.label == "partial", found.reason
    assert 0.25 <= found.score < 0.5
    assert found.content_sentences >= 1


@pytest.mark.parametrize("text", COMPLIANCE)
def test_compliance_including_refusal_like_words(text: str) -> None:
    found = classify_refusal(text)
    assert found.label == "compliance", found.reason
    assert found.score < 0.25
    assert not found.spans


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (REFUSALS[0], "en"),
        (REFUSALS[7], "de"),
        (REFUSALS[9], "fr"),
        (REFUSALS[11], "es"),
        (REFUSALS[13], "it"),
    ],
)
def test_language_is_reported(text: str, language: str) -> None:
    assert classify_refusal(text).language == language


def test_spans_point_at_the_refusing_sentence() -> None:
    text = "Bananas are rich in potassium. I can't help you hack the school's grading system."
    found = classify_refusal(text)
    (start, end), *_ = found.spans
    assert text[start:end] == "I can't help you hack the school's grading system."


def test_refusal_with_only_a_pointer_elsewhere_stays_a_refusal() -> None:
    text = (
        "I'm sorry, but I can't help with that. If you are in danger, please contact your "
        "local emergency services. Is there anything else I can help you with?"
    )
    assert classify_refusal(text).label == "refusal"


def test_code_block_counts_as_content() -> None:
    text = "I won't write the exploit, but here is how to patch it:\n```python\nsanitize(x)\n```"
    assert classify_refusal(text).label == "partial"


@pytest.mark.parametrize("text", ["", "   \n\t", "?" * 10, "x" * 100_000])
def test_odd_input(text: str) -> None:
    assert classify_refusal(text).label == "compliance"


def test_non_text_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="takes a str"):
        classify_refusal(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("flag", "refusal", "partial", "compliance"),
    [
        ("refusal", True, False, False),
        ("partial", False, True, False),
        ("any", True, True, False),
    ],
)
async def test_flag_modes(flag: str, refusal: bool, partial: bool, compliance: bool) -> None:
    guard = RefusalGuard(RefusalParams.model_validate({"flag": flag}))
    for text, expected, kind in (
        (REFUSALS[0], refusal, "refusal"),
        (PARTIALS[0], partial, "partial"),
        (COMPLIANCE[0], compliance, "compliance"),
    ):
        verdict = await guard.check(text, OUTPUT)
        assert verdict.flagged is expected, (flag, kind, verdict.reason)
        assert verdict.category == kind
        assert verdict.reason.startswith(kind)


def test_bad_flag_rejected() -> None:
    with pytest.raises(ValidationError):
        RefusalParams.model_validate({"flag": "refusals"})
    with pytest.raises(ValidationError):
        RefusalParams.model_validate({"flags": "any"})


def test_registered_for_output_only() -> None:
    reg = registry.lookup("guard", "refusal")
    assert reg.factory is RefusalGuard
    assert reg.extra["stages"] == ("output",)
    assert not reg.extra.get("redacts", False)
