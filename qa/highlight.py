"""Pick the sentence (or two) inside a passage that best answers the question."""
from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from index.lexical import tokenize
from index.store import StoredIndex
from qa.abstain import aspect_share

MAX_HIGHLIGHT = 300
LONG_SENTENCE = 400  # one sentence longer than this is cut to a window round its best words


SHORT_SENTENCE = 40  # a title line or list label ("1 Google Analytics") rarely answers by itself
SHORT_PENALTY = 0.1  # taken off such a sentence's score
LEXICAL_WEIGHT = 0.1  # weight of the question's words in a sentence beside its cosine
# A highlight takes in the best sentence's better neighbour when it scores within this (cosine + 0.1 x overlap)
# and both fit in MAX_HIGHLIGHT: the answering sentence ranks second and next to the best one in about 1 in 10
# right passages. Dev highlight-hit@1 0.739 -> 0.761, held out by the fold encoders 0.682 -> 0.716, mean
# highlight 198 -> 218 characters (was: join only a best sentence under 120 characters, within 0.15).
JOIN_MARGIN = 0.2
# Measured against this rule held out (eval.highlight_pick, fold encoders, chooser cross-fitted; own dev /
# PolicyQA hl-hit@1 0.764 / 0.236): a listwise sentence model added to its score, 0.764 / 0.243; its four numbers
# (0.1 overlap, 0.1 short, 0.1 aspect, 0.2 margin) chosen by 5-fold, 0.764 / 0.242; both with longer highlights.
# Not clearly better on own dev, so the rule stays.


@lru_cache(maxsize=1 << 16)
def token_set(text: str) -> frozenset[str]:
    # Sentences and words recur across questions; their tokens are computed once.
    return frozenset(tokenize(text))


def sentence_rows(index: StoredIndex, passage_row: int) -> tuple[int, int]:
    """[lo, hi) rows of the passage's sentences in the index's sentence arrays."""
    lo = int(np.searchsorted(index.sentence_passage, passage_row, side="left"))
    hi = int(np.searchsorted(index.sentence_passage, passage_row, side="right"))
    return lo, hi


def _overlap(question_tokens: set[str], text: str) -> float:
    if not question_tokens:
        return 0.0
    return len(question_tokens & token_set(text)) / len(question_tokens) ** 0.5


def highlight_span(
    index: StoredIndex,
    passage_row: int,
    query_vector: np.ndarray,
    question_tokens: set[str],
    lexical_weight: float = LEXICAL_WEIGHT,
    join_margin: float = JOIN_MARGIN,
    aspects: tuple[re.Pattern, ...] = (),
    aspect_weight: float = 0.0,
) -> tuple[int, int, float]:
    """(start, end, score) of the highlight in the policy text. A sentence stating what the question asks for
    (`aspects`, qa.abstain.stated_patterns) ranks `aspect_weight` x the share it states higher; the score
    returned, abstention's evidence, stays the plain one."""
    passage = index.passages[passage_row]
    text = index.policies[passage.policy_id].text
    lo, hi = sentence_rows(index, passage_row)
    if hi <= lo:
        return passage.start, min(passage.end, passage.start + MAX_HIGHLIGHT), 0.0
    spans = index.sentence_spans[lo:hi]
    cosine = index.sentence_embeddings[lo:hi] @ query_vector
    scores = [
        float(c) + lexical_weight * _overlap(question_tokens, text[s:e]) - (SHORT_PENALTY if e - s < SHORT_SENTENCE else 0.0)
        for c, (s, e) in zip(cosine, spans)
    ]
    ranking = scores
    if aspect_weight and aspects:
        ranking = [sc + aspect_weight * aspect_share(text[s:e], aspects) for sc, (s, e) in zip(scores, spans)]
    start, end = choose_span(text, spans, ranking, question_tokens, join_margin)
    return start, end, max(scores)


def choose_span(text: str, spans: np.ndarray, scores, question_tokens: set[str], margin: float = JOIN_MARGIN) -> tuple[int, int]:
    """(start, end) of the best-scoring sentence, joined by its better-scoring neighbour when that one
    scores within `margin` and the two fit in MAX_HIGHLIGHT characters, and cut to a window round the
    question's words when longer than LONG_SENTENCE."""
    best = int(np.argmax(scores))
    start, end = int(spans[best][0]), int(spans[best][1])
    # The answering sentence is often the best one's neighbour ("... may set and access cookies." then
    # "Advertisers ... cannot access JapanWork's cookies."): two adjacent sentences still point at one place.
    neighbours = [n for n in (best - 1, best + 1) if 0 <= n < len(spans)]
    if neighbours:
        neighbour = max(neighbours, key=lambda n: scores[n])
        s, e = int(spans[neighbour][0]), int(spans[neighbour][1])
        if scores[neighbour] >= scores[best] - margin and max(end, e) - min(start, s) <= MAX_HIGHLIGHT:
            start, end = min(start, s), max(end, e)
    if end - start > LONG_SENTENCE:
        start, end = _best_window(text, start, end, question_tokens)
    return start, end


def _best_window(text: str, start: int, end: int, question_tokens: set[str]) -> tuple[int, int]:
    """The MAX_HIGHLIGHT-long stretch of a long sentence holding most question words, cut at spaces."""
    # A sliding window over whitespace-separated words: tokens never span a space, so a window's
    # tokens are the union of its words' tokens, counted incrementally (was O(words^2) tokenising).
    positions = list(_word_positions(text[start:end]))
    words = [(i, i + len(w)) for i, w in positions]
    relevant = [question_tokens & token_set(w) for _, w in positions]
    in_window: dict[str, int] = {}
    best, best_count = (start, start + MAX_HIGHLIGHT), -1
    j = 0  # words[i:j] are the window's words (those ending by window_end)
    for i, (ws, _) in enumerate(words):
        if i > 0:
            if j > i - 1:  # word i-1 leaves the window
                for t in relevant[i - 1]:
                    in_window[t] -= 1
                    if not in_window[t]:
                        del in_window[t]
            else:
                j = i
        window_end = ws + MAX_HIGHLIGHT
        while j < len(words) and words[j][1] <= window_end:
            for t in relevant[j]:
                in_window[t] = in_window.get(t, 0) + 1
            j += 1
        count = len(in_window)
        if count > best_count:
            last = words[j - 1][1] if j > i else ws
            best, best_count = (start + ws, start + last), count
    return best


def _word_positions(text: str):
    pos = 0
    for word in text.split():
        i = text.index(word, pos)
        yield i, word
        pos = i + len(word)
