"""Issue #11, the index and the command line: CURRENT stays inside its index directory and is never
lost silently (`policyqa index repair`), damaged manifests and bad input are one-line errors with a
non-zero exit, symbolic links out of their folder are refused, deep HTML is refused quickly, and a
questions file answers every line it can, in order."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, copy_index
from index import library
from index.ingest import IngestError, read_document
from index.store import CURRENT, IndexLoadError, live_version, read_index
from qa.cli import main
from test_ingest_library import _one_model, idx  # noqa: F401  (the session's model for in-process CLI calls; a copy of the index)

QUESTION = "can JapanWork share my data with partners?"


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def one_line_error(capsys, rc: int, expected_rc: int | None = None) -> str:
    out, err = capsys.readouterr()
    assert rc != 0 and (expected_rc is None or rc == expected_rc), (rc, err)
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ---------------------------------------------------------------- CURRENT


def test_current_naming_a_folder_outside_the_index_is_refused(idx, tmp_path, capsys):
    other = copy_index(idx, tmp_path / "other")
    (idx / CURRENT).write_text(f"../other/{(other / CURRENT).read_text()}")
    with pytest.raises(IndexLoadError, match="does not name a version folder"):
        read_index(idx)
    err = one_line_error(capsys, main(["ask", QUESTION, "--index", str(idx)]), 1)
    assert "does not name a version folder" in err and "policyqa index repair" in err
    for target in (str(other / (other / CURRENT).read_text()), ".", "..", "v-x/../../other"):
        (idx / CURRENT).write_text(target)
        with pytest.raises(IndexLoadError):
            live_version(idx)


def test_current_that_is_not_utf8_is_a_message(idx, capsys):
    (idx / CURRENT).write_bytes(b"\xff\xfe")
    err = one_line_error(capsys, main(["ask", QUESTION, "--index", str(idx)]), 1)
    assert "cannot be read" in err and "repair" in err


@pytest.mark.parametrize("manifest", ["[]", '"a string"', "{}", '{"format": "policyqa-index", "format_version": 2}',
                                      '{"format": "policyqa-index", "format_version": 2, "model": {"name": "m", "dimension": 384}, "policies": [1]}',
                                      '{"format": "policyqa-index", "format_version": 2, "model": {"name": "m", "dimension": 384}, '
                                      '"policies": [{"id": "../../etc/passwd", "company": "x", "sha256": "0"}]}'])
@pytest.mark.parametrize("command", [["ask", QUESTION], ["list"], ["add", "NEW"], ["remove", "japanwork"]])
def test_damaged_manifest_is_a_message_for_every_command(idx, tmp_path, capsys, manifest, command):
    version = live_version(idx)
    (version / "manifest.json").write_text(manifest)
    new = tmp_path / "acme.txt"
    new.write_text("Acme Inc. keeps your data safe and never sells it.")
    args = [str(new) if a == "NEW" else a for a in command]
    state = snapshot(idx)
    one_line_error(capsys, main([*args, "--index", str(idx)]), 1)
    assert snapshot(idx) == state


def test_lost_current_is_never_taken_for_an_empty_index_and_repair_restores_it(idx, tmp_path, capsys):
    before = {p["id"] for p in json.loads(main(["list", "--index", str(idx), "--json"]) == 0 and capsys.readouterr().out)}
    live = (idx / CURRENT).read_text()
    (idx / CURRENT).unlink()
    new = tmp_path / "acme.txt"
    new.write_text("Acme Careers Inc. keeps your data safe and never sells it.")
    state = snapshot(idx)
    for args in (["add", str(new)], ["ask", QUESTION], ["list"], ["remove", "japanwork"], ["index", "build", "--out", str(idx)]):
        if args[:2] != ["index", "build"]:
            args = [*args, "--index", str(idx)]
        err = one_line_error(capsys, main(args), 1)
        assert "no CURRENT" in err and f"policyqa index repair --index {idx}" in err, err
        assert snapshot(idx) == state  # the old version folder is still there, untouched
    assert main(["index", "repair", "--index", str(idx)]) == 0
    assert "CURRENT now names" in capsys.readouterr().out
    assert (idx / CURRENT).read_text() == live
    assert main(["list", "--index", str(idx), "--json"]) == 0
    assert {p["id"] for p in json.loads(capsys.readouterr().out)} == before
    assert main(["index", "repair", "--index", str(idx)]) == 0
    assert "nothing to repair" in capsys.readouterr().out


def test_repair_skips_a_broken_newer_version(idx, capsys):
    live = (idx / CURRENT).read_text()
    broken = idx / "v-99999999T999999-1-000001"
    broken.mkdir()
    (broken / "manifest.json").write_text("{")
    (idx / CURRENT).write_text(broken.name)
    one_line_error(capsys, main(["ask", QUESTION, "--index", str(idx)]), 1)
    assert main(["index", "repair", "--index", str(idx)]) == 0
    assert (idx / CURRENT).read_text() == live
    capsys.readouterr()
    assert main(["ask", QUESTION, "--index", str(idx), "--json"]) == 0


def test_repair_with_nothing_to_repair_from_is_a_message(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    one_line_error(capsys, main(["index", "repair", "--index", str(tmp_path / "empty")]), 1)


def test_index_that_is_a_file_is_a_message(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    one_line_error(capsys, main(["ask", QUESTION, "--index", str(tmp_path / "file")]), 1)


# ---------------------------------------------------------------- symbolic links


def test_symlink_to_a_file_outside_its_folder_is_refused(idx, tmp_path, capsys):
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "passwd.txt").write_text("root:x:0:0:root:/root:/bin/bash\nAcme Inc. shares data.\n")
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "p.txt").symlink_to(secret / "passwd.txt")
    state = snapshot(idx)
    err = one_line_error(capsys, main(["add", str(folder / "p.txt"), "--index", str(idx)]), 1)
    assert "symbolic link" in err and "outside its own folder" in err
    # met while walking a folder, and a linked folder named directly
    (folder / "ok.txt").write_text("Beta Careers Inc. never sells your personal data to anyone.")
    one_line_error(capsys, main(["add", str(folder), "--index", str(idx)]), 1)
    with pytest.raises(IngestError, match="symbolic link"):
        read_document(folder / "p.txt")
    (folder / "ok.txt").unlink()
    (folder / "p.txt").unlink()
    (folder / "linked").symlink_to(secret, target_is_directory=True)
    one_line_error(capsys, main(["add", str(folder / "linked"), "--index", str(idx)]), 1)
    assert snapshot(idx) == state


def test_symlink_within_its_own_folder_is_followed(tmp_path):
    (tmp_path / "real.txt").write_text("Acme Careers Inc. never sells your personal data.")
    (tmp_path / "alias.txt").symlink_to("real.txt")
    assert "never sells" in read_document(tmp_path / "alias.txt").text


def test_corpus_manifest_may_not_point_outside_its_directory(tmp_path, capsys):
    from index.corpus import CorpusError, load_corpus

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (tmp_path / "outside.txt").write_text("Outside Inc. text.")
    (corpus / "manifest.json").write_text(json.dumps({"policies": [{"file": "../outside.txt"}]}))
    with pytest.raises(CorpusError, match="outside"):
        load_corpus(corpus)
    (corpus / "manifest.json").write_text(json.dumps({"policies": [{"nofile": 1}]}))
    with pytest.raises(CorpusError, match="not a valid manifest"):
        load_corpus(corpus)


# ---------------------------------------------------------------- HTML too deep, extraction time


@pytest.mark.parametrize("levels", [5_000, 50_000])
def test_deeply_nested_html_is_refused_quickly(idx, tmp_path, capsys, levels):
    page = tmp_path / "deep.html"
    page.write_text("<html><body>" + "<div>" * levels + "Acme Inc. shares your data." + "</div>" * levels + "</body></html>")
    state = snapshot(idx)
    t0 = time.monotonic()
    err = one_line_error(capsys, main(["add", str(page), "--index", str(idx)]), 1)
    assert "levels deep" in err
    assert time.monotonic() - t0 < 60  # it was still running after two minutes at 50,000 levels
    assert snapshot(idx) == state


def test_extraction_has_a_time_bound(tmp_path, monkeypatch):
    from index import ingest

    page = tmp_path / "slow.html"
    page.write_text("<html><body>" + "<p>Acme Inc. shares your data with partners.</p>" * 200 + "</body></html>")
    monkeypatch.setattr(ingest, "READ_SECONDS", 0.0)
    with pytest.raises(IngestError, match="took over 0 s"):
        read_document(page)


# ---------------------------------------------------------------- ask: -k, questions files, bytes


@pytest.mark.parametrize("k", ["0", "-5", "100000", "x"])
def test_k_out_of_range_is_a_usage_error_naming_the_range(default_index, capsys, k):
    with pytest.raises(SystemExit) as stop:
        main(["ask", QUESTION, "-k", k, "--index", str(default_index)])
    assert stop.value.code == 2
    assert "1-20" in capsys.readouterr().err


def test_k_in_range_gives_that_many_citations(default_index, capsys):
    from index.store import read_index

    japanwork = len(read_index(default_index).policy_rows["japanwork"])  # 19 passages at 750 characters
    assert main(["ask", QUESTION, "-k", "20", "--json", "--index", str(default_index)]) == 0
    # k is the most citations: a question about one policy cites at most that policy's passages
    assert len(json.loads(capsys.readouterr().out)["citations"]) == min(20, japanwork)
    assert main(["ask", QUESTION, "-k", "5", "--json", "--index", str(default_index)]) == 0
    assert len(json.loads(capsys.readouterr().out)["citations"]) == 5


@pytest.mark.parametrize("name", ["missing.jsonl", "a-directory"])
def test_questions_file_that_cannot_be_read_is_a_usage_error(default_index, tmp_path, capsys, name):
    (tmp_path / "a-directory").mkdir()
    err = one_line_error(capsys, main(["ask", "--questions-file", str(tmp_path / name), "--index", str(default_index)]), 2)
    assert "--questions-file" in err


def test_questions_file_answers_each_line_in_order(default_index, tmp_path, capsys):
    path = tmp_path / "q.jsonl"
    path.write_bytes(b'{"question": "does JapanWork use cookies?"}\n'
                     b'{"question": "caf\xe9 cookies?"}\n'  # Latin-1, not UTF-8
                     b'not json\n'
                     b'{"question": "can I delete my data?", "policy": ["japanwork"]}\n'
                     b'{"question": "hi", "history": 5}\n'
                     b'{"question": "\\ud800 lone surrogate"}\n'
                     b'{"question": "how do I ask en Japan to delete my personal information?"}\n')
    rc = main(["ask", "--questions-file", str(path), "--index", str(default_index)])
    out = capsys.readouterr().out.splitlines()
    rows = [json.loads(line) for line in out]
    assert rc == 1 and len(rows) == 7
    assert "answer" in rows[0] and "error" not in rows[0]
    assert "line 2 is not UTF-8" in rows[1]["error"]
    assert "line 3 is not JSON" in rows[2]["error"]
    assert all("error" in r for r in rows[3:6])
    assert "answer" in rows[6] and rows[6]["citations"]


def test_question_that_is_not_utf8_on_the_command_line(default_index):
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "qa.cli", "ask", b"does JapanWork use \xff\xfe cookies?",
                           "--index", str(default_index)], capture_output=True, env=env, timeout=120)
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2 and "Traceback" not in err and err.startswith("error: ") and "UTF-8" in err, err


def test_file_name_that_is_not_utf8_is_stored_readably(idx, tmp_path, capsys):
    name = os.fsdecode(b"acme-\xff.txt")
    (tmp_path / name).write_text("Acme Careers Inc. never sells your personal data.")
    assert main(["add", str(tmp_path / name), "--index", str(idx), "--id", "acme-careers"]) == 0
    capsys.readouterr()
    assert main(["list", "--index", str(idx), "--json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["id"] == "acme-careers")
    assert row["source"] == "acme-\ufffd.txt" and row["origin"] == "cli"


def test_company_that_is_not_utf8_is_refused(idx, tmp_path, capsys):
    (tmp_path / "acme.txt").write_text("Acme Careers Inc. never sells your personal data.")
    state = snapshot(idx)
    one_line_error(capsys, main(["add", str(tmp_path / "acme.txt"), "--company", os.fsdecode(b"Ac\xffme"), "--index", str(idx)]))
    assert snapshot(idx) == state


# ---------------------------------------------------------------- origins


def test_list_shows_where_each_policy_came_from(idx, tmp_path, capsys):
    (tmp_path / "acme.txt").write_text("Acme Careers Inc. never sells your personal data.")
    assert main(["add", str(tmp_path / "acme.txt"), "--index", str(idx)]) == 0
    capsys.readouterr()
    assert main(["list", "--index", str(idx), "--json"]) == 0
    origins = {r["id"]: r["origin"] for r in json.loads(capsys.readouterr().out)}
    assert origins.pop("acme") == "cli" and set(origins.values()) == {"shipped"}
    assert main(["list", "--index", str(idx)]) == 0
    table = capsys.readouterr().out
    assert "ORIGIN" in table.splitlines()[0] and " shipped " in table and " cli " in table


def test_page_may_not_replace_what_it_did_not_add(idx, encoder):
    from index.library import LibraryError, add_text, remove

    state = snapshot(idx)
    with pytest.raises(LibraryError, match="cannot replace"):
        add_text(idx, "JapanWork, Inc. sells all your data to anyone who asks.", company="JapanWork, Inc.",
                 policy_id="japanwork", encoder=encoder, origin="page")
    with pytest.raises(LibraryError, match="name .* is taken"):  # under a new id, but taking its name
        add_text(idx, "JapanWork, Inc. sells all your data to anyone who asks.", company="JapanWork, Inc.",
                 policy_id="japanwork-2", encoder=encoder, origin="page")
    with pytest.raises(LibraryError, match="not added on this page"):
        remove(idx, ["japanwork"], origin="page")
    assert snapshot(idx) == state
    # A page policy: the page may replace and remove it; the command line may remove it too.
    report = add_text(idx, "Acme Careers never sells your data.", company="Acme Careers", encoder=encoder, origin="page")
    assert report.changes[0].action == "added"
    assert {e["id"]: e["origin"] for e in library.list_policies(idx)}["acme-careers"] == "page"
    report = add_text(idx, "Acme Careers never sells your data, ever.", company="Acme Careers", encoder=encoder, origin="page")
    assert report.changes[0].action == "replaced"
    assert remove(idx, ["acme-careers"]).changes[0].action == "removed"


def test_lock_file_that_is_a_link_is_not_written_through(idx, tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (idx / ".lock").unlink(missing_ok=True)
    (idx / ".lock").symlink_to(victim)
    (idx / "CURRENT.tmp").symlink_to(victim)
    (tmp_path / "acme.txt").write_text("Acme Careers Inc. never sells your personal data.")
    err = one_line_error(capsys, main(["add", str(tmp_path / "acme.txt"), "--index", str(idx)]), 1)
    assert "lock file" in err and victim.read_text() == "keep me"
    (idx / ".lock").unlink()
    assert main(["add", str(tmp_path / "acme.txt"), "--index", str(idx)]) == 0
    assert victim.read_text() == "keep me"


def test_index_build_does_not_drop_added_policies_unless_told(idx, tmp_path, capsys):
    (tmp_path / "acme.txt").write_text("Acme Careers Inc. never sells your personal data.")
    assert main(["add", str(tmp_path / "acme.txt"), "--index", str(idx)]) == 0
    state = snapshot(idx)
    capsys.readouterr()
    err = one_line_error(capsys, main(["index", "build", "--out", str(idx), "--quiet"]), 1)
    assert "acme" in err and "--replace" in err
    assert {k: v for k, v in snapshot(idx).items()} == state
    assert main(["index", "build", "--out", str(idx), "--quiet", "--replace"]) == 0
    capsys.readouterr()
    assert main(["list", "--index", str(idx), "--json"]) == 0
    assert "acme" not in {r["id"] for r in json.loads(capsys.readouterr().out)}


def test_manifest_cannot_point_the_query_encoder_outside_its_version(idx, tmp_path):
    version = live_version(idx)
    manifest = json.loads((version / "manifest.json").read_text())
    assert read_index(idx).query_encoder_dir is not None
    outside = tmp_path / "elsewhere"
    shutil.copytree(version / manifest["query_encoder"].get("path", "query_encoder"), outside)
    manifest["query_encoder"]["path"] = "../../elsewhere"
    (version / "manifest.json").write_text(json.dumps(manifest))
    assert (version / "../../elsewhere").resolve() == outside.resolve()
    assert read_index(idx).query_encoder_dir is None


def test_policy_text_with_unicode_line_separators_reads_back(idx, tmp_path, capsys):
    """U+2028, U+2029 and NEL (U+0085) come with text copied from documents; JSON keeps them raw in a line."""
    (tmp_path / "acme.txt").write_text("Acme Careers Inc. Privacy Policy\n\nArticle 1 (Selling)\n\n"
                                       "Acme Careers never sells\u2028your personal data.\x85 We delete it\u2029on request.\n")
    assert main(["add", str(tmp_path / "acme.txt"), "--index", str(idx)]) == 0
    capsys.readouterr()
    assert main(["ask", "does Acme Careers sell my data?", "--index", str(idx), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["policies"] == ["acme"]
