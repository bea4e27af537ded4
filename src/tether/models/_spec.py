"""Model spec strings, as policy files and the CLI name models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from tether import registry
from tether.errors import ConfigError

from ._protocol import ChatModel
from ._scripted import read_replies

__all__ = ["load_model"]

_FORMS = (
    "embedded, embedded:/path/to/model.gguf, openai:MODEL, openai:MODEL@http://host:port/v1, "
    "anthropic:MODEL, anthropic:MODEL@https://host, scripted:/path/to/replies.yaml"
)
# Settings a caller may give for any model; those a model does not take are left out.
_HINTS = ("timeout_s", "connection_pool")
_KIND = re.compile(r"[A-Za-z][\w.-]*")
# Lazy model part, so a model id may itself contain '@' and a URL may carry user:password@.
_MODEL_AT_URL = re.compile(r"(?P<model>.+?)@(?P<base_url>https?://.+)")


def load_model(spec: str, **settings: Any) -> ChatModel:
    """The model a spec names, built through the component registry.

    Specs: ``embedded``, ``embedded:PATH``, ``openai:MODEL`` (base URL from ``$OPENAI_BASE_URL``,
    else OpenAI's), ``openai:MODEL@BASE_URL``, ``anthropic:MODEL`` (``$ANTHROPIC_BASE_URL``,
    else Anthropic's), ``anthropic:MODEL@BASE_URL`` and ``scripted:FILE``; a plugin's model kind is
    named bare. ``settings`` are further parameters of the model. Two are hints that a model
    without them ignores: ``timeout_s`` (the embedded model does not time out) and
    ``connection_pool`` (only the HTTP clients have one).
    """
    kind, colon, argument = spec.strip().partition(":")
    if not _KIND.fullmatch(kind) or (colon and not argument):
        raise _malformed(spec)
    registration = registry.lookup("model", kind)
    params = _spec_params(spec, kind, argument)
    both = sorted(params.keys() & settings.keys())
    if both:
        raise ConfigError(f"model spec {spec!r} already sets {', '.join(both)}; drop the setting")
    accepted = registration.params.model_fields if registration.params is not None else {}
    for hint in _HINTS:
        if hint not in accepted:
            settings.pop(hint, None)
    try:
        validated = registration.validate_params({**params, **settings})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'parameters'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigError(f"model spec {spec!r}: {problems}") from exc
    model = registration.factory(**(dict(validated) if validated is not None else {}))
    if not isinstance(model, ChatModel):
        raise ConfigError(f"model '{kind}' built a {type(model).__name__}, which is no ChatModel")
    return model


def _spec_params(spec: str, kind: str, argument: str) -> dict[str, Any]:
    """The parameters the part after ``kind:`` stands for."""
    if kind == "embedded":
        return {"model_path": argument} if argument else {}
    if kind in ("openai", "anthropic"):
        if not argument:
            raise _malformed(spec)
        if "@" not in argument:
            return {"model": argument}
        match = _MODEL_AT_URL.fullmatch(argument)
        if match is None:
            raise ConfigError(
                f"model spec {spec!r}: the base URL after '@' must start with http:// or https://"
            )
        return match.groupdict()
    if kind == "scripted":
        if not argument:
            raise _malformed(spec)
        return {"replies": read_replies(argument)}
    if argument:
        raise ConfigError(f"model spec {spec!r}: model '{kind}' takes nothing after ':'")
    return {}


def _malformed(spec: str) -> ConfigError:
    return ConfigError(f"malformed model spec {spec!r}; use one of: {_FORMS}")
