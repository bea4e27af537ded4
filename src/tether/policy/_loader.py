"""Load policy YAML with a map from every field back to its file, line and column."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from tether.errors import PolicyError, Problem

from ._schema import Policy

__all__ = [
    "PolicySource",
    "SourceMap",
    "format_path",
    "load_policy",
    "load_policy_text",
    "parse_yaml",
    "problems_from_validation",
]

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class SourceMap:
    """Where each field of one YAML document sits: path → (line, column), both 1-based."""

    file: str
    positions: Mapping[PathKey, tuple[int, int]] = field(default_factory=dict)

    def problem(
        self, path: Sequence[str | int], message: str, *, shown: str | None = None
    ) -> Problem:
        """A problem at ``path``, located at the deepest part of the path the file has."""
        key = tuple(path)
        while key and key not in self.positions:
            key = key[:-1]
        line, col = self.positions.get(key, (None, None))
        return Problem(
            message, self.file, line, col, shown if shown is not None else format_path(path)
        )


@dataclass(frozen=True)
class PolicySource:
    """The files a policy came from: the base file and, per tenant, where its overlay lives."""

    base: SourceMap
    tenants: Mapping[str, tuple[SourceMap, PathKey]] = field(default_factory=dict)

    def problem(self, path: Sequence[str | int], message: str) -> Problem:
        """Locate ``path`` (a path in the merged document, ``tenants.<t>...`` included)."""
        if len(path) >= 2 and path[0] == "tenants" and path[1] in self.tenants:
            smap, prefix = self.tenants[str(path[1])]
            return smap.problem((*prefix, *path[2:]), message, shown=format_path(path))
        return self.base.problem(path, message)


def format_path(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_policy(path: str | Path) -> Policy:
    """Load and fully check a policy file, its tenant overlay files and its guard parameters.

    Raises :class:`PolicyError` listing every problem found, each with file:line.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError([Problem("policy file not found", str(p))]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([Problem(f"cannot read policy file: {exc}", str(p))]) from None
    return load_policy_text(text, file=str(p), base_dir=p.parent)


def load_policy_text(text: str, *, file: str = "<policy>", base_dir: Path | None = None) -> Policy:
    """Like :func:`load_policy`, from a string; overlay file paths resolve against ``base_dir``."""
    data, smap = parse_yaml(text, file)
    if not isinstance(data, dict):
        raise PolicyError([Problem("a policy must be a YAML mapping (key: value lines)", file, 1)])
    problems: list[Problem] = []
    if "tenant" in data:
        problems.append(
            smap.problem(("tenant",), "set by choosing a tenant (--tenant), not in a file")
        )
        data = {k: v for k, v in data.items() if k != "tenant"}
    tenants_src: dict[str, tuple[SourceMap, PathKey]] = {}
    raw_tenants = data.get("tenants")
    if isinstance(raw_tenants, dict):
        resolved: dict[Any, Any] = {}
        for name, value in raw_tenants.items():
            if isinstance(value, str):
                overlay_path = (base_dir or Path.cwd()) / value
                try:
                    overlay_text = overlay_path.read_text(encoding="utf-8")
                except OSError as exc:
                    problems.append(
                        smap.problem(
                            ("tenants", name), f"cannot read overlay file {value!r}: {exc.strerror}"
                        )
                    )
                    continue
                try:
                    overlay, overlay_map = parse_yaml(overlay_text, str(overlay_path))
                except PolicyError as exc:
                    problems.extend(exc.problems)
                    continue
                if overlay is None:
                    overlay = {}
                resolved[name] = overlay
                tenants_src[str(name)] = (overlay_map, ())
            else:
                resolved[name] = value
                tenants_src[str(name)] = (smap, ("tenants", name))
        data = {**data, "tenants": resolved}
    source = PolicySource(smap, tenants_src)
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problems_from_validation(exc, source, Policy))
        raise PolicyError(problems) from None
    if problems:
        raise PolicyError(problems)
    policy._source = source
    from ._tenants import check_policy  # late: it consults the component registry

    check_policy(policy)
    return policy


def parse_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document, recording where each key sits; duplicate keys are problems."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise PolicyError([Problem("the file is empty", file, 1)])
        positions: dict[PathKey, tuple[int, int]] = {}
        problems: list[Problem] = []
        _walk(node, (), positions, problems, file)
        if problems:
            raise PolicyError(problems)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        raise PolicyError([Problem(f"invalid YAML: {what}", file, line, col)]) from None
    except yaml.YAMLError as exc:
        raise PolicyError([Problem(f"invalid YAML: {exc}", file)]) from None
    finally:
        loader.dispose()
    return data, SourceMap(file, positions)


def _walk(
    node: yaml.Node,
    path: PathKey,
    positions: dict[PathKey, tuple[int, int]],
    problems: list[Problem],
    file: str,
) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key: Any = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(
                    Problem(
                        f"duplicate key {key!r} (first on line {seen[key]})",
                        file,
                        line,
                        key_node.start_mark.column + 1,
                        format_path((*path, key)),
                    )
                )
                continue
            seen[key] = line
            child = (*path, key)
            positions[child] = (line, key_node.start_mark.column + 1)
            _walk(value_node, child, positions, problems, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = (*path, i)
            positions[child] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _walk(item, child, positions, problems, file)


def _problems_from_validation(
    exc: ValidationError, source: PolicySource, root: type[BaseModel], prefix: PathKey = ()
) -> list[Problem]:
    out: list[Problem] = []
    for err in exc.errors():
        loc = (*prefix, *_clean_loc(err["loc"]))
        out.append(source.problem(loc, _friendly(err, root, loc[len(prefix) :])))
    return out


def problems_from_validation(
    exc: ValidationError, source: PolicySource | None, path: PathKey, root: type[BaseModel]
) -> list[Problem]:
    """Problems for a validation error of a sub-object (guard params) found at ``path``."""
    src = source or PolicySource(SourceMap("<policy>"))
    return _problems_from_validation(exc, src, root, path)


def _clean_loc(loc: tuple[str | int, ...]) -> PathKey:
    # Pydantic adds the tag of function validators and union branches to locations; drop them.
    return tuple(
        p for p in loc if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))
    )


def _friendly(err: ErrorDetails, root: type[BaseModel], loc: PathKey) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        name = loc[-1] if loc else "?"
        known = _field_names(root, loc[:-1])
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        listing = f" (allowed: {', '.join(sorted(known))})" if known and not close else ""
        return f"unknown field '{name}'{hint}{listing}"
    if kind == "missing":
        return "required field is missing"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    given = err.get("input")
    if kind not in ("value_error", "assertion_error") and not isinstance(given, dict | list):
        shown = repr(given)
        msg += f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
    return msg


def _field_names(model: type[BaseModel], loc: PathKey) -> list[str]:
    """The field names allowed at ``loc`` inside ``model`` (best effort, for did-you-mean)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            f = _fields_by_name(current).get(str(part))
            if f is None:
                return []
            current = f.annotation
        elif typing.get_origin(current) in (tuple, list):
            current = typing.get_args(current)[0]
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(_fields_by_name(current))
    return []


def _fields_by_name(model: type[BaseModel]) -> dict[str, Any]:
    """Fields as a file spells them: by alias where one is set."""
    return {f.alias or name: f for name, f in model.model_fields.items()}


def _unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation
