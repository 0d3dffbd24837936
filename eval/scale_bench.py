"""Speed at every size: cold start, warm asks, and retrieval over 1k .. 1M passages.

    python -m eval.scale_bench                      # everything (the 1M step needs ~12 GB and ~30 min)
    python -m eval.scale_bench --sizes 1000,10000   # a quicker run
    python -m eval.scale_bench --skip-cold --skip-warm

Prints tables and writes eval/reports/scale_bench.json.

* Cold start: a fresh `policyqa ask "..." --index DIR` process to printed answer, N runs (default 7),
  interleaved between the ONNX query encoder (the default) and sentence-transformers
  (POLICYQA_QUERY_ENCODER=sentence-transformers, i.e. the path before the ONNX export); medians of
  wall and CPU (user+sys) time, same printed answer checked. Also `python -X importtime` of qa.cli and
  which heavy modules `--help` and `ask` load.
* Warm: Engine.ask over every gold question in batch mode (as `policyqa ask --questions-file`),
  wall and thread-CPU percentiles, for both encoders.
* Scale: real passages of the 20 PolicyQA policies (/work/shared/benchmarks/policyqa/dev.json; each
  policy's text rebuilt from its paragraphs' `context` in `index` order, chunked as PolicyQA chunks),
  repeated as "copies" (copy c of policy p is a new policy `p~c`) and lightly varied (copy c swaps a
  per-copy set of same-length words, e.g. "share"->"trade"). Up to 1k passages every text is encoded
  for real; above that the copies' embeddings are SYNTHESISED: the base passage's (and sentence's) real
  vector plus Gaussian noise, scaled so that copies are as close to their base as real-encoded copies
  are (measured at 1k), then re-normalised. BM25 is always built from the real varied texts. Each size
  is built and written with the product's own code (index.build.make_dense_index, index.store.write_index),
  then loaded by index.store.read_index in a fresh process; queries (PolicyQA dev questions + gold
  questions, encoded for real) go through qa.retrieve.retrieve (dense FAISS + BM25). Exact search
  (IndexFlatIP) and HNSW are both timed at every size, with HNSW recall@10 against exact search.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from eval.common import REPORTS, benchmark_file, write_atomic
from eval.gold import load_questions
from eval.metrics import percentile

REPO = Path(__file__).resolve().parents[1]
REPORT = REPORTS / "scale_bench.json"
COLD_QUESTION = "can JapanWork share my data with partners?"
SIZES = (1_000, 10_000, 100_000, 1_000_000)
HNSW_GRID = ((16, 128), (16, 512), (32, 128), (32, 256), (32, 512), (32, 1024), (32, 2048), (48, 256), (48, 512))  # (M, efSearch)
SYNTHETIC = "blend"
BLEND = 0.35  # weight of another real passage's vector in a synthesised copy (see perturb)
# Same-length swaps keep every passage's offsets valid in its varied policy text.
SWAPS = [("share", "trade"), ("collect", "gather "), ("personal", "private "), ("may", "can"), ("third", "other"),
         ("use", "use"), ("cookies", "tracker"), ("users", "folks"), ("website", "webpage"), ("partners", "partner "),
         ("provide", "furnish"), ("information", "particulars")]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def dir_mb(path: Path) -> float:
    seen, total = set(), 0
    for p in Path(path).rglob("*"):
        if p.is_file():
            st = p.stat()
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_size
    return total / 2**20


def load_avg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# ---------------------------------------------------------------- cold start, imports, warm


def default_index(work: Path, index: Path | None) -> Path:
    if index is not None:
        return index
    from index.build import build_index
    from index.corpus import load_corpus
    from index.embed import Encoder

    out = work / "default-index"
    print(f"building the default-corpus index at {out} …", file=sys.stderr)
    build_index(load_corpus(), out, Encoder())
    return out


def cold_start(index: Path, runs: int) -> dict:
    exe = shutil.which("policyqa")
    commands = {"policyqa (PATH)": [exe] if exe else None,
                "python -m qa.cli": [sys.executable, "-m", "qa.cli"]}
    results = {}
    for label, cmd in commands.items():
        if cmd is None:
            continue
        cmd = cmd + ["ask", COLD_QUESTION, "--index", str(index)]
        per = {"onnx": [], "sentence-transformers": []}
        outputs = {}
        for _ in range(runs):
            for encoder in per:  # interleaved: both see the same machine load
                env = dict(os.environ)
                env.pop("POLICYQA_QUERY_ENCODER", None)
                if encoder != "onnx":
                    env["POLICYQA_QUERY_ENCODER"] = "sentence-transformers"
                before = os.times()
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
                wall = time.perf_counter() - t0
                after = os.times()
                if proc.returncode != 0:
                    raise RuntimeError(f"{cmd} failed: {proc.stderr[-800:]}")
                cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
                per[encoder].append((wall, cpu))
                outputs.setdefault(encoder, proc.stdout)
        results[label] = {
            enc: {"median_wall_s": statistics.median(w for w, _ in v), "median_cpu_s": statistics.median(c for _, c in v),
                  "min_wall_s": min(w for w, _ in v), "runs_wall_s": [round(w, 3) for w, _ in v]}
            for enc, v in per.items()
        }
        results[label]["same_answer"] = outputs["onnx"] == outputs["sentence-transformers"]
    results["load_avg"] = load_avg()
    return results


def import_report(index: Path) -> dict:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "import qa.cli"], capture_output=True, text=True, cwd=REPO)
    rows = [line.split("|") for line in proc.stderr.splitlines() if line.startswith("import time:") and "|" in line]
    cumulative = {r[2].strip(): int(r[1]) / 1000 for r in rows[1:] if r[1].strip().isdigit()}
    top = sorted(((v, k) for k, v in cumulative.items() if not k.startswith(" ")), reverse=True)[:8]
    probe = ("import sys\nfrom qa.cli import main\n{call}\nprint('LOADED:' + ' '.join(m for m in "
             "('torch', 'transformers', 'sentence_transformers', 'onnxruntime', 'faiss', 'scipy') if m in sys.modules))")
    loaded = {}
    for label, call in {"--help": "try:\n    main(['--help'])\nexcept SystemExit:\n    pass",
                        "ask": f"main(['ask', {COLD_QUESTION!r}, '--index', {str(index)!r}])"}.items():
        out = subprocess.run([sys.executable, "-c", probe.format(call=call)], capture_output=True, text=True, cwd=REPO).stdout
        line = [x for x in out.splitlines() if x.startswith("LOADED:")]
        loaded[label] = line[-1][7:].split() if line else ["?"]
    return {"qa.cli_ms": cumulative.get("qa.cli"), "top_level_ms": {k: v for v, k in top}, "heavy_modules_loaded": loaded}


def warm(index: Path) -> dict:
    from index.embed import Encoder
    from index.store import read_index
    from qa.engine import Engine, open_query_encoder

    stored = read_index(index)
    questions = load_questions()
    out = {}
    for label, encoder in (("onnx", open_query_encoder(stored)), ("sentence-transformers", Encoder(stored.model))):
        engine = Engine(stored, encoder)
        for row in questions[:5]:
            engine.ask(row["question"], history=row.get("history") or None)
        wall, cpu, parts = [], [], {}
        for row in questions:
            t0, c0 = time.perf_counter(), time.thread_time()
            answer = engine.ask(row["question"], history=row.get("history") or None)
            cpu.append(1000 * (time.thread_time() - c0))
            wall.append(1000 * (time.perf_counter() - t0))
            for k, v in answer.timings_ms.items():
                parts.setdefault(k, []).append(v)
        out[label] = {"encoder": type(encoder).__name__, "questions": len(questions),
                      "wall_p50_ms": percentile(wall, 50), "wall_p95_ms": percentile(wall, 95),
                      "cpu_p50_ms": percentile(cpu, 50), "cpu_p95_ms": percentile(cpu, 95),
                      "parts_p50_ms": {k: percentile(v, 50) for k, v in parts.items()}}
    out["load_avg"] = load_avg()
    return out


# ---------------------------------------------------------------- the scaled corpus


def policyqa_policies():
    from index.types import Policy

    data = json.loads(benchmark_file().read_text(encoding="utf-8"))["data"]
    policies, questions = [], []
    for i, doc in enumerate(data):
        paragraphs = sorted(doc["paragraphs"], key=lambda p: p["index"])
        text = "\n\n".join(p["context"] for p in paragraphs)
        policies.append(Policy(id=f"pq{i:02d}", company=doc["title"], text=text, service=doc["title"]))
        questions += [q["question"] for p in paragraphs for q in p["qas"]]
    return policies, sorted(set(questions))


def vary(text: str, copy: int) -> str:
    if copy == 0:
        return text
    rng = np.random.default_rng(copy)
    for word, swap in SWAPS:
        if rng.random() < 0.5 and word != swap:
            text = re.sub(rf"\b{word}\b", swap, text)
    return text


def base_corpus():
    """The real PolicyQA passages and sentences of copy 0 (and their texts for any copy)."""
    from index.build import passages_of, sentence_embedding_text
    from index.chunk import ChunkSettings
    from index.sentences import sentence_spans

    policies, questions = policyqa_policies()
    passages, sentences = [], []  # sentences: (passage row, start, end)
    for policy in policies:
        for p in passages_of(policy, ChunkSettings()):
            row = len(passages)
            passages.append(p)
            sentences += [(row, s, e) for s, e in sentence_spans(p.text, p.start)]
    texts = {p.id: p.text for p in policies}
    sentence_texts = [sentence_embedding_text(passages[r], texts[passages[r].policy_id][s:e]) for r, s, e in sentences]
    return policies, passages, sentences, sentence_texts, questions


def encode_base(work: Path, encoder_dir: Path) -> Path:
    """Real vectors of copies 0 and 1 (passages + sentences) and of the queries, cached in `work`."""
    out = work / "base_vectors.npz"
    if out.exists():
        return out
    from index.build import sentence_embedding_text
    from index.types import Passage
    from index.onnx_encoder import OnnxQueryEncoder

    policies, passages, sentences, sentence_texts, questions = base_corpus()
    encoder = OnnxQueryEncoder(encoder_dir, threads=os.cpu_count() or 1)
    queries = questions[:250] + [r["question"] for r in load_questions()]
    t0 = time.perf_counter()
    p0 = encoder.encode([p.embedding_text() for p in passages], batch_size=16)
    s0 = encoder.encode(sentence_texts, batch_size=16)
    seconds = time.perf_counter() - t0
    varied = {p.id: vary(p.text, 1) for p in policies}
    p1_passages = [Passage(p.key, p.policy_id, p.section, p.start, p.end, varied[p.policy_id][p.start:p.end]) for p in passages]
    p1 = encoder.encode([p.embedding_text() for p in p1_passages], batch_size=16)
    s1 = encoder.encode([sentence_embedding_text(p1_passages[r], varied[passages[r].policy_id][s:e]) for r, s, e in sentences], batch_size=16)
    q = np.stack([encoder.encode([x])[0] for x in queries])
    np.savez(out, p0=p0, s0=s0, p1=p1, s1=s1, q=q, queries=np.array(queries, dtype=object).astype(str),
             encode_seconds=seconds, texts=len(passages) + len(sentences))
    return out


def noise_sigma(a: np.ndarray, b: np.ndarray) -> float:
    """Noise scale giving the same mean cosine between copies as real re-encoding of varied text."""
    cos = float(np.mean(np.sum(a * b, axis=1)))
    cos = min(max(cos, 0.5), 0.9999)
    return float(np.sqrt(1 / cos**2 - 1))


def perturb(vectors: np.ndarray, sigma: float, rng, partners: np.ndarray | None = None) -> np.ndarray:
    """A synthesised copy: the real vector plus Gaussian noise (cosine to it ~ that of real re-encoded
    word swaps); with `partners`, also BLEND x another real passage's vector, as another site would word
    the clause its own way (mode "blend", the default). Noise alone (mode "noise") makes every
    passage a tight cluster of near-identical copies: the worst case for approximate search."""
    noisy = vectors + rng.standard_normal(vectors.shape, dtype=np.float32) * np.float32(sigma / np.sqrt(vectors.shape[1]))
    if partners is not None:
        noisy += np.float32(BLEND) * partners
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    return noisy.astype(np.float32)


def build_scaled(n: int, work: Path, vectors_file: Path, threshold: int) -> tuple[Path, dict]:
    """Write an index of `n` passages with the product's code; returns its directory and build figures."""
    from index.build import heading_rows, make_dense_index
    from index.lexical import build_bm25, tokenize
    from index.store import FORMAT, FORMAT_VERSION, write_index
    from index.types import Passage, Policy

    policies, base_passages, base_sentences, _, _ = base_corpus()
    vec = np.load(vectors_file)
    p0, s0, p1, s1 = vec["p0"], vec["s0"], vec["p1"], vec["s1"]
    sigma_p, sigma_s = noise_sigma(p0, p1), noise_sigma(s0, s1)
    B = len(base_passages)
    copies = -(-n // B)
    rng = np.random.default_rng(0)
    sent_of = [[] for _ in range(B)]
    for i, (r, s, e) in enumerate(base_sentences):
        sent_of[r].append(i)
    counts = np.array([len(x) for x in sent_of], dtype=np.int64)
    n_sentences = int(sum(counts[: min(B, n - c * B)].sum() for c in range(copies)))
    dim = p0.shape[1]
    # Preallocated and filled in place: at 1M passages the vectors alone are 6.6 GB.
    embeddings = np.empty((n, dim), dtype=np.float32)
    sentence_embeddings = np.empty((n_sentences, dim), dtype=np.float32)
    sentence_rows = np.empty(n_sentences, dtype=np.int32)
    spans = np.empty((n_sentences, 2), dtype=np.int32)
    base_spans = np.array([(s_, e_) for _, s_, e_ in base_sentences], dtype=np.int32).reshape(-1, 2)
    out_policies, passages = [], []
    row = srow = 0
    t0 = time.perf_counter()
    for c in range(copies):
        take = min(B, n - c * B)
        varied = {}
        for p in policies:
            pid = p.id if c == 0 else f"{p.id}~{c}"
            varied[p.id] = (pid, vary(p.text, c))
        used = {base_passages[b].policy_id for b in range(take)}
        for p in policies:
            if p.id in used:
                pid, text = varied[p.id]
                out_policies.append(Policy(id=pid, company=f"{p.company} #{c}" if c else p.company, text=text, service=p.service))
        for b in range(take):
            bp = base_passages[b]
            pid, text = varied[bp.policy_id]
            passages.append(Passage(f"{bp.key}~{c}", pid, bp.section, bp.start, bp.end, text[bp.start:bp.end]))
        s_idx = np.concatenate([np.array(sent_of[b], dtype=np.int64) for b in range(take)])
        ns = len(s_idx)
        sentence_rows[srow : srow + ns] = row + np.repeat(np.arange(take), counts[:take])
        spans[srow : srow + ns] = base_spans[s_idx]
        if c == 0:
            pv, sv = p0[:take], s0[s_idx]
        elif c == 1:
            pv, sv = p1[:take], s1[s_idx]
        elif SYNTHETIC == "noise":  # synthesised (see the module docstring)
            pv, sv = perturb(p0[:take], sigma_p, rng), perturb(s0[s_idx], sigma_s, rng)
        else:
            pv = perturb(p0[:take], sigma_p, rng, p0[rng.integers(0, B, take)])
            sv = perturb(s0[s_idx], sigma_s, rng, s0[rng.integers(0, len(s0), ns)])
        embeddings[row : row + take] = pv
        sentence_embeddings[srow : srow + ns] = sv
        row += take
        srow += ns
    assert row == n and srow == n_sentences
    t_corpus = time.perf_counter()
    vocab, bm25 = build_bm25(tokenize(p.embedding_text()) for p in passages)
    t_bm25 = time.perf_counter()
    dense = make_dense_index(embeddings, hnsw_threshold=threshold)
    t_dense = time.perf_counter()
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "model": {"name": "sentence-transformers/all-MiniLM-L6-v2", "dimension": int(embeddings.shape[1])},
                "chunking": {}, "dense": {"type": type(dense).__name__}, "passages": len(passages),
                "sentences": int(n_sentences), "synthetic": {"copies": copies, "sigma_passages": sigma_p, "sigma_sentences": sigma_s},
                "policies": [{"id": p.id, "company": p.company, "service": p.service, "aliases": [], "date": None,
                              "source": "", "sha256": __import__("index.corpus", fromlist=["checksum"]).checksum(p.text),
                              "passages": 0} for p in out_policies]}
    out = work / f"scaled-{n}"
    shutil.rmtree(out, ignore_errors=True)
    headings, passage_heading = heading_rows(passages)
    # Stand-in heading vectors (the mean of each heading's passages): they cost what real ones cost.
    heading_embeddings = np.zeros((len(headings), dim), dtype=np.float32)
    np.add.at(heading_embeddings, passage_heading[passage_heading >= 0], embeddings[passage_heading >= 0])
    heading_embeddings /= np.maximum(np.linalg.norm(heading_embeddings, axis=1, keepdims=True), 1e-9)
    write_index(out, manifest, out_policies, passages, embeddings, dense, vocab, bm25, sentence_rows, spans, sentence_embeddings,
                passage_heading, heading_embeddings)
    t_write = time.perf_counter()
    per_k = 1000 / n
    encode_per_k = float(vec["encode_seconds"]) / (B / 1000)  # real encoding of passages + their sentences
    return out, {
        "passages": len(passages), "sentences": int(n_sentences), "policies": len(out_policies),
        "embeddings": "real" if n <= 2 * B else f"real for {2 * B}, synthesised ({SYNTHETIC}) for {len(passages) - 2 * B}",
        "synthetic_mode": SYNTHETIC, "copy_cosine_to_base": _copy_cosine(embeddings, p0, B),
        "sigma": [round(sigma_p, 4), round(sigma_s, 4)],
        "build_s_per_1k": {"encode (real, measured on the base)": encode_per_k, "bm25": (t_bm25 - t_corpus) * per_k,
                           "dense (" + type(dense).__name__ + ")": (t_dense - t_bm25) * per_k, "write": (t_write - t_dense) * per_k},
        "dense_build_s": t_dense - t_bm25,
    }


