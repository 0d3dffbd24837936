"""The page's "Add a policy" panel without a browser: a pasted or uploaded policy joins the index the
page serves and is answered at once, for everyone (also through /ask); a refused add shows the
library's one-line message and leaves the index exactly as it was; `allow_add=False` removes it all.
Every index written here is a temporary copy (`served_index`), never the shared one or ~/.cache."""
from __future__ import annotations

import html

import pytest

import app
from index.store import CURRENT, read_index
from qa.engine import Engine

ACME = (
    "Acme Careers Privacy Policy\n\n"
    "Article 1 (Selling personal information)\n\n"
    "Acme Careers never sells your personal information. We share it with employers only when you apply to their jobs.\n\n"
    "Article 2 (Deleting your data)\n\n"
    "To delete your account and personal data, write to privacy@acme.example; we delete it within 30 days.\n"
)
QUESTION = "does Acme Careers sell my data?"


@pytest.fixture
def holder(served_index, encoder):
    return app.EngineHolder(Engine(read_index(served_index), encoder), served_index)


def snapshot(directory):
    """CURRENT and every file name and size under the index directory (the lock file aside)."""
    files = {str(p.relative_to(directory)): p.stat().st_size for p in directory.rglob("*")
             if p.is_file() and p.name != ".lock"}
    return (directory / CURRENT).read_text(), files



def test_pasted_policy_is_answered_at_once_for_everyone(holder, served_index, launch):
    demo = app.build_app(holder)
    url = launch(demo)
    try:
        from gradio_client import Client

        client = Client(url, verbose=False)
        before = client.predict(QUESTION, api_name="/ask")
        assert "acme-careers" not in {c["policy_id"] for c in before["citations"]}
        old_engine, old_current = holder.engine, (served_index / CURRENT).read_text()

        selected, status = app.add_policy(holder, None, ACME, "Acme Careers", "")
        assert selected == "acme-careers"
        assert "Added Acme Careers as “acme-careers”" in status and "added" in status and "passages" in status
        assert "Could not" not in status
        assert str(served_index) not in status and "--" not in status  # no server path, no command-line options
        assert (served_index / CURRENT).read_text() != old_current
        # The served engine was swapped; the old one (a question still being answered) is untouched.
        assert holder.engine is not old_engine and "acme-careers" not in old_engine.index.policies
        assert ("Acme Careers", "acme-careers") in app._policy_choices(holder.engine)

        # Another visitor, through the public API: the new policy answers with a citation.
        got = client.predict(QUESTION, api_name="/ask")
        assert got["policies"] == ["acme-careers"] and not got["abstained"]
        top = got["citations"][0]
        assert top["policy_id"] == "acme-careers" and top["company"] == "Acme Careers"
        assert "never sells your personal information" in top["highlight"]
        # ... and on the page.
        messages, sources, _ = app.answer_question(holder.engine, QUESTION, app.ALL, None)
        assert "never sells your personal information" in messages[-1]["content"]
        assert 'data-policy="acme-careers"' in sources and "named in your question" in sources

        # The same text again: nothing to do, nothing written.
        current = snapshot(served_index)
        engine = holder.engine
        selected, status = app.add_policy(holder, None, ACME, "Acme Careers", None)
        assert selected == "acme-careers" and "already in the index" in status and "nothing to do" in status
        assert snapshot(served_index) == current and holder.engine is engine
    finally:
        demo.close()


def test_policy_added_from_the_shell_is_served_without_a_restart(holder, served_index, encoder, caplog):
    """`policyqa add` in another process swaps CURRENT; the next question reads the new version once.
    A new version that cannot be read is logged and the one in memory goes on answering."""
    from index.library import add_text, remove
    from index.store import live_version

    before = holder.current()
    assert before is holder.engine and "acme" not in before.index.policies
    add_text(served_index, ACME, company="Acme Careers", policy_id="acme", encoder=encoder)
    served = holder.current()
    assert served is not before and served.index.path == live_version(served_index) and holder.current() is served
    answer = served.ask(QUESTION)
    assert answer.policies == ["acme"] and "never sells" in answer.citations[0].highlight
    remove(served_index, ["acme"], encoder=encoder)
    (live_version(served_index) / "embeddings.npy").write_bytes(b"damaged")
    with caplog.at_level("ERROR", logger=app.log.name):
        assert holder.current() is served and holder.current() is served
    assert sum("cannot be read" in r.getMessage() for r in caplog.records) == 1
    assert QUESTION not in caplog.text


