"""The component registry that built-ins and plugins share.

Built-in guards and models register exactly like third-party ones: with :func:`register` at
import time, in modules loaded through the entry-point group ``tether.plugins`` (tether's own
``builtins`` entry point is loaded first, and also directly, so a source checkout works).
Each registration records the pydantic model of its parameters, so a component named in a
policy file or an event can be validated and rebuilt by name.
"""

from __future__ import annotations

import difflib
import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from tether.errors import ConfigError, UnknownComponentError

__all__ = [
    "ENTRY_POINT_GROUP",
    "Kind",
    "Registration",
    "load_plugins",
    "lookup",
    "register",
    "registered",
]

ENTRY_POINT_GROUP = "tether.plugins"
_BUILTINS = "tether._builtins"

Kind = Literal["guard", "model", "mutator"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Registration:
    """What one ``register`` call recorded."""

    kind: Kind
    name: str
    factory: Callable[..., Any]
    params: type[BaseModel] | None
    summary: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def validate_params(self, params: Mapping[str, Any]) -> BaseModel | None:
        """Validate raw parameters; raises pydantic's ``ValidationError`` on bad input."""
        if self.params is None:
            if params:
                raise ConfigError(f"{self.kind} '{self.name}' takes no parameters")
            return None
        return self.params.model_validate(dict(params))


_registry: dict[tuple[Kind, str], Registration] = {}
_lock = threading.Lock()
_loaded = False


def register(
    kind: Kind, name: str, *, params: type[BaseModel] | None = None, **extra: Any
) -> Callable[[T], T]:
    """Class or function decorator that registers a component under ``(kind, name)``."""

    def decorator(obj: T) -> T:
        doc = (getattr(obj, "__doc__", None) or "").strip()
        summary = doc.splitlines()[0] if doc else ""
        key = (kind, name)
        existing = _registry.get(key)
        if existing is not None and existing.factory is not obj:
            raise ConfigError(
                f"{kind} '{name}' is registered twice ({_qualname(existing.factory)} and "
                f"{_qualname(obj)}); rename one of them"
            )
        _registry[key] = Registration(
            kind=kind,
            name=name,
            factory=obj,  # type: ignore[arg-type]
            params=params,
            summary=summary,
            extra=dict(extra),
        )
        return obj

    return decorator


def load_plugins() -> None:
    """Import the built-ins and every module in the ``tether.plugins`` entry-point group, once."""
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        importlib.import_module(_BUILTINS)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.value == _BUILTINS:
                continue
            try:
                ep.load()
            except Exception as exc:
                raise ConfigError(
                    f"plugin '{ep.name}' ({ep.value}) in entry-point group "
                    f"'{ENTRY_POINT_GROUP}' failed to load: {exc}"
                ) from exc
        _loaded = True


def lookup(kind: Kind, name: str) -> Registration:
    """The registration for ``name``; an unknown name raises with the closest known names."""
    load_plugins()
    found = _registry.get((kind, name))
    if found is not None:
        return found
    known = sorted(n for k, n in _registry if k == kind)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise UnknownComponentError(
        f"unknown {kind} '{name}'{hint} (known: {', '.join(known) or 'none'})"
    )


def registered(kind: Kind) -> list[Registration]:
    """Every registration of ``kind``, sorted by name."""
    load_plugins()
    return sorted((r for (k, _), r in _registry.items() if k == kind), key=lambda r: r.name)


def _qualname(obj: object) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
