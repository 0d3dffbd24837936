"""`policyqa add / remove / list`: one current version per policy, only changed passages embedded,
refusals that leave the index byte-for-byte as it was, kill -9 at any moment, two writers at once."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
import shutil

import pytest

from index import library
from index.embed import DEFAULT_MODEL
from index.library import IndexBusyError, LibraryError, add_files, add_text, index_lock, list_policies, remove
from index.store import live_version, read_index, read_manifest
from qa.cli import main
from qa.engine import Engine, QuestionError
from test_ingest import PAGE, blank_pdf, make_pdf

SHIPPED = {"japanwork", "en-japan", "highly-skilled-japan", "jacces", "gaijin-poole"}


@pytest.fixture(autouse=True)
def _one_model(encoder):
    """In-process CLI calls use the session's loaded model instead of loading their own."""
    library._ENCODERS[DEFAULT_MODEL] = encoder
    yield


@pytest.fixture
def idx(default_index, tmp_path):
    out = tmp_path / "idx"
    shutil.copytree(default_index, out)
    return out


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _cli(*args, **kw):
    env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "qa.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, **kw)


def test_add_html_and_pdf_embeds_only_their_passages_and_answers_from_them(idx, tmp_path, encoder):
    manifest = read_manifest(idx)
    before = {e["id"]: e for e in manifest["policies"]}
    (tmp_path / "acme.html").write_text(PAGE, encoding="utf-8")
    (tmp_path / "beta-careers.pdf").write_bytes(make_pdf([
        "Privacy Policy", "Beta Careers Inc. keeps the data of job seekers safe.", "1. Cookies",
        "Beta Careers uses cookies to remember your language and never for advertising.", "Revised: 2022-07-15"]))
    report = add_files(idx, [tmp_path / "acme.html", tmp_path / "beta-careers.pdf"], encoder=encoder)
    assert [(c.id, c.action, c.company) for c in report.changes] == [
        ("acme", "added", "Acme Jobs"), ("beta-careers", "added", "Beta Careers Inc.")]
    assert report.changes[0].inferred == {"company": "page title", "aliases": "policy text", "id": "file name",
                                          "date": "policy text"}
    # Incremental: exactly the new policies' passages were embedded, nothing of the five already there.
    new_passages = sum(c.passages for c in report.changes)
    assert report.embedded_passages == new_passages
    assert report.embedded == new_passages + report.embedded_headings + report.embedded_sentences
    assert report.reused >= manifest["passages"] + manifest["sentences"] - 5 and report.policies == 7  # (a few repeat)
    after = {e["id"]: e for e in read_manifest(idx)["policies"]}
    assert all(after[i]["added"] == before[i]["added"] and after[i]["sha256"] == before[i]["sha256"] for i in before)
    index = read_index(idx)
    assert "SCRIPT TEXT" not in index.policies["acme"].text and "alert(" not in index.policies["acme"].text
    engine = Engine(index, encoder)
    answer = engine.ask("How long does Acme keep my résumé?")
    assert answer.policies == ["acme"] and answer.citations[0].section == "Retention" and not answer.abstained
    answer = engine.ask("does Beta Careers use cookies for advertising?")
    assert answer.policies == ["beta-careers"] and "never for advertising" in answer.citations[0].highlight


def test_readding_unchanged_is_a_no_op_and_changed_text_replaces_the_one_version(idx, tmp_path, encoder):
    page = tmp_path / "acme.html"
    page.write_text(PAGE, encoding="utf-8")
    first = add_files(idx, [page], encoder=encoder)
    state = snapshot(idx)
    again = add_files(idx, [page], encoder=encoder)
    assert not again.changed and again.changes[0].action == "unchanged" and again.version == ""
    assert snapshot(idx) == state  # nothing written, not even the lock file
    page.write_text(PAGE.replace("three years", "five years").replace("April 1, 2024", "June 1, 2025"), encoding="utf-8")
    replaced = add_files(idx, [page], encoder=encoder)
    (change,) = replaced.changes
    assert change.action == "replaced" and change.date == "2025-06-01"
    # Only the changed passages (the retention one and the one holding the date) and their sentences.
    assert 1 <= replaced.embedded_passages <= 2 and replaced.embedded <= 8
    rows = [e for e in list_policies(idx) if e["id"] == "acme"]
    assert len(rows) == 1 and rows[0]["sha256"] == change.sha256 != first.changes[0].sha256 and rows[0]["date"] == "2025-06-01"
    assert "five years" in read_index(idx).policies["acme"].text
    assert len([p for p in idx.iterdir() if p.name.startswith("v-")]) == 1  # one version on disk


