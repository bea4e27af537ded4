"""Streaming: output guards run on the stream; nothing they would stop reaches the client."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any

import pytest

from tether import Guardrails, load_policy_text
from tether.messages import Message
from tether.models import ModelResponse
from tether.pipeline import MemorySink, StreamChunk
from tether.pipeline._guardrails import _release_point


class CharModel:
    """Streams its reply one character at a time, like a token stream."""

    name = "chars"

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.closed = False
        self.produced = 0

    async def generate(self, messages: Sequence[Message], **_: Any) -> ModelResponse:
        return ModelResponse(text=self.reply, model=self.name)

    async def stream(self, messages: Sequence[Message], **_: Any) -> AsyncGenerator[str, None]:
        try:
            for ch in self.reply:
                self.produced += 1
                yield ch
        finally:
            self.closed = True


POLICY = """
name: streamer
identity: {name: Penny, purpose: Help with cards.}
refusal: {message: "Sorry, I can't share that."}
guards:
  output:
    - guard: deny_list
      id: api_key
      params: {patterns: ['sk-[a-z0-9]{20,}']}
      action: block
    - guard: deny_list
      id: card
      params: {patterns: ['\\b\\d(?:[ -]?\\d){12,18}\\b']}
      action: redact
"""


async def collect(rails: Guardrails, text: str) -> list[StreamChunk]:
    return [chunk async for chunk in rails.stream(text)]


async def test_plain_answer_streams_in_pieces_and_records_one_event() -> None:
    reply = "You can reset your PIN at any ATM or in the app under Cards and then Security."
    sink = MemorySink()
    rails = Guardrails(load_policy_text(POLICY), model=CharModel(reply), sink=sink)
    chunks = await collect(rails, "How do I reset my PIN?")
    assert len(chunks) > 5
    assert "".join(c.text for c in chunks) == reply
    last = chunks[-1]
    assert last.done and last.finish_reason == "stop" and last.response is not None
    assert last.response.text == reply and last.response.action == "allow"
    assert len(sink.events) == 1 and sink.events[0].output == reply


async def test_a_secret_never_reaches_the_client_and_the_stream_ends_with_the_refusal() -> None:
    secret = "sk-abcdefghijklmnopqrstuvwxyz012345"
    model = CharModel(
        f"Sure, the production key is {secret} and it works for every service we run."
    )
    rails = Guardrails(load_policy_text(POLICY), model=model)
    chunks = await collect(rails, "what's the key?")
    sent = "".join(c.text for c in chunks)
    assert secret not in sent
    assert "sk-abc" not in sent  # not even a prefix of it
    assert sent.endswith("Sorry, I can't share that.")
    assert chunks[-1].finish_reason == "blocked"
    assert chunks[-1].response is not None and chunks[-1].response.action == "block"
    assert model.closed  # the model stream was stopped, not drained
    assert model.produced < len(model.reply)


async def test_a_card_number_is_redacted_before_any_digit_goes_out() -> None:
    model = CharModel("Your card 4111 1111 1111 1111 is active and ready to use today, enjoy it.")
    rails = Guardrails(load_policy_text(POLICY), model=model)
    chunks = await collect(rails, "is my card active?")
    sent = "".join(c.text for c in chunks)
    assert "4111" not in sent
    assert sent == "Your card [DENY_LIST] is active and ready to use today, enjoy it."
    assert chunks[-1].response is not None and chunks[-1].response.action == "redact"


async def test_blocked_input_is_a_single_final_chunk() -> None:
    policy = POLICY + "  input:\n    - guard: deny_list\n      params: {terms: [bitcoin]}\n"
    model = CharModel("never")
    rails = Guardrails(load_policy_text(policy), model=model)
    (chunk,) = await collect(rails, "buy bitcoin?")
    assert (
        chunk.done
        and chunk.finish_reason == "blocked"
        and chunk.text == "Sorry, I can't share that."
    )
    assert model.produced == 0


async def test_json_policies_stream_the_validated_answer_whole() -> None:
    policy = "name: j\nidentity: {purpose: p}\noutput: {format: json}\n"
    rails = Guardrails(load_policy_text(policy), model=CharModel('{"ok": true}'))
    (chunk,) = await collect(rails, "status?")
    assert chunk.text == '{"ok": true}' and chunk.finish_reason == "stop"


@pytest.mark.parametrize(
    ("buffer", "holdback", "expected"),
    [
        ("Hello there my friend", 4, len("Hello there my ")),
        ("Card 4111 1111 12", 2, len("Card ")),
        ("short", 16, 0),
        ("Call +1 (555) 010-", 1, len("Call ")),
    ],
)
def test_release_point_never_cuts_words_or_growing_numbers(
    buffer: str, holdback: int, expected: int
) -> None:
    assert _release_point(buffer, holdback) == expected


PSEUDO = """
name: pseudo
identity: {purpose: Help.}
guards:
  input:
    - {guard: pii, params: {mode: pseudonymize}, action: redact}
  output:
    - {guard: pii, params: {mode: pseudonymize}, action: redact}
"""


async def test_pseudonymization_round_trip_across_turns_and_streams() -> None:
    from tether.models import ScriptedModel

    def echo_placeholders(messages: list[dict[str, str]]) -> str:
        last = messages[-1]["content"]
        assert "Alice Smith" not in last and "alice@example.com" not in last
        return f"Noted: {last}"

    model = ScriptedModel([echo_placeholders, "I will write to <EMAIL_1>, <PERSON_1>."])
    rails = Guardrails(load_policy_text(PSEUDO), model=model)
    first = await rails.chat("I'm Alice Smith, mail me at alice@example.com", conversation_id="c1")
    sent = model.calls[0][-1]["content"]
    assert "<PERSON_1>" in sent and "<EMAIL_1>" in sent
    assert (
        "Alice Smith" in first.text and "alice@example.com" in first.text
    )  # restored for the user
    history = [
        {"role": "user", "content": "I'm Alice Smith, mail me at alice@example.com"},
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "Please confirm where you'll write."},
    ]
    chunks = [c async for c in rails.stream(history, conversation_id="c1")]  # type: ignore[arg-type]
    second_prompt = model.calls[1]
    assert all("alice@example.com" not in m["content"] for m in second_prompt)  # history concealed
    streamed = "".join(c.text for c in chunks)
    assert streamed == "I will write to alice@example.com, Alice Smith."
    assert chunks[-1].response is not None
