"""The embedded model continues a conversation that ends with a partial assistant message."""

from __future__ import annotations

import pytest

from tether.messages import Message
from tether.models import EmbeddedModel
from tether.pipeline._recovery import supports_prefill

pytestmark = pytest.mark.embedded

COUNT: list[Message] = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Count from 1 to 10, separated by commas."},
]
PRIMED: list[Message] = [*COUNT, {"role": "assistant", "content": "1, 2, 3, 4,"}]


@pytest.fixture(scope="module")
def smollm2() -> EmbeddedModel:
    return EmbeddedModel()


async def test_the_reply_continues_the_opener(smollm2: EmbeddedModel) -> None:
    assert supports_prefill(smollm2)
    plain = await smollm2.generate(COUNT, temperature=0, max_tokens=12, seed=1)
    primed = await smollm2.generate(PRIMED, temperature=0, max_tokens=12, seed=1)
    # Only the continuation comes back: the count goes on from where the opener stopped.
    assert primed.text.startswith(" 5, 6")
    assert not plain.text.startswith(" 5")
    # The open turn is in the prompt: the opener's tokens, without an end-of-turn token.
    assert primed.usage.prompt_tokens > plain.usage.prompt_tokens
    assert 0 < primed.usage.completion_tokens <= 12


async def test_a_primed_stream_matches_generate(smollm2: EmbeddedModel) -> None:
    whole = await smollm2.generate(PRIMED, temperature=0, max_tokens=12, seed=1)
    pieces = [p async for p in smollm2.stream(PRIMED, temperature=0, max_tokens=12, seed=1)]
    assert "".join(pieces) == whole.text
