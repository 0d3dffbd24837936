"""Sentence spans inside a passage, for choosing the highlight that answers a question."""
from __future__ import annotations

import re

# A sentence ends at a line break, or at . ! ? ; followed by space and a capital, bracket or quote,
# unless the period closes a common abbreviation ("Co., Ltd. (hereinafter", "Inc.", "No. 2").
_BOUNDARY = re.compile(r"\n+|(?<=[.!?;。])\s+(?=[A-Z(“\"'\d「・])")
_ABBREVIATIONS = ("Inc.", "Ltd.", "Co.", "No.", "e.g.", "i.e.", "etc.", "Mr.", "Ms.", "Dr.", "St.", "Corp.")
_MARKER_ONLY = re.compile(r"^\s*(?:\(?[0-9ivxA-Za-z]{1,4}[.)]|[・•])\s*$")
_ENDS_SENTENCE = tuple(".!?;:。」)”\"'")


def sentence_spans(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, shifted by `offset`; whitespace-only pieces dropped."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        if "\n" not in m.group(0) and text[: m.start()].endswith(_ABBREVIATIONS):
            continue
        if _MARKER_ONLY.match(text[start : m.start()]):
            continue  # "1." or "(a)" belongs to the sentence it numbers
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    out: list[tuple[int, int]] = []
    for s, e in spans:
        piece = text[s:e]
        if not piece.strip():
            continue
        s += len(piece) - len(piece.lstrip())
        e -= len(piece) - len(piece.rstrip())
        # A sentence broken over lines ("...we will use it for the\n\n  following purposes") is one.
        if out and text[s].islower() and not text[out[-1][0] : out[-1][1]].endswith(_ENDS_SENTENCE):
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return [(s + offset, e + offset) for s, e in out]
