"""Training data for the retriever: (question, passage holding its answer, hard negative) triples.

Two sources, both cut into passages exactly as the index cuts them (index.build.passages_of) and
embedded as the index embeds them (heading + body):
- the PolicyQA dev split (Ahmad et al. 2020, MIT): each policy rebuilt as one text (segments in
  `index` order, blank-line separated, as eval.policyqa_bench does); a question's gold is every answer
  span given for it in that policy; its positive is the passage overlapping the most gold characters;
- the project's own dev gold questions (eval/questions_dev.jsonl, never the frozen test split) over
  the shipped corpus: the positive is the passage containing the evidence sentence.
The hard negative is the passage of the same policy that BM25 ranks highest among those not overlapping
any gold (the current retriever's likeliest mistake). Everything is deterministic.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.chunk import ChunkSettings
from index.types import Passage, Policy

REPO = Path(__file__).resolve().parents[1]
# ../shared next to the checkout (or next to the worktrees' folder, for a git worktree).
POLICYQA_DEV = REPO.parent / "shared" / "benchmarks" / "policyqa" / "dev.json"
_ALSO = REPO.parent.parent / "shared" / "benchmarks" / "policyqa" / "dev.json"
OWN_DEV = REPO / "eval" / "questions_dev.jsonl"
# The fresh questions (written to check recipes against questions no rule was tuned on; v1 to v5 never trained on
# them) are training data from minilm-policy-v6 on; their figures are k-fold since (held out by question, as own dev's).
OWN_FRESH = REPO / "eval" / "questions_fresh.jsonl"
SOURCES = ("policyqa", "own-dev", "own-fresh")  # Example.source; k-fold deals each source's groups in this order
SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Example:
    question: str
    policy: str  # policy id
    positive: int  # row in TrainSet.passages
    gold: frozenset[int]  # every passage row that holds (part of) the answer
    negative: int  # hard negative row (same policy, no gold)
    source: str  # one of SOURCES
    group: str  # what k-fold splits by: the PolicyQA policy, or the own question's id
    spans: tuple[tuple[int, int], ...] = ()  # the answer's character spans in the policy text (sentence targets)
    paraphrase: bool = False  # a hand-written rewording of an own-dev question (group = its source's id): trained on, never scored


@dataclass
class TrainSet:
    passages: list[Passage]
    texts: list[str]  # what the encoder sees for each passage (heading + body)
    examples: list[Example]

    def policies(self, source: str) -> list[str]:
        return sorted({e.policy for e in self.examples if e.source == source})


def policyqa_file() -> Path:
    override = os.environ.get("POLICYQA_BENCHMARK")
    path = Path(override) if override else (POLICYQA_DEV if POLICYQA_DEV.exists() or not _ALSO.exists() else _ALSO)
    return path / "dev.json" if path.is_dir() else path


def rebuild_policyqa(data: dict) -> tuple[list[dict], list[dict]]:
    """(policies, questions) from the SQuAD-format PolicyQA data.

    policies: [{"id", "title", "text"}] with text = segments in `index` order joined by a blank line.
    questions: distinct (policy, question) pairs in first-seen order, each {"policy", "question",
    "gold": [(start, end)] in the rebuilt text, "answers": n, "category"}."""
    from index.corpus import slugify

    policies, questions, by_key = [], [], {}
    for doc in data["data"]:
        pid = slugify(doc["title"])
        if any(p["id"] == pid for p in policies):
            raise ValueError(f"two policies slugify to {pid!r}")
        paragraphs = sorted(doc["paragraphs"], key=lambda p: p["index"])
        offsets, pos = [], 0
        for par in paragraphs:
            offsets.append(pos)
            pos += len(par["context"]) + len(SEPARATOR)
        text = SEPARATOR.join(par["context"] for par in paragraphs)
        for par, offset in zip(paragraphs, offsets):
            for qa in par["qas"]:
                key = (pid, qa["question"])
                if key not in by_key:
                    by_key[key] = {"policy": pid, "question": qa["question"], "gold": [], "answers": 0,
                                   "category": qa.get("type", "").split("|||")[0]}
                    questions.append(by_key[key])
                for a in qa["answers"]:
                    start = offset + a["answer_start"]
                    end = start + len(a["text"])
                    if text[start:end] != a["text"]:
                        raise ValueError(f"answer offset does not map into the rebuilt {pid} text: {a['text'][:60]!r}")
                    if (start, end) not in by_key[key]["gold"]:
                        by_key[key]["gold"].append((start, end))
                    by_key[key]["answers"] += 1
        policies.append({"id": pid, "title": doc["title"], "text": text})
    return policies, questions


def write_policyqa_corpus(policies: list[dict], directory: Path) -> None:
    """The rebuilt PolicyQA policies as a corpus folder (one text file each and manifest.json) that
    index.corpus.load_corpus reads: how the benchmark and the scorer's training index them."""
    directory.mkdir(parents=True, exist_ok=True)
    manifest = {"about": "PolicyQA dev split, rebuilt as one text per policy", "policies": []}
    for p in policies:
        (directory / f"{p['id']}.txt").write_bytes(p["text"].encode("utf-8"))
        manifest["policies"].append({"id": p["id"], "file": f"{p['id']}.txt", "company": p["title"], "service": p["title"]})
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def overlaps(start: int, end: int, spans) -> bool:
    """Whether [start, end) shares a character with any (start, end) of `spans` (gold answer spans)."""
    return any(start < ge and gs < end for gs, ge in spans)


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


