"""What the harness and the benchmarks share: the reports folder, atomic report writes, JSON without
NaN, torch's thread count, and where the external PolicyQA benchmark data is. (Percentiles: eval.metrics.)"""
from __future__ import annotations

import math
import os
from pathlib import Path

from index.errors import PolicyQAError

EVAL_DIR = Path(__file__).resolve().parent
REPORTS = EVAL_DIR / "reports"
# The PolicyQA data set (SQuAD-format dev.json) is not shipped: $POLICYQA_BENCHMARK (the file or its
# directory), else ../shared/benchmarks/policyqa beside the repository.
BENCHMARK_ENV = "POLICYQA_BENCHMARK"


def default_corpus_engine(encoder, directory: Path):
    """The engine, with the shipped settings, over the default corpus indexed afresh by `encoder` into `directory`."""
    from index.build import build_index
    from index.corpus import load_corpus
    from index.store import read_index
    from qa.engine import Engine, Settings

    build_index(load_corpus(), directory, encoder)
    return Engine(read_index(directory), encoder, Settings())


class BenchmarkDataError(PolicyQAError, FileNotFoundError):
    """The external benchmark's data is not where PolicyQA looks for it."""


def benchmark_file() -> Path:
    """The PolicyQA dev.json; raises BenchmarkDataError (saying how to point at it) when it is missing."""
    override = os.environ.get(BENCHMARK_ENV)
    path = Path(override) if override else EVAL_DIR.parents[1] / "shared" / "benchmarks" / "policyqa"
    path = path / "dev.json" if path.is_dir() else path
    if not path.is_file():
        raise BenchmarkDataError(f"no PolicyQA benchmark at {path}", hint=f"set {BENCHMARK_ENV} to its dev.json or its folder")
    return path


def jsonable(obj):
    """`obj` with NaN floats as None (JSON has no NaN), through dicts, lists and tuples."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `path` whole or not at all (a temporary file beside it, then os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(data, bytes):
        tmp.write_bytes(data)
    else:
        tmp.write_text(data, encoding="utf-8")
    os.replace(tmp, path)


def set_threads() -> int:
    """Pin torch's intra-op threads for the harness (env POLICYQA_EVAL_THREADS, default 1; 0 leaves
    torch's default). On this 2-core machine torch's default 2-thread pool makes a one-question encode
    2-10x slower and wildly variable whenever anything else uses a core, which swamps the latency figures
    and the run-time budget; `policyqa bench` measures the product's default too."""
    import torch

    threads = int(os.environ.get("POLICYQA_EVAL_THREADS", "1"))
    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()
