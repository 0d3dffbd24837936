"""Export the query encoder to ONNX at index time, so that asking needs neither torch nor
sentence-transformers (their import alone costs ~6 s; onnxruntime + tokenizers cost ~0.1 s).

The exported graph is the whole sentence-transformers pipeline after tokenisation: the transformer,
mean (or CLS) pooling over the attention mask and L2 normalisation, so `index.onnx_encoder` only
tokenises and runs it. An export is checked against sentence-transformers before it is used
(cosine >= MIN_COSINE on probe texts, batched and padded, short and past max_seq_length).

Exports are cached once per model per machine (POLICYQA_ENCODER_CACHE, default
~/.cache/policyqa/encoders/<model>-<key>/) and hard-linked into every index version built with
that model: an index directory is then self-contained (ship it and it answers without torch), a
rebuild or `policyqa add` costs a link instead of a ~3 s export and 90 MB of writes, and the
versions of one directory share one copy on disk. Needs torch and the `onnx` package (build time
only); without them the index is built as before and asking falls back to sentence-transformers.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from index.errors import PolicyQAError
from index.onnx_encoder import CONFIG_FILE, FILES, MODEL_FILE, TOKENIZER_FILE, OnnxQueryEncoder
from index.paths import cache_dir

EXPORT_VERSION = 2  # bump when the exported graph or encoder.json changes meaning
OPSET = 17
MIN_COSINE = 0.9999
PROBES = [
    "can JapanWork share my data with partners?",
    "Who is responsible for protecting my personal information?",
    "ok",
    "",
    "Personal information will not be provided to third parties without the consent of the user, except " * 30,
]


class ExportError(PolicyQAError, RuntimeError):
    """The model cannot be exported (or the export disagrees with sentence-transformers)."""


def cache_root() -> Path:
    if os.environ.get("POLICYQA_ENCODER_CACHE"):
        return Path(os.environ["POLICYQA_ENCODER_CACHE"])
    return cache_dir() / "encoders"


def export_key(model: str) -> str:
    """Name of the cached export of `model`: changes when the model's files or this exporter change."""
    from index.embed import resolve_model

    path = Path(resolve_model(model))
    h = hashlib.sha256(f"{EXPORT_VERSION}\0{model}\0{path}".encode())
    if path.exists():
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            st = f.stat()
            h.update(f"{f.relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", model.rsplit("/", 1)[-1])[:60]
    return f"{slug}-{h.hexdigest()[:16]}"


def is_complete(directory: Path) -> bool:
    return all((Path(directory) / f).is_file() for f in FILES)


def _st_model(encoder):
    try:
        return encoder._load()
    except AttributeError as e:
        raise ExportError(f"{type(encoder).__name__} is not a sentence-transformers encoder") from e


def _pooling(model) -> str:
    modules = list(model)
    kinds = [type(m).__name__ for m in modules]
    if len(modules) < 2 or kinds[0] != "Transformer" or kinds[1] != "Pooling" or any(k != "Normalize" for k in kinds[2:]):
        raise ExportError(f"only Transformer + Pooling (+ Normalize) models are exported, not {kinds}")
    pooling = modules[1]
    mode = getattr(pooling, "pooling_mode", None) or (
        "mean" if getattr(pooling, "pooling_mode_mean_tokens", False) else
        "cls" if getattr(pooling, "pooling_mode_cls_token", False) else "other"
    )
    mode = {"mean_tokens": "mean", "cls_token": "cls"}.get(mode, mode)
    if mode not in ("mean", "cls"):
        raise ExportError(f"pooling {mode!r} is not exported (mean and cls are)")
    return mode


