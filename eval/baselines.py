"""Systems the harness compares, all answering with the same typed Answer (index.types) so one scorer scores all.

- The usual recipe: langchain RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50,
  add_start_index=True) over each raw policy text, the same encoder, a faiss.IndexFlatIP, no company
  resolution, no history, no abstention; the top-k chunks are the citations (highlight = the chunk's
  first 300 characters). This is also "dense alone over the same chunks".
- BM25 alone over those same chunks (PolicyQA's own tokenizer and BM25).
- PolicyQA ablations: the real engine with one Settings field changed (`dataclasses.replace`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from index.lexical import bm25_scores, build_bm25, tokenize
from index.models import TextEncoder
from index.types import Answer, Citation, Policy

RECIPE_CHUNK_SIZE = 500
RECIPE_OVERLAP = 50
BASELINE_HIGHLIGHT = 300


@dataclass(frozen=True)
class Chunk:
    policy_id: str
    start: int
    end: int
    text: str


def recipe_chunks(policies: list[Policy], chunk_size: int = RECIPE_CHUNK_SIZE, chunk_overlap: int = RECIPE_OVERLAP) -> list[Chunk]:
    """The usual recipe's chunks, with their offsets in each policy's text (checked verbatim)."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap, add_start_index=True)
    chunks = []
    for policy in policies:
        for doc in splitter.create_documents([policy.text]):
            start = doc.metadata["start_index"]
            text = doc.page_content
            if start < 0 or policy.text[start : start + len(text)] != text:
                raise AssertionError(f"splitter offset {start} does not locate its chunk in {policy.id}")
            chunks.append(Chunk(policy.id, start, start + len(text), text))
    return chunks


class ChunkIndex:
    """The usual recipe's chunks of a corpus with a FAISS inner-product index and a BM25 matrix."""

    def __init__(self, policies: list[Policy], encoder: TextEncoder, chunk_size: int = RECIPE_CHUNK_SIZE,
                 chunk_overlap: int = RECIPE_OVERLAP, progress: bool = False):
        import faiss

        t0 = time.perf_counter()
        self.encoder = encoder
        self.policies = {p.id: p for p in policies}
        self.chunks = recipe_chunks(policies, chunk_size, chunk_overlap)
        t1 = time.perf_counter()
        self.embeddings = encoder.encode([c.text for c in self.chunks], progress=progress)
        t2 = time.perf_counter()
        self.dense = faiss.IndexFlatIP(self.embeddings.shape[1])
        self.dense.add(self.embeddings)
        self.vocab, self.bm25 = build_bm25([tokenize(c.text) for c in self.chunks])
        ids = np.array([c.policy_id for c in self.chunks])
        self.policy_rows = {pid: np.flatnonzero(ids == pid) for pid in self.policies}
        self._per_policy: dict[str, object] = {}
        self._bm25_by_tokenizer: dict = {}
        self.seconds = {"chunk": t1 - t0, "embed": t2 - t1, "total": time.perf_counter() - t0}

    def _policy_index(self, policy_id: str):
        import faiss

        if policy_id not in self._per_policy:
            index = faiss.IndexFlatIP(self.embeddings.shape[1])
            index.add(self.embeddings[self.policy_rows[policy_id]])
            self._per_policy[policy_id] = index
        return self._per_policy[policy_id]

    def dense_search(self, vectors: np.ndarray, k: int, policy: str | None = None) -> list[list[tuple[int, float]]]:
        """(chunk row, cosine) of the k nearest chunks per query vector, in `policy` only when given."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.embeddings.shape[1])
        if policy is None:
            scores, ids = self.dense.search(vectors, min(k, self.dense.ntotal))
            rows = ids
        else:
            index = self._policy_index(policy)
            scores, local = index.search(vectors, min(k, index.ntotal))
            rows = self.policy_rows[policy][np.maximum(local, 0)]
            rows = np.where(local >= 0, rows, -1)
        return [[(int(r), float(s)) for r, s in zip(row_ids, row_scores) if r >= 0] for row_ids, row_scores in zip(rows, scores)]

    def lexical_search(self, question: str, k: int, policy: str | None = None, tokenizer=None) -> list[tuple[int, float]]:
        """(chunk row, BM25) of the k best chunks with a positive score, in `policy` only when given.
        `tokenizer` (default PolicyQA's `tokenize`) selects a BM25 matrix built with that tokenizer."""
        if tokenizer is None:
            vocab, matrix, tokenizer = self.vocab, self.bm25, tokenize
        else:
            if tokenizer not in self._bm25_by_tokenizer:
                self._bm25_by_tokenizer[tokenizer] = build_bm25([tokenizer(c.text) for c in self.chunks])
            vocab, matrix = self._bm25_by_tokenizer[tokenizer]
        scores = bm25_scores(vocab, matrix, tokenizer(question))
        if policy is not None:
            scoped = np.full_like(scores, -1.0)
            rows = self.policy_rows[policy]
            scoped[rows] = scores[rows]
            scores = scoped
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(r), float(scores[r])) for r in order if scores[r] > 0]

    def answer(self, question: str, hits: list[tuple[int, float]], elapsed_ms: float) -> Answer:
        citations = []
        for n, (row, score) in enumerate(hits, start=1):
            c = self.chunks[row]
            policy = self.policies[c.policy_id]
            hl_end = min(c.end, c.start + BASELINE_HIGHLIGHT)
            citations.append(Citation(
                n=n, policy_id=c.policy_id, company=policy.company, section="", text=c.text, start=c.start, end=c.end,
                highlight=policy.text[c.start:hl_end], highlight_start=c.start, highlight_end=hl_end, score=round(score, 4),
            ))
        return Answer(question=question, answer="", abstained=False, policies=sorted({c.policy_id for c in citations}),
                      citations=citations, timings_ms={"total": elapsed_ms})


