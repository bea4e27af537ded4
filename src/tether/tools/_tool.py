"""Tools: typed Python functions the model may call, described by JSON Schemas built from
their signatures and docstrings."""

from __future__ import annotations

import asyncio
import difflib
import inspect
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, cast, get_type_hints, overload

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from tether.errors import ConfigError
from tether.policy import SideEffect

__all__ = [
    "Tool",
    "ToolArgumentsError",
    "Toolset",
    "infer_outward",
    "parse_docstring",
    "tool",
]

DEFAULT_TIMEOUT_S = 30.0
# OpenAI's rule for function names, lower-cased like every name in a policy.
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# Name parts that mean a tool sends data somewhere: its arguments are checked for data copied
# from untrusted content when the policy does not say whether the tool is outward.
_OUTWARD_WORDS = frozenset(
    {
        "send",
        "post",
        "email",
        "mail",
        "publish",
        "upload",
        "webhook",
        "http",
        "url",
        "share",
        "tweet",
        "notify",
        "sms",
        "forward",
        "reply",
        "submit",
    }
)
_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Returns?|Raises|Yields|Examples?|Notes?)"
    r"\s*:\s*$"
)
_GOOGLE_PARAM = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_REST_PARAM = re.compile(r"^:param\s+(?:[^:]+\s+)?(\w+)\s*:\s*(.*)$")
_ARG_SECTIONS = frozenset({"args", "arguments", "parameters", "params", "keyword args"})


class ToolArgumentsError(ValueError):
    """Arguments that do not fit a tool's parameters; the message lists each problem."""


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """The description (text before the first section) and each parameter's description, from a
    Google-style ``Args:`` section or reST ``:param name:`` lines."""
    lines = inspect.cleandoc(doc or "").splitlines()
    description: list[str] = []
    params: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    indent: int | None = None
    for line in lines:
        stripped = line.strip()
        heading = _SECTION.match(stripped) if not line.startswith(" ") else None
        if heading:
            section, current, indent = heading.group(1).lower(), None, None
            continue
        rest = _REST_PARAM.match(stripped)
        if rest:
            section, current = "rest", rest.group(1)
            params[current] = rest.group(2).strip()
            continue
        if section is None:
            description.append(line)
        elif section in _ARG_SECTIONS:
            depth = len(line) - len(line.lstrip())
            found = _GOOGLE_PARAM.match(stripped)
            if found and stripped and (indent is None or depth <= indent):
                indent, current = depth, found.group(1).lstrip("*")
                params[current] = found.group(2).strip()
            elif current is not None and stripped:
                params[current] = f"{params[current]} {stripped}".strip()
        elif section == "rest" and current is not None and stripped and line.startswith(" "):
            params[current] = f"{params[current]} {stripped}"
        elif section == "rest" and stripped.startswith(":"):
            current = None  # :returns:, :raises: and the like
    return "\n".join(description).strip(), params


def infer_outward(name: str) -> bool:
    """Whether a tool's name says it sends data out (send, post, e-mail, URL, webhook ...)."""
    parts = re.split(r"[_\-.\s]+|(?<=[a-z])(?=[A-Z])", name)
    return any(part.lower() in _OUTWARD_WORDS for part in parts)


