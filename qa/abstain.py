"""Does a policy address the question at all? Judged from coverage, not from similarity alone.

Cosine similarity cannot tell "does en Japan use AI to score my video interview?" (not addressed)
from "who watches my video interview?" (addressed): both land near the video-interview clause.
What differs is coverage: how many of the question's own key words (or the policy words the
thesaurus maps them to) occur anywhere in the policies asked about.
"""
from __future__ import annotations

import re
import unicodedata
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


# What a question about these policies talks about, whichever words it uses: the sites and companies
# themselves, or personal data and what is done with it. Deliberately broad: it only decides for a
# question that names no policy, and letting an off-topic one through costs less than refusing a real one.
_ON_TOPIC = re.compile(
    r"\b(data|info\w*|details?|personal|privacy|polic(y|ies)|cookies?|localstorage|track\w*|analytics?|brows\w*"
    r"|ads?|advert\w*|marketing|e-?mails?|newsletters?|mail magazines?|spam|shar\w*|sell\w*|sold|delet\w*|eras\w*"
    r"|remov\w*|consent\w*|opt[- ]?out|accounts?|profiles?|r[eé]sum[eé]s?|cvs?|records?|recording|leak\w*|hack\w*"
    r"|breach\w*|secur\w*|third[- ]part\w*|disclos\w*|collect\w*|stor(e|es|ed|ing|age)|retain\w*|retention|keeps?"
    r"|kept|access\w*|correct\w*|complain\w*|contact\w*|requests?|employers?|recruiters?|applications?"
    r"|interviews?|sites?|websites?|apps?|services?|compan(y|ies)|operators?|agenc(y|ies))\b"
)


def about_the_policies(question: str) -> bool:
    """Whether a question that names no policy asks about job sites or personal data at all:
    "what's the minimum wage in Tokyo?" does not, however near "Tokyo" in an address it lands."""
    return bool(_ON_TOPIC.search(unicodedata.normalize("NFKC", question).casefold()))


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
