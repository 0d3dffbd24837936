"""What the page renders for an answer, without a browser: escaping, cards, the policy view, compare."""
from __future__ import annotations

import re

import pytest

import app

ATTACK = ('<img src=x onerror="window.__xss=1"> <script>window.__xss=2</script> '
          '[click](javascript:alert(1)) ![i](javascript:alert(2)) <a href="javascript:alert(3)">a</a> '
          '`code` *em* ${7*7} {{7*7}}')


def ask(engine, question, choice=app.ALL, session=None):
    return app.answer_question(engine, question, choice, session)


def test_markdown_escaping_leaves_no_markup():
    md = app.esc_md(ATTACK + "\n# heading\n1. item\n- item\n| a | b |\n===")
    assert "<" not in md and ">" not in md.replace("&gt;", "")
    assert "](" not in md.replace("\\](", "")  # every link/image bracket is escaped
    for line in md.splitlines()[1:]:
        assert not re.match(r"\s*([#\-+=]|\d+[.)])", line), line


def test_html_escaping():
    assert app.esc_html('<img src=x onerror="a()">') == "&lt;img src=x onerror=&quot;a()&quot;&gt;"


def test_answer_renders_cards_and_links(engine):
    messages, sources, session = ask(engine, "can JapanWork share my data with partners?")
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert "(#pq-c-1-1)" in messages[-1]["content"]
    assert session["questions"] == ["can JapanWork share my data with partners?"]
    answer = engine.ask("can JapanWork share my data with partners?").to_dict()
    for c in answer["citations"]:
        assert f'id="pq-card-1-{c["n"]}"' in sources
        assert app.esc_html(c["highlight"]) in sources
        assert f'data-for="1-{c["n"]}" data-policy="japanwork"' in sources
        assert f'id="pq-p-1-{c["n"]}"' in sources  # the clause's anchor in the full policy
    assert "JapanWork" in sources and "named in your question" in sources
    assert '<mark class="pq-hl">' in sources
    # the full policy is there, verbatim once unescaped
    policy = engine.index.policies["japanwork"].text
    article = re.search(r'<div class="pq-policy-text">(.*?)</div></article>', sources, re.S).group(1)
    import html
    assert html.unescape(re.sub(r"<[^>]+>", "", article)) == policy


def test_follow_up_uses_history_and_keeps_only_latest_links(engine):
    _, _, session = ask(engine, "can JapanWork share my data with partners?")
    messages, sources, session = ask(engine, "what about en Japan?", session=session)
    assert len(messages) == 4
    assert "(#pq-c-1-" not in messages[1]["content"]  # the older answer's links became plain [n]
    assert "\\[1\\]" in messages[1]["content"]
    assert "(#pq-c-2-" in messages[3]["content"]
    cited = set(re.findall(r'class="pq-target" data-for="2-\d+" data-policy="([^"]+)"', sources))
    assert cited == {"en-japan"}


def test_injection_is_escaped_everywhere(engine):
    messages, sources, _ = ask(engine, ATTACK)
    for text in [m["content"] for m in messages] + [sources]:
        assert "<img" not in text and "<script" not in text and "<a " not in text
    for m in messages:  # the only Markdown links are the page's own [n] links
        assert all(target.startswith("#pq-c-") for target in re.findall(r"(?<!\\)\]\(([^)]*)", m["content"]))
    assert "href=" not in sources
    assert "&lt;script&gt;window.\\_\\_xss=2&lt;/script&gt;" in messages[0]["content"]
    assert "<script" not in sources and "onerror=\"" not in sources


@pytest.mark.parametrize("question, words", [("", "empty"), ("y" * 100_000, "2,000")])
def test_bad_question_is_a_chat_message(engine, question, words):
    messages, sources, session = ask(engine, question)
    assert sources is None and session["questions"] == []
    assert words in messages[-1]["content"] and "Traceback" not in messages[-1]["content"]
    assert len(messages[0]["content"]) < 400  # the 100k question is clipped in the chat


def test_non_english_gets_a_note(engine):
    # Korean: neither English nor Japanese, so the English pipeline reads it and says the match may be poor
    messages, sources, _ = ask(engine, "잡워크는 내 데이터를 공유합니까?")
    assert "English" in messages[-1]["content"] and sources


