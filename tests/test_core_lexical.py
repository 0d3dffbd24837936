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


def test_tokenize_is_safe_from_many_threads():
    # The page answers several questions at once (worker threads); a stemmer shared between threads
    # mixed their words (an IndexError under the 100-user load test, or a wrong stem). Each thread's
    # stems must be what one thread alone gets.
    import random
    import string
    import sys
    import threading

    import snowballstemmer

    from index.lexical import tokenize

    rng = random.Random(7)
    words = ["".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(6, 14))) + rng.choice(["ing", "ations", "ness", "ed", "ly"])
             for _ in range(24_000)]
    alone = snowballstemmer.stemmer("english")
    want = {w: alone.stemWord(w) for w in words}
    chunks = [words[i::8] for i in range(8)]
    problems: list[str] = []

    def work(chunk):
        try:
            for w in chunk:
                got = tokenize(w)
                if got != [want[w]]:
                    problems.append(f"{w}: {got} != {want[w]}")
        except Exception as e:  # the race's IndexError
            problems.append(f"{type(e).__name__}: {e}")

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so a shared stemmer's race shows
    try:
        threads = [threading.Thread(target=work, args=(c,)) for c in chunks]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not problems, problems[:3]