class _Builder:
    def __init__(self, settings: ChunkSettings):
        self.settings = settings
        self.passages: list[Passage] = []
        self.rows_of: dict[str, list[int]] = {}
        self.bm25: dict[str, tuple] = {}

    def add_policy(self, policy: Policy) -> list[int]:
        from index.build import passages_of
        from index.lexical import build_bm25, tokenize

        start = len(self.passages)
        self.passages.extend(passages_of(policy, self.settings))
        rows = list(range(start, len(self.passages)))
        self.rows_of[policy.id] = rows
        self.bm25[policy.id] = build_bm25([tokenize(self.passages[r].embedding_text()) for r in rows])
        return rows

    def example(self, question: str, policy: str, gold: list[int], positive: int, source: str, group: str,
                spans: tuple[tuple[int, int], ...] = (), paraphrase: bool = False) -> Example | None:
        from index.lexical import bm25_scores, tokenize

        rows = self.rows_of[policy]
        vocab, matrix = self.bm25[policy]
        scores = bm25_scores(vocab, matrix, tokenize(question))
        gold_set = frozenset(gold)
        # Highest BM25 first; ties by position, so the choice is deterministic.
        for i in sorted(range(len(rows)), key=lambda i: (-float(scores[i]), i)):
            if rows[i] not in gold_set:
                return Example(question, policy, positive, gold_set, rows[i], source, group, spans, paraphrase)
        return None  # a policy with one passage has no negative to offer


# The passages minilm-policy-v3 to -v5 and sentence-scorer-v1 to -v3 were trained on: `policyqa train` re-makes them from these,
# whatever the index's chunking (ChunkSettings) has become since, so that a re-run matches the shipped model card.
TRAINED_CHUNKING = ChunkSettings(max_chars=700, overlap=100)


