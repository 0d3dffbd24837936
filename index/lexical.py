"""BM25 as a sparse passage x term matrix of per-term scores (the bm25s idea): a query's scores
are the sum of its terms' columns, so scoring is one sparse slice, and a policy filter is a mask."""
from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
from scipy import sparse

K1, B = 1.2, 0.75
STEMMER = "snowball-english"
_CONTRACTION = re.compile(r"n't$|'[a-z]*$")  # "doesn't" -> "does", "company's" -> "company"
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[\u3040-\u30ff\u3400-\u9fff]")
STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be been before being below between both but by
    can could did do does doing down during each few for from further had has have having he her here hers him his
    how i if in into is it its itself just me more most my myself no nor not now of off on once only or other our
    ours out over own same she should so some such than that the their theirs them then there these they this those
    through to too under until up very was we were what when where which while who whom why will with would you your
    yours yourself i'm it's don't can't""".split()
)


_per_thread = threading.local()


def _stemmer():
    # One per thread: a snowball stemmer keeps the word it is stemming on itself, so one shared by the
    # page's worker threads mixed their words (IndexError, or a wrong stem) under load.
    stemmer = getattr(_per_thread, "stemmer", None)
    if stemmer is None:
        import snowballstemmer

        stemmer = _per_thread.stemmer = snowballstemmer.stemmer("english")
    return stemmer


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop-worded, stemmed words; CJK characters as unigrams."""
    words = (_CONTRACTION.sub("", w) for w in _TOKEN.findall(text.lower().replace("’", "'")))
    return [_stem(w) for w in words if w and w not in STOPWORDS and (len(w) > 1 or not w.isascii() or w.isdigit())]


def build_bm25(docs: Iterable[list[str]], k1: float = K1, b: float = B) -> tuple[dict[str, int], sparse.csc_matrix]:
    """Vocabulary and passage x term BM25 weights of `docs` (token lists, consumed once). The (row, term)
    pairs are gathered in numpy blocks, not Python lists of every pair (~15 GB at 1M passages)."""
    vocab: dict[str, int] = {}
    lengths: list[int] = []
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    rows: list[int] = []
    cols: list[int] = []
    tfs: list[int] = []

    def flush() -> None:
        blocks.append((np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64), np.array(tfs, dtype=np.float32)))
        rows.clear(), cols.clear(), tfs.clear()

    for row, tokens in enumerate(docs):
        lengths.append(len(tokens))
        counts: dict[int, int] = {}
        for t in tokens:
            col = vocab.setdefault(t, len(vocab))
            counts[col] = counts.get(col, 0) + 1
        rows.extend([row] * len(counts))
        cols.extend(counts.keys())
        tfs.extend(counts.values())
        if len(rows) > 2_000_000:
            flush()
    flush()
    n = len(lengths)
    rows_a, cols_a, tf = (np.concatenate([blk[i] for blk in blocks]) for i in range(3))
    length = np.array(lengths, dtype=np.float32)
    df = np.bincount(cols_a, minlength=len(vocab)).astype(np.float32)
    idf = bm25_idf(n, df)
    avg = float(length.mean()) if n else 1.0
    norm = k1 * (1 - b + b * length[rows_a] / max(avg, 1e-9))
    weights = idf[cols_a] * tf * (k1 + 1) / (tf + norm)
    matrix = sparse.csc_matrix((weights, (rows_a, cols_a)), shape=(n, len(vocab)), dtype=np.float32)
    return vocab, matrix


def bm25_idf(n: int, df: np.ndarray) -> np.ndarray:
    """BM25's (Lucene's, never negative) inverse document frequency of terms found in `df` of `n` documents."""
    return np.log(1.0 + (n - df + 0.5) / (df + 0.5))


def bm25_scores(vocab: dict[str, int], matrix: sparse.csc_matrix, query_tokens: list[str]) -> np.ndarray:
    ids = sorted({vocab[t] for t in query_tokens if t in vocab})
    if not ids:
        return np.zeros(matrix.shape[0], dtype=np.float32)
    return np.asarray(matrix[:, ids].sum(axis=1), dtype=np.float32).ravel()
