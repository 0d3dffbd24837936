"""`policyqa bench`: speed figures of the product as shipped (torch's default threads).

Model load; default-corpus index build after the model is loaded (fresh temp dir, then again unchanged
= reuse); warm `ask` per question in batch mode over all gold questions (k=3), with torch's default
threads and with one thread, and over the Japanese gold questions; cold start (an English and a Japanese question) = wall time of a fresh `policyqa ask "..." --index DIR`
subprocess (median of 3); peak RSS of this process and of the cold-start subprocesses.
Also written to eval/reports/bench.json.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COLD_QUESTION = "Does JapanWork share my data with partner companies?"
COLD_QUESTION_JA = "JapanWorkは私のデータを提携会社と共有しますか？"  # encoded by the multilingual model


def _warm(engine, questions: list[dict]) -> dict:
    from eval.metrics import mean, percentile

    for row in questions[:3]:  # first calls pay one-off costs
        engine.ask(row["question"], k=3, history=row.get("history"))
    times = []
    for row in questions:
        t0 = time.perf_counter()
        engine.ask(row["question"], k=3, history=row.get("history"))
        times.append(1000 * (time.perf_counter() - t0))
    return {"p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95), "mean_ms": mean(times), "questions": len(times)}


COMPARE_TARGET_MS = 50.0  # a five-site comparison, warm (issue #15)


def _compare_warm(engine) -> dict:
    """Warm `ask` of the gold questions across all five default sites (one row per site), k=3."""
    from eval.cross import load_cross

    rows = [r for r in load_cross("all") if r["kind"] == "compare" and len(r["scope"]) == 5]
    out = _warm(engine, rows)
    sites = {len(engine.ask(r["question"], k=3).by_policy) for r in rows[:3]}
    return {**out, "sites_per_answer": sorted(sites), "target_ms": COMPARE_TARGET_MS}


def _cold(index_dir: Path, model: str | None, question: str = COLD_QUESTION) -> dict:
    exe = shutil.which("policyqa")
    cmd = [exe] if exe else [sys.executable, "-m", "qa.cli"]
    cmd += ["ask", question, "--index", str(index_dir)] + (["--model", model] if model else [])
    walls = []
    for _ in range(3):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        walls.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise RuntimeError(f"cold-start `{' '.join(cmd)}` failed ({proc.returncode}): {proc.stderr[-500:]}")
    return {"median_s": statistics.median(walls), "runs_s": walls, "command": " ".join(cmd[:2]) + " …",
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def run(index: Path | None = None, model: str | None = None) -> dict:
    from dataclasses import replace

    import torch

    from eval.gold import load_questions
    from index.build import build_index
    from index.corpus import load_corpus
    from index.embed import DEFAULT_MODEL, Encoder
    from index.store import read_index
    from qa.engine import Engine

    default_threads = torch.get_num_threads()
    out = {"cpus": os.cpu_count(), "torch_threads_default": default_threads}
    t0 = time.perf_counter()
    encoder = Encoder(model or DEFAULT_MODEL)
    encoder.load()
    out["model_load_s"] = time.perf_counter() - t0
    policies = load_corpus()
    questions = load_questions("all")
    with tempfile.TemporaryDirectory(prefix="policyqa-bench-") as tmp:
        built = Path(tmp) / "index"
        for label in ("build_fresh", "build_reuse"):
            t0 = time.perf_counter()
            figures = build_index(policies, built, encoder)
            out[label] = {"wall_s": time.perf_counter() - t0, **figures["seconds"], "passages": figures["passages"],
                          "embedded": figures["embedded"], "reused": figures["reused"]}
        target = Path(index) if index else built
        engine = Engine.open(target, model=model) if index else Engine(read_index(built), encoder)
        out["index"] = str(index) if index else "fresh temp build of the default corpus"
        out["warm_ask"] = _warm(engine, questions)
        out["warm_ask_no_scorer"] = _warm(engine.with_settings(replace(engine.settings, scorer=None)), questions)
        out["warm_ask_japanese"] = _warm(engine, load_questions("ja"))
        # As `policyqa ask --questions-file` runs: Engine.open, whose query encoder is the index's ONNX export
        # (the rows above encode with sentence-transformers and torch, which that path never loads).
        out["warm_ask_as_shipped"] = _warm(engine if index else Engine.open(built), questions)
        out["warm_compare"] = _compare_warm(engine)
        out["cold_ask"] = _cold(target, model)
        out["cold_ask_japanese"] = _cold(target, model, COLD_QUESTION_JA)
        try:
            torch.set_num_threads(1)
            out["warm_ask_1_thread"] = _warm(engine, questions)
            out["warm_compare_1_thread"] = _compare_warm(engine)
            t0 = time.perf_counter()
            figures = build_index(policies, Path(tmp) / "index-1-thread", encoder)
            out["build_fresh_1_thread"] = {"wall_s": time.perf_counter() - t0, **figures["seconds"]}
        finally:
            torch.set_num_threads(default_threads)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def table(r: dict) -> str:
    w, w1, bf, br = r["warm_ask"], r["warm_ask_1_thread"], r["build_fresh"], r["build_reuse"]
    rows = [
        ("model load", f"{r['model_load_s']:.2f} s"),
        ("index build, fresh (after model load)",
         f"{bf['wall_s']:.2f} s  (embed {bf['embed']:.2f} s, {bf['embedded']} texts; {bf['passages']} passages; "
         f"multilingual vectors in parallel, waited {bf.get('embed_multilingual', 0):.2f} s more)"),
        ("index build, unchanged (reuse)", f"{br['wall_s']:.2f} s  ({br['embedded']} embedded, {br['reused']} reused)"),
        (f"warm ask k=3, {w['questions']} q: p50 / p95 / mean",
         f"{w['p50_ms']:.1f} / {w['p95_ms']:.1f} / {w['mean_ms']:.1f} ms  (torch {r['torch_threads_default']} threads)"),
        ("warm ask as `policyqa ask --questions-file` runs it (ONNX query encoder): p50 / p95 / mean",
         f"{r['warm_ask_as_shipped']['p50_ms']:.1f} / {r['warm_ask_as_shipped']['p95_ms']:.1f} / {r['warm_ask_as_shipped']['mean_ms']:.1f} ms"),
        ("warm ask without the answer-sentence scorer: p50 / p95 / mean",
         f"{r['warm_ask_no_scorer']['p50_ms']:.1f} / {r['warm_ask_no_scorer']['p95_ms']:.1f} / {r['warm_ask_no_scorer']['mean_ms']:.1f} ms"),
        ("warm ask, torch 1 thread: p50 / p95 / mean", f"{w1['p50_ms']:.1f} / {w1['p95_ms']:.1f} / {w1['mean_ms']:.1f} ms"),
        (f"warm ask in Japanese, {r['warm_ask_japanese']['questions']} q: p50 / p95 / mean",
         f"{r['warm_ask_japanese']['p50_ms']:.1f} / {r['warm_ask_japanese']['p95_ms']:.1f} / {r['warm_ask_japanese']['mean_ms']:.1f} ms"),
        *[(f"five-site comparison{label}, {c['questions']} q: p50 / p95 / mean",
           f"{c['p50_ms']:.1f} / {c['p95_ms']:.1f} / {c['mean_ms']:.1f} ms  (target <= {c['target_ms']:.0f} ms: "
           f"{'met' if c['p50_ms'] <= c['target_ms'] else 'MISSED'} at p50)")
          for label, c in (("", r["warm_compare"]), (", torch 1 thread", r["warm_compare_1_thread"]))],
        ("index build, fresh, torch 1 thread", f"{r['build_fresh_1_thread']['wall_s']:.2f} s"),
        ("cold start `policyqa ask` (median of 3)", f"{r['cold_ask']['median_s']:.2f} s  (runs: "
         + ", ".join(f"{x:.2f}" for x in r["cold_ask"]["runs_s"]) + ")"),
        ("cold start, a question in Japanese (median of 3)", f"{r['cold_ask_japanese']['median_s']:.2f} s  (runs: "
         + ", ".join(f"{x:.2f}" for x in r["cold_ask_japanese"]["runs_s"]) + ")"),
        ("peak RSS: bench process / cold ask", f"{r['peak_rss_mb']:.0f} MB / {r['cold_ask']['peak_rss_mb']:.0f} MB"),
    ]
    width = max(len(a) for a, _ in rows)
    head = f"PolicyQA bench · {r['cpus']} CPUs · index: {r['index']}"
    return "\n".join([head, "-" * len(head)] + [f"{a.ljust(width)}  {b}" for a, b in rows])


def main(args=None) -> int:
    from eval.common import REPORTS, write_atomic

    result = run(getattr(args, "index", None), getattr(args, "model", None))
    print(table(result))
    write_atomic(REPORTS / "bench.json", json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(prog="python -m eval.bench")
    p.add_argument("--index", type=Path)
    p.add_argument("--model")
    sys.exit(main(p.parse_args()))
