"""eval.thesaurus_audit: which questions an entry can change, its contribution, the verdict, the swap."""
import pytest

from eval.thesaurus_audit import contribution, cross_counts, matching, net, thesaurus, verdict


def test_matching_lists_the_texts_each_pattern_finds_case_insensitively():
    texts = ["Do they SELL my data?", "who is in charge", "can I delete it", "sell and delete"]
    assert matching(texts, [r"\bsell\b", r"\bdelet\w*", r"\bvisa\b"]) == [[0, 3], [2, 3], []]


def test_contribution_is_with_minus_without_and_skips_unanswerable_rows():
    with_entry = [{"hit1": 1.0, "hit3": 1.0}, {"hit1": 0.0, "hit3": 1.0}, {"hit1": None, "hit3": None}]
    without = [{"hit1": 0.0, "hit3": 1.0}, {"hit1": 1.0, "hit3": 1.0}, {"hit1": None, "hit3": None}]
    assert contribution(with_entry, without, ("hit1", "hit3")) == {"hit1": 0.0, "hit3": 0.0}
    assert contribution(with_entry[:1], without[:1], ("hit1",)) == {"hit1": 1.0}
    with pytest.raises(ValueError):
        contribution(with_entry, without[:2], ("hit1",))


def test_an_entry_that_loses_policyqa_answers_goes_unless_it_clearly_helps_own_dev():
    zero = {"hit1": 0.0, "hit3": 0.0}
    hurts = {"hit1": -3.0, "hit3": 1.0, "abstained": 0.0}
    assert verdict(hurts, {**zero, "hit1": 1.0}) == "remove"
    assert verdict(hurts, {**zero, "hit1": 1.0, "hit3": 1.0}) == "keep"  # 2 own dev answers: clearly helps
    assert verdict({"hit1": 2.0, "hit3": 0.0}, {**zero, "hit1": -1.0}) == "keep"
    assert verdict(zero, zero) == "remove (no gain)"


def test_refusals_count_against_an_entry_and_catching_unaddressed_questions_for_it():
    assert net({"hit1": 1.0, "hit3": 1.0, "abstained": 3.0}) == -1.0  # 3 answerable PolicyQA questions refused
    own_dev = {"hit1": 0.0, "hit3": 0.0, "refused_answerable": -1.0, "refused_unaddressed": 1.0}
    assert net(own_dev) == 2.0  # one answerable question no longer refused, one unaddressed one caught
    assert verdict({"hit1": 0.0, "hit3": 0.0}, own_dev) == "keep"


def test_the_swapped_thesaurus_reaches_expansion_and_coverage_and_is_restored():
    from qa.expand import expand, matched_expansions

    question = "do they track my resume?"
    before = expand(question)
    assert "cookies" in before
    with thesaurus([(r"\bresume\b", "curriculum")]):
        assert expand(question) == "curriculum"
        assert matched_expansions(question) == [("resume", "curriculum")]
    with thesaurus([]):
        assert expand(question) == ""
    assert expand(question) == before


def test_a_cross_site_answer_counts_pairs_cited_falsely_silent_and_rightly_silent():
    record = {"sites": [
        {"silent": False, "marked_silent": False, "cited": True},
        {"silent": False, "marked_silent": True, "cited": False},  # the policy answers; marked silent
        {"silent": False, "marked_silent": False, "cited": False},
        {"silent": True, "marked_silent": True, "cited": None},
    ]}
    counts = cross_counts(record)
    assert counts == {"site_cited": 1.0, "false_silent": 1.0, "right_silent": 1.0}
    # an entry that costs a false silence across sites outweighs one own dev hit@1
    assert verdict({"hit1": 0.0, "hit3": 0.0}, {"hit1": 1.0, "hit3": 0.0}, {"site_cited": -1.0, "false_silent": 1.0,
                                                                          "right_silent": 0.0}) == "remove (no gain)"