def _tidy(node: Any) -> Any:
    """A JSON Schema without pydantic's generated titles (noise in the model's prompt)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "title" and isinstance(value, str):
                continue
            if key in ("properties", "$defs") and isinstance(value, dict):
                out[key] = {k: _tidy(v) for k, v in value.items()}
            else:
                out[key] = _tidy(value)
        return out
    if isinstance(node, list):
        return [_tidy(x) for x in node]
    return node


def _pydantic_message(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "arguments"
        if error["type"] == "missing":
            problems.append(f"{where}: missing (it is required)")
        elif error["type"] == "extra_forbidden":
            problems.append(f"{where}: no such parameter")
        else:
            problems.append(f"{where}: {error['msg']} (got {error.get('input')!r})")
    return "; ".join(problems)


class Tool:
    """A function the model may call, and what the gate needs to know about it.

    Make one with :func:`tool`; ``Tool.from_schema`` describes a tool that runs elsewhere (a
    client's tool behind the gateway) so its calls can be gated but not run here. Calling a
    ``Tool`` calls the function."""

    def __init__(
        self,
        fn: Callable[..., Any] | None,
        *,
        name: str,
        description: str,
        parameters: dict[str, Any],
        side_effect: SideEffect,
        untrusted: bool,
        outward: bool | None,
        timeout_s: float,
        arguments_model: type[BaseModel] | None = None,
    ) -> None:
        if not _NAME.match(name):
            raise ConfigError(
                f"tool name {name!r} must be 1-64 lower-case letters, digits, _ or - "
                "(pass name=... to @tool)"
            )
        self.fn = fn
        self.name = name
        self.description = description
        self.parameters = parameters
        self.side_effect: SideEffect = side_effect
        self.untrusted = untrusted
        self.outward = outward
        self.timeout_s = timeout_s
        self._model = arguments_model
        self._validator = None if arguments_model is not None else Draft202012Validator(parameters)

    @classmethod
    def from_schema(
        cls,
        name: str,
        parameters: Mapping[str, Any],
        *,
        description: str = "",
        side_effect: SideEffect = "destructive",
        untrusted: bool = False,
        outward: bool | None = None,
    ) -> Tool:
        """A tool known only by its JSON Schema (it cannot be run here, only gated)."""
        schema = dict(parameters) or {"type": "object", "properties": {}}
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise ConfigError(
                f"tool '{name}': parameters are not a valid JSON Schema: {exc.message}"
            ) from None
        return Tool(
            None,
            name=name,
            description=description,
            parameters=schema,
            side_effect=side_effect,
            untrusted=untrusted,
            outward=outward,
            timeout_s=DEFAULT_TIMEOUT_S,
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fn is None:
            raise ConfigError(f"tool '{self.name}' has no implementation here; it only is gated")
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Tool {self.name} ({self.side_effect})>"

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(self.parameters.get("properties", {}))

    def openai_schema(self, description: str | None = None) -> dict[str, Any]:
        """The tool as OpenAI's ``tools`` parameter lists it."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": description or self.description,
                "parameters": self.parameters,
            },
        }

    def validate(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments checked against the parameters, defaults filled in, as JSON values
        (what the gate, approvals and the audit record hold); raises
        :class:`ToolArgumentsError` naming every problem."""
        if self._model is not None:
            try:
                return self._model.model_validate(dict(arguments)).model_dump(mode="json")
            except ValidationError as exc:
                raise ToolArgumentsError(_pydantic_message(exc)) from None
        assert self._validator is not None
        errors = sorted(self._validator.iter_errors(dict(arguments)), key=lambda e: list(e.path))
        if errors:
            raise ToolArgumentsError(
                "; ".join(
                    f"{'.'.join(str(p) for p in e.path) or 'arguments'}: {e.message}"
                    for e in errors
                )
            )
        return dict(arguments)

    async def run(self, arguments: Mapping[str, Any]) -> str:
        """Call the function with arguments :meth:`validate` returned (converted back to the
        parameters' types); the result as text for the model (strings as they are, anything
        else as JSON). Sync functions run in a worker thread."""
        if self.fn is None:
            raise ConfigError(f"tool '{self.name}' has no implementation here; it only is gated")
        fn = self.fn
        kwargs = dict(arguments)
        if self._model is not None:  # back to the parameters' own types (dates, models ...)
            try:
                typed = self._model.model_validate(kwargs)
            except ValidationError as exc:
                raise ToolArgumentsError(_pydantic_message(exc)) from None
            kwargs = {name: getattr(typed, name) for name in type(typed).model_fields}
        async with asyncio.timeout(self.timeout_s):
            if inspect.iscoroutinefunction(fn):
                result = await fn(**kwargs)
            else:
                result = await asyncio.to_thread(fn, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
        if isinstance(result, str):
            return result
        return json.dumps(result, ensure_ascii=False, default=str)


def _arguments_model(fn: Callable[..., Any], name: str) -> tuple[type[BaseModel], str]:
    description, docs = parse_docstring(fn.__doc__)
    try:
        hints = get_type_hints(fn)
    except NameError as exc:
        raise ConfigError(
            f"tool '{name}': cannot resolve a type hint ({exc}); define the types its "
            "parameters use at module level"
        ) from None
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigError(
                f"tool '{name}': *{param.name} cannot be described to a model; "
                "give each parameter a name and a type"
            )
        if param.name not in hints:
            raise ConfigError(
                f"tool '{name}': parameter '{param.name}' has no type hint; "
                "the model needs one to call the tool"
            )
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (hints[param.name], Field(default, description=docs.get(param.name)))
    model = create_model(f"{name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    return cast(type[BaseModel], model), description


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    side_effect: SideEffect = "destructive",
    untrusted: bool = False,
    outward: bool | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    side_effect: SideEffect = "destructive",
    untrusted: bool = False,
    outward: bool | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a typed function (sync or async) a tool the model may call.

    The JSON Schema of its parameters comes from the type hints (pydantic), their descriptions
    from the docstring's ``Args:`` section (or ``:param x:`` lines), the tool's description
    from the docstring's first part. ``side_effect`` is ``read``, ``write`` or
    ``destructive`` (the default, so that a tool nobody classified needs approval);
    ``untrusted`` marks tools whose results are untrusted content (web pages, e-mail,
    documents); ``outward`` marks tools that send data out (unset: guessed from the name).
    The policy lists which tools a model may use and may reclassify them.
    """

    def wrap(func: Callable[..., Any]) -> Tool:
        tool_name = name or func.__name__
        model, doc_description = _arguments_model(func, tool_name)
        return Tool(
            func,
            name=tool_name,
            description=description or doc_description,
            parameters=_tidy(model.model_json_schema()),
            side_effect=side_effect,
            untrusted=untrusted,
            outward=outward,
            timeout_s=timeout_s,
            arguments_model=model,
        )

    return wrap(fn) if fn is not None else wrap


class Toolset:
    """Tools by name (names are unique)."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for item in tools:
            if not isinstance(item, Tool):
                raise ConfigError(
                    f"{item!r} is not a tool: decorate the function with @tether.tool"
                )
            if item.name in self._tools:
                raise ConfigError(f"two tools are named '{item.name}'; rename one")
            self._tools[item.name] = item

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._tools)

    def closest(self, name: str) -> str | None:
        """The known name closest to ``name`` (for "did you mean")."""
        found = difflib.get_close_matches(name, list(self._tools), n=1)
        return found[0] if found else None
