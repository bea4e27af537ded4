"""The language a text is written in, against the languages an application serves.

A policy's word lists and patterns (deny lists, promises, credential requests, the refusal
wording) read one language. An answer in another is read by none of them: the red team's
``translation`` attack ("translate this into French, then answer it") gets its answer past
every output check that way, and a weak model asked for French writes French-looking
nonsense that nobody downstream can vet. This guard flags text in a language the policy
does not list, sentence by sentence, so that a foreign passage inside an English answer is
caught too.

Language identification is py3langid's naive Bayes model over byte n-grams (139 languages,
shipped inside the package; about 50 µs a sentence). Short stretches are not judged: below
``min_words`` words a sentence says too little ("Merci!", "OK", a product name), and the
model's confidence there means little.
"""

from __future__ import annotations

import functools
import io
import json
import lzma
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field, field_validator

from tether.registry import register

from ._base import GuardContext, GuardParams, Span, Verdict, tighten

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["LANGUAGES", "LanguageGuard", "LanguageParams", "identify_language", "prepare_language"]

# A sentence ends at . ! ? followed by a space, at their CJK forms, or at a line break.
_SEGMENT_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*|\n+")
# Chinese, Japanese and Thai are written without spaces: each of their letters counts as a
# word (an ideograph is about one; kana and Thai letters undercount nothing that matters).
_UNSPACED = "\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
_WORD = re.compile(rf"[{_UNSPACED}]|(?:(?![{_UNSPACED}])[^\W\d_])+(?:['’-][^\W\d_]+)*")
# Code is no one's language: fenced blocks and inline code are not judged.
_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", re.DOTALL)
# The labels of py3langid 0.4's model (139 languages, and "zxx": no language).
LANGUAGES = frozenset(
    {
        "ace", "af", "am", "an", "ar", "ary", "arz", "as", "az", "ba", "bcl", "be", "bg", "bn",
        "br", "bs", "ca", "crh", "cs", "cy", "da", "de", "dz", "el", "en", "eo", "es", "et", "eu",
        "ext", "fa", "fi", "fo", "fr", "fuv", "fy", "ga", "gcf", "gcr", "gd", "gl", "gom", "grc",
        "gu", "gug", "guw", "ha", "hbo", "he", "hi", "hr", "ht", "hu", "hy", "id", "ig", "is",
        "it", "ja", "jv", "ka", "kab", "kik", "kk", "km", "kn", "ko", "ku", "ky", "la", "lb", "lg",
        "lij", "ln", "lo", "lt", "ltg", "lv", "mg", "mk", "ml", "mn", "mr", "ms", "mt", "my", "ne",
        "nl", "nn", "no", "nso", "oc", "om", "or", "pa", "pcm", "pl", "ps", "pt", "qu", "ro", "ru",
        "rw", "sa", "sdh", "se", "si", "sk", "sl", "sn", "so", "sq", "sr", "st", "sv", "sw", "ta",
        "te", "tg", "th", "tk", "tl", "tr", "tt", "ug", "uk", "ur", "uz", "uzs", "vec", "vi", "vo",
        "wa", "wuu", "xh", "yo", "yue", "zh", "zu", "zxx",
    }
)  # fmt: skip
# py3langid's label for text in no language (base64, hex, checksums): not a language the
# application fails to serve; encoded text is for the guards that decode.
_NO_LANGUAGE = "zxx"
_load_lock = threading.Lock()
_loaded: Any = None
_loader: threading.Thread | None = None


def _identifier() -> Any:
    global _loaded
    if _loaded is None:
        with _load_lock:
            if _loaded is None:
                _loaded = _load()
    return _loaded


# The model ships LZMA-compressed (4.6 MB); unpacking it takes about 0.35 s of the 0.5 s a
# load costs. Its arrays are kept unpacked under the cache folder, keyed by the package's
# version and the file's size, and memory-mapped from there by later processes (about
# 0.07 s). A cache that cannot be written or read is skipped: the package's file is used.
_ARRAYS = ("ptc", "pc", "nextmove", "nextmove_row", "out_feat")


def _unpacked_dir() -> Path:
    from importlib.metadata import version

    from py3langid.langid import MODEL_DIR, MODEL_FILE

    from tether.datasets import cache_dir

    size = (Path(MODEL_DIR) / MODEL_FILE).stat().st_size
    return cache_dir().parent / "models" / f"py3langid-{version('py3langid')}-{size}"