def export_to(encoder, out: Path) -> Path:
    """Export `encoder` (an index.embed.Encoder) into the new directory `out`; returns `out`."""
    import torch

    model = _st_model(encoder)
    pooling = _pooling(model)
    transformer = model[0]
    hf_model, hf_tokenizer = transformer.auto_model, transformer.tokenizer
    backend = getattr(hf_tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ExportError("the model has no fast (tokenizers) tokenizer")
    import inspect

    accepted = set(inspect.signature(hf_model.forward).parameters)
    inputs = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in accepted
              and (n != "token_type_ids" or "token_type_ids" in hf_tokenizer.model_input_names)]
    if inputs[:2] != ["input_ids", "attention_mask"]:
        raise ExportError(f"the model takes {sorted(accepted)}; input_ids and attention_mask are needed")

    class Pipeline(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            feeds = dict(zip(inputs, args))
            hidden = self.inner(**feeds)[0]
            if pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = feeds["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    out = Path(out)
    out.mkdir(parents=True)
    # Trace with a padded batch of two lengths so that nothing shape-specific is baked in.
    example = hf_tokenizer(["a short one", "a somewhat longer example sentence for tracing"], padding=True, return_tensors="pt")
    args = tuple(example[n] if n in example else torch.zeros_like(example["input_ids"]) for n in inputs)
    dynamic = {n: {0: "batch", 1: "tokens"} for n in inputs}
    dynamic["sentence_embedding"] = {0: "batch"}
    was_training = hf_model.training
    attention = getattr(hf_model.config, "_attn_implementation", None)
    hf_model.eval()
    try:
        import warnings

        # Eager attention traces to the MatMul/Softmax pattern onnxruntime fuses into one Attention op.
        if attention not in (None, "eager") and hasattr(hf_model, "set_attn_implementation"):
            hf_model.set_attn_implementation("eager")
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python branches on (fixed) mask shapes
            torch.onnx.export(
                Pipeline(hf_model), args, str(out / MODEL_FILE), dynamo=False, input_names=inputs,
                output_names=["sentence_embedding"], dynamic_axes=dynamic, opset_version=OPSET, do_constant_folding=True,
            )
    except ImportError as e:
        raise ExportError(f"exporting to ONNX needs the `onnx` package ({e}): pip install onnx") from e
    except Exception as e:  # torch raises many kinds; the build must go on without an export
        raise ExportError(f"torch.onnx.export failed: {type(e).__name__}: {e}") from e
    finally:
        hf_model.train(was_training)
        if attention not in (None, "eager") and hasattr(hf_model, "set_attn_implementation"):
            hf_model.set_attn_implementation(attention)
    backend.save(str(out / TOKENIZER_FILE))
    dimension = int(encoder.dimension)
    config = {
        "format": "policyqa-query-encoder",
        "export_version": EXPORT_VERSION,
        "model": encoder.name,
        "dimension": dimension,
        "max_seq_length": int(model.max_seq_length or 512),
        "lowercase": bool(getattr(transformer, "do_lower_case", False)),
        "pooling": pooling,
        "normalize": True,
        "inputs": inputs,
        "pad_id": int(hf_tokenizer.pad_token_id or 0),
        "pad_token": str(hf_tokenizer.pad_token or "[PAD]"),
        "torch": torch.__version__,
        "opset": OPSET,
    }
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")
    verify(encoder, out)
    config["fused"] = _fuse(encoder, out, hf_model.config)
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")
    return out


def _fuse(encoder, out: Path, hf_config) -> dict:
    """Fuse attention, layer norms and GELU with onnxruntime's transformer optimizer, in place.
    Kept only if it still agrees with sentence-transformers; ~10% less CPU per query (measured
    7.9 -> 7.1 ms on the gold questions). Returns the fused-operator counts ({} if not fused)."""
    try:
        from onnxruntime.transformers.optimizer import MODEL_TYPES, optimize_model
    except Exception:
        return {}
    model_type = getattr(hf_config, "model_type", "")
    heads, hidden = getattr(hf_config, "num_attention_heads", 0), getattr(hf_config, "hidden_size", 0)
    if model_type not in MODEL_TYPES or not heads or not hidden:
        return {}
    plain = out / (MODEL_FILE + ".plain")
    os.replace(out / MODEL_FILE, plain)
    try:
        import logging

        logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
        optimized = optimize_model(str(plain), model_type=model_type, num_heads=int(heads), hidden_size=int(hidden))
        fused = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
        optimized.save_model_to_file(str(out / MODEL_FILE))
        verify(encoder, out)
    except Exception:  # an unfamiliar graph or a fusion that changes results: keep the plain export
        os.replace(plain, out / MODEL_FILE)
        return {}
    plain.unlink()
    return fused


def verify(encoder, directory: Path, texts: list[str] | None = None) -> float:
    """Smallest cosine between sentence-transformers and the export over `texts`; raises below MIN_COSINE."""
    texts = texts or PROBES
    onnx = OnnxQueryEncoder(directory, threads=1)
    reference = encoder.encode(texts)
    worst = min(
        float(np.min(np.sum(reference * onnx.encode(texts, batch_size=len(texts)), axis=1))),  # padded batch
        float(np.min(np.sum(reference * np.stack([onnx.encode([t])[0] for t in texts]), axis=1))),  # one by one
    )
    if worst < MIN_COSINE:
        raise ExportError(f"ONNX export of {encoder.name!r} disagrees with sentence-transformers (cosine {worst:.6f})")
    return worst


def cached_export(encoder) -> Path:
    """The machine's export of `encoder`'s model, made on first use (safe against concurrent builds)."""
    root = cache_root()
    target = root / export_key(encoder.name)
    if is_complete(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        export_to(encoder, staging / "export")
        try:
            os.rename(staging / "export", target)
        except OSError:
            if not is_complete(target):  # a concurrent build won the race with a complete export, or not
                shutil.rmtree(target, ignore_errors=True)
                os.rename(staging / "export", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    # Older exports of the same model go: indexes that use them hold their own hard links.
    slug = target.name.rsplit("-", 1)[0]
    for stale in root.iterdir():
        if stale != target and stale.is_dir() and stale.name.rsplit("-", 1)[0] == slug:
            shutil.rmtree(stale, ignore_errors=True)
    return target


def source_for(encoder) -> Path:
    """Where the exported query encoder for `encoder` is: its own files when it already is an ONNX
    encoder (e.g. the app building a one-policy index with its engine's encoder), else the cache."""
    own = getattr(encoder, "directory", None)
    if own is not None and is_complete(own):
        return Path(own)
    return cached_export(encoder)


def link_files(source: Path, destination: Path) -> None:
    """Hard-link (or, across file systems, copy) an export's files into `destination`."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        try:
            os.link(source / name, destination / name)
        except OSError:
            shutil.copyfile(source / name, destination / name)