def test_japanese_question_gets_japanese_words_and_english_quotes(engine):
    messages, sources, _ = ask(engine, "ジャパンワークは私のデータを第三者と共有しますか？")
    reply = messages[-1]["content"]
    assert "English" not in reply  # no "ask in English" note: the question was read
    assert reply.startswith("JapanWorkのプライバシーポリシーには次のように書かれています")
    answer = engine.ask("ジャパンワークは私のデータを第三者と共有しますか？").to_dict()
    assert answer["language"] == "ja" and not answer["abstained"]
    assert {c["policy_id"] for c in answer["citations"]} == {"japanwork"}  # the katakana name scoped it
    assert app.esc_html(answer["citations"][0]["highlight"]) in sources  # quoted verbatim, in English
    assert ">出典</h2>" in sources and "回答をコピー" in sources and "検索したポリシー:" in sources
    assert "質問に名前があったため" in sources and "Sources</h2>" not in sources


def test_japanese_unaddressed_says_so_in_japanese(engine):
    _, sources, _ = ask(engine, "JapanWorkは私のデータをAIの学習に使いますか？")
    assert "ポリシーに答えが書かれていません" in sources and 'class="pq-card"' in sources


def test_compare_table_over_several_policies(engine):
    question = "which sites use Google Analytics?"
    _, sources, _ = ask(engine, question)
    answer = engine.ask(question).to_dict()
    rows = answer["by_policy"]
    assert len(rows) == 5 and not answer["abstained"]
    table = re.search(r'<table class="pq-compare">.*?</table>', sources, re.S).group(0)
    assert table.count("<tr") == len(rows) + 1  # a header and one row per site
    by_n = {c["n"]: c for c in answer["citations"]}
    for r in rows:
        row = re.search(rf'<tr class="[^"]+" data-policy="{r["policy_id"]}">.*?</tr>', table, re.S).group(0)
        if r["abstained"]:
            assert "Does not say." in row and app.esc_html(by_n[r["citations"][0]]["section"]) in row
        else:
            assert app.esc_html(" ".join(by_n[r["citations"][0]]["highlight"].split())) in row
        assert all(f'data-pq-cite="1-{n}"' in row for n in r["citations"])
    assert sum("Does not say." in x for x in re.findall(r"<tr.*?</tr>", table, re.S)) == sum(r["abstained"] for r in rows)
    # the cards are grouped by site, in the table's order, each group holding that site's citations
    groups = re.findall(r'<section class="pq-site" data-policy="([^"]+)".*?</section>', sources, re.S)
    assert groups == [r["policy_id"] for r in rows]
    for r in rows:
        group = re.search(rf'<section class="pq-site" data-policy="{r["policy_id"]}".*?</section>', sources, re.S).group(0)
        assert re.findall(r'id="pq-card-1-(\d+)"', group) == [str(n) for n in r["citations"]]
    assert "every site" in sources  # why every site was searched


def test_compare_table_escapes_policy_text(engine):
    from index.types import Answer, Citation, SiteRow

    def cite(n, pid, text):
        return Citation(n, pid, pid, "<b>Clause</b>", text, 0, len(text), text, 0, len(text), 0.5)

    answer = Answer("q", "a", False, ["japanwork", "jacces"], [cite(1, "japanwork", ATTACK), cite(2, "jacces", "x")],
                    by_policy=[SiteRow("japanwork", "JapanWork, Inc.", False, (1,)), SiteRow("jacces", "JACCES", True, (2,))])
    html = app.sources_html(app.Turn(1, answer, engine.index.policies, "every site"))
    table = re.search(r'<table class="pq-compare">.*?</table>', html, re.S).group(0)
    assert "<img" not in table and "<script" not in table and "<b>" not in html.replace("<blockquote", "")
    assert app.esc_html(" ".join(ATTACK.split())) in table and "&lt;b&gt;Clause&lt;/b&gt;" in table


def test_follow_up_says_why_the_sites_were_searched(engine):
    _, _, session = ask(engine, "Does JapanWork use Google Analytics?")
    _, sources, session = ask(engine, "which of the sites give my details to employers?", session=session)
    assert "all 5 policies (every site: your question asks across sites)" in sources
    _, sources, session = ask(engine, "what about en Japan?", session=session)
    assert "en Japan (named in your question)" in sources and "pq-compare" not in sources
    _, sources, _ = ask(engine, "and JapanWork?", session=session)
    assert "added to the sites asked about before" in sources and 'data-policy="japanwork"' in sources


def test_abstained_says_so_and_shows_closest(engine):
    _, sources, _ = ask(engine, "do they sell my data to crypto miners on mars?")
    assert "Not answered by the policies" in sources and 'class="pq-card"' in sources
    assert "pq-compare" not in sources


def test_policy_menu_scopes(engine):
    _, sources, _ = ask(engine, "do you use cookies?", choice="gaijin-poole")
    assert set(re.findall(r'class="pq-target" data-for="1-\d+" data-policy="([^"]+)"', sources)) == {"gaijin-poole"}
    assert "chosen in the policy menu" in sources