class RecipeDense:
    """Baseline (a)/(c): the usual recipe, dense retrieval over 500/50 chunks."""

    name = "recipe-dense"
    kind = "baseline"
    about = ("usual recipe: RecursiveCharacterTextSplitter 500/50, same encoder, faiss IndexFlatIP, top-k chunks; "
             "no company resolution, no history, never abstains")

    def __init__(self, index: ChunkIndex):
        self.index = index

    def ask(self, question: str, policy: str | None = None, k: int = 10, history: list[str] | None = None) -> Answer:
        t0 = time.perf_counter()
        vector = self.index.encoder.encode([question], kind="query")
        hits = self.index.dense_search(vector, k, policy)[0]
        return self.index.answer(question, hits, 1000 * (time.perf_counter() - t0))

    def ask_batch(self, questions: list[str], policies: list[str | None], k: int = 10, batch_size: int = 64) -> list[Answer]:
        """Same answers as `ask`, with the questions encoded in batches (timings are per-batch shares)."""
        t0 = time.perf_counter()
        vectors = self.index.encoder.encode(questions, kind="query", batch_size=batch_size)
        share = 1000 * (time.perf_counter() - t0) / max(len(questions), 1)
        out = []
        for question, policy, vector in zip(questions, policies, vectors):
            t1 = time.perf_counter()
            hits = self.index.dense_search(vector, k, policy)[0]
            out.append(self.index.answer(question, hits, share + 1000 * (time.perf_counter() - t1)))
        return out


def plain_tokens(text: str) -> list[str]:
    """Lower-cased whitespace tokens: the plainest BM25 tokenizer (no stop words, no stemming)."""
    return text.lower().split()


class RecipeBM25:
    """Baseline (b): BM25 alone over the usual recipe's 500/50 chunks (PolicyQA's tokenizer unless given one)."""

    name = "recipe-bm25"
    kind = "baseline"
    about = "BM25 alone (PolicyQA's tokenizer, k1=1.2, b=0.75) over the same 500/50 chunks; no history, never abstains"

    def __init__(self, index: ChunkIndex, tokenizer=None):
        self.index = index
        self.tokenizer = tokenizer

    def ask(self, question: str, policy: str | None = None, k: int = 10, history: list[str] | None = None) -> Answer:
        t0 = time.perf_counter()
        hits = self.index.lexical_search(question, k, policy, self.tokenizer)
        return self.index.answer(question, hits, 1000 * (time.perf_counter() - t0))

    def ask_batch(self, questions: list[str], policies: list[str | None], k: int = 10, batch_size: int = 64) -> list[Answer]:
        return [self.ask(q, p, k) for q, p in zip(questions, policies)]


class EngineSystem:
    """PolicyQA itself (or an ablation of it) through the public `Engine.ask`."""

    kind = "policyqa"

    def __init__(self, name: str, engine, about: str = "", kind: str = "policyqa"):
        self.name, self.engine, self.about, self.kind = name, engine, about, kind

    def ask(self, question: str, policy: str | None = None, k: int = 10, history: list[str] | None = None) -> Answer:
        return self.engine.ask(question, policy=policy, k=k, history=history)


