"""The records that flow through PolicyQA: Policy -> Clause -> Passage (written by `index`),
then Hit -> Citation -> Answer (read by `qa`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Policy:
    id: str
    company: str
    text: str
    service: str = ""
    aliases: tuple[str, ...] = ()
    date: str | None = None
    source: str = ""  # file name the text came from
    origin: str = ""  # who added it: "shipped" (the default corpus), "cli" (the command line) or "page" (the web page)

    def names(self) -> tuple[str, ...]:
        """Every name a question may use for this policy, most specific first."""
        seen: list[str] = []
        for name in (*self.aliases, self.service, self.company, self.id):
            if name and name not in seen:
                seen.append(name)
        return tuple(seen)


@dataclass(frozen=True)
class Clause:
    policy_id: str
    section: tuple[str, ...]  # heading path as the policy writes it, outermost first
    start: int  # character offsets of the clause body in Policy.text
    end: int

    @property
    def heading(self) -> str:
        return " › ".join(self.section)


@dataclass(frozen=True)
class Passage:
    """A retrievable piece of a clause; `start`/`end` are offsets in the policy's text."""

    key: str  # content hash: the same text under the same heading is embedded once
    policy_id: str
    section: tuple[str, ...]
    start: int
    end: int
    text: str

    @property
    def heading(self) -> str:
        return " › ".join(self.section)

    def embedding_text(self) -> str:
        # The heading tells the encoder what the clause is about when its body does not say.
        return f"{self.heading}\n{self.text}" if self.section else self.text

    def to_dict(self) -> dict:
        d = asdict(self)
        d["section"] = list(self.section)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Passage":
        return cls(**{**d, "section": tuple(d["section"])})


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float  # fused retrieval score, higher is better
    dense: float  # cosine similarity of question and passage
    lexical: float  # BM25 score
    row: int  # the passage's row in the index's arrays (embeddings, sentences, headings)


@dataclass(frozen=True)
class Citation:
    n: int
    policy_id: str
    company: str
    section: str
    text: str
    start: int
    end: int
    highlight: str
    highlight_start: int
    highlight_end: int
    score: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Citation":
        return cls(**{f: d[f] for f in cls.__dataclass_fields__})


@dataclass(frozen=True)
class SiteRow:
    """One site's row of an answer across sites: its best clause, or "does not say" (abstained, with
    the closest clause still cited). `citations` are the [n] of the Answer's citations from this site."""

    policy_id: str
    company: str
    abstained: bool
    citations: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"policy_id": self.policy_id, "company": self.company, "abstained": self.abstained,
                "citations": list(self.citations)}

    @classmethod
    def from_dict(cls, d: dict) -> "SiteRow":
        return cls(d["policy_id"], d["company"], bool(d["abstained"]), tuple(int(n) for n in d["citations"]))


@dataclass
class Answer:
    """What every front end shows: `policyqa ask --json` prints `to_dict()`, the page's /ask returns it.
    `error` is set (and `citations` empty) for a question that could not be asked, e.g. in a batch."""

    question: str
    answer: str
    abstained: bool
    policies: list[str]
    citations: list[Citation]
    timings_ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    # A question across sites (naming none, or several): one row per site in scope, shown first to last.
    by_policy: list[SiteRow] = field(default_factory=list)
    scope_reason: str = ""  # why these policies were searched, in words a page can show
    language: str = "en"  # the question's ("en", "ja"): the answer's own words are in it, the quotes stay English
    scorer: str | None = None  # the answer-sentence scorer (qa.scorer) the engine answered with, if any

    def to_dict(self) -> dict:
        d = {
            "question": self.question,
            "answer": self.answer,
            "abstained": self.abstained,
            "policies": list(self.policies),
            "citations": [c.to_dict() for c in self.citations],
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
            "by_policy": [row.to_dict() for row in self.by_policy],
            "scope_reason": self.scope_reason,
            "language": self.language,
        }
        if self.error is not None:
            d["error"] = self.error
        if self.scorer is not None:
            d["scorer"] = self.scorer
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Answer":
        return cls(
            question=d["question"], answer=d["answer"], abstained=bool(d["abstained"]), policies=list(d["policies"]),
            citations=[Citation.from_dict(c) for c in d["citations"]], timings_ms=dict(d.get("timings_ms") or {}),
            error=d.get("error"), by_policy=[SiteRow.from_dict(r) for r in d.get("by_policy") or []],
            scope_reason=d.get("scope_reason") or "", language=d.get("language") or "en",
            scorer=d.get("scorer"),
        )

    @classmethod
    def refused(cls, question: str, error: str, timings_ms: dict[str, float] | None = None) -> "Answer":
        """The record of a question that could not be asked: no answer, no citations, the reason."""
        return cls(question=question, answer="", abstained=False, policies=[], citations=[],
                   timings_ms=dict(timings_ms or {}), error=error)
