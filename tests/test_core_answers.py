"""Retrieval, abstention, alias resolution and the Answer contract, on the real model and index."""
from dataclasses import replace

import pytest

from qa.abstain import about_the_policies
from qa.engine import QuestionError
from qa.resolve import name_patterns, resolve_policies

# (question, policy expected first, a phrase the top-3 citations must contain)
QUESTIONS = [
    ("can JapanWork share my data with partners?", "japanwork", "partner companies"),
    ("How much does Japan Work charge me to see my data?", "japanwork", "¥1,000"),
    ("Does en Japan use cookies?", "en-japan", "uses cookies"),
    ("who gets to see my video interview on en japan?", "en-japan", "view video interviews"),
    ("Does Gaijin Poole give my visa status to employers?", "gaijin-poole", "visa status"),
    ("does INNTEGRA record my phone calls?", "gaijin-poole", "record calls"),
    ("what does HSJ use my information for?", "highly-skilled-japan", "Highly Skilled Japan will use User Information"),
    ("is JACCES responsible if a linked website harms me?", "jacces", "external websites linked"),
    ("can JACCES give my information to the government?", "jacces", "government agency"),
    ("does JapanWork use Google Analytics?", "japanwork", "Google Analytics"),
    ("can I turn off cookies on JapanWork?", "japanwork", "disabled by your browser settings"),
    ("does enJapan outsource handling of my data?", "en-japan", "outsource"),
]


@pytest.mark.parametrize("question,policy,phrase", QUESTIONS)
def test_real_questions_find_the_clause(engine, question, policy, phrase):
    answer = engine.ask(question)
    assert not answer.abstained
    assert answer.policies == [policy]
    assert answer.citations[0].policy_id == policy
    assert any(phrase in c.text for c in answer.citations[:3]), [c.section for c in answer.citations]


def test_question_naming_no_company_draws_on_several(engine):
    answer = engine.ask("which sites share my data with employers?")
    cited = [c.policy_id for c in answer.citations]
    assert {"en-japan", "gaijin-poole"} <= set(cited)
    assert "What each policy says" in answer.answer


@pytest.mark.parametrize("question,lead", [
    ("what is the weather in Osaka tomorrow?", "The policies do not say"),
    # off-topic, yet "Tokyo"/"Japan" match addresses and company names well enough to be quoted without the check
    ("what's the minimum wage in Tokyo right now?", "The policies do not say"),
    ("how do I get a working visa for Japan?", "The policies do not say"),
    ("does JapanWork use my data to train AI models?", "The JapanWork policy does not say"),
    ("how long does JACCES keep my personal info?", "The JACCES policy does not say"),
])
def test_unaddressed_questions_abstain_and_show_closest_clauses(engine, question, lead):
    answer = engine.ask(question)
    assert answer.abstained
    assert answer.answer.startswith(lead)
    assert len(answer.citations) == 3 and "[1]" in answer.answer


@pytest.mark.parametrize("question,on_topic", [
    ("which job sites share my data with employers?", True),
    ("who runs these sites?", True),
    ("do any of them record my phone calls?", True),
    ("can I get my résumé removed?", True),
    ("what's the minimum wage in Tokyo right now?", False),
    ("how many yen is 100 US dollars?", False),
    ("is it rude to leave the office before my boss?", False),
])
def test_off_topic_means_neither_the_sites_nor_personal_data(question, on_topic):
    assert about_the_policies(question) is on_topic


def test_off_topic_check_applies_only_when_no_policy_is_named(engine):
    # Naming a site makes it a question about that policy: answered or refused on coverage, not on topic.
    question = "how do I get a working visa for Japan?"
    unchecked = engine.with_settings(replace(engine.settings, off_topic_check=False))
    assert engine.ask(question).abstained
    scoped, scoped_unchecked = engine.ask(question, policy="gaijin-poole"), unchecked.ask(question, policy="gaijin-poole")
    assert scoped.policies == ["gaijin-poole"] and scoped.to_dict()["answer"] == scoped_unchecked.to_dict()["answer"]


def test_answerable_question_is_not_refused_and_quotes_its_citation(engine):
    answer = engine.ask("can JapanWork share my data with partners?")
    assert not answer.abstained and "JapanWork" in answer.answer
    top = answer.citations[0]
    assert "“" in answer.answer and f"[{top.n}]" in answer.answer
    quoted = answer.answer.split("“", 1)[1].split("”", 1)[0]
    assert quoted == " ".join(top.highlight.split())  # the answer says no more than its clause


def test_follow_up_uses_the_previous_question(engine):
    first = "Does JapanWork use cookies?"
    about = engine.ask("what about en Japan?", history=[first])
    assert about.policies == ["en-japan"] and "cookies" in about.citations[0].text
    off = engine.ask("can I turn them off?", history=[first])
    assert off.policies == ["japanwork"]
    assert any("disabled by your browser settings" in c.text for c in off.citations)