def build_trainset(policyqa: Path | None = None, own_dev: Path | None = OWN_DEV,
                   settings: ChunkSettings = TRAINED_CHUNKING, limit: int | None = None,
                   paraphrases: Path | None = None, fresh: Path | None = None) -> TrainSet:
    """The training triples from PolicyQA (`policyqa`, default the shared dev split) and our own dev gold
    (`own_dev`; None leaves it out). `paraphrases` (with `own_dev`): a JSONL file of reworded own-dev
    questions ({"id", "source": the own-dev id, "question", "policies", "evidence", ...}); each becomes an
    own-dev example with `paraphrase=True` whose group is its SOURCE id, so k-fold keeps it on its source's
    side (the fold split is the same as without them). `fresh` (with `own_dev`): more own questions in
    its format (eval/questions_fresh.jsonl), source "own-fresh", each its own group, dealt into the folds
    after own dev's, so own dev's fold split is the same as without them. `limit` keeps the first N
    examples (tests)."""
    builder = _Builder(settings)
    examples: list[Example] = []
    data = json.loads(Path(policyqa or policyqa_file()).read_text(encoding="utf-8"))
    policies, questions = rebuild_policyqa(data)
    for p in policies:
        builder.add_policy(Policy(id=p["id"], company=p["title"], text=p["text"]))
    for q in questions:
        rows = builder.rows_of[q["policy"]]
        overlap = {r: sum(max(0, min(e, builder.passages[r].end) - max(s, builder.passages[r].start)) for s, e in q["gold"])
                   for r in rows}
        gold = [r for r in rows if overlap[r] > 0]
        if not gold:
            continue
        positive = max(gold, key=lambda r: (overlap[r], -r))
        ex = builder.example(q["question"], q["policy"], gold, positive, "policyqa", q["policy"], tuple(q["gold"]))
        if ex:
            examples.append(ex)
    if own_dev is not None and Path(own_dev).exists():
        from index.corpus import DEFAULT_CORPUS, load_corpus

        for path in (own_dev, paraphrases, fresh):
            refuse_held_out(path)
        corpus = {p.id: p for p in load_corpus(DEFAULT_CORPUS)}
        for policy in corpus.values():
            builder.add_policy(policy)
        rows_read = _jsonl(own_dev)
        dev_ids = {row["id"] for row in rows_read}
        examples += _own_dev_examples(builder, corpus, rows_read, paraphrase=False)
        if paraphrases is not None:
            extra = _jsonl(paraphrases)
            strays = sorted({row.get("source") for row in extra} - dev_ids, key=str)
            if strays:
                raise ValueError(f"paraphrases of questions not in {Path(own_dev).name}: {strays[:5]}")
            examples += _own_dev_examples(builder, corpus, extra, paraphrase=True)
        if fresh is not None:
            examples += _own_dev_examples(builder, corpus, _jsonl(fresh), paraphrase=False, source="own-fresh")
    if limit is not None:
        examples = examples[:limit]
    return TrainSet(builder.passages, [p.embedding_text() for p in builder.passages], examples)


# The question files kept to check results, never trained on (eval/gold.py says what each holds).
FROZEN_FILES = ("questions_test.jsonl", "questions_ja_test.jsonl", "cross_test.jsonl", "questions_held.jsonl")


def refuse_held_out(path: Path | None) -> None:
    """Raise ValueError when `path` is one of the held-out question files (FROZEN_FILES): the retriever's and the
    scorer's training both ask this before reading their own questions."""
    if path is not None and Path(path).name in FROZEN_FILES:
        raise ValueError(f"{Path(path).name} holds held-out test questions; they are never trained on")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def trained_on(row: dict) -> bool:
    """Whether training takes this own gold question: answerable, single-turn, with evidence. The others (not
    addressed, follow-ups) no model trains on, so every model may be measured on them."""
    return bool(row.get("answerable") and row.get("evidence") and not row.get("history"))


def _own_dev_examples(builder: _Builder, corpus: dict[str, Policy], rows: list[dict], paraphrase: bool,
                      source: str = "own-dev") -> list[Example]:
    """Own examples of the answerable, single-turn `rows` with evidence; a paraphrase's group is its source id."""
    out: list[Example] = []
    for row in rows:
        if not trained_on(row):
            continue
        group = row["source"] if paraphrase else row["id"]
        for pid in sorted({e["policy"] for e in row["evidence"]}):
            if pid not in corpus:
                continue
            wanted = [_collapse(e["text"]) for e in row["evidence"] if e["policy"] == pid]
            rows_of = builder.rows_of[pid]
            gold = [r for r in rows_of if any(w in _collapse(builder.passages[r].text) for w in wanted)]
            if not gold:
                continue
            text = corpus[pid].text
            spans = tuple((i, i + len(e["text"])) for e in row["evidence"] if e["policy"] == pid
                          for i in [text.find(e["text"])] if i >= 0)
            ex = builder.example(row["question"], pid, gold, gold[0], source, group, spans, paraphrase)
            if ex:
                out.append(ex)
    return out


def folds(trainset: TrainSet, k: int, seed: int) -> list[set[str]]:
    """`k` disjoint sets of groups: PolicyQA policies and own questions, each source's shuffled with `seed`
    and dealt round-robin, so every fold holds out whole policies and some of our own questions."""
    rng = np.random.default_rng(seed)
    out: list[set[str]] = [set() for _ in range(k)]
    for source in SOURCES:
        groups = sorted({e.group for e in trainset.examples if e.source == source})
        for i, g in enumerate(rng.permutation(groups)):
            out[i % k].add(str(g))
    return out