def test_remove_embeds_nothing_and_unknown_ids_are_refused(idx, encoder):
    report = remove(idx, ["gaijin-poole"], encoder=encoder)
    assert report.changes[0].action == "removed" and report.embedded == 0 and report.policies == 4
    engine = Engine(read_index(idx), encoder)
    with pytest.raises(QuestionError, match="unknown policy 'gaijin-poole'"):
        engine.ask("do they use cookies?", policy="gaijin-poole")
    state = snapshot(idx)
    with pytest.raises(LibraryError, match="no policy 'nope' in the index .*policyqa list"):
        remove(idx, ["nope"], encoder=encoder)
    assert snapshot(idx) == state


def test_add_text_is_what_the_web_page_calls(idx, encoder):
    text = ("Privacy Policy\n\nSakura Careers K.K. (hereinafter “Sakura”) introduces jobs in Japan.\n\n"
            "1. Sharing\n\nSakura shares your résumé only with the employers you apply to, and never sells it.\n")
    report = add_text(idx, text, company="Sakura Careers K.K.", encoder=encoder)
    (change,) = report.changes
    assert (change.id, change.action, change.company) == ("sakura-careers", "added", "Sakura Careers K.K.")
    assert report.version and Path(report.version) == live_version(idx)
    assert "Sakura" in change.aliases and change.inferred["id"] == "company name"
    engine = Engine(read_index(idx), encoder)  # the page reloads its engine from report.index
    answer = engine.ask("does Sakura sell my résumé?")
    assert answer.policies == ["sakura-careers"] and "never sells" in answer.citations[0].highlight
    assert not add_text(idx, text, company="Sakura Careers K.K.", encoder=encoder).changed


