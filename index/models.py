"""The one interface every text model implements, so a new encoder plugs in without touching the
engine, the page or the command line. An index records the `name` and `dimension` of each model that
built it (manifest "models") and refuses to be read with another."""
from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import numpy as np

Kind = Literal["query", "passage"]


@runtime_checkable
class TextEncoder(Protocol):
    """Texts -> L2-normalised float32 vectors, one row per text.

    `kind` says which side a text is on: asymmetric models (e5: "query: " / "passage: " prefixes)
    encode the two differently; symmetric ones (MiniLM) ignore it."""

    name: str

    @property
    def dimension(self) -> int: ...

    def load(self) -> None:
        """Load weights now (otherwise the first `encode` does); raises a PolicyQAError subclass."""
        ...

    def encode(self, texts: list[str], kind: Kind = "passage", batch_size: int = 32, progress: bool = False) -> np.ndarray: ...
