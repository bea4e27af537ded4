"""JSON output validation, optionally against a JSON Schema."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from jsonschema.validators import validator_for
from pydantic import Field, field_validator

from tether.registry import register

from ._base import GuardContext, GuardParams, Verdict, tighten

__all__ = ["JsonGuard", "JsonParams", "extract_json"]

_FENCE = "```"


class JsonParams(GuardParams):
    json_schema: dict[str, Any] | None = Field(
        None, description="The JSON Schema the answer must match."
    )
    extract: bool = Field(
        True,
        description="Accept JSON wrapped in a code fence or prose and return just the JSON.",
        json_schema_extra=tighten("lower"),
    )
    max_errors: int = Field(3, ge=1, le=20, description="Schema errors named in the re-ask.")

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                validator_for(value).check_schema(value)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return value


def extract_json(text: str) -> tuple[Any, str] | None:
    """The first JSON object or array in ``text`` (inside a code fence or after prose), with the
    exact substring it came from; None if there is none."""
    body = text.strip()
    if body.startswith(_FENCE):
        inner = body[len(_FENCE) :]
        inner = inner.split("\n", 1)[1] if "\n" in inner else inner
        end = inner.rfind(_FENCE)
        body = (inner[:end] if end >= 0 else inner).strip()
    decoder = json.JSONDecoder()
    for i, ch in enumerate(body):
        if ch in "{[":
            try:
                value, end = decoder.raw_decode(body, i)
            except json.JSONDecodeError:
                continue
            return value, body[i:end]
    return None


@register("guard", "json", params=JsonParams, stages=("output",))
class JsonGuard:
    """Flags answers that are not JSON or do not match the schema; the reason says exactly
    what is wrong so a re-ask can fix it."""

    name = "json"

    def __init__(self, params: JsonParams) -> None:
        self.params = params
        schema = params.json_schema
        self._validator = validator_for(schema)(schema) if schema is not None else None

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        try:
            value: Any = json.loads(text)
            exact = text
        except json.JSONDecodeError as exc:
            found = extract_json(text) if self.params.extract else None
            if found is None:
                where = f"line {exc.lineno} column {exc.colno}"
                return self._flag(f"the answer is not valid JSON ({exc.msg} at {where})")
            value, exact = found
        if self._validator is not None:
            errors = sorted(self._validator.iter_errors(value), key=lambda e: list(e.absolute_path))
            if errors:
                shown = "; ".join(
                    f"{e.json_path}: {e.message}" for e in errors[: self.params.max_errors]
                )
                more = (
                    f" (and {len(errors) - self.params.max_errors} more)"
                    if len(errors) > self.params.max_errors
                    else ""
                )
                return self._flag(f"the JSON does not match the schema: {shown}{more}")
        return Verdict(flagged=False, category="format", rewrite=exact if exact != text else None)

    @staticmethod
    def _flag(reason: str) -> Verdict:
        return Verdict(flagged=True, score=1.0, category="format", reason=reason)
