"""The speed-ups keep results exactly: each fast path against the plain code it replaced."""
from __future__ import annotations

import numpy as np
import pytest

from index.lexical import tokenize


def _best_window_reference(text: str, start: int, end: int, question_tokens: set[str]) -> tuple[int, int]:
    """qa.highlight._best_window as it was: re-tokenises every window (O(words^2))."""
    from qa.highlight import MAX_HIGHLIGHT, _word_positions

    words = [(i, i + len(w)) for i, w in _word_positions(text[start:end])]
    best, best_count = (start, start + MAX_HIGHLIGHT), -1
    for i, (ws, _) in enumerate(words):
        window_end = ws + MAX_HIGHLIGHT
        inside = [text[start + a : start + b] for a, b in words[i:] if b <= window_end]
        count = len(question_tokens & set(tokenize(" ".join(inside))))
        if count > best_count:
            last = max(b for a, b in words[i:] if b <= window_end) if inside else ws
            best, best_count = (start + ws, start + last), count
    return best


def test_best_window_matches_the_quadratic_version():
    from index.corpus import load_corpus
    from qa.highlight import _best_window

    rng = np.random.default_rng(7)
    texts = [p.text for p in load_corpus()]
    texts.append("short " + "x" * 350 + " data privacy " + "y" * 320 + " share data with a third party, " * 20)
    for text in texts:
        words = tokenize(text)
        for _ in range(60):
            s = int(rng.integers(0, max(1, len(text) - 10)))
            e = min(len(text), s + int(rng.choice([50, 301, 450, 900, 2000])))
            question = set(rng.choice(words, size=min(4, len(words)), replace=False)) | {"data", "share"}
            assert _best_window(text, s, e, question) == _best_window_reference(text, s, e, question)


@pytest.mark.parametrize("kind", ["distinct", "ties", "mostly zero"])
def test_top_rows_is_a_stable_argsort(kind):
    from qa.retrieve import top_rows

    rng = np.random.default_rng({"distinct": 1, "ties": 2, "mostly zero": 3}[kind])
    for _ in range(500):
        n, k = int(rng.integers(1, 300)), int(rng.integers(0, 60))
        if kind == "distinct":
            x = rng.random(n).astype(np.float32)
        elif kind == "ties":
            x = rng.integers(0, 4, n).astype(np.float32)
        else:
            x = np.where(rng.random(n) < 0.8, 0.0, rng.random(n)).astype(np.float32)
            x[rng.random(n) < 0.3] = -1.0
        assert np.array_equal(top_rows(x, k), np.argsort(-x, kind="stable")[:k])


def test_policy_rows_grouping(default_index):
    from index.store import read_index

    stored = read_index(default_index)
    ids = np.array([p.policy_id for p in stored.passages])
    for pid, rows in stored.policy_rows.items():
        assert np.array_equal(rows, np.flatnonzero(ids == pid))