def _copy_cosine(embeddings: np.ndarray, base: np.ndarray, b: int) -> float | None:
    """Mean cosine between the first synthesised copy (copy 2) and the real passages it varies."""
    block = embeddings[2 * b : 3 * b]
    return float(np.mean(np.sum(block * base[: len(block)], axis=1))) if len(block) else None


def query_child(n: int, index_dir: Path, vectors_file: Path) -> dict:
    """In a fresh process: load the index, time retrieval, exact vs HNSW search and recall@10."""
    import faiss

    from index.build import HNSW_EF_CONSTRUCTION
    from index.lexical import tokenize
    from index.store import read_index
    from qa.expand import expand
    from qa.retrieve import RetrievalSettings, retrieve

    faiss.omp_set_num_threads(1)  # one query at a time, as the engine serves it (replicas add throughput)
    vec = np.load(vectors_file)
    queries, qv = [str(x) for x in vec["queries"]], vec["q"]
    gc.collect()
    rss0 = rss_mb()
    t0 = time.perf_counter()
    stored = read_index(index_dir)
    load_s = time.perf_counter() - t0
    gc.collect()
    rss1 = rss_mb()
    tokens = [tokenize(q) + tokenize(expand(q)) for q in queries]
    for i in range(5):
        retrieve(stored, qv[i], tokens[i], None, 10)

    def timed(fn):
        wall, cpu, out = [], [], []
        for i in range(len(queries)):
            t, c = time.perf_counter(), time.thread_time()
            out.append(fn(i))
            cpu.append(1000 * (time.thread_time() - c))
            wall.append(1000 * (time.perf_counter() - t))
        return {"wall_p50_ms": percentile(wall, 50), "wall_p95_ms": percentile(wall, 95), "cpu_p50_ms": percentile(cpu, 50), "cpu_p95_ms": percentile(cpu, 95)}, out

    result = {"n": n, "dense_type": type(stored.dense).__name__, "load_s": load_s,
              "ef_search": stored.dense.hnsw.efSearch if hasattr(stored.dense, "hnsw") else None, "rss_before_mb": rss0,
              "rss_loaded_mb": rss1, "index_mb": rss1 - rss0, "disk_mb": dir_mb(stored.path)}
    result["components_mb"] = {
        "passage_embeddings": stored.embeddings.nbytes / 2**20,
        "sentence_embeddings": stored.sentence_embeddings.nbytes / 2**20,
        "bm25": (stored.bm25.data.nbytes + stored.bm25.indices.nbytes + stored.bm25.indptr.nbytes) / 2**20,
        "dense_faiss (file)": (stored.path / "dense.faiss").stat().st_size / 2**20,
    }
    result["retrieve"], hybrid = timed(lambda i: [h.passage.key for h in retrieve(stored, qv[i], tokens[i], None, 10)])
    result["bm25_only"], _ = timed(lambda i: retrieve(stored, qv[i], tokens[i], None, 10, RetrievalSettings(use_dense=False)))
    # Exact search over the same vectors, and HNSW at several (M, efSearch).
    flat = stored.dense if not hasattr(stored.dense, "hnsw") else None
    if flat is None:
        flat = faiss.IndexFlatIP(stored.embeddings.shape[1])
        flat.add(stored.embeddings)
    q32 = np.ascontiguousarray(qv, dtype=np.float32)
    result["exact_search"], exact = timed(lambda i: flat.search(q32[i : i + 1], 10)[1][0])
    exact = np.stack(exact)
    result["hnsw"] = []
    built = {}
    stored_m = stored.dense.hnsw.nb_neighbors(0) // 2 if hasattr(stored.dense, "hnsw") else 32
    grid = HNSW_GRID if n <= 200_000 else [(m, ef) for m, ef in HNSW_GRID if m == stored_m]  # HNSW builds cost minutes at 1M
    if not hasattr(stored.dense, "hnsw") and n > 200_000:
        grid = [(m, ef) for m, ef in grid if m == 32]
    for m, ef in grid:
        if m not in built:
            if hasattr(stored.dense, "hnsw") and stored.dense.hnsw.nb_neighbors(0) == 2 * m:
                built[m] = (stored.dense, None)
            else:
                t = time.perf_counter()
                h = faiss.IndexHNSWFlat(stored.embeddings.shape[1], m, faiss.METRIC_INNER_PRODUCT)
                h.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
                faiss.omp_set_num_threads(os.cpu_count() or 1)
                h.add(stored.embeddings)
                faiss.omp_set_num_threads(1)
                built[m] = (h, time.perf_counter() - t)
        index, build_s = built[m]
        index.hnsw.efSearch = ef
        timing, found = timed(lambda i: index.search(q32[i : i + 1], 10)[1][0])
        recall = float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact)]))
        result["hnsw"].append({"M": m, "efSearch": ef, "recall@10": recall, "build_s": build_s, **timing})
    result["retrieve_flat_vs_current_top10_agree"] = None
    if hasattr(stored.dense, "hnsw"):  # end-to-end: does HNSW change the hybrid top 10?
        dense = stored.dense
        stored.dense = flat
        exact_hybrid = [[h.passage.key for h in retrieve(stored, qv[i], tokens[i], None, 10)] for i in range(len(queries))]
        stored.dense = dense
        result["retrieve_flat_vs_current_top10_agree"] = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(hybrid, exact_hybrid)]))
    result["queries"] = len(queries)
    result["load_avg"] = load_avg()
    return result


