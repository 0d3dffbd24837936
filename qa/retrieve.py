"""Hybrid retrieval: FAISS dense search and BM25, fused over a shared candidate set."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index.errors import UsageError
from index.lexical import bm25_scores
from index.store import StoredIndex
from index.types import Hit

FUSIONS = ("linear", "rrf")


class SettingsError(UsageError, ValueError):
    """A retrieval setting with a value PolicyQA does not know."""


@dataclass(frozen=True)
class RetrievalSettings:
    candidates: int = 40  # taken from each ranker before fusion
    use_dense: bool = True
    use_lexical: bool = True
    # The three weights were re-fitted around the trained encoder (policyqa/minilm-policy-v1), cross-fitted
    # on the dev questions with its fold models (python -m eval.refit; eval/reports/refit.md): held-out
    # hit@1 0.770 with the base model's weights (0.25, 0.5, 0.2) -> 0.791. Around minilm-policy-v2
    # (eval/reports/refit_minilm-policy-v2.md) only the heading weight changed: (0.15, 1.0, 0) held-out
    # hit@1 0.797 / highlight 0.669 -> (0.15, 1.0, 0.2) 0.804 / 0.682; the grid's best, (0.15, 0.5, 0.2),
    # 0.811 / 0.689, is one question more and loses the complaints clause of tests/test_core_answers.py.
    # Around minilm-policy-v3 the BM25 weight went 0.15 -> 0.1, measured on both held-out sets with its
    # 2 fold models (eval.refit points; eval/reports/policyqa_refit.md): own dev hit@1/hit@3/highlight
    # 0.811/0.932/0.703 -> 0.818/0.932/0.709 (0.12: 0.818/0.939/0.709; 0.08: 0.804/0.932/0.703), PolicyQA
    # k-fold hit@1/hit@3 0.314/0.563 -> 0.329/0.573 (0.12: 0.321/0.570). Lower still helps PolicyQA (v2
    # folds, lexical 0: 0.337/0.588) but costs our own questions (v2 folds, 0: hit@1 0.682).
    lexical_weight: float = 0.1  # weight of max-normalised BM25 beside cosine similarity
    sentence_weight: float = 1.0  # weight of the best sentence's cosine beside the passage's
    # Weight of the cosine between the question and the clause heading alone ("Change of Privacy Policy"
    # is not what "how do I fix wrong info?" asks). v1 read headings with the clause well enough to drop it
    # (0.2 cost 0.791 -> 0.777 held out); v2 gains from it again (0 -> 0.2: 0.797 -> 0.804). v4 (2 epochs) reads them
    # well enough again: with its 2 fold models 0.2 -> 0 takes own dev (eval.refit) 0.811/0.966/0.723 -> 0.818/0.973/0.730
    # and PolicyQA (eval.policyqa_refit) 0.360/0.632 -> 0.359/0.633 (hit@1/hit@3). Their grid's best on own dev,
    # BM25 weight 0.15 without headings (0.831/0.973/0.743), costs PolicyQA 0.357/0.624, and own dev leans to BM25
    # because the thesaurus (qa/expand.py) was written on it: the BM25 weight stays 0.1. Re-checked over v5's fold models
    # (eval/reports/refit_minilm-policy-v5.md): BM25 0.15 ties 0.1 on own dev, costs PolicyQA 0.384/0.647 -> 0.374/0.642;
    # heading 0.2 costs own dev 0.845 -> 0.824. Comparisons weigh BM25 more (qa.engine.Settings.site_lexical_weight).
    heading_weight: float = 0.0
    fusion: str = "linear"  # "linear" or "rrf"
    # BM25 is divided by max(its top candidate's score, this), not by the top score alone: a question whose
    # words (with the thesaurus's) only match common policy words gets less than the full lexical weight, one
    # with rarer matching words ("record my phone calls": 8.8) the full weight. Best BM25 over the question's
    # policy, median: own dev 9.8, PolicyQA 6.5 (whose generic questions BM25 serves badly: weight 0 helps it).
    # Measured with the v3 fold encoders (PolicyQA 2-fold, eval.policyqa_bench --folds; own dev held out,
    # eval.refit --current): PolicyQA hit@1/hit@3 0.330/0.573 -> 0.338/0.590 (mean top citation 540 -> 542
    # characters), own dev hit@1/hit@3/highlight 0.818/0.932/0.736 unchanged; floor 12: PolicyQA 0.593 but own
    # hit@1 0.811; 16: 0.597 and 0.791 (lexical weight 0: 0.596 and 0.696). Over 750/0 passages floor 8 gives
    # PolicyQA 0.340/0.611 (584 characters). The scale is BM25's, so it moves with the index's idf.
    lexical_floor: float = 8.0

    def __post_init__(self):
        if self.fusion not in FUSIONS:  # a typo must not quietly mean linear fusion
            raise SettingsError(f"unknown fusion {self.fusion!r}; use one of: {', '.join(FUSIONS)}")


def dense_candidates(index: StoredIndex, query: np.ndarray, rows: np.ndarray | None, n: int) -> np.ndarray:
    """Rows of the `n` passages nearest to `query` in FAISS, restricted to `rows` when given."""
    import faiss

    q = query.reshape(1, -1).astype(np.float32)
    n = min(n, index.dense.ntotal if rows is None else len(rows))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    if rows is None:
        _, ids = index.dense.search(q, n)
    else:
        selector = faiss.IDSelectorBatch(rows.astype(np.int64))
        params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(index.dense.hnsw.efSearch, n)) if hasattr(index.dense, "hnsw") \
            else faiss.SearchParameters(sel=selector)
        _, ids = index.dense.search(q, n, params=params)
    return ids[0][ids[0] >= 0]


def top_rows(scores: np.ndarray, n: int) -> np.ndarray:
    """`np.argsort(-scores, kind="stable")[:n]` (best first, ties in row order) without sorting all
    rows: a partition finds the n-th best score, then only the rows above or at it are sorted."""
    if n >= len(scores):
        return np.argsort(-scores, kind="stable")[:n]
    if n <= 0:
        return np.zeros(0, dtype=np.intp)
    kth = np.partition(scores, len(scores) - n)[len(scores) - n]
    above = np.flatnonzero(scores > kth)
    ties = np.flatnonzero(scores == kth)[: n - len(above)]
    picked = np.concatenate([above, ties])
    return picked[np.argsort(-scores[picked], kind="stable")]


def sentence_rows_of(index: StoredIndex, passage_rows: np.ndarray) -> list[np.ndarray]:
    starts = np.searchsorted(index.sentence_passage, passage_rows, side="left")
    ends = np.searchsorted(index.sentence_passage, passage_rows, side="right")
    return [np.arange(s, e) for s, e in zip(starts, ends)]


def heading_similarity(index: StoredIndex, rows: np.ndarray, query_vector: np.ndarray) -> np.ndarray:
    """Cosine between the query and each passage's clause heading; 0 for a passage outside any section."""
    heading = index.passage_heading[rows]
    if not len(index.heading_embeddings):
        return np.zeros(len(rows), dtype=np.float32)
    return np.where(heading >= 0, index.heading_embeddings[np.maximum(heading, 0)] @ query_vector, 0.0).astype(np.float32)


