"""The ONNX query encoder (an index.models.TextEncoder) on the ask path: onnxruntime + tokenizers
over the graph that index.onnx_export wrote at index time. Same vectors as sentence-transformers (cosine >= 0.9999),
without importing torch, transformers or sentence-transformers: this module imports numpy,
onnxruntime and tokenizers only, and opening it costs ~0.2 s instead of ~6 s.

Threads: one intra-op thread by default. A question is ~10-30 tokens; splitting that work over
two threads gains little and, on a 2-core machine serving other requests (or other replicas),
costs more than it gains (measured: 8 ms with one thread vs 22 ms with two under load).
Batches (an index built with this encoder) use POLICYQA_ORT_THREADS or all cores.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from index.errors import PolicyQAError
from index.models import Kind

# The files of an export (written by index.onnx_export, read here): the one place they are named.
CONFIG_FILE = "encoder.json"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
FILES = (MODEL_FILE, TOKENIZER_FILE, CONFIG_FILE)


class QueryEncoderError(PolicyQAError, RuntimeError):
    """The exported encoder is missing, damaged or of another format."""


def default_threads() -> int:
    value = os.environ.get("POLICYQA_ORT_THREADS", "")
    return max(1, int(value)) if value.isdigit() else 1


class OnnxQueryEncoder:
    """A TextEncoder over an exported model: same vectors as index.embed.Encoder of the model it names.
    The constructor reads the small encoder.json (name, dimension); `load()` opens the session."""

    query_only = True  # an index is built with sentence-transformers, which this export was checked against

    def __init__(self, directory: Path | str, threads: int | None = None):
        self.directory = Path(directory)
        self._threads = threads
        self._session = None
        try:
            config = json.loads((self.directory / CONFIG_FILE).read_text(encoding="utf-8"))
            if config.get("format") != "policyqa-query-encoder":
                raise QueryEncoderError(f"{self.directory / CONFIG_FILE} is not a PolicyQA query encoder")
            self.name: str = config["model"]
            self._dimension = int(config["dimension"])
            self._lowercase = bool(config.get("lowercase", False))
            self._inputs: list[str] = list(config["inputs"])
            self._config = config
        except QueryEncoderError:
            raise
        except Exception as e:
            raise self._unloadable(e) from e

    @property
    def dimension(self) -> int:
        return self._dimension

    def load(self) -> None:
        if self._session is not None:
            return
        config, threads = self._config, self._threads
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer

            # Read here, not by path: tokenizers and onnxruntime take only UTF-8 paths (an --index named otherwise).
            tokenizer = Tokenizer.from_str((self.directory / TOKENIZER_FILE).read_text(encoding="utf-8"))
            tokenizer.enable_truncation(max_length=int(config["max_seq_length"]))
            tokenizer.enable_padding(pad_id=int(config.get("pad_id", 0)), pad_token=config.get("pad_token", "[PAD]"))
            self._tokenizer = tokenizer
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads or default_threads()
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            # Extended (fusions) but not ALL: ALL adds layout transforms that only cost session start
            # here (measured: 0.15 s vs 0.17 s to open, 2.3 ms vs 3.8 ms per 5-token query).
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            # Idle worker threads sleep instead of spinning: other requests and replicas need the cores.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            model = str(self.directory / MODEL_FILE)
            if any("\udc80" <= ch <= "\udcff" for ch in model):  # a path that is not UTF-8; by path opens faster
                model = (self.directory / MODEL_FILE).read_bytes()
            self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # json, tokenizers and onnxruntime each fail their own way on a damaged file
            raise self._unloadable(e) from e

    def _unloadable(self, e: Exception) -> QueryEncoderError:
        return QueryEncoderError(f"cannot load the ONNX query encoder at {self.directory}: {type(e).__name__}: {e}")

    def _prepare(self, text: str) -> str:
        # sentence-transformers strips each text (and lower-cases it when the model says so).
        text = str(text).strip()
        return text.lower() if self._lowercase else text

    def encode(self, texts: list[str], kind: Kind = "passage", batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """`kind` is ignored: the exported models are symmetric (MiniLM)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        self.load()
        prepared = [self._prepare(t) for t in texts]
        # Like sentence-transformers: batches of similar length, so little padding is computed.
        order = sorted(range(len(prepared)), key=lambda i: -len(prepared[i]))
        out = np.empty((len(prepared), self.dimension), dtype=np.float32)
        for b in range(0, len(order), batch_size):
            rows = order[b : b + batch_size]
            encodings = self._tokenizer.encode_batch([prepared[i] for i in rows])
            feeds = {
                "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            }
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
            out[rows] = self._session.run(None, feeds)[0]
        return out

    def __repr__(self) -> str:
        return f"OnnxQueryEncoder({self.name!r}, {str(self.directory)!r})"
