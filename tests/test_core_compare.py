"""Questions across sites: which sites a conversation is about, and one row per site on the real model and index."""
from __future__ import annotations

from dataclasses import replace

import pytest

from index.corpus import load_corpus
from index.types import Answer, SiteRow
from qa.resolve import name_patterns
from qa.scope import asks_across, conversation_scope, without_across_words

PATTERNS = name_patterns({p.id: p for p in load_corpus()})
EVERY = ()  # conversation_scope's "every site"


@pytest.mark.parametrize("history,question,expected", [
    ([], "do any of these sites sell my data?", EVERY),
    ([], "compare how JapanWork and en Japan let me correct my data", ("japanwork", "en-japan")),
    ([], "can JapanWork share my data with other companies?", ("japanwork",)),  # recipients, not sites
    ([], "how does JapanWork compare with the others?", EVERY),
    (["Does JapanWork use Google Analytics?"], "which of the sites give my details to employers?", EVERY),
    (["Does JapanWork use cookies?"], "what about the others?", EVERY),
    (["Does JapanWork use cookies?"], "is it the same for all sites?", EVERY),
    (["Does JapanWork use cookies?"], "what about en Japan?", ("en-japan",)),
    (["Does JapanWork use cookies?"], "And what about JACCES?", ("jacces",)),
    (["Does en Japan use cookies?"], "and JapanWork?", ("en-japan", "japanwork")),
    (["Does JapanWork use cookies?", "can I turn them off?"], "and en Japan too?", ("japanwork", "en-japan")),
    (["Does JapanWork use cookies?"], "does it share my data with other companies?", ("japanwork",)),
    (["Can JapanWork share my data?"], "which companies do they share it with?", ("japanwork",)),
    (["Which sites let me delete my data?"], "do they charge a fee for it?", EVERY),
    (["Which sites let me delete my data?"], "what about Gaijin Poole?", ("gaijin-poole",)),
    (["Compare how JapanWork and en Japan let me correct my data"], "which of them charges a fee?", ("japanwork", "en-japan")),
    (["Do any of these sites sell my data?", "what about JACCES?"], "and Gaijin Poole?", ("jacces", "gaijin-poole")),
])
def test_conversation_scope_widens_narrows_and_adds(history, question, expected):
    scope = conversation_scope(question, history, PATTERNS)
    assert scope.policies == expected, scope
    assert scope.reason


def test_across_words_are_found_and_dropped_from_what_is_asked():
    assert asks_across("Which of these job sites sell my data?")
    assert not asks_across("does JapanWork sell my data to other companies?")
    assert without_across_words("do any of these sites sell my data?") == "do sell my data?"


# ---------------------------------------------------------------- the real engine

def _check_rows(answer: Answer) -> None:
    """Every row's citations exist, are of that row's site, and every citation is in some row."""
    by_n = {c.n: c for c in answer.citations}
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    for row in answer.by_policy:
        assert row.citations, row
        assert all(by_n[n].policy_id == row.policy_id for n in row.citations)
    assert sorted(n for r in answer.by_policy for n in r.citations) == [c.n for c in answer.citations]


def test_question_naming_no_site_gets_one_row_per_site(engine):
    answer = engine.ask("do any of these sites sell my data?")
    assert [r.policy_id for r in answer.by_policy] and {r.policy_id for r in answer.by_policy} == set(engine.index.policies)
    _check_rows(answer)
    assert sum(not r.abstained for r in answer.by_policy) >= 4  # every policy speaks of third parties
    assert answer.answer.startswith("What each policy says")
    assert answer.answer.count("•") == 5
    data = answer.to_dict()
    assert data["by_policy"][0].keys() == {"policy_id", "company", "abstained", "citations"}
    assert data["scope_reason"].startswith("every site")


def test_silent_sites_say_so_and_still_show_their_closest_clause(engine):
    answer = engine.ask("which sites use Google Analytics?")
    rows = {r.policy_id: r for r in answer.by_policy}
    assert not rows["japanwork"].abstained
    assert "Google Analytics" in answer.citations[rows["japanwork"].citations[0] - 1].text
    silent = [pid for pid, r in rows.items() if r.abstained]
    assert len(silent) >= 3 and "japanwork" not in silent
    assert answer.by_policy[0].policy_id == "japanwork"  # sites that answer come first
    assert "does not say" in answer.answer and not answer.abstained
    _check_rows(answer)


def test_comparison_of_two_named_sites(engine):
    answer = engine.ask("compare how JapanWork and en Japan let me correct my data")
    assert answer.policies == ["japanwork", "en-japan"]
    assert {r.policy_id for r in answer.by_policy} == {"japanwork", "en-japan"}
    assert all(not r.abstained for r in answer.by_policy)
    _check_rows(answer)


def test_follow_up_after_a_named_site_widens_to_every_site(engine):
    answer = engine.ask("which of the sites give my details to employers?", history=["Does JapanWork use Google Analytics?"])
    assert sorted(answer.policies) == sorted(engine.index.policies)
    rows = {r.policy_id: r for r in answer.by_policy}
    for pid, phrase in (("en-japan", "Employer Companies"), ("gaijin-poole", "provided to employers")):
        assert not rows[pid].abstained
        assert any(phrase in answer.citations[n - 1].text for n in rows[pid].citations)
    assert not any("Google" in c.text for c in answer.citations[:2])  # not the analytics clause of the earlier question