def retrieve(
    index: StoredIndex,
    query_vector: np.ndarray,
    query_tokens: list[str],
    policy_ids: list[str] | None,
    k: int,
    settings: RetrievalSettings = RetrievalSettings(),
) -> list[Hit]:
    """The `k` best passages for the query, best first, from `policy_ids` only when given."""
    rows = None
    if policy_ids:
        rows = np.concatenate([index.policy_rows.get(p, np.zeros(0, np.int64)) for p in policy_ids]).astype(np.int64)
        if len(rows) == 0:
            return []
    lexical = bm25_scores(index.vocab, index.bm25, query_tokens) if settings.use_lexical else None
    pools = []
    if settings.use_dense:
        pools.append(dense_candidates(index, query_vector, rows, settings.candidates))
    if lexical is not None:
        scoped = lexical if rows is None else np.full_like(lexical, -1.0)
        if rows is not None:
            scoped[rows] = lexical[rows]
        top = top_rows(scoped, settings.candidates)
        pools.append(top[scoped[top] > 0])
    cands = np.unique(np.concatenate(pools)) if pools else np.zeros(0, np.int64)
    if len(cands) == 0:
        return []
    dense = index.embeddings[cands] @ query_vector
    if settings.sentence_weight > 0 and len(index.sentence_embeddings):
        best_sentence = np.array([
            float((index.sentence_embeddings[s] @ query_vector).max()) if len(s) else -1.0
            for s in sentence_rows_of(index, cands)
        ])
        dense = np.maximum(dense, 0) + settings.sentence_weight * np.maximum(best_sentence, 0)
        dense /= 1 + settings.sentence_weight
    lex = lexical[cands] if lexical is not None else np.zeros(len(cands), np.float32)
    if not settings.use_dense:
        score = lex
    elif settings.fusion == "rrf":
        rank_d = np.argsort(np.argsort(-dense))
        rank_l = np.argsort(np.argsort(-lex))
        score = 1 / (60 + rank_d) + (1 / (60 + rank_l) if lexical is not None else 0)
    else:
        top_lex = float(lex.max()) if len(lex) else 0.0
        score = dense + (settings.lexical_weight * lex / max(top_lex, settings.lexical_floor) if top_lex > 0 else 0)
        if settings.heading_weight:
            score = score + settings.heading_weight * heading_similarity(index, cands, query_vector)
    order = np.argsort(-score, kind="stable")[:k]
    return [Hit(index.passages[cands[i]], float(score[i]), float(dense[i]), float(lex[i]), int(cands[i])) for i in order]
