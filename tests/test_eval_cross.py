"""The cross-site gold is well-formed and its test part frozen; the cross-site metrics are right on hand-made answers."""
from __future__ import annotations

import math

import pytest

from eval.cross import cross_figures, cross_path, load_cross, score_row
from eval.gold import file_sha256, load_recorded
from eval.metrics import NOT_ADDRESSED_LABEL, scope_correct, site_abstention, site_judgements, site_recall, site_rows
from index.corpus import load_corpus

POLICIES = {p.id: p.text for p in load_corpus()}
ROWS = load_cross("all")


def test_there_are_enough_questions_and_follow_ups():
    compare = [r for r in ROWS if r["kind"] == "compare"]
    follow = [r for r in ROWS if r["kind"] == "followup"]
    assert len(compare) >= 30 and len(follow) >= 20
    assert {r["split"] for r in compare} == {r["split"] for r in follow} == {"dev", "test"}
    assert len({r["id"] for r in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_row_is_well_formed_and_evidence_is_verbatim(row):
    assert row["kind"] in ("compare", "followup") and row["question"].strip()
    assert set(row["scope"]) <= set(POLICIES) and row["scope"]
    assert (row["kind"] == "followup") == bool(row["history"])
    if row["kind"] == "compare":
        assert list(row["sites"]) == row["scope"], "a comparison judges every site in scope"
    for pid, evidence in row["sites"].items():
        assert pid in row["scope"]
        if evidence != NOT_ADDRESSED_LABEL:
            assert evidence and all(t.strip() and t in POLICIES[pid] for t in evidence), f"{row['id']}: evidence not in {pid}"


def test_cross_test_part_is_frozen():
    recorded = load_recorded()
    assert file_sha256(cross_path("test")) == recorded["cross_test_sha256"], (
        "eval/cross_test.jsonl changed: the held-out part is frozen; add new questions to eval/cross_dev.jsonl"
    )


# ---------------------------------------------------------------- metrics on hand-made answers

def _c(n, pid, text, highlight=None):
    return {"n": n, "policy_id": pid, "text": text, "highlight": highlight or text}


SITES = {"a": ["fee of 1,000 yen"], "b": NOT_ADDRESSED_LABEL, "c": ["may charge fees"], "d": NOT_ADDRESSED_LABEL}
ROWS_ANSWER = {
    "abstained": False,
    "citations": [_c(1, "a", "We charge a fee of 1,000 yen per request.", "We charge"), _c(2, "c", "Nothing on fees."),
                  _c(3, "c", "We may charge fees for disclosure."), _c(4, "b", "Cookies."), _c(5, "d", "We may charge fees.")],
    "by_policy": [{"policy_id": "a", "abstained": False, "citations": [1]},
                  {"policy_id": "c", "abstained": False, "citations": [2, 3]},
                  {"policy_id": "b", "abstained": True, "citations": [4]},
                  {"policy_id": "d", "abstained": False, "citations": [5]}],
}


def test_site_judgements_from_rows():
    js = {j["policy"]: j for j in site_judgements(ROWS_ANSWER, SITES)}
    assert js["a"]["cited"] and js["c"]["cited"]  # c: its second citation holds the evidence
    assert js["b"]["silent"] and js["b"]["marked_silent"] and js["b"]["cited"] is None
    assert js["d"]["silent"] and not js["d"]["marked_silent"]
    assert site_recall(js.values()) == 1.0
    hl = site_judgements(ROWS_ANSWER, SITES, field="highlight")
    assert site_recall(hl) == 0.5  # a's highlight misses its evidence
    abst = site_abstention(js.values())
    assert (abst["tp"], abst["fp"], abst["fn"], abst["tn"]) == (1, 0, 1, 2)
    assert abst["precision"] == 1.0 and abst["recall"] == 0.5


def test_a_row_marked_silent_is_not_cited_even_if_its_clause_holds_the_evidence():
    answer = {**ROWS_ANSWER, "by_policy": [{**r, "abstained": True} if r["policy_id"] == "a" else r for r in ROWS_ANSWER["by_policy"]]}
    js = {j["policy"]: j for j in site_judgements(answer, SITES)}
    assert js["a"]["cited"] is False and js["a"]["marked_silent"]


def test_answer_without_rows_is_read_from_its_citations():
    recipe = {"abstained": False, "citations": [_c(1, "a", "a fee of 1,000 yen"), _c(2, "a", "x"), _c(3, "d", "y")]}
    rows = site_rows(recipe)
    assert set(rows) == {"a", "d"} and len(rows["a"]["citations"]) == 2
    js = {j["policy"]: j for j in site_judgements(recipe, SITES)}
    assert js["a"]["cited"] and js["c"]["cited"] is False  # c never cited
    assert not any(j["marked_silent"] for j in js.values())  # a system that never abstains never marks a site silent
    assert math.isnan(site_abstention(js.values())["precision"])
    refused = {**recipe, "abstained": True}
    assert all(j["marked_silent"] for j in site_judgements(refused, {"a": ["x"], "d": NOT_ADDRESSED_LABEL}))


def test_scope_correct_is_set_equality():
    assert scope_correct(["b", "a"], ["a", "b"])
    assert not scope_correct(["a"], ["a", "b"]) and not scope_correct(["a", "b", "c"], ["a", "b"])


def test_cross_figures_aggregate_rows_and_follow_ups():
    compare = {"id": "q1", "split": "dev", "kind": "compare", "question": "?", "history": [], "scope": ["a", "b", "c", "d"], "sites": SITES}
    follow = {"id": "q2", "split": "dev", "kind": "followup", "question": "?", "history": ["x"], "scope": ["a"], "sites": {}}
    records = [score_row(compare, {**ROWS_ANSWER, "policies": ["a", "b", "c", "d"]}),
               score_row(follow, {"abstained": False, "citations": [], "policies": ["a", "b"]})]
    f = cross_figures(records)
    assert f["questions"] == 1 and f["followups"] == 1
    assert f["site_recall"] == 1.0 and f["site_abstain_recall"] == 0.5
    assert f["followup_scope_accuracy"] == 0.0 and f["compare_scope_accuracy"] == 1.0


# ---------------------------------------------------------------- PolicyQA on the cross-site gold

CHECKED_CROSS = ("site_recall", "site_abstain_recall", "followup_scope_accuracy")


@pytest.fixture(scope="module")
def cross_records(engine):
    from eval.baselines import EngineSystem
    from eval.cross import run_cross

    return run_cross(EngineSystem("policyqa", engine), ROWS)


def test_no_regression_across_sites(cross_records):
    """Site recall, silent-site recall and follow-up scoping on dev+test stay within 3 points of eval/recorded.json."""
    recorded = load_recorded().get("policyqa_cross", {}).get("all")
    assert recorded, "eval/recorded.json lacks PolicyQA's cross-site figures: run `python -m eval --record`"
    got = cross_figures(cross_records)
    drops = [f"{k} {got[k]:.3f} < recorded {recorded[k]:.3f}" for k in CHECKED_CROSS if got[k] < recorded[k] - 0.03 - 1e-9]
    assert not drops, "; ".join(drops)


def test_issue_examples_across_sites(cross_records):
    """The three answers the issue reported wrong: all five sites asked, and the follow-up widened."""
    by_id = {r["id"]: r for r in cross_records}
    for rid in ("cd01", "cd02"):  # sell my data / delete my data: every site searched, one row each
        assert len(by_id[rid]["rows"]) == 5 and by_id[rid]["scope_ok"]
    assert by_id["fd01"]["scope_ok"]  # "which of the sites give my details to employers?" after a JapanWork question
    assert sum(1 for j in by_id["cd01"]["sites"] if j["cited"]) >= 4
