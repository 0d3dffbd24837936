"""Does a policy address the question at all? Judged from coverage, not from similarity alone.

Cosine similarity cannot tell "does en Japan use AI to score my video interview?" (not addressed)
from "who watches my video interview?" (addressed): both land near the video-interview clause.
What differs is coverage: how many of the question's own key words (or the policy words the
thesaurus maps them to) occur anywhere in the policies asked about.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from index.lexical import tokenize
from index.store import StoredIndex
from qa.expand import matched_expansions


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Stemmed English stop words: a question's meaning is in its other words."""
    lines = Path(__file__).with_name("stopwords.txt").read_text(encoding="utf-8").splitlines()
    words = [w for line in lines if not line.startswith("#") for w in line.split()]
    return frozenset(words) | frozenset(tokenize(" ".join(words)))


def policy_vocabularies(index: StoredIndex) -> dict[str, frozenset[str]]:
    terms = np.empty(len(index.vocab), dtype=object)
    for term, col in index.vocab.items():
        terms[col] = term
    csr = index.bm25.tocsr()
    return {pid: frozenset(terms[np.unique(csr[rows].indices)]) for pid, rows in index.policy_rows.items()}


def coverage(question: str, vocabulary: frozenset[str] | set[str], ignore: set[str]) -> tuple[float, list[str]]:
    """Share of the question's key words that the vocabulary covers, and the words it does not."""
    ignore = ignore | common_words()
    words = [t for t in tokenize(question) if t not in ignore]
    if not words:
        return 1.0, []
    covered = {t for t in words if t in vocabulary}
    for matched, expansion in matched_expansions(question):
        if set(tokenize(expansion)) & vocabulary:
            covered.update(tokenize(matched))
    missing = [t for t in words if t not in covered]
    return 1 - len(missing) / len(words), missing
