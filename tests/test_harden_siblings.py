"""Issue #11's siblings: the same kinds of input as its cases, through doors the first round did not
try. An index whose files parse but whose values are out of range (rows, offsets, vocabulary columns)
is refused on load, not answered wrongly or with a crash; an index directory whose name is not UTF-8
is written and read like any other."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from index.store import CURRENT, IndexLoadError, live_version, read_index
from qa.cli import main
from test_app_hardening import holder  # noqa: F401  (the page's EngineHolder over a served copy of the index)
from test_harden_index import QUESTION, one_line_error
from test_ingest_library import _one_model, idx  # noqa: F401  (the session's model for in-process CLI calls; a copy of the index)


def _rewrite_passages(version, change) -> None:
    lines = [json.loads(line) for line in (version / "passages.jsonl").read_text(encoding="utf-8").split("\n") if line]
    change(lines)
    (version / "passages.jsonl").write_text("".join(json.dumps(d) + "\n" for d in lines), encoding="utf-8")


def _rewrite_npz(path, key, change) -> None:
    with np.load(path) as f:
        arrays = dict(f)
    arrays[key] = change(arrays[key])
    with open(path, "wb") as f:
        np.savez(f, **arrays)


DAMAGE = {
    "vocabulary that is a list": lambda v: (v / "lexical_vocab.json").write_text("[]"),
    "vocabulary columns that are text": lambda v: (v / "lexical_vocab.json").write_text(json.dumps(
        {w: "x" for w in json.loads((v / "lexical_vocab.json").read_text())})),
    "vocabulary columns past the matrix": lambda v: (v / "lexical_vocab.json").write_text(json.dumps(
        {w: 10**9 for w in json.loads((v / "lexical_vocab.json").read_text())})),
    "passage offsets past the text": lambda v: _rewrite_passages(v, lambda rows: [r.update(start=10**9, end=10**9 + 5) for r in rows]),
    "passage policy id that is a list": lambda v: _rewrite_passages(v, lambda rows: rows[0].update(policy_id=["japanwork"])),
    "sentence rows past the passages": lambda v: _rewrite_npz(v / "sentences.npz", "passage", lambda a: a * 0 + 999),
    "sentence spans past their passages": lambda v: _rewrite_npz(v / "sentences.npz", "spans", lambda a: a * 0 + 10**8),
    "heading rows below -1": lambda v: _rewrite_npz(v / "headings.npz", "passage", lambda a: a * 0 - 5),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_index_values_out_of_range_are_refused_on_load(idx, capsys, damage):
    DAMAGE[damage](live_version(idx))
    with pytest.raises(IndexLoadError, match="inconsistent"):
        read_index(idx)
    err = one_line_error(capsys, main(["ask", QUESTION, "--index", str(idx)]), 1)
    assert "inconsistent" in err and "unexpected" not in err


def test_index_directory_named_with_bytes_that_are_not_utf8(idx, tmp_path, capsys):
    """faiss, tokenizers and onnxruntime take only UTF-8 paths; the index reads and writes through bytes."""
    odd = tmp_path / os.fsdecode(b"index-\xff")
    idx.rename(odd)
    policy = tmp_path / "acme.txt"
    policy.write_text("Acme Inc. privacy policy\n\n1. Acme keeps your email address to send you newsletters.\n")
    assert main(["add", str(policy), "--index", str(odd), "--quiet"]) == 0
    assert main(["ask", "does Acme keep my email address?", "--index", str(odd), "--json"]) == 0
    out, err = capsys.readouterr()
    answer = json.loads(out.splitlines()[-1])
    assert answer["citations"] and answer["citations"][0]["company"].startswith("Acme"), answer
    assert "unusable" not in err  # the ONNX query encoder loaded too (no fallback)
    assert (odd / CURRENT).exists()


# ---------------------------------------------------------------- JSON nested thousands deep, policies that are not text


NESTED = b"[" * 60_000  # json.loads recurses: a RecursionError, which is not a ValueError


@pytest.mark.parametrize("body, status, words", [
    (NESTED, 415, "must be JSON"),
    (b'{"question": ' + NESTED, 415, "must be JSON"),
    (b'\xef\xbb\xbf{"question": "does JapanWork use cookies?"}', 200, ""),  # a BOM, as some Windows tools write
    (b'{"question": "does JapanWork use cookies?", "policy": 0}', 400, "policy id"),
    (b'{"question": "does JapanWork use cookies?", "policy": false}', 400, "policy id"),
    (b'{"question": "does JapanWork use cookies?", "policy": []}', 400, "policy id"),
], ids=["nested-array", "nested-question", "bom", "policy-0", "policy-false", "policy-empty-list"])
def test_api_ask_odd_bodies(app_url, body, status, words):
    from test_app_hardening import post

    got_status, got = post(app_url, body)
    assert got_status == status, (got_status, got)
    assert words in got["error"] if status != 200 else got["citations"]


@pytest.mark.parametrize("policy", [0, False, [], {}])
def test_engine_takes_a_falsy_policy_for_a_bad_one_not_every_site(engine, policy):
    from qa.engine import QuestionError

    with pytest.raises(QuestionError, match="policy id"):
        engine.ask("does JapanWork use cookies?", policy=policy)
    assert engine.ask("does JapanWork use cookies?", policy="").citations  # empty: every site, as before


def test_questions_file_nested_line_and_passed_through_error_key(default_index, tmp_path, capsys):
    path = tmp_path / "q.jsonl"
    path.write_bytes(b'{"question": "does JapanWork use cookies?", "error": "mine"}\n' + NESTED + b"\n"
                     b'{"question": "does JapanWork use cookies?", "policy": false}\n'
                     b'{"question": "does JapanWork use cookies?", "policy": ""}\n')
    rc = main(["ask", "--questions-file", str(path), "--index", str(default_index)])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rc == 1 and len(rows) == 4
    assert "error" not in rows[0] and rows[0]["citations"]  # answered: an "error" key of the line's own is dropped
    assert "line 2 is not JSON" in rows[1]["error"]
    assert "policy id" in rows[2]["error"]
    assert "error" not in rows[3] and rows[3]["citations"]


def test_manifests_nested_thousands_deep_are_messages(idx, tmp_path, capsys):
    (live_version(idx) / "manifest.json").write_bytes(NESTED)
    for command in (["ask", QUESTION], ["list"], ["remove", "japanwork"]):
        err = one_line_error(capsys, main([*command, "--index", str(idx)]), 1)
        assert "corrupt" in err and "unexpected" not in err, err
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "acme.txt").write_text("Acme Inc. keeps your data safe and never sells it.")
    (corpus / "manifest.json").write_bytes(NESTED)
    err = one_line_error(capsys, main(["index", "build", "--corpus", str(corpus), "--out", str(tmp_path / "out"), "--quiet"]))
    assert "not a valid manifest" in err


# ---------------------------------------------------------------- names that read like another's, or hold terminal escapes


@pytest.mark.parametrize("company", ["Japan\u200bWork", "JAPAN\u00adWORK", "Japan\u2060Work", "\u202eJapanWork",
                                     "J\u0430panWork", "JAP\u0410N W\u039fRK"],
                         ids=["zero-width-space", "soft-hyphen", "word-joiner", "direction-override",
                              "cyrillic-a", "cyrillic-and-greek-capitals"])
def test_page_name_with_invisible_characters_cannot_pose_as_a_shipped_policy(holder, served_index, company):
    import app
    from test_app_hardening import snapshot

    state = snapshot(served_index)
    fake = f"{company} Privacy Policy\n\nArticle 1 (Sharing)\n\n{company} sells every user's personal data.\n"
    selected, status = app.add_policy(holder, None, fake, company, "jw")
    assert selected is None and "is taken by" in status and "JapanWork, Inc." in status, status
    assert snapshot(served_index) == state


def test_company_of_only_invisible_characters_is_refused(holder, served_index):
    import app
    from test_app_hardening import snapshot

    state = snapshot(served_index)
    selected, status = app.add_policy(holder, None, "Acme keeps your data.", "\u200b\u200d\u00ad", "acme")
    assert selected is None and "company name must be" in status, status
    assert snapshot(served_index) == state


def test_control_characters_never_reach_a_terminal(idx, tmp_path, capsys):
    """A page title or --company holding terminal escapes (clear screen, set title, bell) is stored without them."""
    page = tmp_path / "evil.html"
    page.write_bytes(b"<html><head><title>Evil\x1b[2J\x1b]0;pwned\x07 Jobs Privacy Policy</title></head>"
                     b"<body><h1>Privacy Policy</h1><p>Evil Jobs keeps your email address.</p></body></html>")
    text = tmp_path / "acme.txt"
    text.write_text("Acme privacy policy\n\nAcme keeps your email address.\n")
    assert main(["add", str(page), "--index", str(idx), "--quiet"]) == 0
    assert main(["add", str(text), "--company", "Acme\x1b[31m\x07", "--alias", "Ac\x1bme", "--index", str(idx), "--quiet"]) == 0
    assert main(["list", "--index", str(idx)]) == 0
    out = capsys.readouterr().out  # the add reports and the table, as a terminal shows them
    assert "Acme[31m" in out and not any(ch in out for ch in "\x07\x1b"), out
    assert main(["list", "--index", str(idx), "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["acme"]["company"] == "Acme[31m" and "pwned" in rows["evil"]["company"]


# ---------------------------------------------------------------- option values


@pytest.mark.parametrize("wait", ["-1", "nan", "inf", "1e309", "x"])
@pytest.mark.parametrize("command", ["add", "remove"])
def test_wait_out_of_range_is_a_usage_error(tmp_path, capsys, command, wait):
    with pytest.raises(SystemExit) as e:
        main([command, "acme.txt" if command == "add" else "acme", "--index", str(tmp_path), f"--wait={wait}"])
    assert e.value.code == 2 and "--wait takes seconds" in capsys.readouterr().err


def test_corpus_that_is_a_file_says_so(tmp_path, capsys):
    corpus = tmp_path / "acme.txt"
    corpus.write_text("Acme keeps your data.")
    err = one_line_error(capsys, main(["index", "build", "--corpus", str(corpus), "--out", str(tmp_path / "out")]))
    assert "is a file" in err and "directory" in err


# ---------------------------------------------------------------- files that hide or lack their text


def test_html_declaring_utf7_is_not_read_as_utf7(tmp_path):
    """UTF-7 reads "+ADw-script+AD4-" as "<script>": the page's visible text was dropped as a script."""
    from index.ingest import read_document

    page = tmp_path / "utf7.html"
    page.write_bytes(b'<html><head><meta charset="utf-7"><title>Acme</title></head>'
                     b"<body><p>Acme keeps +ADw-script+AD4- your email address for newsletters.</p></body></html>")
    doc = read_document(page)
    assert "your email address for newsletters" in doc.text and doc.encoding != "utf-7"


def test_text_with_no_clause_to_quote_is_refused(idx, tmp_path, capsys):
    from test_harden_index import snapshot

    short = tmp_path / "short.txt"
    short.write_text("Acme keeps\n")
    state = snapshot(idx)
    err = one_line_error(capsys, main(["add", str(short), "--index", str(idx), "--quiet"]), 1)
    assert "no clause text to quote" in err and snapshot(idx) == state
