"""The page's API through gradio_client, against the real app on loopback (real engine, real index)."""
from __future__ import annotations


import pytest

QUESTION = "can JapanWork share my data with partners?"




@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


def _without_timings(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "timings_ms"}


def test_only_ask_is_public(client):
    api = client.view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == {"/ask"}
    assert not api["unnamed_endpoints"]
    params = [p["parameter_name"] for p in api["named_endpoints"]["/ask"]["parameters"]]
    assert params == ["question", "policy"]


def test_ask_returns_the_cli_json(client, engine):
    got = client.predict(QUESTION, api_name="/ask")
    want = engine.ask(QUESTION).to_dict()  # what `policyqa ask --json` prints
    assert set(got) == set(want) == {"question", "answer", "abstained", "policies", "citations", "timings_ms",
                                     "by_policy", "scope_reason", "language", "scorer"}
    assert got["language"] == "en" and got["scorer"] == "policyqa/sentence-scorer-v1"
    assert _without_timings(got) == _without_timings(want)
    assert set(got["timings_ms"]) >= {"encode", "retrieve", "total"}
    assert not got["abstained"] and got["policies"] == ["japanwork"]
    first = got["citations"][0]
    assert set(first) == {"n", "policy_id", "company", "section", "text", "start", "end", "highlight",
                          "highlight_start", "highlight_end", "score"}
    text = engine.index.policies[first["policy_id"]].text
    assert text[first["start"]:first["end"]] == first["text"]
    assert text[first["highlight_start"]:first["highlight_end"]] == first["highlight"]
    assert f"[{first['n']}]" in got["answer"]
    assert got["by_policy"] == []  # one site named: no rows


def test_ask_across_sites_returns_one_row_per_site(client, engine):
    got = client.predict("which of these sites let me delete my data?", api_name="/ask")
    assert [r["policy_id"] for r in got["by_policy"]] == [r.policy_id for r in engine.ask("which of these sites let me delete my data?").by_policy]
    assert {r["policy_id"] for r in got["by_policy"]} == set(engine.index.policies)
    assert {n for r in got["by_policy"] for n in r["citations"]} == {c["n"] for c in got["citations"]}


def test_policy_id_restricts(client):
    got = client.predict("does the site use cookies?", "en-japan", api_name="/ask")
    assert got["policies"] == ["en-japan"]
    assert got["citations"] and {c["policy_id"] for c in got["citations"]} == {"en-japan"}
    # keyword form, and an empty policy means all policies
    everything = client.predict(question="does the site use cookies?", policy="", api_name="/ask")
    assert len(everything["policies"]) == 5


@pytest.mark.parametrize("question, words", [
    ("", "empty"),
    ("   \n\t ", "empty"),
    ("x" * 100_000, "2,000"),
])
def test_bad_questions_give_a_clear_error(client, question, words):
    got = client.predict(question, api_name="/ask")
    assert set(got) == {"error"}
    assert words in got["error"]
    assert "Traceback" not in got["error"] and "File \"" not in got["error"]


def test_unknown_policy_is_an_error_not_a_crash(client):
    got = client.predict(QUESTION, "no-such-site", api_name="/ask")
    assert "unknown policy 'no-such-site'" in got["error"] and "japanwork" in got["error"]


def test_non_english_question_is_answered_not_crashed(client):
    got = client.predict("ジャパンワークは私のデータを共有しますか？", api_name="/ask")
    assert "error" not in got and isinstance(got["abstained"], bool) and got["citations"]


def test_question_text_is_not_logged(client, capfd, caplog):
    marker = "zebracornflower-9931 can JapanWork share my data"
    client.predict(marker, api_name="/ask")
    client.predict(marker * 200, api_name="/ask")  # an error path too
    out, err = capfd.readouterr()
    assert "zebracornflower" not in out + err
    assert "zebracornflower" not in caplog.text


def test_a_repeated_question_gets_the_same_object(client):
    # The second ask is answered from the page's cache on the event loop (no worker thread): same JSON,
    # including the first ask's timings; a refused question is still refused, not cached.
    first = client.predict("does JapanWork use cookies for advertising?", None, api_name="/ask")
    again = client.predict("does JapanWork use cookies for advertising?", "", api_name="/ask")
    assert "error" not in first and again == first
    assert "error" in client.predict("   ", None, api_name="/ask")
    assert "error" in client.predict("   ", None, api_name="/ask")


def test_login_check_moved_to_the_event_loop_still_refuses():
    # launch_app runs Gradio's login_check on the event loop (not in a worker thread per request);
    # with a login configured it must still refuse a visitor without one, and let a logged-in one in.
    import socket

    import gradio as gr
    import httpx

    import app

    def echo(text: str) -> str:
        return text

    with gr.Blocks(analytics_enabled=False) as demo:
        gr.api(echo, api_name="echo")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.queue()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                auth=("user", "secret"), ssr_mode=False)
    try:
        assert app._login_check_on_event_loop(demo.app) > 0
        url = f"http://127.0.0.1:{port}/gradio_api/info"
        assert httpx.get(url, timeout=10).status_code == 401
        with httpx.Client(timeout=10) as web:
            assert web.post(f"http://127.0.0.1:{port}/login", data={"username": "user", "password": "secret"}).status_code == 200
            assert web.get(url).status_code == 200
        assert app._login_check_on_event_loop(demo.app) == 0  # all done the first time
    finally:
        demo.close()