def test_file_upload_infers_the_company(holder, served_index, tmp_path):
    path = tmp_path / "globex-jobs.html"
    path.write_text(
        "<!doctype html><html><head><title>Privacy Policy | Globex Jobs</title></head><body>"
        "<nav><a href='/'>Home</a></nav><main><h1>Privacy Policy</h1><h2>1. Cookies</h2>"
        "<p>Globex Jobs uses cookies to keep you signed in. You can refuse cookies in your browser settings.</p>"
        "<h2>2. Deletion</h2><p>Write to privacy@globex.example to delete your account.</p></main></body></html>",
        encoding="utf-8",
    )
    selected, status = app.add_policy(holder, str(path), "", "", "")
    assert selected == "globex-jobs" and "Added Globex Jobs" in status and "globex-jobs.html" in status
    answer = holder.engine.ask("does Globex Jobs use cookies?").to_dict()
    assert answer["citations"][0]["policy_id"] == "globex-jobs" and "cookies" in answer["citations"][0]["highlight"]


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("case, words", [
    ("empty text", "policy text is empty"),
    ("blank text", "policy text is empty"),
    ("text without company", "company's name"),
    ("file and text", "not both"),
    ("empty file", "empty.txt is empty"),
    ("binary file", "photo.txt is binary"),
    ("unknown extension", "cannot read .docx files"),
    ("too large", "over the 20 MB limit"),
    ("no text", "blank.html has no policy text"),
    ("id of another company", "the id 'japanwork' belongs to 'JapanWork, Inc.', which this page cannot replace"),
    ("id of another company", "add your policy under another Id"),
    ("bad id", "is not usable"),
])
def test_refused_add_leaves_the_index_unchanged(holder, served_index, tmp_path, case, words):
    args = {
        "empty text": (None, "", "Acme Careers", ""),
        "blank text": (None, " \n\t ", "Acme Careers", ""),
        "text without company": (None, ACME, "  ", ""),
        "file and text": (_write(tmp_path, "acme.txt", ACME), ACME, "", ""),
        "empty file": (_write(tmp_path, "empty.txt", b""), "", "", ""),
        "binary file": (_write(tmp_path, "photo.txt", bytes(range(256)) * 64), "", "", ""),
        "unknown extension": (_write(tmp_path, "acme.docx", ACME), "", "", ""),
        "too large": (None, None, "", ""),
        "no text": (_write(tmp_path, "blank.html", "<html><body><script>alert(1)</script><nav>Home</nav></body></html>"), "", "", ""),
        "id of another company": (None, ACME, "Acme Careers", "japanwork"),
        "bad id": (None, ACME, "Acme Careers", "Not An Id!"),
    }[case]
    if case == "too large":
        big = tmp_path / "huge.txt"
        with open(big, "wb") as f:
            f.truncate(20 * 1024 * 1024 + 1)  # sparse: the size check comes before reading
        args = (str(big), "", "", "")
    before, engine = snapshot(served_index), holder.engine
    selected, status = app.add_policy(holder, *args)
    assert selected is None
    status = html.unescape(status)
    assert "Could not add the policy" in status and words in status and "index is unchanged" in status, status
    assert "Traceback" not in status and str(tmp_path) not in status  # the upload's temp path is not shown
    assert snapshot(served_index) == before and holder.engine is engine


def test_busy_index_is_a_message(holder, served_index):
    from index.library import index_lock

    holder.wait = 0.2
    before = snapshot(served_index)
    with index_lock(served_index):
        selected, status = app.add_policy(holder, None, ACME, "Acme Careers", "")
    assert selected is None and "is busy" in status and "index is unchanged" in status
    assert str(served_index) not in status and "--wait" not in status
    assert snapshot(served_index) == before


def test_report_is_escaped(holder):
    attack = '<img src=x onerror="window.__xss=1">'
    selected, status = app.add_policy(holder, None, ACME.replace("Acme Careers", "Evil Jobs"), attack, "")
    assert selected and "<img" not in status and "&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;" in status
    selected, status = app.add_policy(holder, None, ACME, "Acme Careers", "<script>x</script>")
    assert selected is None and "<script>" not in status and "&lt;script&gt;" in status


def test_onnx_engine_gets_a_build_encoder_on_first_add(served_index):
    """The served engine may ask with the index's ONNX query encoder, which cannot embed policies:
    the holder loads sentence-transformers on the first add and keeps it."""
    from index.embed import Encoder

    engine = Engine.open(served_index)
    assert type(engine.encoder).__name__ == "OnnxQueryEncoder"  # the index ships its export
    holder = app.EngineHolder(engine, served_index)
    selected, status = app.add_policy(holder, None, ACME, "Acme Careers", "")
    assert selected == "acme-careers", status
    built = holder.build_encoder()
    assert isinstance(built, Encoder) and built.name == engine.index.model and holder.build_encoder() is built
    assert built is not engine.encoder
    assert holder.engine.encoder is engine.encoder  # questions keep the fast encoder
    assert holder.engine.ask(QUESTION).citations[0].policy_id == "acme-careers"


def _fn_names(demo):
    return {getattr(d.fn, "__name__", "") for d in demo.fns.values()}


@pytest.mark.parametrize("kwargs", [{"allow_add": False}, {"allow_upload": False}])
def test_switched_off_there_is_no_panel_and_no_endpoint(engine, kwargs):
    demo = app.build_app(engine, **kwargs)
    ids = {c.get("props", {}).get("elem_id") for c in demo.config["components"]}
    assert "pq-add-button" not in ids and "pq-add-file" not in ids
    assert "on_add" not in _fn_names(demo)
    on = app.build_app(engine)
    assert "pq-add-button" in {c.get("props", {}).get("elem_id") for c in on.config["components"]}
    assert "on_add" in _fn_names(on)


def test_cli_flag(monkeypatch):
    from qa import cli

    seen = {}
    monkeypatch.setattr(app, "serve", lambda **kw: seen.update(kw))
    cli.main(["serve", "--no-add-policy", "--index", "/nonexistent"])
    assert seen["allow_add"] is False
    cli.main(["serve"])
    assert seen["allow_add"] is True
    app.main(["--no-add-policy"])
    assert seen["allow_add"] is False