def test_comparisons_search_each_site_with_their_own_bm25_weight(engine):
    """`site_lexical_weight` is BM25's weight in a comparison only: with it Highly Skilled Japan's and Gaijin Poole's
    rows for "do any of these sites sell my data?" quote their third-party clauses (the thesaurus reaches the policies
    through BM25: "sell" -> "provide to a third party"); with the single-site weight (None) they do not. (minilm-policy-v5
    missed en Japan's clause the same way; v6 finds that one at either weight.) A single-site question is answered alike."""
    question = "do any of these sites sell my data?"
    plain = engine.with_settings(replace(engine.settings, site_lexical_weight=None))
    assert engine.settings.site_lexical_weight > engine.settings.retrieval.lexical_weight

    def quotes(answer, policy_id):
        row = next(r for r in answer.by_policy if r.policy_id == policy_id)
        return " ".join(answer.citations[n - 1].text for n in row.citations)

    weighted, unweighted = engine.ask(question), plain.ask(question)
    for policy_id, clause in (("highly-skilled-japan", "will not provide User Information to any third party"),
                              ("gaijin-poole", "will not be provided to a third party")):
        assert clause in quotes(weighted, policy_id)
        assert clause not in quotes(unweighted, policy_id)
    single = "can en Japan give my data to other companies?"
    assert [(c.start, c.highlight) for c in engine.ask(single).citations] == [(c.start, c.highlight) for c in plain.ask(single).citations]


def test_single_site_questions_have_no_rows(engine):
    answer = engine.ask("can JapanWork share my data with partners?")
    assert answer.by_policy == [] and answer.policies == ["japanwork"]
    assert engine.ask("do any of these sites sell my data?", policy="jacces").by_policy == []


def test_off_topic_question_is_not_asked_of_each_site(engine):
    answer = engine.ask("what is the weather in Osaka tomorrow?")
    assert answer.abstained and answer.by_policy == []


def test_more_sites_than_the_limit_are_counted_not_shown(engine):
    limited = engine.with_settings(replace(engine.settings, max_sites=3))
    answer = limited.ask("can I get my data deleted on these sites?")
    assert len(answer.by_policy) == 3
    assert "and 2 more policies not shown" in answer.answer
    assert len(answer.policies) == 5
    _check_rows(answer)


def test_site_row_round_trips_through_a_dict():
    row = SiteRow("jacces", "JACCES", True, (2, 3))
    assert SiteRow.from_dict(row.to_dict()) == row


# ---------------------------------------------------------------- the table (terminal) and the command line

def _answer_with_rows() -> Answer:
    from index.types import Citation

    def cite(n, pid, highlight, section="S"):
        return Citation(n, pid, pid.upper(), section, highlight, 0, len(highlight), highlight, 0, len(highlight), 0.5)

    long = "We may provide personal information to partner companies when permitted by law, " * 3
    return Answer("q", "What each policy says (1 of 2 address this):\n• …", False, ["a", "b", "c"],
                  [cite(1, "a", long), cite(2, "a", "Second."), cite(3, "b", "Cookies.", "About Cookie")],
                  by_policy=[SiteRow("a", "A Inc.", False, (1, 2)), SiteRow("b", "B Inc.", True, (3,))])


def test_text_table_has_a_row_per_site_wrapped_to_width():
    from qa.compare import comparison_rows, not_shown, text_table

    answer = _answer_with_rows()
    rows = comparison_rows(answer, {})
    assert [r.site for r in rows] == ["A Inc.", "B Inc."]
    assert rows[1].says == "Does not say. (closest: About Cookie)" and rows[0].says.startswith("“We may provide")
    table = text_table(rows, width=80)
    lines = table.splitlines()
    assert lines[0].startswith("Site") and "What the policy says" in lines[0] and lines[0].endswith("Source")
    assert all(len(line) <= 80 for line in lines)
    assert any(line.endswith("[1] [2]") for line in lines) and any(line.endswith("[3]") for line in lines)
    assert len(lines) > 4  # the long quote wrapped onto more lines
    assert not_shown(answer) == 1


def _cli(*args):
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    return subprocess.run([sys.executable, "-m", "qa.cli", *args], capture_output=True, text=True, env=env, timeout=300)


def test_cli_prints_the_comparison_as_a_table_and_json_rows(default_index, tmp_path):
    import json

    human = _cli("ask", "which sites use Google Analytics?", "--index", str(default_index))
    assert human.returncode == 0, human.stderr
    assert "Site" in human.stdout and "| What the policy says" in human.stdout and "Does not say." in human.stdout
    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join(json.dumps(row) for row in [
        {"id": "w", "question": "which of the sites give my details to employers?", "history": ["Does JapanWork use Google Analytics?"]},
        {"id": "n", "question": "what about en Japan?", "history": ["Does JapanWork use cookies?"]},
    ]) + "\n")
    out = _cli("ask", "--json", "--questions-file", str(questions), "--index", str(default_index))
    assert out.returncode == 0, out.stderr
    wide, narrow = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(wide["policies"]) == 5 and len(wide["by_policy"]) == 5
    assert {n for r in wide["by_policy"] for n in r["citations"]} == {c["n"] for c in wide["citations"]}
    assert narrow["policies"] == ["en-japan"] and narrow["by_policy"] == []


def test_answer_with_rows_round_trips_through_json():
    import json

    answer = _answer_with_rows()
    answer.scope_reason = "every site: your question asks across sites"
    again = Answer.from_dict(json.loads(json.dumps(answer.to_dict())))
    assert again.by_policy == answer.by_policy and isinstance(again.by_policy[0], SiteRow)
    assert again.scope_reason == answer.scope_reason and again.to_dict() == answer.to_dict()


@pytest.mark.parametrize("history,question,expected", [
    ([], "どのサイトが私のデータを売りますか？", EVERY),
    (["Does JapanWork use cookies?"], "他のサイトはどうですか？", EVERY),
    (["Does JapanWork use cookies?"], "それは削除できますか？", ("japanwork",)),
])
def test_japanese_questions_widen_too(history, question, expected):
    assert conversation_scope(question, history, PATTERNS).policies == expected
