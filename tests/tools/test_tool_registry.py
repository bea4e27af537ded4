"""@tool: JSON Schemas from type hints and docstrings, validation, running."""

from __future__ import annotations

import asyncio
import datetime
import importlib
import pkgutil
from typing import Literal

import pytest
from pydantic import BaseModel

import tether.tools
from tether.errors import ConfigError
from tether.tools import Tool, ToolArgumentsError, Toolset, infer_outward, parse_docstring, tool


@tool(side_effect="read")
def lookup(account: str, limit: int = 10, kind: Literal["debit", "credit"] = "debit") -> str:
    """Look up transactions.

    More detail that is still part of the description.

    Args:
        account: The account number,
            eight digits.
        limit (int): How many to return.
        kind: Debits or credits.

    Returns:
        The transactions.
    """
    return f"{account}:{limit}:{kind}"


@tool(name="notify-customer", outward=False)
async def notify(text: str) -> dict[str, str]:
    """Notify the customer.

    :param text: What to say.
    :returns: nothing useful
    """
    await asyncio.sleep(0)
    return {"sent": text}


def test_schema_from_hints_and_google_docstring() -> None:
    schema = lookup.openai_schema()
    assert schema["type"] == "function"
    fn = schema["function"]
    assert fn["name"] == "lookup"
    assert fn["description"].startswith("Look up transactions.\n\nMore detail")
    params = fn["parameters"]
    assert params["required"] == ["account"]
    assert params["additionalProperties"] is False
    assert params["properties"]["account"] == {
        "type": "string",
        "description": "The account number, eight digits.",
    }
    assert params["properties"]["limit"]["type"] == "integer"
    assert params["properties"]["limit"]["default"] == 10
    assert params["properties"]["kind"]["enum"] == ["debit", "credit"]
    assert "title" not in str(params)  # pydantic's generated titles are noise for a model
    assert lookup.side_effect == "read"
    assert lookup.parameter_names == ("account", "limit", "kind")


def test_rest_docstring_and_overrides() -> None:
    assert notify.name == "notify-customer"
    assert notify.side_effect == "destructive"  # unclassified tools are the most harmful kind
    assert notify.outward is False
    props = notify.openai_schema()["function"]["parameters"]["properties"]
    assert props["text"]["description"] == "What to say."
    assert notify.openai_schema("Custom words.")["function"]["description"] == "Custom words."


def test_parse_docstring_edge_cases() -> None:
    assert parse_docstring(None) == ("", {})
    desc, params = parse_docstring("Only a line.")
    assert desc == "Only a line." and params == {}
    desc, params = parse_docstring(
        """Do it.

        Arguments:
            *items: Things.
            **opts: Options.
        Raises:
            ValueError: never documented as a parameter.
        """
    )
    assert desc == "Do it."
    assert params == {"items": "Things.", "opts": "Options."}


def test_validate_converts_and_reports_every_problem() -> None:
    assert lookup.validate({"account": "1", "limit": "5"}) == {
        "account": "1",
        "limit": 5,
        "kind": "debit",
    }
    with pytest.raises(ToolArgumentsError) as info:
        lookup.validate({"limit": "many", "kind": "both", "extra": 1})
    message = str(info.value)
    assert "account: missing (it is required)" in message
    assert "limit: Input should be a valid integer" in message
    assert "kind:" in message
    assert "extra: no such parameter" in message


async def test_run_sync_and_async_tools() -> None:
    assert await lookup.run({"account": "9", "limit": 2, "kind": "credit"}) == "9:2:credit"
    assert await notify.run({"text": "hi"}) == '{"sent": "hi"}'
    assert lookup("1", 2) == "1:2:debit"  # still a plain function


async def test_run_times_out() -> None:
    @tool(side_effect="read", timeout_s=0.01)
    async def slow() -> str:
        """Slow."""
        await asyncio.sleep(1)
        return "late"

    with pytest.raises(TimeoutError):
        await slow.run({})


def test_bad_definitions_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="parameter 'x' has no type hint"):

        @tool
        def untyped(x) -> str:  # type: ignore[no-untyped-def]
            return str(x)

    with pytest.raises(ConfigError, match=r"\*args cannot be described"):

        @tool
        def variadic(*args: int) -> str:
            return ""

    with pytest.raises(ConfigError, match="must be 1-64 lower-case letters"):
        tool(name="Bad Name")(lambda: "")

    with pytest.raises(ConfigError, match="two tools are named 'lookup'"):
        Toolset([lookup, lookup])
    with pytest.raises(ConfigError, match="is not a tool"):
        Toolset([len])  # type: ignore[list-item]


def test_from_schema_gates_but_cannot_run() -> None:
    remote = Tool.from_schema(
        "post_message",
        {"type": "object", "properties": {"to": {"type": "string"}}, "required": ["to"]},
        side_effect="write",
    )
    assert remote.validate({"to": "x"}) == {"to": "x"}
    with pytest.raises(ToolArgumentsError, match="'to' is a required property"):
        remote.validate({})
    with pytest.raises(ConfigError, match="only is gated"):
        asyncio.run(remote.run({"to": "x"}))
    with pytest.raises(ConfigError, match="not a valid JSON Schema"):
        Tool.from_schema("x", {"type": "nonsense"})


@pytest.mark.parametrize(
    ("name", "outward"),
    [
        ("send_email", True),
        ("postToSlack", True),
        ("fetch_url", True),
        ("webhook", True),
        ("get_balance", False),
        ("list_messages", False),
        ("get_posts", False),
    ],
)
def test_infer_outward(name: str, outward: bool) -> None:
    assert infer_outward(name) is outward


def test_tools_public_surface() -> None:
    exported = tether.tools.__all__
    key = lambda n: (0 if n.isupper() else 1 if n[:1].isupper() else 2, n)
    assert exported == sorted(exported, key=key)
    for name in exported:
        assert hasattr(tether.tools, name)
    for info in pkgutil.iter_modules(tether.tools.__path__):
        assert info.name.startswith("_"), info.name
        importlib.import_module(f"tether.tools.{info.name}")


class Payee(BaseModel):
    name: str
    account: str


async def test_rich_parameter_types_round_trip_through_json() -> None:
    seen: list[object] = []

    @tool(side_effect="write")
    def schedule(payee: Payee, on: datetime.date, tags: list[str] | None = None) -> str:
        """Schedule a payment."""
        seen.extend([payee, on, tags])
        return "scheduled"

    args = schedule.validate({"payee": {"name": "A", "account": "1"}, "on": "2025-01-31"})
    assert args == {"payee": {"name": "A", "account": "1"}, "on": "2025-01-31", "tags": None}
    assert await schedule.run(args) == "scheduled"
    assert seen == [Payee(name="A", account="1"), datetime.date(2025, 1, 31), None]
    schema = schedule.openai_schema()["function"]["parameters"]
    assert schema["properties"]["on"]["format"] == "date"
    assert "Payee" in schema["$defs"]
