"""Turn clauses into retrievable passages: verbatim, contiguous slices of the policy text.

A clause of paragraph size is a passage of its own (so it is cited by its own heading); runs of
short list items are packed together (a lone "(6) Responding to various inquiries." retrieves
badly); a clause longer than `max_chars` is split with langchain's RecursiveCharacterTextSplitter.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

from index.types import Clause, Passage


@dataclass(frozen=True)
class ChunkSettings:
    # 750 characters without overlap (was 700 / 100): held out, PolicyQA 2-fold (eval.policyqa_bench --folds, the
    # v3 fold encoders) hit@1/hit@3 0.339/0.589 -> 0.342/0.611, top citation 541 -> 584 characters; own dev by the
    # fold encoders (eval.refit --current) 0.831/0.932/hl 0.757 -> 0.838/0.939/0.764. It costs one shipped question
    # ("if I turn off all cookies, will JapanWork still work?"): its answering clause drops to second.
    # Training keeps the passages the shipped models were trained on (index.trainset.TRAINED_CHUNKING).
    max_chars: int = 750
    overlap: int = 0
    min_chars: int = 160  # a clause shorter than this is packed with its neighbours

    def to_dict(self) -> dict:
        return asdict(self)


def passage_key(section: tuple[str, ...], text: str) -> str:
    """Content hash: the same text under the same heading is embedded once."""
    return hashlib.sha256(("\x1f".join(section) + "\x1e" + text).encode("utf-8")).hexdigest()[:32]


def _passage(policy_id: str, section: tuple[str, ...], text: str, start: int, end: int) -> Passage:
    body = text[start:end]
    return Passage(passage_key(section, body), policy_id, section, start, end, body)


def _packed_section(clauses: list[Clause]) -> tuple[str, ...]:
    if len(clauses) == 1:
        return clauses[0].section
    top = clauses[0].section[:1]
    if any(len(c.section) == 1 for c in clauses):
        return top
    return top + (f"{clauses[0].section[-1]}–{clauses[-1].section[-1]}",)


def _split_long(clause: Clause, text: str, settings: ChunkSettings) -> list[tuple[int, int]]:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=settings.max_chars,
        chunk_overlap=settings.overlap,
        separators=["\n\n", "\n", ". ", "; ", ", ", " ", ""],
        keep_separator="end",
        add_start_index=True,
    )
    body = text[clause.start : clause.end]
    spans: list[tuple[int, int]] = []
    for doc in splitter.create_documents([body]):
        start = clause.start + doc.metadata["start_index"]
        end = start + len(doc.page_content)
        # The splitter can leave a bare item marker or a title line alone ("1.", "1. About cookies"):
        # such a fragment is folded into its neighbour rather than indexed by itself.
        if spans and (end - start < settings.min_chars or spans[-1][1] - spans[-1][0] < settings.min_chars):
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    return spans


def chunk_clauses(clauses: list[Clause], text: str, settings: ChunkSettings = ChunkSettings()) -> list[Passage]:
    passages: list[Passage] = []
    units: list[list[Clause]] = []
    for clause in clauses:
        last = units[-1] if units else None
        small = clause.end - clause.start < settings.min_chars
        if (
            last
            and last[0].section[0] == clause.section[0]
            and (small or all(c.end - c.start < settings.min_chars for c in last))
            and clause.end - last[0].start <= settings.max_chars
        ):
            last.append(clause)
        else:
            units.append([clause])
    for unit in units:
        first, last = unit[0], unit[-1]
        if len(unit) == 1 and first.end - first.start > settings.max_chars:
            for start, end in _split_long(first, text, settings):
                passages.append(_passage(first.policy_id, first.section, text, start, end))
        else:
            passages.append(_passage(first.policy_id, _packed_section(unit), text, first.start, last.end))
    return passages
