"""Plain metric functions over ranked 0/1 relevance lists, and abstention counts.

A relevance list holds one 0/1 per returned citation, best first. The harness builds it with
`relevance()`: citation i is relevant (1) when it contains an evidence item that no higher-ranked
citation already contained. Crediting each evidence item once keeps nDCG <= 1 and makes the lists
exactly what an IR toolkit sees if each evidence item is one relevant "document" (tests/test_eval_metrics.py
checks the functions against ranx that way). hit@k and MRR are unaffected by this choice: the first
citation holding any evidence always holds new evidence.

nDCG@k uses binary gains and log2 discounts (gain / log2(rank + 1)). Its ideal ranking puts
min(n_relevant, k) relevant items at the top, where n_relevant is the number of evidence items of the
question. Caveat: a citation that holds two evidence items at once (one long passage) is still one
relevant item, so a system with long passages can score nDCG < 1 on a question it answers fully;
hit@k and MRR do not have this bias.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

_WS = re.compile(r"\s+")


def collapse(text: str) -> str:
    """Whitespace runs -> one space, ends stripped: how evidence and citations are compared."""
    return _WS.sub(" ", text).strip()


def relevance(citations: Sequence[dict], evidence: Sequence[dict], field: str = "text") -> list[int]:
    """0/1 per citation: 1 when the citation (same policy) contains an evidence text (whitespace
    collapsed on both sides) that no higher-ranked citation contained already."""
    wanted = [(e["policy"], collapse(e["text"])) for e in evidence]
    covered: set[int] = set()
    rels = []
    for c in citations:
        body = collapse(c.get(field) or "")
        new = {i for i, (pid, text) in enumerate(wanted) if i not in covered and c.get("policy_id") == pid and text in body}
        covered |= new
        rels.append(1 if new else 0)
    return rels


def contains_evidence(citation: dict | None, evidence: Sequence[dict], field: str = "text") -> bool:
    """True when `citation[field]` of the right policy contains any evidence text."""
    if not citation:
        return False
    body = collapse(citation.get(field) or "")
    return any(citation.get("policy_id") == e["policy"] and collapse(e["text"]) in body for e in evidence)


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def hit_at_k(rels: Sequence[int], k: int) -> float:
    """1.0 when any of the first k items is relevant."""
    _check_k(k)
    return 1.0 if any(rels[:k]) else 0.0


def mrr_at_k(rels: Sequence[int], k: int) -> float:
    """1 / rank of the first relevant item within the first k, else 0."""
    _check_k(k)
    for rank, rel in enumerate(rels[:k], start=1):
        if rel:
            return 1.0 / rank
    return 0.0


def dcg_at_k(rels: Sequence[int], k: int) -> float:
    _check_k(k)
    return sum(rel / math.log2(rank + 1) for rank, rel in enumerate(rels[:k], start=1))


def ndcg_at_k(rels: Sequence[int], k: int, n_relevant: int) -> float:
    """Binary-gain nDCG@k; the ideal list has min(n_relevant, k) relevant items first.
    0.0 when nothing is relevant. Raises when `rels` credits more relevant items than exist
    (build it with `relevance()`, which credits each evidence item once)."""
    _check_k(k)
    if n_relevant <= 0:
        return 0.0
    if sum(1 for r in rels if r) > n_relevant:
        raise ValueError(f"{sum(rels)} relevant items credited but only {n_relevant} exist")
    ideal = dcg_at_k([1] * min(n_relevant, k), k)
    return dcg_at_k(rels, k) / ideal


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean; NaN for no values (shown as "—")."""
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def percentile(values: Iterable[float], p: float) -> float:
    """p-th percentile (0..100) with linear interpolation between order statistics (numpy's default)."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100, got {p}")
    pos = (len(xs) - 1) * p / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def abstention(predicted: Sequence[bool], not_addressed: Sequence[bool]) -> dict:
    """Abstention as a classifier whose positive class is "the policies do not address this".

    precision = right abstentions / abstentions (NaN when it never abstains),
    recall = right abstentions / questions not addressed (NaN when there are none),
    false_refusal_rate = abstentions on answerable questions / answerable questions."""
    if len(predicted) != len(not_addressed):
        raise ValueError("predicted and gold lists differ in length")
    tp = sum(1 for p, g in zip(predicted, not_addressed) if p and g)
    fp = sum(1 for p, g in zip(predicted, not_addressed) if p and not g)
    fn = sum(1 for p, g in zip(predicted, not_addressed) if not p and g)
    tn = len(predicted) - tp - fp - fn
    nan = float("nan")
    return {
        "precision": tp / (tp + fp) if tp + fp else nan,
        "recall": tp / (tp + fn) if tp + fn else nan,
        "false_refusal_rate": fp / (fp + tn) if fp + tn else nan,
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
    }


# ---------------------------------------------------------------- across sites

NOT_ADDRESSED_LABEL = "not addressed"  # a site's gold label when its policy is silent on the question


def site_rows(answer: dict) -> dict[str, dict]:
    """policy_id -> {"abstained": bool, "citations": [citation dicts]} of an answer dict.

    An answer across sites lists its rows in `by_policy`; any other answer (one site, or a system that
    cites whatever ranks highest) is read from its citations: each cited policy is a row, marked
    silent only when the whole answer abstained."""
    by_n = {c["n"]: c for c in answer.get("citations") or [] if "n" in c}
    rows = answer.get("by_policy") or []
    if rows:
        return {r["policy_id"]: {"abstained": bool(r["abstained"]),
                                 "citations": [by_n[n] for n in r["citations"] if n in by_n]} for r in rows}
    out: dict[str, dict] = {}
    for c in answer.get("citations") or []:
        out.setdefault(c["policy_id"], {"abstained": bool(answer.get("abstained")), "citations": []})["citations"].append(c)
    return out


def site_judgements(answer: dict, sites: dict[str, list[str] | str], field: str = "text") -> list[dict]:
    """One judgement per (question, site) of the gold `sites` (policy_id -> evidence texts, or
    "not addressed"): {"policy", "silent" (gold), "marked_silent", "cited" (a row not marked silent whose
    citation of that site contains an evidence text; None for silent sites)}."""
    rows = site_rows(answer)
    out = []
    for pid, evidence in sites.items():
        row = rows.get(pid)
        silent = evidence == NOT_ADDRESSED_LABEL
        marked = bool(row and row["abstained"])
        cited = None
        if not silent:
            wanted = [{"policy": pid, "text": t} for t in evidence]
            cited = bool(row) and not marked and any(contains_evidence(c, wanted, field=field) for c in row["citations"])
        out.append({"policy": pid, "silent": silent, "marked_silent": marked, "cited": cited})
    return out


def site_recall(judgements: Iterable[dict]) -> float:
    """Share of (question, site) pairs whose policy answers that are cited with an evidence clause."""
    return mean(1.0 if j["cited"] else 0.0 for j in judgements if not j["silent"])


def site_abstention(judgements: Iterable[dict]) -> dict:
    """Per-site abstention over (question, site) pairs: positive class = the site's policy is silent."""
    js = list(judgements)
    return abstention([j["marked_silent"] for j in js], [j["silent"] for j in js])


def scope_correct(searched: Iterable[str], expected: Iterable[str]) -> bool:
    """Whether the sites searched are exactly the sites the question was about."""
    return set(searched) == set(expected)
