"""The one interface every text model implements, so a new encoder plugs in without touching the
engine, the page or the command line. An index records the `name` and `dimension` of each model that
built it (manifest "models") and refuses to be read with another."""
from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import numpy as np

from index.errors import IndexLoadError

Kind = Literal["query", "passage"]


@runtime_checkable
class TextEncoder(Protocol):
    """Texts -> L2-normalised float32 vectors, one row per text.

    `kind` says which side a text is on: asymmetric models (e5: "query: " / "passage: " prefixes)
    encode the two differently; symmetric ones (MiniLM) ignore it. An encoder may set `query_only = True`
    (the ONNX export of a model): it answers questions but an index is not built with it."""

    name: str

    @property
    def dimension(self) -> int: ...

    def load(self) -> None:
        """Load weights now (otherwise the first `encode` does); raises a PolicyQAError subclass."""
        ...

    def encode(self, texts: list[str], kind: Kind = "passage", batch_size: int = 32, progress: bool = False) -> np.ndarray: ...


def manifest_models(manifest: dict) -> list[dict]:
    """The models that built an index: [{"role", "name", "dimension"}]. Manifests written before
    "models" existed name one dense model under "model"."""
    if manifest.get("models"):
        return [dict(m) for m in manifest["models"]]
    old = manifest.get("model") or {}
    return [{"role": "dense", "name": old.get("name"), "dimension": old.get("dimension")}] if old else []


def check_models(manifest: dict, encoders: dict[str, TextEncoder], where: str = "the index") -> None:
    """Refuse to read an index with models other than those that built it: each role in `encoders`
    must be recorded with the same name and dimension. Names are compared first, so a wrong model is
    refused before it is loaded (`load()`, which the dimension may need). Raises IndexLoadError saying what to do."""
    built = {m["role"]: m for m in manifest_models(manifest)}
    for role, encoder in encoders.items():
        entry = built.get(role)
        if entry is None:
            recorded = ", ".join(sorted(built)) or "none"
            raise IndexLoadError(f"{where} has no {role} model (it records: {recorded}); "
                                 f"rebuild it with `policyqa index build`")
        if encoder.name != entry["name"]:
            raise IndexLoadError(
                f"{where} was built with model {entry['name']!r} as its {role} model but {encoder.name!r} was asked for; "
                f"use --model {entry['name']!r} or rebuild the index with `policyqa index build --model {encoder.name!r}`"
            )
        encoder.load()
        if entry.get("dimension") is not None and int(encoder.dimension) != int(entry["dimension"]):
            raise IndexLoadError(
                f"{role} model {encoder.name!r} gives {encoder.dimension}-dimensional vectors but {where} holds "
                f"{entry['dimension']}; rebuild it with `policyqa index build`"
            )
