"""The index on disk: self-describing, atomic, checked on load; and the CLI over it."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from index.build import build_index
from index.corpus import CorpusError, load_corpus
from index.embed import DEFAULT_MODEL, Encoder
from index.store import IndexLoadError, live_version, read_index, read_manifest
from qa.engine import Engine


@pytest.fixture
def index_copy(default_index, tmp_path):
    out = tmp_path / "idx"
    shutil.copytree(default_index, out)
    return out


def test_manifest_describes_the_index(default_index):
    m = read_manifest(default_index)
    assert m["format"] == "policyqa-index" and m["format_version"] == 2
    assert m["model"] == {"name": DEFAULT_MODEL, "dimension": 384}
    dense = next(x for x in m["models"] if x["role"] == "dense")  # the trained layers' checksums are recorded
    assert dense["base"] == "sentence-transformers/all-MiniLM-L6-v2" and len(dense["files"]) == 3
    assert m["chunking"]["max_chars"] > 0 and m["lexical"]["k1"] > 0
    assert {p["id"] for p in m["policies"]} == {"japanwork", "en-japan", "highly-skilled-japan", "jacces", "gaijin-poole"}
    assert all(len(p["sha256"]) == 64 and p["passages"] > 0 for p in m["policies"])
    assert m["passages"] == sum(p["passages"] for p in m["policies"])


def test_rebuilding_unchanged_text_embeds_nothing(index_copy, encoder):
    report = build_index(load_corpus(), index_copy, encoder)
    assert report["embedded"] == 0 and report["reused"] > 0
    changed = load_corpus()
    from dataclasses import replace
    changed[0] = replace(changed[0], text=changed[0].text + "\n\nA new closing sentence about nothing in particular.")
    report = build_index(changed, index_copy, encoder)
    assert 0 < report["embedded"] <= 4  # the new passage (and its sentences), not the corpus


class _ExplodingIndex:
    """Stands in for the FAISS index only so that writing it fails half-way through a build."""
    ntotal, d = 0, 384


def test_crash_mid_write_leaves_previous_index_usable(index_copy, encoder, monkeypatch):
    before = live_version(index_copy)
    passages_before = read_index(index_copy).passages
    import index.build as build_module
    monkeypatch.setattr(build_module, "make_dense_index", lambda embeddings: _ExplodingIndex())
    with pytest.raises(Exception):
        build_index(load_corpus()[:2], index_copy, encoder)
    assert live_version(index_copy) == before
    assert [p.key for p in read_index(index_copy).passages] == [p.key for p in passages_before]


def test_killed_build_leaves_an_index_that_loads(index_copy):
    """kill -9 a real `policyqa index build` at several moments; the index always loads."""
    keys = [p.key for p in read_index(index_copy).passages]
    for delay in (0.5, 2.0, 4.0):
        proc = subprocess.Popen([sys.executable, "-m", "qa.cli", "index", "build", "--out", str(index_copy), "--quiet"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert [p.key for p in read_index(index_copy).passages] == keys


@pytest.mark.parametrize("damage,match", [
    (lambda v: (v / "embeddings.npy").write_bytes(b"\x93NUMPY garbage"), "corrupt"),
    (lambda v: (v / "dense.faiss").unlink(), "corrupt or incomplete"),
    (lambda v: (v / "headings.npz").unlink(), "corrupt or incomplete"),
    (lambda v: (v / "manifest.json").write_text("{not json"), "manifest .* corrupt"),
    (lambda v: (v / "manifest.json").unlink(), "incomplete"),
    (lambda v: (v / "policies" / "jacces.txt").write_text("tampered"), "checksum"),
    (lambda v: (v / "passages.jsonl").write_text((v / "passages.jsonl").read_text().split("\n", 1)[1]), "inconsistent"),
])
def test_damaged_index_fails_with_a_rebuild_hint(index_copy, damage, match):
    damage(live_version(index_copy))
    with pytest.raises(IndexLoadError, match=match) as e:
        read_index(index_copy)
    assert "policyqa index build" in str(e.value)


def test_missing_index_and_format_mismatch(tmp_path, index_copy):
    with pytest.raises(IndexLoadError, match="no index"):
        read_index(tmp_path / "nothing")
    manifest = live_version(index_copy) / "manifest.json"
    m = json.loads(manifest.read_text())
    m["format_version"] = 99
    manifest.write_text(json.dumps(m))
    with pytest.raises(IndexLoadError, match="v99"):
        read_index(index_copy)


def as_format_1(directory) -> dict:
    """Turn a current index into what PolicyQA wrote before headings.npz existed; returns its manifest."""
    version = live_version(directory)
    (version / "headings.npz").unlink()
    m = json.loads((version / "manifest.json").read_text())
    m["format_version"] = 1
    (version / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IndexLoadError, match="v1, this PolicyQA reads .* v2"):
        read_index(directory)
    return m


def test_an_index_of_the_previous_format_is_upgraded_in_place_keeping_added_policies(index_copy, tmp_path, encoder):
    """`ask` (open_engine) rebuilds a format-1 index from the policies it stores, added ones included."""
    from index.library import add_files
    from qa.cli import open_engine

    added = tmp_path / "acme.txt"
    added.write_text("Retention\nAcme Jobs keeps your résumé for three years after your last login.", encoding="utf-8")
    add_files(index_copy, [added], encoder=encoder)
    before = live_version(index_copy)
    m = as_format_1(index_copy)
    engine = open_engine(index_copy)
    assert read_manifest(index_copy)["format_version"] == 2 and live_version(index_copy) != before
    assert set(engine.index.policies) == {p["id"] for p in m["policies"]} and "acme" in engine.index.policies
    assert engine.ask("how long does Acme keep my résumé?").citations[0].policy_id == "acme"


def test_adding_to_an_index_of_the_previous_format_upgrades_it_first(index_copy, encoder):
    from index.library import add_text

    m = as_format_1(index_copy)
    report = add_text(index_copy, "Cookies\nBeta Careers never uses cookies for advertising.", company="Beta Careers",
                      encoder=encoder)
    assert [c.action for c in report.changes] == ["added"]
    index = read_index(index_copy)
    assert set(index.policies) == {p["id"] for p in m["policies"]} | {report.changes[0].id}
    assert len(index.heading_embeddings) and len(index.passage_heading) == len(index.passages)


def test_model_mismatch_is_refused(default_index, index_copy):
    with pytest.raises(IndexLoadError, match=f"built with model .*{re.escape(DEFAULT_MODEL)}.* 'other/model' was asked for"):
        Engine(read_index(default_index), Encoder("other/model"))
    manifest = live_version(index_copy) / "manifest.json"
    m = json.loads(manifest.read_text())
    m["model"]["dimension"] = 768
    manifest.write_text(json.dumps(m))
    with pytest.raises(IndexLoadError, match="768"):
        read_index(index_copy)


def test_corpus_without_manifest_takes_ids_from_file_names(tmp_path, encoder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "Acme Jobs.txt").write_text("1. Cookies\n\nAcme Jobs uses cookies to remember your language.\n", encoding="utf-8")
    (corpus / "beta.md").write_text("# Sharing\n\nBeta never sells personal information to anyone.\n", encoding="utf-8")
    (corpus / "notes.csv").write_text("ignored", encoding="utf-8")
    build_index(load_corpus(corpus), tmp_path / "idx", encoder)
    engine = Engine(read_index(tmp_path / "idx"), encoder)
    assert sorted(engine.index.policies) == ["acme-jobs", "beta"]
    answer = engine.ask("does beta sell my data?")
    assert answer.policies == ["beta"] and "never sells" in answer.citations[0].highlight
    assert answer.citations[0].section == "Sharing"


def test_bad_corpora_are_clear_errors(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "missing")
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(CorpusError, match="empty"):
        load_corpus(tmp_path)
    (tmp_path / "empty.txt").write_bytes("個人情報".encode("shift_jis"))
    with pytest.raises(CorpusError, match="not UTF-8"):
        load_corpus(tmp_path)


def _cli(*args, stdin=None):
    env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    return subprocess.run([sys.executable, "-m", "qa.cli", *args], input=stdin, capture_output=True, text=True, env=env, timeout=300)


def test_cli_json_contract_and_questions_file(default_index, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join([
        json.dumps({"id": "a", "question": "can JapanWork share my data with partners?"}),
        json.dumps({"id": "b", "question": "do they use cookies?", "policy": "jacces"}),
        json.dumps({"id": "c", "question": ""}),
        "not json",
    ]) + "\n")
    before = sorted(p.name for p in default_index.iterdir())
    result = _cli("ask", "--json", "--questions-file", str(questions), "--index", str(default_index), "-k", "2")
    lines = [json.loads(l) for l in result.stdout.splitlines()]
    assert len(lines) == 4 and result.returncode == 1  # two lines were bad
    a, b, c, d = lines
    assert a["id"] == "a" and a["policies"] == ["japanwork"] and len(a["citations"]) == 2 and not a["abstained"]
    assert a["timings_ms"]["total"] > 0 and "[1]" in a["answer"]
    assert b["policies"] == ["jacces"] and all(x["policy_id"] == "jacces" for x in b["citations"])
    assert "empty" in c["error"] and "not JSON" in d["error"]
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in default_index.iterdir()) == before  # asking writes nothing


def test_cli_human_output_and_errors(default_index, tmp_path):
    ok = _cli("ask", "can JapanWork share my data with partners?", "--index", str(default_index))
    assert ok.returncode == 0
    assert "JapanWork" in ok.stdout and "Sources:" in ok.stdout and "[1] JapanWork, Inc. — Clause" in ok.stdout
    empty = _cli("ask", "  ", "--index", str(default_index))
    assert empty.returncode == 2 and "error: the question is empty" in empty.stderr and "Traceback" not in empty.stderr
    missing = _cli("ask", "hello", "--index", str(tmp_path / "none"))
    assert missing.returncode == 1 and "no index" in missing.stderr and "Traceback" not in missing.stderr


def test_the_default_index_takes_the_names_a_later_manifest_adds_on_its_next_start(tmp_path, monkeypatch, encoder):
    """A release whose manifest knows a new name for a site ("Gaijin Pool") reaches an existing default index on its
    next start; an index the user pointed at (--index) is left as built."""
    from dataclasses import replace

    from index.library import follow_shipped_aliases, missing_shipped_aliases
    from qa.service import open_engine

    directory = tmp_path / "default"
    earlier = [replace(p, aliases=tuple(a for a in p.aliases if a != "Gaijin Pool")) if p.id == "gaijin-poole" else p
               for p in load_corpus()]
    build_index(earlier, directory, encoder)
    question = "who runs gaijin pool? is it a different company?"
    assert missing_shipped_aliases(directory) == {"gaijin-poole": ["Gaijin Pool"]}
    messages: list[str] = []
    assert len(open_engine(directory, log=messages.append).ask(question).policies) > 1  # --index DIR: not named
    assert not messages and missing_shipped_aliases(directory)

    monkeypatch.setenv("POLICYQA_INDEX", str(directory))
    engine = open_engine(None, log=messages.append)
    assert [m for m in messages if "'Gaijin Pool' for gaijin-poole" in m]
    assert engine.ask(question).policies == ["gaijin-poole"]
    entry = next(e for e in read_manifest(directory)["policies"] if e["id"] == "gaijin-poole")
    assert "Gaijin Pool" in entry["aliases"] and missing_shipped_aliases(directory) == {}
    messages.clear()
    open_engine(None, log=messages.append)
    assert not messages and follow_shipped_aliases(directory) is None  # once


def test_following_the_manifest_s_names_embeds_nothing_again(tmp_path, encoder):
    from dataclasses import replace

    from index.library import follow_shipped_aliases, missing_shipped_aliases

    directory = tmp_path / "default"
    build_index([replace(p, aliases=p.aliases[:1]) for p in load_corpus()], directory, encoder)
    figures = follow_shipped_aliases(directory)
    assert figures["embedded"] == 0 and figures["embedded_multilingual"] == 0 and figures["reused"] > 0
    assert all(len(e["aliases"]) > 1 for e in read_manifest(directory)["policies"])
    assert missing_shipped_aliases(directory) == {}  # every shipped name round-trips: no rebuild on every start


def test_a_default_index_built_by_an_earlier_shipped_encoder_is_re_encoded_keeping_added_policies(tmp_path, monkeypatch, encoder):
    """After an upgrade, the default index answers with this release's encoder, as a fresh install does; an index
    the user pointed at (--index) is left with its model."""
    from index.library import add_text, superseded_model
    from qa.service import open_engine

    earlier = "policyqa/minilm-policy-v3"
    assert earlier != DEFAULT_MODEL
    old_encoder = Encoder(earlier)
    directory = tmp_path / "default"
    build_index(load_corpus(), directory, old_encoder)
    add_text(directory, "Retention\nAcme Jobs keeps your résumé for three years after your last login.",
             company="Acme Jobs", encoder=old_encoder)
    policies = set(read_index(directory).policies)
    assert superseded_model(directory, DEFAULT_MODEL) == earlier

    messages: list[str] = []
    assert open_engine(directory, log=messages.append).index.model == earlier  # --index DIR: the user's index, as built
    monkeypatch.setenv("POLICYQA_INDEX", str(directory))
    engine = open_engine(None, log=messages.append)
    assert engine.index.model == DEFAULT_MODEL and read_manifest(directory)["model"]["name"] == DEFAULT_MODEL
    assert set(engine.index.policies) == policies and superseded_model(directory, DEFAULT_MODEL) is None
    assert [m for m in messages if earlier in m and DEFAULT_MODEL in m]
    assert engine.ask("how long does Acme Jobs keep my résumé?").citations[0].policy_id == "acme-jobs"
    messages.clear()
    open_engine(None, log=messages.append)
    assert not [m for m in messages if "Re-encoding" in m]  # once