REFUSALS = {
    "empty": ("empty.txt", b"", "is empty; save the policy text"),
    "binary": ("photo.txt", bytes(range(256)) * 40, "is binary, not text"),
    "over-20-mb": ("huge.txt", None, "over the 20 MB limit"),
    "html-without-text": ("blank.html", b"<html><head><script>app()</script></head><body><nav>Home</nav></body></html>",
                          "has no policy text"),
    "pdf-without-text": ("scan.pdf", "blank-pdf", "has no text layer .*OCR"),
    "duplicate-id-given-company": ("japanwork.txt", b"Other Corp Inc. shares everything with everyone, always.",
                                   "policy id 'japanwork' already belongs to 'JapanWork, Inc.'.*--id japanwork-2"),
    "duplicate-id-inferred-company": ("jacces.txt", b"Beta Careers Inc. shares your data with partners for marketing.",
                                      "policy id 'jacces' already belongs to .* is 'Beta Careers Inc.'"),
    "unknown-extension": ("policy.docx", b"PK\x03\x04 word document", "cannot read .docx files; save the policy as"),
    "missing-file": ("missing.txt", "absent", "does not exist"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals_are_one_line_and_leave_the_index_byte_for_byte(case, idx, tmp_path, capsys):
    name, content, match = REFUSALS[case]
    path = tmp_path / name
    if content == "blank-pdf":
        path.write_bytes(blank_pdf())
    elif content is None:
        with open(path, "wb") as f:
            f.truncate(20 * 2**20 + 1)
    elif content != "absent":
        path.write_bytes(content)
    extra = ["--company", "Other Corp Inc."] if case == "duplicate-id-given-company" else []
    state = snapshot(idx)
    capsys.readouterr()
    rc = main(["add", str(path), "--index", str(idx), *extra])
    out, err = capsys.readouterr()
    assert rc != 0 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    import re
    assert re.search(match, err), err
    assert snapshot(idx) == state


def test_bad_arguments_are_refused_before_anything_is_read(idx, tmp_path, capsys):
    (tmp_path / "a.txt").write_text("Alpha Inc. keeps data.")
    (tmp_path / "b.txt").write_text("Beta Inc. keeps data.")
    state = snapshot(idx)
    for files, args, match in [
        (["a.txt"], ["--date", "2024-13-01"], "is not a date; give it as YYYY-MM-DD"),
        (["a.txt"], ["--id", "Bad Id!"], "is not usable; use lowercase letters"),
        (["a.txt", "b.txt"], ["--id", "alpha"], "--id names one policy but 2 files"),
    ]:
        assert main(["add", *(str(tmp_path / f) for f in files), "--index", str(idx), *args]) == 1
        assert match in capsys.readouterr().err
    assert snapshot(idx) == state


def test_busy_index_waits_then_says_so(idx, tmp_path, capsys):
    (tmp_path / "acme.html").write_text(PAGE, encoding="utf-8")
    with index_lock(idx):
        state = snapshot(idx)
        t0 = time.monotonic()
        rc = main(["add", str(tmp_path / "acme.html"), "--index", str(idx), "--wait", "1"])
        waited = time.monotonic() - t0
        err = capsys.readouterr().err
        assert snapshot(idx) == state
    assert rc == 1 and 1 <= waited < 10
    assert f"pid {os.getpid()}" in err and "is busy" in err and "--wait SECONDS" in err
    assert err.strip().splitlines()[-1].startswith("error: the index at")
    with pytest.raises(IndexBusyError):
        with index_lock(idx, wait=0):
            with index_lock(idx, wait=0.2):
                pass


def test_two_real_processes_adding_at_once_both_land(idx, tmp_path):
    """Two `policyqa add` processes on one index: the second waits for the first; nothing is lost."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "acme.html").write_text(PAGE, encoding="utf-8")
    (b / "sakura.txt").write_text("Sakura Careers K.K. never sells the résumés of job seekers to anyone.\n", encoding="utf-8")
    procs = [_cli("add", str(d), "--index", str(idx), "--quiet") for d in (a, b)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert any("added" in out for out, _ in outs) and all("Traceback" not in err for _, err in outs)
    index = read_index(idx)
    assert set(index.policies) == SHIPPED | {"acme", "sakura"}
    assert len([p for p in idx.iterdir() if p.name.startswith(("v-", ".tmp-"))]) == 1
    listed = subprocess.run([sys.executable, "-m", "qa.cli", "list", "--index", str(idx), "--json"],
                            capture_output=True, text=True, timeout=60)
    rows = json.loads(listed.stdout)
    assert {r["id"] for r in rows} == set(index.policies)
    assert {"id", "company", "date", "passages", "added", "sha256"} <= set(rows[0])


def test_kill_9_at_any_moment_leaves_the_old_or_the_new_index(idx, tmp_path, encoder):
    """kill -9 a real `policyqa add` during start-up, mid-write (staging directory present) and
    just after the new version appears; the index always loads, holding the old or the new policies."""
    (tmp_path / "acme.html").write_text(PAGE, encoding="utf-8")
    old, new = SHIPPED, SHIPPED | {"acme"}

    def first_version():
        return {p.name for p in idx.iterdir() if p.name.startswith("v-")}

    caught = []
    for moment in ("after-1.5s", "staging-written", "version-renamed"):
        versions = first_version()
        proc = _cli("add", str(tmp_path / "acme.html"), "--index", str(idx), "--quiet")
        t0 = time.monotonic()
        while proc.poll() is None and time.monotonic() - t0 < 120:
            if moment == "after-1.5s" and time.monotonic() - t0 >= 1.5:
                break
            names = [p.name for p in idx.iterdir()]
            if moment == "staging-written" and any(n.startswith(".tmp-") for n in names):
                break
            if moment == "version-renamed" and set(n for n in names if n.startswith("v-")) - versions:
                break
            time.sleep(0.002)
        mid_write = any(p.name.startswith(".tmp-") for p in idx.iterdir())
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            caught.append((moment, mid_write))
        proc.communicate()
        assert set(read_index(idx).policies) in (old, new), moment
    assert len(caught) >= 2, caught  # the kills really landed while the process ran
    # The next write (in-process here) sweeps what the killed ones left behind.
    (tmp_path / "acme.html").write_text(PAGE.replace("three years", "two years"), encoding="utf-8")
    report = add_files(idx, [tmp_path / "acme.html"], encoder=encoder)
    assert report.changed and set(read_index(idx).policies) == new and report.policies == 6
    assert [p.name for p in idx.iterdir() if p.name.startswith(("v-", ".tmp-"))] == [Path(live_version(idx)).name]
