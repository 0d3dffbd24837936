"""BM25 weights against the textbook formula, and the tokenizer's folding."""
import math

import numpy as np

from index.lexical import B, K1, bm25_scores, build_bm25, tokenize


def test_bm25_matches_the_formula_and_takes_a_generator():
    docs = [["cooki", "share"], ["cooki", "cooki", "fee"], ["fee"]]
    vocab, matrix = build_bm25(iter(docs))
    avg = sum(map(len, docs)) / len(docs)
    for row, doc in enumerate(docs):
        for term in set(doc):
            df = sum(term in d for d in docs)
            idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
            tf = doc.count(term)
            expected = idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * len(doc) / avg))
            assert math.isclose(matrix[row, vocab[term]], expected, rel_tol=1e-5)
    scores = bm25_scores(vocab, matrix, ["cooki", "unknown"])
    assert scores[1] > scores[0] > scores[2] == 0
    assert np.all(bm25_scores(vocab, matrix, ["nothing"]) == 0)


def test_tokenizer_folds_case_contractions_and_stems():
    assert tokenize("Doesn’t JapanWork's COOKIES share?") == tokenize("does japanwork cookie sharing")
    assert tokenize("the a of") == []
