"""Property tests (hypothesis, a fixed number of examples) for the two doors untrusted text comes
through: questions (any value, any Unicode, any length: the engine, the page's API function and its
chat) and policy files (random bytes, random HTML and Markdown: reading them and `add`). Only the
project's own errors, each with a message, may come out; a refused add leaves the index byte-identical."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import app
from conftest import copy_index
from index import library
from index.corpus import CorpusError
from index.embed import DEFAULT_MODEL
from index.ingest import read_document
from qa.engine import QuestionError

FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])
SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])

# Text with the characters that break things: controls, surrogates, RTL marks, CJK, emoji, NUL.
ANY_TEXT = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(blacklist_categories=()), max_size=300),  # lone surrogates included
    st.text(min_size=1900, max_size=2100),
    st.text(alphabet="ジャパンワーク個人情報\u202e\u200b\x00\x1b\ufeff <>&\"'[](){}#*`\\", max_size=200),
    st.just("can JapanWork share my data with partners?"),
)
ANY_VALUE = st.one_of(ANY_TEXT, st.none(), st.integers(), st.floats(), st.booleans(), st.binary(max_size=50),
                      st.lists(st.text(max_size=20), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
POLICY = st.one_of(st.none(), st.just(""), st.sampled_from(["japanwork", "en-japan", "no-such", "../etc"]), ANY_VALUE)


@FAST
@given(question=ANY_VALUE, policy=POLICY)
def test_any_question_answers_or_raises_a_question_error(engine, question, policy):
    try:
        answer = engine.ask(question, policy=policy)
    except QuestionError as e:
        assert str(e).strip() and "\n" not in str(e)
        return
    assert isinstance(answer.answer, str) and answer.answer
    # k=3 bounds an answer from one site; an answer across sites cites each site's clause ("クッキーを使いますか": 6)
    assert len(answer.citations) <= 3 or answer.by_policy


@FAST
@given(question=ANY_VALUE, policy=POLICY)
def test_the_pages_api_function_never_fails(engine, default_index, question, policy):
    holder = app.EngineHolder(engine, default_index)
    result, status = app.api_answer(holder, question, policy)
    assert status in (200, 400), result  # 500 would be a failure of ours
    assert ("error" in result) == (status == 400)
    import orjson

    orjson.dumps(result)  # Gradio's and the JSON endpoint's encoders refuse what is not UTF-8
    if status == 400:
        assert result["error"].strip() and "Traceback" not in result["error"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(question=ANY_VALUE, choice=POLICY)
@example(question="does JapanWork use \ud800 cookies?", choice=None)
def test_the_chat_never_shows_something_went_wrong(engine, question, choice):
    import orjson  # what Gradio sends the browser with: it refuses lone surrogates

    messages, sources, session = app.answer_question(engine, question, choice if isinstance(choice, str) else None, None)
    assert "Something went wrong" not in messages[-1]["content"]
    orjson.dumps([messages, sources, session])


# ---------------------------------------------------------------- policy files

WORDS = st.sampled_from(["Acme", "Inc.", "privacy", "policy", "data", "share", "cookies", "個人情報", "第1条", "(1)", "・",
                         "#", "##", "*", "-", "1.", "\n", "\n\n", "<", ">", "&amp;", "2024年4月1日", "Article 3", "\u3000"])
TEXT = st.lists(WORDS, max_size=80).map(" ".join)
TAGS = st.sampled_from(["div", "p", "section", "ul", "ol", "li", "table", "tr", "td", "h1", "h2", "h3", "main",
                        "article", "nav", "script", "style", "form", "header", "footer", "span", "a", "pre", "br"])


@st.composite
def html_pages(draw, depth: int = 0):
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        if depth < 6 and draw(st.booleans()):
            tag = draw(TAGS)
            attrs = draw(st.sampled_from(["", ' hidden', ' style="display:none"', ' role="navigation"', ' class="menu"',
                                          ' aria-hidden="true"', ' start="x"']))
            inner = draw(html_pages(depth + 1))
            closed = draw(st.booleans())
            parts.append(f"<{tag}{attrs}>{inner}" + (f"</{tag}>" if closed else ""))
        else:
            parts.append(draw(TEXT))
    return "".join(parts)


FILES = st.one_of(
    st.tuples(st.sampled_from([".txt", ".md", ".html", ".pdf"]), st.binary(max_size=3000)),
    st.tuples(st.just(".md"), TEXT.map(lambda t: t.encode("utf-8"))),
    st.tuples(st.sampled_from([".html", ".htm"]),
              html_pages().map(lambda h: f"<html><head><title>{h[:40]}</title></head><body>{h}</body></html>".encode())),
    st.tuples(st.just(".pdf"), st.binary(max_size=500).map(lambda b: b"%PDF-1.4\n" + b)),
)


@settings(max_examples=200, deadline=None)
@given(file=FILES)
def test_reading_any_file_gives_text_or_a_project_error(file):
    suffix, content = file
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"policy{suffix}"
        path.write_bytes(content)
        try:
            doc = read_document(path)
        except CorpusError as e:
            assert str(e).strip() and "\n" not in str(e)
            return
        assert doc.text.strip()


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name != ".lock"}


@pytest.mark.slow
@SLOW
@given(file=FILES, origin=st.sampled_from(["cli", "page"]))
def test_add_of_any_file_adds_it_or_leaves_the_index_byte_identical(default_index, encoder, file, origin):
    library._ENCODERS[DEFAULT_MODEL] = encoder
    suffix, content = file
    with tempfile.TemporaryDirectory() as d:
        idx = copy_index(default_index, Path(d) / "idx")
        path = Path(d) / f"japanwork{suffix}"  # the id of a shipped policy: the page must not replace it
        path.write_bytes(content)
        state = snapshot(idx)
        try:
            report = library.add_files(idx, [path], encoder=encoder, origin=origin, wait=5)
        except CorpusError as e:
            assert str(e).strip() and "\n" not in str(e)
            assert snapshot(idx) == state
            return
        assert origin == "cli" and report.changes[0].id == "japanwork"
        assert {e["id"]: e["origin"] for e in library.list_policies(idx)}["japanwork"] == "cli"


@pytest.mark.slow
@SLOW
@given(text=ANY_TEXT, company=st.one_of(st.none(), ANY_TEXT), policy_id=st.one_of(st.none(), ANY_TEXT))
@example(text="Acme Careers \ud800 never sells your data.", company="Acme Careers", policy_id=None)
@example(text="Acme Careers never sells your data.", company="Acme \udcff Careers", policy_id=None)
def test_pasted_text_on_the_page_is_added_or_refused_with_the_index_unchanged(default_index, encoder, text, company, policy_id):
    """The page's paste door (any Unicode, lone surrogates included): added as a page policy, or refused
    with a message and the index byte-identical; never a failure of ours."""
    from qa.engine import Engine
    from index.store import read_index

    with tempfile.TemporaryDirectory() as d:
        idx = copy_index(default_index, Path(d) / "idx")
        holder = app.EngineHolder(Engine(read_index(idx), encoder), idx)
        state = snapshot(idx)
        selected, status = app.add_policy(holder, None, text, company, policy_id)
        assert "something went wrong" not in status
        if selected is None:
            assert "Could not add" in status and snapshot(idx) == state
        else:
            assert {e["id"]: e["origin"] for e in library.list_policies(idx)}[selected] == "page"
