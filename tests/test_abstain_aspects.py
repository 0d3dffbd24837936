"""Abstention on the kind of fact a question asks for (qa.abstain.ASPECTS), on the real model and index.

Each refused question is paired with one asking for the same kind of fact of a policy that states it,
so the rule fails these tests whether it refuses too little or too much.
"""
from dataclasses import replace

import pytest

from qa.abstain import aspect_share, asked_aspects, coverage, stated_patterns, unmet_aspects


@pytest.mark.parametrize("question,aspects", [
    ("how many months does JapanWork hold on to my CV after I delete my account?", ["duration"]),
    ("is there a charge for asking en Japan what data they hold?", ["cost"]),
    ("who is in charge of personal information at en Japan?", []),  # "in charge" is not a fee
    ("are my JACCES details kept on servers abroad?", ["place"]),
    ("if someone hacks Gaijin Poole will I be notified?", ["notification", "security incident"]),
    ("what date did HSJ last revise its policy?", ["date"]),
    ("im 15, can i sign up to JapanWork?", ["age"]),
    ("does en Japan let an algorithm reject my application?", ["automated decisions"]),
    ("is my password encrypted on JACCES?", ["encryption"]),
    ("does Gaijin Poole tell employers my visa status?", []),  # telling someone else is not notifying me
])
def test_questions_are_read_for_the_kind_of_fact_they_ask(question, aspects):
    assert asked_aspects(question) == aspects


def test_aspects_asked_together_must_be_stated_by_one_passage():
    question = "will they let me know if my data leaks?"
    security = "We take security measures against leakage and unauthorized access."
    purpose = "We will notify you of the purpose of use on request."
    assert unmet_aspects(question, [security, purpose]) == ["notification"]
    assert unmet_aspects(question, [security + " In case of a leak we will promptly notify the users affected."]) == []
    assert unmet_aspects(question, [security], skip=frozenset({"notification"})) == []


def test_british_spellings_are_covered_by_american_policy_words():
    vocabulary = frozenset({"person", "custom"})
    assert coverage("can they personalise it?", vocabulary, set()) == (1.0, [])
    assert coverage("can they personalise it?", frozenset({"custom"}), set())[0] == 0.0


# (refused: the policy never states this kind of fact, answered: the same kind of fact, stated, phrase cited)
PAIRS = [
    ("how long does en Japan keep my video interview after I stop using it?",
     "en Japan revised its privacy policy: for how long is the notice of the change shown on the website?", "one week"),
    ("does JACCES charge a fee to show me my personal data?",
     "is there a fee to ask JapanWork to disclose my personal data?", "¥1,000"),
    ("when did Gaijin Poole last update its privacy policy?",
     "when was the Highly Skilled Japan privacy policy last updated?", "2020"),
    ("will JapanWork let me know if hackers steal my data?",
     "will JACCES tell me when the terms of service change?", "notifications"),
    ("how can I switch off cookies on the JACCES website?",
     "how do I turn off cookies on JapanWork?", "disabled by your browser settings"),
]


@pytest.mark.parametrize("refused,answered,phrase", PAIRS)
def test_a_kind_of_fact_no_passage_states_is_refused_and_one_stated_is_answered(engine, refused, answered, phrase):
    no = engine.ask(refused)
    assert no.abstained and "does not say" in no.answer and len(no.citations) == 3
    yes = engine.ask(answered)
    assert not yes.abstained
    assert any(phrase in c.text for c in yes.citations), [c.section for c in yes.citations]


@pytest.mark.parametrize("question", [
    "how long does en Japan keep my video interview after I stop using it?",
    "will JapanWork let me know if hackers steal my data?",
])
def test_the_aspect_check_is_what_refuses_them(engine, question):
    # the coverage rule alone answers these (the thesaurus maps "hackers" onto "security"): the check is the cause
    off = engine.with_settings(replace(engine.settings, aspect_passages=0))
    assert not off.ask(question).abstained and engine.ask(question).abstained
    # judged on the same top passages however many citations are asked for
    assert engine.ask(question, k=1).abstained and engine.ask(question, k=10).abstained


def test_sites_compared_on_a_fact_none_states_are_all_silent(engine):
    answer = engine.ask("do any of these job sites keep my data on servers in another country?")
    assert answer.by_policy and all(r.abstained for r in answer.by_policy)


def test_sites_compared_on_a_fact_some_state_keep_those_rows(engine):
    answer = engine.ask("which of these sites charge a fee when I ask to see my data?")
    rows = {r.policy_id: r for r in answer.by_policy}
    assert not rows["japanwork"].abstained and not rows["highly-skilled-japan"].abstained
    assert rows["jacces"].abstained


def test_a_passage_is_scored_by_the_share_of_asked_facts_it_states():
    patterns = stated_patterns("how long do they keep it, and is it stored abroad?")
    assert len(patterns) == 2  # duration and place
    assert aspect_share("Data is kept for 5 years on servers in Japan.", patterns) == 1.0
    assert aspect_share("Data is kept for 5 years.", patterns) == 0.5
    assert aspect_share("We protect your data.", patterns) == 0.0
    assert aspect_share("anything", []) == 0.0
    assert stated_patterns("can they sell my data?", skip=frozenset({"sale"})) == []


@pytest.mark.parametrize("question,policy,dated", [
    # (minilm-policy-v6 finds the dated lines without the boost for "when was the en japan privacy policy last
    # revised?" and "from what date is the JapanWork privacy policy?", which v5 needed it for; v4 found JapanWork's)
    ("when did en Japan last update its privacy policy?", "en-japan", "March 9, 2020"),
    ("when was the JapanWork policy last updated?", "japanwork", "2019年5月29日"),
])
def test_a_question_asking_for_a_date_cites_the_dated_line(engine, question, policy, dated):
    answer = engine.ask(question)
    assert answer.citations[0].policy_id == policy
    assert dated in answer.citations[0].highlight
    # Without the boost the amendment clause (or the preamble) comes first: the setting is what cites the date.
    plain = engine.with_settings(replace(engine.settings, aspect_boost=0.0, aspect_highlight=0.0)).ask(question)
    assert dated not in plain.citations[0].highlight


def test_the_boost_does_not_stand_in_for_a_stated_fact(engine):
    # Gaijin Poole's policy states no date: a clause pulled up by the boost must not make its answer a date.
    answer = engine.ask("when was Gaijin Poole's privacy policy last updated?")
    assert answer.abstained