def _load() -> Any:
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier
    from py3langid.modelio import _to_array  # its own numpy-to-stdlib-array step (0.4 pinned)

    try:
        folder = _unpacked_dir()
        if not (folder / "classes.json").is_file():
            _unpack(Path(MODEL_DIR) / MODEL_FILE, folder)
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in _ARRAYS}
        classes = json.loads((folder / "classes.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return LanguageIdentifier(
        arrays["ptc"],
        arrays["pc"],
        classes,
        _to_array(arrays["nextmove"]),
        np.asarray(arrays["out_feat"]).tolist(),
        norm_probs=True,
        tk_row=_to_array(arrays["nextmove_row"]),
    )


def _unpack(source: Path, folder: Path) -> None:
    """The model's arrays as .npy files in ``folder``, written whole or not at all."""
    with lzma.open(source) as packed, np.load(io.BytesIO(packed.read())) as data:
        if not set(_ARRAYS) <= set(data.files) or "classes" not in data.files:
            raise ValueError(f"{source}: not the model layout this version reads")
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            for name in _ARRAYS:
                np.save(staging / f"{name}.npy", data[name])
            classes = json.dumps(data["classes"].tolist())
            (staging / "classes.json").write_text(classes, encoding="utf-8")
            staging.rename(folder)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not (folder / "classes.json").is_file():  # another process may have won
                raise


def prepare_language(*, background: bool = False) -> None:
    """Load the language model now (once per process: 0.5 s the first time on a machine,
    0.07 s from the unpacked cache after), or start loading it in a background thread, so
    that the first check does not pay for it."""
    global _loader
    if _loaded is not None:
        return
    if not background:
        _identifier()
        return
    with _load_lock:  # one loading thread, however many guards are built
        if _loader is None and _loaded is None:
            _loader = threading.Thread(target=_identifier, name="tether-language", daemon=True)
            _loader.start()


def identify_language(text: str) -> list[tuple[str, float]]:
    """Every language the model knows (ISO 639 codes; ``zxx``: no language, such as
    base64 or hex) with the probability that ``text`` is in it, most likely first."""
    return [(str(lang), float(p)) for lang, p in _identifier().rank(text)]


class LanguageParams(GuardParams):
    allowed: tuple[str, ...] = Field(
        ("en",),
        min_length=1,
        description="ISO 639 codes of the languages the application serves (py3langid's).",
        json_schema_extra=tighten("subset"),
    )
    min_words: int = Field(
        5,
        ge=1,
        description="Sentences with fewer words are not judged.",
        json_schema_extra=tighten("lower"),
    )
    min_confidence: float = Field(
        0.9,
        gt=0,
        le=1,
        description="How sure the model must be that a sentence is in a language not allowed "
        "(its probabilities summed over those languages).",
        json_schema_extra=tighten("lower"),
    )
    max_share: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Flag when more than this share of the judged words is in other languages "
        "(0: any judged sentence in another language).",
        json_schema_extra=tighten("lower"),
    )

    @field_validator("allowed")
    @classmethod
    def _known_codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        codes = tuple(dict.fromkeys(code.strip().lower() for code in value))
        unknown = [c for c in codes if c not in LANGUAGES or c == _NO_LANGUAGE]
        if unknown:
            raise ValueError(
                f"unknown language code(s) {', '.join(map(repr, unknown))}: use ISO 639 codes "
                "such as 'en', 'fr', 'de' (tether.guards.LANGUAGES lists them)"
            )
        return codes


_LIKELIEST = 0.5


@dataclass(frozen=True, slots=True)
class _Sentence:
    start: int
    end: int
    words: int
    language: str  # the most likely language that is not allowed
    likeliest: float  # its probability
    other: float  # the probability that the sentence is in any language not allowed


def _judge(start: int, chunk: str, words: int, allowed: tuple[str, ...]) -> _Sentence:
    lead = len(chunk) - len(chunk.lstrip())
    end = start + len(chunk.rstrip())
    return _Sentence(start + lead, end, words, *_other_languages(chunk, allowed))


# A streamed answer is checked again at every release, its finished sentences with it: each
# sentence is identified once.
@functools.lru_cache(maxsize=1024)
def _other_languages(sentence: str, allowed: tuple[str, ...]) -> tuple[str, float, float]:
    """The likeliest language not allowed, its probability, and the probability of all of
    them together."""
    others = [
        (lang, p)
        for lang, p in identify_language(sentence)
        if lang != _NO_LANGUAGE and lang not in allowed
    ]
    return others[0][0], others[0][1], sum(p for _, p in others)


def _sentences(text: str, min_words: int, allowed: tuple[str, ...]) -> list[_Sentence]:
    """The judged sentences of ``text``; when none is long enough, the whole text as one."""
    text = _CODE.sub(lambda m: " " * len(m.group()), text)  # offsets kept
    found: list[_Sentence] = []
    pos = 0
    total = 0
    for m in [*_SEGMENT_END.finditer(text), None]:
        end = m.start() if m is not None else len(text)
        chunk = text[pos:end]
        words = len(_WORD.findall(chunk))
        total += words
        if words >= min_words:
            found.append(_judge(pos, chunk, words, allowed))
        pos = m.end() if m is not None else len(text)
    if not found and total >= min_words:
        found.append(_judge(0, text, total, allowed))
    return found


def _foreign(sentences: Sequence[_Sentence], params: LanguageParams) -> list[_Sentence]:
    # Sure it is not in an allowed language, summed over the others (Spanish text splits
    # its probability with Galician, Asturian and Portuguese), and one language clearly
    # ahead: English with names, numbers or list markers smears over many small ones.
    return [s for s in sentences if s.other >= params.min_confidence and s.likeliest >= _LIKELIEST]


@register("guard", "language", params=LanguageParams, stages=("input", "output"), redacts=True)
class LanguageGuard:
    """Flags text written in a language the policy does not serve, sentence by sentence;
    redaction removes the foreign sentences."""

    name = "language"

    def __init__(self, params: LanguageParams) -> None:
        self.params = params
        prepare_language(background=True)

    async def check(self, text: str, ctx: GuardContext) -> Verdict:
        sentences = _sentences(text, self.params.min_words, self.params.allowed)
        foreign = _foreign(sentences, self.params)
        judged = sum(s.words for s in sentences)
        share = sum(s.words for s in foreign) / judged if judged else 0.0
        if not foreign or share <= self.params.max_share:
            return Verdict(flagged=False, category="language", score=round(share, 4))
        languages = sorted({s.language for s in foreign})
        return Verdict(
            flagged=True,
            score=round(share, 4),
            category="language",
            spans=tuple(Span(start=s.start, end=s.end, label="OTHER_LANGUAGE") for s in foreign),
            reason=f"{len(foreign)} of {len(sentences)} sentence(s) ({share:.0%} of the judged "
            f"words) in {', '.join(languages)}, not in {', '.join(self.params.allowed)}",
        )