def scale(sizes, work: Path, vectors_file: Path, threshold: int) -> list[dict]:
    rows = []
    for n in sizes:
        print(f"scale {n:,}: building …", file=sys.stderr, flush=True)
        cmd = [sys.executable, "-m", "eval.scale_bench", "--child", str(n), "--work", str(work), "--vectors", str(vectors_file),
               "--threshold", str(threshold), "--synthetic", SYNTHETIC]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        if proc.returncode == 0:
            figures = json.loads(proc.stdout.strip().splitlines()[-1])
            # Query in a fresh interpreter (the builder has exited): its resident memory is the loaded index's.
            proc = subprocess.run([sys.executable, "-m", "eval.scale_bench", "--query-child", str(n), "--vectors", str(vectors_file),
                                   "--index-dir", figures["index_dir"]], capture_output=True, text=True, cwd=REPO)
            shutil.rmtree(figures.pop("index_dir"), ignore_errors=True)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            rows.append({"n": n, "error": proc.stderr[-500:]})
            continue
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result.update(figures)
        rows.append(result)
        print_scale_row(rows[-1])
    return rows


def child(n: int, work: Path, vectors_file: Path, threshold: int) -> None:
    index_dir, figures = build_scaled(n, work, vectors_file, threshold)
    figures["index_dir"] = str(index_dir)
    print(json.dumps(figures))