@pytest.mark.parametrize("text,expected", [
    ("can Japan Work see this", ["japanwork"]), ("JAPANWORK?", ["japanwork"]), ("japan-work", ["japanwork"]),
    ("INNTEGRA and gaijin poole", ["gaijin-poole"]), ("en japan or enJapan", ["en-japan"]),
    ("HSJ vs JACCES", ["highly-skilled-japan", "jacces"]), ("Ｊａｐａｎ Ｗｏｒｋ", ["japanwork"]),
    ("I speak open japanese", []), ("Japan jobs", []),
])
def test_alias_resolution(engine, text, expected):
    assert resolve_policies(text, name_patterns(engine.index.policies))[0] == expected


def test_policy_argument_restricts_and_unknown_policy_is_a_clear_error(engine):
    answer = engine.ask("do they use cookies?", policy="jacces")
    assert answer.policies == ["jacces"] and {c.policy_id for c in answer.citations} == {"jacces"}
    with pytest.raises(QuestionError, match="unknown policy 'nope'.*japanwork"):
        engine.ask("do they use cookies?", policy="nope")


def test_citation_offsets_point_into_the_policy(engine):
    answer = engine.ask("can I ask en Japan to delete my data?", k=5)
    assert len(answer.citations) == 5 and [c.n for c in answer.citations] == [1, 2, 3, 4, 5]
    for c in answer.citations:
        text = engine.index.policies[c.policy_id].text
        assert text[c.start:c.end] == c.text
        assert text[c.highlight_start:c.highlight_end] == c.highlight
        assert c.start <= c.highlight_start < c.highlight_end <= c.end
        assert len(c.highlight) <= 400
    d = answer.to_dict()
    assert set(d) >= {"question", "answer", "abstained", "policies", "citations", "timings_ms"}
    assert set(d["citations"][0]) == {"n", "policy_id", "company", "section", "text", "start", "end", "highlight",
                                      "highlight_start", "highlight_end", "score"}
    scores = [c["score"] for c in d["citations"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("bad,match", [("", "empty"), ("   \n\t ", "empty"), ("x" * 100_000, "100,000 characters"), (None, "text")])
def test_bad_questions_get_clear_errors(engine, bad, match):
    with pytest.raises(QuestionError, match=match):
        engine.ask(bad)


@pytest.mark.parametrize("odd", [
    "JapanWork\x00\x07 cookies\u200b?", "ジャパンワークは私のデータを共有しますか？",
    "<script>alert(1)</script> can JapanWork share my data?", "[x](javascript:alert(1)) cookies?", "🙂" * 50,
])
def test_odd_input_gets_a_sane_answer(engine, odd):
    answer = engine.ask(odd)
    assert answer.citations and answer.answer
    assert "\x00" not in answer.question and "\u200b" not in answer.question
    if "<script>" in odd:
        assert "<script>" in answer.question  # kept as text; escaping is the page's job


def test_the_clause_a_question_names_ranks_first_with_or_without_heading_similarity(engine):
    """The complaints clause comes before the purposes clause (whose body also talks about handling
    inquiries). With the base MiniLM only heading similarity lifted it; minilm-policy-v1 read the heading
    with the clause and held it at heading weight 0 too; minilm-policy-v2 and v3 needed the heading weight (0.2);
    v4 holds it at 0 again (re-fitted: 0)."""
    from qa.engine import Settings
    from qa.retrieve import RetrievalSettings

    question = "where do I send a complaint to en Japan about my personal data?"
    assert RetrievalSettings().heading_weight == 0.0
    for weight in (0.0, 0.2, 0.3):
        top = engine.with_settings(Settings(retrieval=RetrievalSettings(heading_weight=weight))).ask(question).citations[0]
        assert top.policy_id == "en-japan" and top.section.startswith("10. Customer service for complaints")


def test_heading_rows_share_one_vector_per_heading_and_skip_unsectioned_passages():
    from index.build import heading_rows
    from index.types import Passage

    def passage(section):
        return Passage(key=str(section), policy_id="p", section=section, start=0, end=1, text="x")

    headings, rows = heading_rows([passage(("1. Use",)), passage(()), passage(("2. Sharing",)), passage(("1. Use",))])
    assert headings == ["1. Use", "2. Sharing"] and rows.tolist() == [0, -1, 1, 0]


def _sentences(*parts: str) -> tuple[str, "np.ndarray"]:
    import numpy as np

    text, spans = "", []
    for part in parts:
        if text:
            text += " "
        spans.append((len(text), len(text) + len(part)))
        text += part
    return text, np.array(spans)


def test_highlight_takes_in_the_better_neighbour_when_it_scores_close():
    from qa.highlight import JOIN_MARGIN, choose_span

    text, spans = _sentences(
        "Companies displaying advertisements on the websites operated by JapanWork may set and access cookies on the service.",
        "Advertisers and other companies cannot access JapanWork's cookies.", "This policy was revised in 2020.")
    # the answering sentence (second) scores just under the best one (first, over 100 characters): both are highlighted
    start, end = choose_span(text, spans, [0.80, 0.80 - JOIN_MARGIN + 0.01, 0.30], set())
    assert (start, end) == (spans[0][0], spans[1][1])
    # the neighbour before the best one when it is the better of the two; never both (a highlight is two sentences at most)
    start, end = choose_span(text, spans, [0.70, 0.80, 0.69], set())
    assert (start, end) == (spans[0][0], spans[1][1])
    start, end = choose_span(text, spans, [0.69, 0.80, 0.70], set())
    assert (start, end) == (spans[1][0], spans[2][1])
    # one sentence when the neighbours score further below than the margin, or when asked for one (margin < 0)
    assert choose_span(text, spans, [0.80, 0.80 - JOIN_MARGIN - 0.01, 0.30], set()) == tuple(spans[0])
    assert choose_span(text, spans, [0.80, 0.79, 0.30], set(), margin=-1.0) == tuple(spans[0])


def test_highlight_joins_neighbours_only_within_the_highlight_limit():
    from qa.highlight import MAX_HIGHLIGHT, choose_span

    long_one = "We keep your application records for as long as the law requires " + "and then some more " * 11 + "."
    text, spans = _sentences("We do not sell your data.", long_one)
    assert len(text) > MAX_HIGHLIGHT >= spans[1][1] - spans[1][0]
    start, end = choose_span(text, spans, [0.80, 0.79], set())
    assert (start, end) == tuple(spans[0])  # the two would not fit: the best sentence alone
    start, end = choose_span(text, spans, [0.79, 0.80], set())
    assert (start, end) == tuple(spans[1])


@pytest.mark.parametrize("question,answering", [
    ("if I turn off all cookies, will JapanWork still work?", "part of JapanWork’s service may not be available"),
    ("can I opt out of JapanWork ad tracking on my smartphone?", "may not be available when accessing from a mobile phone"),
    # (v3 also needed the join for "how long does en Japan show a notice after changing its privacy policy?", v4 for
    # "how will Highly Skilled Japan tell me if they change the privacy policy?"; v5's best sentence answers each alone)
    ("what if I don't agree with en Japan's new privacy policy?", "Unless the Company receives such notice"),
])
def test_a_close_neighbour_of_the_best_sentence_is_highlighted_with_it(engine, question, answering):
    # The answering sentence is next to one matching the question a little better: the highlight of its clause
    # holds both (at most 300 characters); the best sentence alone (highlight_margin < 0) misses the answer.
    # The clause is cited first, except for the cookies question since passages are cut at 750 characters
    # without overlap (index.chunk.ChunkSettings): there the opt-out clause comes first and it second.
    cited = engine.ask(question).citations
    top = next(c for c in cited[:2] if answering in c.text)
    assert answering in top.highlight and len(top.highlight) <= 300
    assert top.n == 1 or question.startswith("if I turn off all cookies")
    one = next(c for c in engine.with_settings(replace(engine.settings, highlight_margin=-1.0)).ask(question).citations
               if c.start == top.start)
    assert answering not in one.highlight and top.highlight_start <= one.highlight_start < one.highlight_end <= top.highlight_end


def test_bm25_weighs_less_when_only_common_words_match(engine):
    """BM25 is divided by max(its best candidate's score, lexical_floor): a query matching only common policy
    words (best BM25 under the floor) gets proportionally less lexical weight; one with a rare matching word
    (best BM25 over it) ranks exactly as with the plain max-normalisation."""
    import numpy as np

    from index.lexical import bm25_scores, tokenize
    from qa.retrieve import RetrievalSettings, retrieve

    index, floor = engine.index, RetrievalSettings().lexical_floor
    vector = engine.encoder.encode(["how is my information used?"], kind="query")[0]
    for words, under in (("information use", True), ("record my phone calls", False)):
        tokens = tokenize(words)
        plain = {h.row: h for h in retrieve(index, vector, tokens, None, 10, RetrievalSettings(lexical_floor=0.0))}
        floored = retrieve(index, vector, tokens, None, 10, RetrievalSettings(lexical_floor=floor))
        top_lex = float(bm25_scores(index.vocab, index.bm25, tokens).max())  # BM25's best is always a candidate
        assert (top_lex < floor) == under
        for h in floored:
            if h.row in plain:
                expected = plain[h.row].score - (RetrievalSettings().lexical_weight * h.lexical * (1 / top_lex - 1 / floor) if under else 0.0)
                assert np.isclose(h.score, expected, atol=1e-5)