def ablations(engine) -> list[EngineSystem]:
    """PolicyQA with one setting changed each. A variant whose setting the engine no longer has is an
    error, not a row that silently vanishes from the report: remove or rename the variant with the setting."""
    from dataclasses import fields

    s = engine.settings
    r = s.retrieval
    have = {f.name for f in fields(s)} | {f"retrieval.{f.name}" for f in fields(r)}
    variants = [
        ("abl:no-resolve", "resolve_names", lambda: replace(s, resolve_names=False), "no company-name resolution (resolve_names=False)"),
        ("abl:lexical-only", "retrieval.use_dense", lambda: replace(s, retrieval=replace(r, use_dense=False)), "BM25 only (use_dense=False)"),
        ("abl:dense-only", "retrieval.use_lexical", lambda: replace(s, retrieval=replace(r, use_lexical=False)), "dense only (use_lexical=False)"),
        ("abl:no-sentence", "retrieval.sentence_weight", lambda: replace(s, retrieval=replace(r, sentence_weight=0.0)), "no sentence evidence (sentence_weight=0)"),
        ("abl:heading", "retrieval.heading_weight", lambda: replace(s, retrieval=replace(r, heading_weight=0.2)),
         "the clause heading's own similarity added, as around minilm-policy-v2 and v3 (heading_weight=0.2)"),
        ("abl:rrf", "retrieval.fusion", lambda: replace(s, retrieval=replace(r, fusion="rrf")), "reciprocal-rank fusion instead of linear"),
        ("abl:no-diversify", "diversify", lambda: replace(s, diversify=False), "no one-clause-per-company diversification"),
        ("abl:no-compare", "compare", lambda: replace(s, compare=False),
         "questions across sites answered as one ranked list, follow-ups scoped by the last site named (compare=False)"),
        ("abl:no-offtopic", "off_topic_check", lambda: replace(s, off_topic_check=False), "no off-topic check for questions naming no policy (off_topic_check=False)"),
        ("abl:no-expand", "expand_lexical", lambda: replace(s, expand_lexical=False), "no thesaurus expansion of BM25's query (expand_lexical=False)"),
        ("abl:no-scorer", "scorer", lambda: replace(s, scorer=None), "no answer-sentence scorer (scorer=None)"),
        ("abl:scorer-rerank", "scorer_rerank", lambda: replace(s, scorer_rerank=0.3),
         "the scorer also reranks the top passages (scorer_rerank=0.3; off by default over minilm-policy-v2)"),
        ("abl:no-scorer-evidence", "scorer_evidence", lambda: replace(s, scorer_evidence=0.0),
         "abstention judges the best sentence by cosine, not by the scorer's probability (scorer_evidence=0)"),
        ("abl:scorer-highlight", "scorer_highlight", lambda: replace(s, scorer_highlight=True), "the scorer chooses the highlight (scorer_highlight=True)"),
        ("abl:one-sentence-highlight", "highlight_margin", lambda: replace(s, highlight_margin=-1.0),
         "the highlight is the best sentence alone, never joined by a close neighbour (highlight_margin=-1)"),
        ("abl:no-aspects", "aspect_passages", lambda: replace(s, aspect_passages=0),
         "abstention without the kind-of-fact check of qa.abstain.ASPECTS (aspect_passages=0)"),
        ("abl:site-evidence-v2", "site_strong_evidence", lambda: replace(s, site_strong_evidence=0.5),
         "a comparison's rows judge \"a sentence close in meaning\" at v2's cosine threshold (site_strong_evidence=0.5)"),
        ("abl:site-lexical", "site_lexical_weight", lambda: replace(s, site_lexical_weight=None),
         "a comparison searches each site with the single-site BM25 weight (site_lexical_weight=None, 0.1), not 0.2"),
        ("abl:coverage-always", "min_coverage_always", lambda: replace(s, min_coverage_always=0.2),
         "also refuse whenever under a fifth of the key words occur in the policy (min_coverage_always=0.2, as before the check)"),
        ("abl:no-aspect-boost", "aspect_boost", lambda: replace(s, aspect_boost=0.0, aspect_highlight=0.0),
         "passages and sentences that state the kind of fact asked for are not ranked higher (aspect_boost=aspect_highlight=0)"),
        ("abl:aspect-sale", "aspect_skip", lambda: replace(s, aspect_skip=()),
         "the kind-of-fact check also asks \"do they sell my data?\" for a clause on selling (aspect_skip=())"),
    ]
    gone = [f"{name} ({field_name})" for name, field_name, _, _ in variants if field_name not in have]
    if gone:
        raise AssertionError(f"ablations of settings the engine no longer has: {', '.join(gone)}; update eval/baselines.py")
    return [EngineSystem(name, engine.with_settings(make()), about, kind="ablation") for name, _, make, about in variants]