# ---------------------------------------------------------------- printing


def print_scale_row(r: dict) -> None:
    if "error" in r:
        print(f"{r['n']:>9,}  error")
        return
    best = [h for h in r["hnsw"] if h["recall@10"] >= 0.97]
    chosen = min(best, key=lambda h: h["wall_p50_ms"]) if best else max(r["hnsw"], key=lambda h: h["recall@10"])
    build = sum(v for k, v in r["build_s_per_1k"].items())
    print(f"{r['n']:>9,} | {r['dense_type']:<13} | retrieve p50 {r['retrieve']['wall_p50_ms']:6.2f} p95 {r['retrieve']['wall_p95_ms']:6.2f} ms"
          f" | exact p50 {r['exact_search']['wall_p50_ms']:6.2f} | HNSW M{chosen['M']}/ef{chosen['efSearch']} p50 {chosen['wall_p50_ms']:5.2f}"
          f" r@10 {chosen['recall@10']:.3f} | RSS {r['index_mb']:8.0f} MB | disk {r['disk_mb']:8.0f} MB | build {build:5.2f} s/1k", flush=True)


def markdown(report: dict) -> str:
    lines = []
    if "cold" in report:
        lines.append("Cold start (fresh process, `ask`, median of %d; load avg %s)\n" % (report["runs"], report["cold"]["load_avg"]))
        lines.append("| command | encoder | median wall s | median CPU s | min wall s | same answer |")
        lines.append("|---|---|---|---|---|---|")
        for label, v in report["cold"].items():
            if isinstance(v, dict):
                for enc in ("sentence-transformers", "onnx"):
                    e = v[enc]
                    lines.append(f"| {label} | {enc} | {e['median_wall_s']:.2f} | {e['median_cpu_s']:.2f} | {e['min_wall_s']:.2f} | {v['same_answer']} |")
    if "imports" in report:
        im = report["imports"]
        lines.append(f"\n`import qa.cli`: {im['qa.cli_ms']:.0f} ms; heavy modules loaded: {im['heavy_modules_loaded']}")
    if "warm" in report:
        lines.append("\nWarm `Engine.ask`, gold questions, batch mode (load avg %s)\n" % report["warm"]["load_avg"])
        lines.append("| encoder | wall p50 ms | wall p95 ms | CPU p50 ms | CPU p95 ms | encode p50 ms |")
        lines.append("|---|---|---|---|---|---|")
        for enc in ("sentence-transformers", "onnx"):
            w = report["warm"][enc]
            lines.append(f"| {enc} | {w['wall_p50_ms']:.2f} | {w['wall_p95_ms']:.2f} | {w['cpu_p50_ms']:.2f} | {w['cpu_p95_ms']:.2f} | {w['parts_p50_ms']['encode']:.2f} |")
    if report.get("scale"):
        lines.append("\nScale: qa.retrieve.retrieve (dense + BM25, k=10), one query at a time, 1 FAISS thread\n")
        lines.append("| passages | embeddings | dense index | retrieve p50/p95 ms | BM25-only p50 ms | exact search p50/p95 ms | "
                     "HNSW (M/ef) p50/p95 ms, recall@10 | hybrid top-10 vs exact | loaded RSS MB | disk MB | build s/1k |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in report["scale"]:
            if "error" in r:
                lines.append(f"| {r['n']:,} | error | | | | | | | | | |")
                continue
            hnsw = "; ".join(f"{h['M']}/{h['efSearch']}: {h['wall_p50_ms']:.2f}/{h['wall_p95_ms']:.2f}, {h['recall@10']:.3f}" for h in r["hnsw"])
            agree = r.get("retrieve_flat_vs_current_top10_agree")
            build = sum(r["build_s_per_1k"].values())
            lines.append(
                f"| {r['passages']:,} | {r['embeddings']} | {r['dense_type']} | {r['retrieve']['wall_p50_ms']:.2f}/{r['retrieve']['wall_p95_ms']:.2f} "
                f"| {r['bm25_only']['wall_p50_ms']:.2f} | {r['exact_search']['wall_p50_ms']:.2f}/{r['exact_search']['wall_p95_ms']:.2f} | {hnsw} "
                f"| {'—' if agree is None else f'{agree:.3f}'} | {r['index_mb']:.0f} | {r['disk_mb']:.0f} | {build:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.scale_bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    ap.add_argument("--runs", type=int, default=7, help="cold-start runs per encoder (median reported)")
    ap.add_argument("--index", type=Path, help="default-corpus index to use (default: build one in a temp dir)")
    ap.add_argument("--work", type=Path, help="scratch directory (default: a temp dir)")
    ap.add_argument("--threshold", type=int, default=None, help="HNSW threshold for the scaled indexes (default: index.build's)")
    ap.add_argument("--synthetic", choices=["blend", "noise"], default="blend",
                    help="how copies' embeddings are synthesised above 1k passages (see perturb)")
    ap.add_argument("--skip-cold", action="store_true")
    ap.add_argument("--skip-warm", action="store_true")
    ap.add_argument("--out", type=Path, default=REPORT)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--query-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--vectors", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--index-dir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    global SYNTHETIC
    SYNTHETIC = args.synthetic
    if args.query_child:
        print(json.dumps(query_child(args.query_child, args.index_dir, args.vectors)))
        return 0
    from index.build import HNSW_THRESHOLD

    threshold = args.threshold or HNSW_THRESHOLD
    if args.child:
        child(args.child, args.work, args.vectors, threshold)
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="policyqa-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict = {"runs": args.runs, "threshold": threshold, "cpus": os.cpu_count()}
    index = default_index(work, args.index)
    from index.store import read_index

    encoder_dir = read_index(index).query_encoder_dir
    if encoder_dir is None:
        raise SystemExit(f"{index} has no ONNX query encoder: rebuild it with `policyqa index build`")
    if not args.skip_cold:
        report["cold"] = cold_start(index, args.runs)
        report["imports"] = import_report(index)
        print(markdown({k: report[k] for k in ("runs", "cold", "imports")}), flush=True)
    if not args.skip_warm:
        report["warm"] = warm(index)
        print(markdown({"warm": report["warm"]}), flush=True)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if sizes:
        vectors = encode_base(work, encoder_dir)
        report["scale"] = scale(sizes, work, vectors, threshold)
        print(markdown({"scale": report["scale"]}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    previous.update(report)  # a partial run (--skip-…, fewer sizes) keeps the other figures
    if report.get("scale") and previous.get("scale") is not report["scale"]:
        by_n = {r["n"]: r for r in json.loads(args.out.read_text()).get("scale", [])} if args.out.exists() else {}
        by_n.update({r["n"]: r for r in report["scale"]})
        previous["scale"] = [by_n[k] for k in sorted(by_n)]
    write_atomic(args.out, json.dumps(previous, indent=1, default=float))
    write_atomic(args.out.with_suffix(".md"), markdown(previous) + "\n")
    print(f"written {args.out} and {args.out.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
