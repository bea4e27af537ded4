"""Writing a trained artifact and its report, shared by the training scripts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def write_artifact(
    artifact: Path, report: Path, payload: bytes, report_data: dict[str, Any]
) -> str:
    """Write the artifact and a JSON report that names its sha256; returns the short digest."""
    artifact.parent.mkdir(parents=True, exist_ok=True)
    artifact.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()[:12]
    report.write_text(
        json.dumps({**report_data, "artifact_sha256": digest}, indent=1, sort_keys=True) + "\n"
    )
    return digest
