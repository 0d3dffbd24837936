"""Policies -> clauses -> passages -> embeddings -> an index directory on disk."""
from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from index.chunk import ChunkSettings, chunk_clauses
from index.corpus import checksum
from index.models import TextEncoder
from index.lexical import B, K1, STEMMER, build_bm25, tokenize
from index.parse import parse_clauses
from index.sentences import sentence_spans
from index.store import FORMAT, FORMAT_VERSION, IndexLoadError, StoredIndex, read_index, write_index
from index.types import Passage, Policy
from index.trained import trained_provenance

# Below this many passages exact search is fast enough (and exact); above it HNSW keeps queries fast.
# Measured with eval/scale_bench.py (docs/scaling.md), one query on one core: exact search takes 0.65 ms
# at 10k passages, 1.3 ms at 20k, 1.9 ms at 30k, then 3.4-6.2 ms at 50k, 12 ms at 100k, 27 ms at 200k
# and 114-149 ms at 1M (the vectors outgrow the CPU caches past ~30k), while a whole warm ask has 10 ms.
HNSW_THRESHOLD = 40_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200


def hnsw_ef_search(n: int) -> int:
    """efSearch keeping recall@10 against exact search >= 0.97, measured: 512 gives 0.999 at 50k,
    0.996 at 100k, 0.986 at 200k (0.6-1 ms); at 1M 1024 gives 0.968, 2048 gives 0.985 (6 ms)."""
    return 512 if n < 300_000 else 2048


def sentence_embedding_text(passage: Passage, sentence: str) -> str:
    # "General Manager of en Japan Inc." answers "who protects my data?" only under its heading.
    return f"{passage.heading}\n{sentence}" if passage.section else sentence


def _text_key(text: str) -> str:
    # Sentences and headings are keyed by their text alone: equal text gives an equal vector.
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def heading_rows(passages: list[Passage]) -> tuple[list[str], np.ndarray]:
    """The distinct headings of `passages` in first-seen order, and each passage's row among them
    (-1 for a passage outside any section)."""
    rows, headings = [], {}
    for p in passages:
        rows.append(headings.setdefault(p.heading, len(headings)) if p.section else -1)
    return list(headings), np.array(rows, dtype=np.int32)


def make_dense_index(embeddings: np.ndarray, hnsw_threshold: int = HNSW_THRESHOLD):
    import faiss

    dim = embeddings.shape[1]
    if len(embeddings) >= hnsw_threshold:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = hnsw_ef_search(len(embeddings))  # saved with the index
    else:
        index = faiss.IndexFlatIP(dim)
    index.add(np.ascontiguousarray(embeddings, dtype=np.float32))
    return index


