"""The evaluation metrics on small hand-made cases, and cross-checked against ranx."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest

from eval.metrics import (
    abstention, collapse, contains_evidence, hit_at_k, mean, mrr_at_k, ndcg_at_k, percentile, relevance,
)


def cite(policy: str, text: str, highlight: str = "") -> dict:
    return {"policy_id": policy, "text": text, "highlight": highlight}


def test_hit_at_k_looks_only_at_the_first_k():
    assert hit_at_k([0, 0, 1], 2) == 0.0
    assert hit_at_k([0, 0, 1], 3) == 1.0
    assert hit_at_k([], 5) == 0.0
    assert hit_at_k([1], 10) == 1.0  # fewer items than k


def test_mrr_uses_the_first_relevant_rank_within_k():
    assert mrr_at_k([0, 1, 1], 10) == 0.5
    assert mrr_at_k([0, 0, 0, 1], 3) == 0.0
    assert mrr_at_k([1, 0], 1) == 1.0


def test_ndcg_binary_with_ideal_from_number_of_relevant_items():
    # one relevant item at rank 2: (1/log2 3) / 1
    assert ndcg_at_k([0, 1, 0], 10, 1) == pytest.approx(1 / math.log2(3))
    # two evidence items, only one found at rank 1: 1 / (1 + 1/log2 3)
    assert ndcg_at_k([1, 0, 0], 10, 2) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    # the ideal is capped at k relevant items
    assert ndcg_at_k([1, 1], 2, 5) == pytest.approx(1.0)
    # items beyond k do not count
    assert ndcg_at_k([0, 0, 1], 2, 1) == 0.0
    assert ndcg_at_k([1, 0], 10, 0) == 0.0


def test_ndcg_refuses_lists_that_credit_more_items_than_exist():
    with pytest.raises(ValueError):
        ndcg_at_k([1, 1], 10, 1)
    with pytest.raises(ValueError):
        hit_at_k([1], 0)


def test_relevance_needs_the_right_policy_and_collapses_whitespace():
    evidence = [{"policy": "a", "text": "we share   data\nwith partners"}]
    cites = [
        cite("b", "We say: we share data with partners."),  # wrong policy
        cite("a", "We say: we share data\n\nwith  partners."),  # whitespace differs: still a hit
    ]
    assert relevance(cites, evidence) == [0, 1]
    assert collapse("  a \n\t b  ") == "a b"


def test_relevance_credits_each_evidence_item_once():
    evidence = [{"policy": "a", "text": "first clause"}, {"policy": "a", "text": "second clause"}]
    cites = [
        cite("a", "the first clause and more"),
        cite("a", "again: the first clause"),  # overlapping chunk, nothing new
        cite("a", "first clause, second clause"),  # holds one new item
        cite("a", "unrelated"),
    ]
    rels = relevance(cites, evidence)
    assert rels == [1, 0, 1, 0]
    assert ndcg_at_k(rels, 10, len(evidence)) <= 1.0
    # a partial evidence text is not a hit
    assert relevance([cite("a", "first claus")], evidence) == [0]


def test_contains_evidence_on_highlight_field():
    evidence = [{"policy": "a", "text": "cookies can be disabled"}]
    top = cite("a", "long text where cookies can be disabled in the browser", highlight="long text where")
    assert contains_evidence(top, evidence)
    assert not contains_evidence(top, evidence, field="highlight")
    assert not contains_evidence(None, evidence)


def test_mean_and_percentile_match_numpy():
    xs = [5.0, 1.0, 4.0, 2.0, 10.0, 3.0]
    for p in (0, 5, 50, 90, 95, 100):
        assert percentile(xs, p) == pytest.approx(float(np.percentile(xs, p)))
    assert percentile([7.0], 95) == 7.0
    assert math.isnan(percentile([], 50)) and math.isnan(mean([]))
    assert mean([1, 2, 3, 4]) == 2.5
    with pytest.raises(ValueError):
        percentile(xs, 101)


def test_abstention_precision_recall_and_false_refusals():
    #           abstained:  T     T      F     F     T      F
    #       not addressed:  T     F      T     F     F      F
    m = abstention([True, True, False, False, True, False], [True, False, True, False, False, False])
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (1, 2, 1, 2)
    assert m["precision"] == pytest.approx(1 / 3)
    assert m["recall"] == pytest.approx(1 / 2)
    assert m["false_refusal_rate"] == pytest.approx(2 / 4)  # 2 of the 4 answerable questions refused
    never = abstention([False, False], [True, False])
    assert math.isnan(never["precision"]) and never["recall"] == 0.0 and never["false_refusal_rate"] == 0.0
    with pytest.raises(ValueError):
        abstention([True], [])


@pytest.mark.slow  # ranx compiles its metrics with numba on first use (~30 s)
def test_ranking_metrics_agree_with_ranx():
    ranx = pytest.importorskip("ranx")
    rng = random.Random(7)
    qrels, run, lists = {}, {}, {}
    for q in range(60):
        n_evidence = rng.randint(1, 4)
        evidence = [{"policy": "p", "text": f"ev{i}"} for i in range(n_evidence)]
        cites = [cite("p", rng.choice([f"xx ev{rng.randrange(n_evidence)} yy", "nothing here"])) for _ in range(rng.randint(0, 10))]
        rels = relevance(cites, evidence)
        lists[f"q{q}"] = (rels, n_evidence)
        qrels[f"q{q}"] = {f"ev{i}": 1 for i in range(n_evidence)}
        # as ranx sees it: a citation that newly holds evidence retrieves that evidence item, others retrieve nothing
        docs, covered = {}, set()
        for rank, c in enumerate(cites):
            new = [i for i in range(n_evidence) if f"ev{i}" in c["text"] and i not in covered]
            covered.update(new)
            docs[f"ev{new[0]}" if new else f"miss{rank}"] = float(100 - rank)
        run[f"q{q}"] = docs or {"none": 0.0}
    # one Qrels/Run and one evaluate call: ranx compiles its typed dicts with numba on first use (seconds)
    names = [f"{m}@{k}" for k in (1, 3, 5, 10) for m in ("hit_rate", "mrr", "ndcg")]
    expected = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), names)
    for k in (1, 3, 5, 10):
        assert mean(hit_at_k(r, k) for r, _ in lists.values()) == pytest.approx(expected[f"hit_rate@{k}"])
        assert mean(mrr_at_k(r, k) for r, _ in lists.values()) == pytest.approx(expected[f"mrr@{k}"])
        assert mean(ndcg_at_k(r, k, n) for r, n in lists.values()) == pytest.approx(expected[f"ndcg@{k}"])
