"""Issue #11, the page: a visitor cannot replace or shadow a policy the page did not add, the add panel
is off when the page listens beyond loopback, a damaged CURRENT does not stop the page, and
POST /api/ask answers exactly what `policyqa ask --json` prints (or {"error"} with a 4xx status)."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

import app
from index.store import CURRENT, read_index
from qa.engine import Engine

QUESTION = "can JapanWork share my data with partners?"
FAKE = ("JapanWork, Inc. Privacy Policy\n\nArticle 1 (Sharing)\n\n"
        "JapanWork sells every user's personal data to any partner who pays, without asking.\n")


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict]:
    request = urllib.request.Request(url + "api/ask", data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _without_timings(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "timings_ms"}


def test_api_ask_is_the_cli_json(app_url, engine):
    status, got = post(app_url, json.dumps({"question": QUESTION}).encode())
    assert status == 200
    assert _without_timings(got) == _without_timings(engine.ask(QUESTION).to_dict())
    status, got = post(app_url, json.dumps({"question": "does the site use cookies?", "policy": "en-japan"}).encode())
    assert status == 200 and got["policies"] == ["en-japan"]
    assert {c["policy_id"] for c in got["citations"]} == {"en-japan"}


@pytest.mark.parametrize("body, status, words", [
    (b'{"question": ""}', 400, "empty"),
    (b'{"question": 42}', 400, "must be text"),
    (b'{"question": "x", "policy": "no-such-site"}', 400, "unknown policy"),
    (b'{"question": "x", "policy": ["japanwork"]}', 400, "policy id"),
    (b'{"question": "\\ud800 cookies?"}', 400, "UTF-8"),
    (b'{"policy": "japanwork"}', 400, '"question"'),
    (b'["a list"]', 400, '"question"'),
    (b'{"question": "x", "k": 3}', 400, "unknown field"),
    (b"not json", 415, "must be JSON"),
    (b"\xff\xfe", 415, "must be JSON"),
    (json.dumps({"question": "x" * 200_000}).encode(), 413, "over 64 KB"),
])
def test_api_ask_refusals_are_json_errors_with_a_4xx_status(app_url, body, status, words):
    got_status, got = post(app_url, body)
    assert got_status == status and set(got) == {"error"} and words in got["error"], (got_status, got)


def test_api_ask_takes_post_only(app_url):
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(app_url + "api/ask", timeout=30)
    assert e.value.code == 405


@pytest.fixture
def holder(served_index, encoder):
    return app.EngineHolder(Engine(read_index(served_index), encoder), served_index)


def snapshot(directory):
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name != ".lock"}


@pytest.mark.parametrize("company, policy_id, words", [
    ("JapanWork, Inc.", "japanwork", "cannot replace"),  # the reproduction: same id and company
    ("JapanWork, Inc.", "", "cannot replace"),  # id inferred from the company: japanwork
    ("JapanWork, Inc.", "japanwork-official", "is taken by"),  # a new id under its name
    ("Acme", "en-japan", "cannot replace"),  # another company's id
    ("Evil Co", "japan-work", "is taken by"),  # an id that reads as its name ("japan-work" ~ "JapanWork")
    ("JapanWork Official", "", "is taken by"),  # a name containing its name, routed first (longer)
    ("ＪＡＰＡＮＷＯＲＫ", "jw", "is taken by"),  # full-width, upper case
])
def test_visitor_cannot_replace_or_shadow_a_shipped_policy(holder, served_index, company, policy_id, words):
    state = snapshot(served_index)
    before = holder.current().ask(QUESTION).to_dict()
    selected, status = app.add_policy(holder, None, FAKE, company, policy_id)
    assert selected is None and "Could not add" in status and words in status, status
    assert "The index is unchanged" in status
    assert snapshot(served_index) == state
    after = holder.current().ask(QUESTION).to_dict()
    assert _without_timings(after) == _without_timings(before)
    assert "sells every user" not in json.dumps(after)


def test_page_policies_are_marked_and_replaceable_from_the_page_and_removable_from_the_shell(holder, served_index, capsys):
    from qa.cli import main

    text = "Acme Careers Privacy Policy\n\nArticle 1 (Selling)\n\nAcme Careers never sells your personal information.\n"
    assert app.add_policy(holder, None, text, "Acme Careers", "")[0] == "acme-careers"
    assert app.add_policy(holder, None, text.replace("never", "does not ever"), "Acme Careers", "")[0] == "acme-careers"
    assert main(["list", "--index", str(served_index), "--json"]) == 0
    origins = {r["id"]: r["origin"] for r in json.loads(capsys.readouterr().out)}
    assert origins["acme-careers"] == "page" and origins["japanwork"] == "shipped"
    assert main(["remove", "acme-careers", "--index", str(served_index)]) == 0
    assert "acme-careers" not in holder.current().index.policies


def test_damaged_current_keeps_the_page_answering(holder, served_index):
    (served_index / CURRENT).write_text("../elsewhere")
    assert holder.current().ask(QUESTION).citations
    (served_index / CURRENT).unlink()
    assert holder.current().ask(QUESTION).citations


@pytest.mark.parametrize("argv, allowed", [
    (["serve"], True),
    (["serve", "--host", "127.0.0.1"], True),
    (["serve", "--host", "0.0.0.0"], False),
    (["serve", "--host", "192.168.1.5"], False),
    (["serve", "--host", "0.0.0.0", "--allow-add-policy"], True),
    (["serve", "--no-add-policy"], False),
])
def test_add_panel_is_off_beyond_loopback_unless_asked_for(monkeypatch, argv, allowed):
    from qa import cli

    seen = {}
    monkeypatch.setattr(app, "serve", lambda **kw: seen.update(kw))
    assert cli.main(argv) == 0
    assert seen["allow_add"] is allowed
    seen.clear()
    app.main(argv[1:])
    assert seen["allow_add"] is allowed


def test_port_in_use_is_a_message(default_index, capsys):
    import socket

    from qa import cli

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        rc = cli.main(["serve", "--port", str(port), "--index", str(default_index), "--no-add-policy"])
    err = capsys.readouterr().err
    assert rc == 2 and f"cannot serve on 127.0.0.1:{port}" in err and "Traceback" not in err
