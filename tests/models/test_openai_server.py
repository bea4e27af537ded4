from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from tether.errors import ModelError, ModelHTTPError
from tether.messages import Message
from tether.models import OpenAICompatibleModel

pytestmark = pytest.mark.server

HELLO: list[Message] = [{"role": "user", "content": "Say hello in one short sentence."}]


@pytest.fixture(params=["httpx", "aiohttp"])
async def smollm2(
    openai_server: str, request: pytest.FixtureRequest
) -> AsyncIterator[OpenAICompatibleModel]:
    model = OpenAICompatibleModel(
        "smollm2", base_url=openai_server, api_key="", connection_pool=request.param
    )
    yield model
    await model.aclose()


async def test_generate(smollm2: OpenAICompatibleModel) -> None:
    response = await smollm2.generate(HELLO, temperature=0, max_tokens=16, seed=1)
    assert response.text.strip()
    assert response.model == "openai:smollm2"
    assert response.usage.prompt_tokens > 0
    assert 0 < response.usage.completion_tokens <= 16
    assert response.finish_reason in {"stop", "length"}


async def test_stream_matches_generate(smollm2: OpenAICompatibleModel) -> None:
    chunks = [c async for c in smollm2.stream(HELLO, temperature=0, max_tokens=16, seed=1)]
    assert len(chunks) > 1
    whole = await smollm2.generate(HELLO, temperature=0, max_tokens=16, seed=1)
    assert "".join(chunks) == whole.text


async def test_overlong_prompt_is_a_400_with_the_servers_message(
    smollm2: OpenAICompatibleModel,
) -> None:
    overlong: list[Message] = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(ModelHTTPError, match=r"answered 400 Bad Request: .*context") as caught:
        await smollm2.generate(overlong, max_tokens=4)
    assert caught.value.status == 400


async def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        model = OpenAICompatibleModel("m", base_url=base_url, max_retries=1, backoff_s=0.01)
        with pytest.raises(
            ModelError, match=f"could not reach {base_url}/chat/completions after 2"
        ):
            await model.generate(HELLO)
        await model.aclose()