def export_query_encoder(encoder, manifest: dict) -> Path | None:
    """The ONNX query encoder files to ship in the index (exported once per model per machine), noted
    in `manifest`; None, with a warning, when the model cannot be exported: asking then loads
    sentence-transformers instead (seconds slower to start, same answers)."""
    import warnings

    t0 = time.perf_counter()
    try:
        from index.onnx_export import FILES, source_for

        source = source_for(encoder)
    except Exception as e:  # optional: no torch/onnx/onnxruntime, an unexportable model, a full disk...
        warnings.warn(f"no ONNX query encoder in this index ({type(e).__name__}: {e}); "
                      "`policyqa ask` will load sentence-transformers", stacklevel=3)
        return None
    manifest["query_encoder"] = {
        "format": "onnx", "path": "query_encoder", "files": list(FILES), "export": source.name,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return source


def passages_of(policy: Policy, settings: ChunkSettings) -> list[Passage]:
    return chunk_clauses(parse_clauses(policy.text, policy.id), policy.text, settings)


def _previous_index(out: Path) -> StoredIndex | None:
    try:
        return read_index(out)
    except IndexLoadError:
        return None


def _stored_keys(old: StoredIndex) -> list[str]:
    """Content keys of an existing index's heading rows then sentence rows (the multilingual vectors' order)."""
    sentences = []
    for row, (s, e) in zip(old.sentence_passage, old.sentence_spans):
        passage = old.passages[row]
        sentences.append(_text_key(sentence_embedding_text(passage, old.policies[passage.policy_id].text[s:e])))
    return [_text_key(h) for h in heading_rows(old.passages)[0]] + sentences


def _previous_vectors(old: StoredIndex | None, model: str) -> dict[str, np.ndarray]:
    """Embeddings an existing index already holds, by content hash, if built by `model`."""
    if old is None or old.model != model:
        return {}
    known = {p.key: old.embeddings[i] for i, p in enumerate(old.passages)}
    for i, (row, (s, e)) in enumerate(zip(old.sentence_passage, old.sentence_spans)):
        passage = old.passages[row]
        known[_text_key(sentence_embedding_text(passage, old.policies[passage.policy_id].text[s:e]))] = old.sentence_embeddings[i]
    for heading, vector in zip(heading_rows(old.passages)[0], old.heading_embeddings):
        known[_text_key(heading)] = vector
    return known


def build_index(
    policies: list[Policy],
    out: Path,
    encoder: TextEncoder,
    settings: ChunkSettings = ChunkSettings(),
    progress: bool = False,
    reuse: bool = True,
    previous: StoredIndex | None = None,
    reuse_parsed: bool = False,
    multilingual="default",
) -> dict:
    """Build (or rebuild) the index at `out` from `policies`; returns timing and count figures.
    Text already embedded by the same model in the index at `out` is not embedded again.

    `previous`: the index at `out` if the caller has it loaded already (it is not read twice).
    `reuse_parsed`: take the passages of a policy whose text (sha256) and chunk settings are
    unchanged from `previous` instead of parsing it again (incremental adds to a large index).
    A policy keeps its `added` time while its text is unchanged.
    `multilingual`: the encoder of the vectors kept beside the dense model's for questions in other
    languages (index.multilingual); "default" is multilingual-e5 (index.e5), None builds without."""
    t0 = time.perf_counter()
    old = previous if previous is not None else (_previous_index(Path(out)) if reuse or reuse_parsed else None)
    old_entries = {e["id"]: e for e in old.manifest["policies"]} if old is not None else {}
    same_chunking = old is not None and old.manifest.get("chunking") == settings.to_dict()
    t_read = time.perf_counter()
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    passages: list[Passage] = []
    policy_entries = []
    for policy in policies:
        digest = checksum(policy.text)
        before = old_entries.get(policy.id)
        unchanged = before is not None and before.get("sha256") == digest
        if reuse_parsed and unchanged and same_chunking and policy.id in old.policy_rows:
            ps = [old.passages[r] for r in old.policy_rows[policy.id]]
        else:
            ps = passages_of(policy, settings)
        policy_entries.append({
            "id": policy.id, "company": policy.company, "service": policy.service, "aliases": list(policy.aliases),
            "date": policy.date, "source": policy.source, "sha256": digest, "passages": len(ps),
            "origin": policy.origin or (before or {}).get("origin") or "cli",
            "added": (before.get("added") if unchanged else None) or now,
        })
        passages.extend(ps)
    sentence_rows, spans = [], []
    for row, p in enumerate(passages):
        for s, e in sentence_spans(p.text, p.start):
            sentence_rows.append(row)
            spans.append((s, e))
    texts_by_policy = {p.id: p.text for p in policies}
    sentence_texts = [
        sentence_embedding_text(passages[r], texts_by_policy[passages[r].policy_id][s:e]) for r, (s, e) in zip(sentence_rows, spans)
    ]
    t_parse = time.perf_counter()

    known = _previous_vectors(old, encoder.name) if reuse else {}
    old_dim = old.manifest["model"]["dimension"] if known else None
    headings, passage_heading = heading_rows(passages)
    heading_keys = [_text_key(h) for h in headings]
    wanted = ([(p.key, p.embedding_text()) for p in passages] + list(zip(heading_keys, headings))
              + [(_text_key(t), t) for t in sentence_texts])
    missing = {k: t for k, t in wanted if k not in known}
    passage_keys = [k for k in dict.fromkeys(p.key for p in passages) if k in missing]
    passage_set = set(passage_keys)
    new_heading_keys = [k for k in dict.fromkeys(heading_keys) if k in missing and k not in passage_set]
    ranked = passage_set | set(new_heading_keys)
    sentence_keys = [k for k in missing if k not in ranked]
    vectors = dict(known)
    t_known = time.perf_counter()
    # The multilingual vectors are encoded in a second thread meanwhile: both encoders run one thread
    # and release the GIL in their native code, so on two cores the build takes the longer of the two.
    from index import multilingual as ml

    ml_encoder = ml.default_encoder() if multilingual == "default" else multilingual
    pending_multilingual = None
    if ml_encoder is not None:
        from concurrent.futures import ThreadPoolExecutor

        old_keys = _stored_keys(old) if reuse and getattr(old, "multilingual", None) is not None else []
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="multilingual")
        pending_multilingual = pool.submit(
            ml.encode, ml_encoder, list(zip(heading_keys, headings)), [(_text_key(t), t) for t in sentence_texts],
            np.array(sentence_rows, dtype=np.int64), len(passages), ml.previous_vectors(old, ml_encoder.name, old_keys),
        )
        pool.shutdown(wait=False)
    bar = _progress_bar(len(missing)) if progress and missing else None
    # Timed apart: passages and headings rank, sentences only choose the highlight.
    vectors.update(_encode(encoder, passage_keys + new_heading_keys, missing, bar))
    t_sentences = time.perf_counter()
    vectors.update(_encode(encoder, sentence_keys, missing, bar))
    if bar is not None:
        bar.close()
    dim = old_dim if old_dim and not missing else encoder.dimension  # nothing to embed: the model need not load
    embeddings = np.stack([vectors[p.key] for p in passages]) if passages else np.zeros((0, dim), np.float32)
    sentence_embeddings = (
        np.stack([vectors[_text_key(t)] for t in sentence_texts]) if sentence_texts else np.zeros((0, dim), np.float32)
    )
    heading_embeddings = np.stack([vectors[k] for k in heading_keys]) if headings else np.zeros((0, dim), np.float32)
    t_embed = time.perf_counter()
    ml_vectors, ml_embedded = pending_multilingual.result() if pending_multilingual is not None else (None, 0)
    t_multilingual = time.perf_counter()

    vocab, bm25 = build_bm25([tokenize(p.embedding_text()) for p in passages])
    dense = make_dense_index(embeddings)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": {"name": encoder.name, "dimension": int(dim)},  # the dense model, as readers before "models" expect
        "models": [{"role": "dense", "name": encoder.name, "dimension": int(dim),  # every model that built it
                    **trained_provenance(encoder.name)}],
        "chunking": settings.to_dict(),
        "lexical": {"k1": K1, "b": B, "stemmer": STEMMER},
        "dense": {"type": type(dense).__name__},
        "passages": len(passages),
        "sentences": len(sentence_texts),
        "policies": policy_entries,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if ml_vectors is not None:
        manifest[ml.ROLE] = {"name": ml_vectors.name, "dimension": ml_vectors.dimension, "file": ml.FILE}
        manifest["models"].append({"role": ml.ROLE, "name": ml_vectors.name, "dimension": ml_vectors.dimension})
    query_encoder = export_query_encoder(encoder, manifest)
    version = write_index(
        Path(out), manifest, policies, passages, embeddings, dense, vocab, bm25,
        np.array(sentence_rows, dtype=np.int32), np.array(spans, dtype=np.int32).reshape(-1, 2), sentence_embeddings,
        passage_heading, heading_embeddings, query_encoder=query_encoder, multilingual=ml_vectors,
    )
    t_end = time.perf_counter()
    return {
        "path": str(version), "policies": len(policies), "passages": len(passages), "sentences": len(sentence_texts),
        "embedded": len(missing), "reused": len(wanted) - len(missing),
        "embedded_passages": len(passage_keys), "embedded_headings": len(new_heading_keys),
        "embedded_sentences": len(sentence_keys), "embedded_multilingual": ml_embedded,
        "seconds": {"parse": t_parse - t0, "embed": t_embed - t_parse, "write": t_end - t_multilingual, "total": t_end - t0,
                    "embed_multilingual": t_multilingual - t_embed,
                    "read_previous": t_read - t0, "embed_passages": t_sentences - t_known, "embed_sentences": t_embed - t_sentences},
    }


def _progress_bar(total: int):
    from tqdm import tqdm

    return tqdm(total=total, desc="Embedding", unit="text", dynamic_ncols=True, smoothing=0.1)


def _encode(encoder: TextEncoder, keys: list[str], texts: dict[str, str], bar, chunk: int = 512) -> dict[str, np.ndarray]:
    """Vectors of `texts[k]` for `keys`; in chunks when a progress bar (with ETA) is shown."""
    if not keys:
        return {}
    if bar is None:
        return dict(zip(keys, encoder.encode([texts[k] for k in keys])))
    out: dict[str, np.ndarray] = {}
    for i in range(0, len(keys), chunk):
        part = keys[i : i + chunk]
        out.update(zip(part, encoder.encode([texts[k] for k in part])))
        bar.update(len(part))
    return out
