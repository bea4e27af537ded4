"""Local sentence embeddings: all-MiniLM-L6-v2 in numpy, offline, with an LRU cache."""

from ._cache import CacheInfo
from ._minilm import (
    EMBEDDING_DIM,
    INSTALL_MODEL,
    MAX_TOKENS,
    Embedder,
    Window,
    cosine,
    default_embedder,
)

__all__ = [
    "EMBEDDING_DIM",
    "INSTALL_MODEL",
    "MAX_TOKENS",
    "CacheInfo",
    "Embedder",
    "Window",
    "cosine",
    "default_embedder",
]
