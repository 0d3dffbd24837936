"""The page's API through gradio_client, against the real app on loopback (real engine, real index)."""
from __future__ import annotations


import pytest

from qa.scorer import DEFAULT_SCORER

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
    assert got["language"] == "en" and got["scorer"] == DEFAULT_SCORER
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


def _raw_ask(url: str, data: list, fn: int | None = None) -> tuple[int, list[dict]]:
    """One /ask (or the event `fn`) the way gradio_client 2.x asks (sse_v3): POST queue/join, then read
    the session's stream; returns the join status and the stream's messages (heartbeats left out)."""
    import json
    import uuid

    import httpx

    if fn is None:
        config = httpx.get(url + "config", timeout=10).json()
        fn = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "ask")
    session = uuid.uuid4().hex
    join = httpx.post(url + "gradio_api/queue/join", json={"data": data, "fn_index": fn, "session_hash": session}, timeout=30)
    if join.status_code != 200:
        return join.status_code, []
    messages = []
    with httpx.stream("GET", url + "gradio_api/queue/data", params={"session_hash": session}, timeout=30) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message["msg"] != "heartbeat":
                    messages.append(message)
    return 200, messages


@pytest.fixture(scope="module")
def own_app(engine, launch):
    """A page of its own, so its Gradio queue can be inspected."""
    import app

    demo = app.build_app(engine)
    url = launch(demo)
    yield demo, url
    demo.close()


def test_a_given_answer_is_one_message_without_a_queue_slot(own_app, engine, monkeypatch):
    # A question already answered goes back inside queue/join (Gradio's cache fast path): the stream
    # holds only process_completed (with the same object) and close_stream, no estimation/process_starts.
    # Fails when a Gradio upgrade stops that path (then see app._queue_cache_probe).
    demo, url = own_app
    question = "does en Japan share my data with advertisers?"
    # A new question while every engine thread is busy waits in Gradio's queue (and is asked there).
    monkeypatch.setattr(demo.pq_answers, "can_answer_now", lambda *args: False)
    status, first = _raw_ask(url, [question, None])
    assert status == 200 and "process_starts" in [m["msg"] for m in first]  # new: queued and asked
    monkeypatch.undo()
    status, again = _raw_ask(url, [question, None])
    assert status == 200 and [m["msg"] for m in again] == ["process_completed", "close_stream"]
    assert again[0]["success"] and again[0]["output"]["data"] == first[-2]["output"]["data"]
    assert _without_timings(again[0]["output"]["data"][0]) == _without_timings(engine.ask(question).to_dict())
    # Neither path leaves the event behind in the queue's registry (Gradio's fast path alone would).
    assert not demo._queue.event_ids_to_events


def test_a_new_question_with_a_thread_free_is_answered_inside_the_join(own_app, engine):
    # A crowd's first questions: with an engine thread free, a new question is asked inside queue/join
    # and goes back as one message, like a given answer (no queue slot, no process_starts).
    demo, url = own_app
    question = "does Highly Skilled Japan keep my data after I leave?"
    assert demo.pq_answers.given(question) is None  # new to this page
    status, messages = _raw_ask(url, [question, None])
    assert status == 200 and [m["msg"] for m in messages] == ["process_completed", "close_stream"]
    assert messages[0]["success"]
    assert _without_timings(messages[0]["output"]["data"][0]) == _without_timings(engine.ask(question).to_dict())
    assert not demo._queue.event_ids_to_events and not demo.pq_answers._flights


def test_a_new_question_waits_in_the_queue_only_when_every_thread_is_busy(engine):
    # can_answer_now decides between answering inside queue/join and Gradio's queue: yes while a thread
    # is free or the same question is already being answered (its waiters need no thread), else no.
    import asyncio

    import anyio

    import app

    shared = app.SharedAnswers(app.EngineHolder(engine), threads=1)
    question = "does JapanWork sell my data?"

    async def check():
        assert shared.can_answer_now(question)
        async with shared.limiter:  # the one thread busy
            assert not shared.can_answer_now(question)
            engine_now = shared.holder.current()
            flight = asyncio.get_running_loop().create_future()
            shared._flights[(id(engine_now), question, None)] = (engine_now, flight)
            assert shared.can_answer_now(question) and shared.can_answer_now(question, "")
            assert not shared.can_answer_now(question, "japanwork") and not shared.can_answer_now("another question")
            assert not shared.can_answer_now([question]) and not shared.can_answer_now(question, {"policy": []})
            flight.cancel()
        assert shared.can_answer_now("another question")

    anyio.run(check)


def test_new_sessions_build_their_config_copies_only_when_read(own_app):
    # Gradio copied every component's config for each new session (~1 ms of the shared cores in each
    # gradio_client user's first question); launch_app defers that to the first read, which gets
    # what the eager copy held. Fails when a Gradio upgrade stops the deferral (see
    # app._session_configs_on_demand).
    from gradio.state_holder import SessionState

    demo, url = own_app
    assert SessionState.pq_on_demand and not app_module()._session_configs_on_demand()  # done once, at launch
    status, messages = _raw_ask(url, ["can JapanWork share my data with partners?", None])
    assert status == 200 and messages[0]["success"]
    session = demo.state_holder.session_data[next(reversed(demo.state_holder.session_data))]
    built = [k for k, v in session.config_values.copies.items() if isinstance(v, dict)]
    assert len(built) <= 3 < len(session.config_values)  # answered building only /ask's own components' copies
    config = demo.default_config
    eager = {k: config.config_for_block(k, [], v) for k, v in config.blocks.items() if k in demo.blocks}
    assert all(session.config_values[k] == eager[k] for k in eager if k not in built)
    fresh = SessionState(demo)
    assert dict(fresh.config_values) == eager and list(fresh.components) == [c for c in eager.values() if c]
    chat = next(k for k, v in config.blocks.items() if getattr(v, "elem_id", None) == "pq-chat")
    update = [{"role": "assistant", "content": "only this session's"}]
    session._update_value_in_config(chat, update)  # a session's own update still lands in its copy only
    assert session.config_values[chat]["props"]["value"] == update != fresh.config_values[chat]["props"]["value"]


def app_module():
    import app

    return app


def test_a_malformed_ask_gets_an_error_message_and_nothing_logged(own_app, capfd):
    # One value for /ask's two: the stream reports an error (as the queue path does), not a 500 for
    # queue/join, and the log does not quote the inputs.
    demo, url = own_app
    marker = "quokkamarigold-4417 can JapanWork share my data"
    for data in ([marker], [marker, None, "extra", "values"]):
        status, messages = _raw_ask(url, data)
        assert status == 200
        assert messages[-2]["msg"] == "process_completed" and messages[-1]["msg"] == "close_stream"
    out, err = capfd.readouterr()
    assert "quokkamarigold" not in out + err
    assert not demo._queue.event_ids_to_events


def test_a_malformed_page_event_is_logged_without_its_inputs(own_app, capfd, caplog):
    # The page's own events go through Gradio's queue, which printed a failing event's traceback, and
    # for too few values its message quotes the inputs (the question). One line without them instead.
    demo, url = own_app
    marker = "wombatlavender-2209 can JapanWork share my data"
    respond = next(i for i, f in demo.fns.items() if getattr(f.fn, "__name__", "") == "respond")
    status, messages = _raw_ask(url, [marker], fn=respond)
    assert status == 200 and messages[-2]["msg"] == "process_completed" and not messages[-2]["success"]
    out, err = capfd.readouterr()
    assert "wombatlavender" not in out + err + caplog.text and "Traceback" not in out + err
    assert "a page event failed: ValueError at " in caplog.text


def test_the_same_new_question_at_once_asks_the_engine_once(own_app, engine, monkeypatch):
    # 12 visitors (gradio_client and POST /api/ask) ask one new question while it is being answered:
    # one engine run, one answer for all.
    import threading
    import time

    import httpx
    from gradio_client import Client

    demo, url = own_app
    question = "how long does JACCES keep the data of a cancelled membership?"
    runs, ask = [], engine.ask

    def slow_ask(*args, **kwargs):
        runs.append(1)
        time.sleep(0.5)  # so every visitor arrives while the first answer is in flight
        return ask(*args, **kwargs)

    monkeypatch.setattr(engine, "ask", slow_ask)
    clients = [Client(url, verbose=False) for _ in range(6)]
    answers = []

    def by_client(client):
        answers.append(client.predict(question, None, api_name="/ask"))

    def by_json():
        answers.append(httpx.post(url + "api/ask", json={"question": question}, timeout=60).json())

    threads = [threading.Thread(target=by_client, args=(c,)) for c in clients] + [threading.Thread(target=by_json) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == 12 and all(a == answers[0] for a in answers) and "error" not in answers[0]
    assert len(runs) == 1
    assert not demo.pq_answers._flights  # nothing left in flight


def test_a_failed_join_never_touches_another_visitors_event():
    # The error message for a failed queue/join goes only to an event that join itself made: a request
    # naming someone else's event id (and failing before Gradio assigns its own) changes nothing.
    import asyncio
    from types import SimpleNamespace

    import app

    sent = []
    theirs = SimpleNamespace(_id="their-event", session_hash="their-session")
    queue = SimpleNamespace(event_ids_to_events={"their-event": theirs}, event_queue_per_concurrency_id={},
                            blocks=SimpleNamespace(show_error=False), send_message=lambda e, m: sent.append((e, m)))

    async def failing_push(body, request=None, username=None):
        raise KeyError("no such function")  # before any event of this request exists

    queue.push = failing_push
    assert app._finish_events_answered_in_join(queue)
    body = SimpleNamespace(event_id="their-event", session_hash="my-session")
    with pytest.raises(KeyError):
        asyncio.run(queue.push(body=body, request=None, username=None))
    assert queue.event_ids_to_events == {"their-event": theirs} and not sent

    async def push_that_registers_then_fails(body, request=None, username=None):
        mine = SimpleNamespace(_id="my-event", session_hash=body.session_hash)
        queue.event_ids_to_events["my-event"] = mine
        body.event_id = "my-event"
        raise ValueError("not enough input values")

    queue.push = push_that_registers_then_fails
    assert app._finish_events_answered_in_join(queue)
    ok, event_id, state = asyncio.run(queue.push(body=SimpleNamespace(event_id=None, session_hash="my-session"), request=None, username=None))
    assert (ok, event_id, state) == (True, "my-event", "success")
    assert [e._id for e, _ in sent] == ["my-event"] and not sent[0][1].success
    assert queue.event_ids_to_events == {"their-event": theirs}


def _exchange(url: str, body, headers: dict | None = None, content=None) -> dict:
    """queue/join with `body` (JSON, or raw bytes as `content`) and, when it is accepted, the session's
    stream: the status codes, the headers that matter and the messages, ids and timings left out."""
    import json

    import httpx

    session = (body or {}).get("session_hash") if isinstance(body, dict) else None
    join = httpx.post(url + "gradio_api/queue/join", json=body if content is None else None, content=content,
                      headers=headers or {}, timeout=30)
    out = {"join": join.status_code, "join_type": join.headers.get("content-type"), "join_body": join.json(),
           "cors": join.headers.get("access-control-allow-credentials"), "messages": []}
    if join.status_code == 200 and session:
        out["join_body"] = sorted(out["join_body"])  # the key, not the id
        with httpx.stream("GET", url + "gradio_api/queue/data", params={"session_hash": session}, timeout=30) as stream:
            out["data_type"] = stream.headers.get("content-type")
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    for key in ("event_id", "cache_duration", "avg_time"):
                        message.pop(key, None)
                    if isinstance(message.get("output"), dict):
                        for key in ("duration", "average_duration"):
                            message["output"].pop(key, None)
                    out["messages"].append(message)
    return out


def test_a_given_answer_is_served_before_gradio_with_the_same_messages(own_app):
    # launch_app puts app.GivenAnswersFirst in front of Gradio: an /ask already answered is answered
    # there (both requests) with what Gradio itself sends for it (compared with the layer bypassed),
    # and gradio_client gets the same object through it.
    import uuid

    from gradio_client import Client

    demo, url = own_app
    layer = demo.pq_first
    assert isinstance(layer, app_module().GivenAnswersFirst) and demo.app.middleware_stack is layer
    question = "does Gaijin Poole use cookies?"
    body = lambda: {"data": [question, None], "fn_index": layer.fn._id, "session_hash": uuid.uuid4().hex}  # noqa: E731
    first = _exchange(url, body())  # new here: Gradio answers it (inside its join)
    before = dict(layer.served)
    through = _exchange(url, body())
    assert layer.served["join"] == before.get("join", 0) + 1 and layer.served["data"] == before.get("data", 0) + 1
    demo.app.middleware_stack = layer.inner  # Gradio alone
    try:
        stock = _exchange(url, body())
    finally:
        demo.app.middleware_stack = layer
    assert through == stock == first
    assert [m["msg"] for m in through["messages"]] == ["process_completed", "close_stream"]
    assert through["join_type"] == "application/json" and through["data_type"] == "text/event-stream; charset=utf-8"
    served = layer.served["join"]
    assert Client(url, verbose=False).predict(question, None, api_name="/ask") == through["messages"][0]["output"]["data"][0]
    assert layer.served["join"] == served + 1
    assert not demo._queue.event_ids_to_events and not any(demo._queue.pending_event_ids_session.values())


def _wait_until(condition, seconds: float = 20.0) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_client_asking_one_question_after_another_is_answered_on_one_stream(own_app, engine):
    # GivenAnswersFirst holds a stream it sent open for the session's next question (linger): gradio_client
    # then sends its next questions over it instead of a new stream each, whether the answer was given
    # already, is asked inside queue/join, or waits in Gradio's queue; and it ends when the session is idle.
    from gradio_client import Client

    demo, url = own_app
    layer = demo.pq_first
    given = "does Gaijin Poole use cookies?"
    _raw_ask(url, [given, None])  # given now
    layer.linger_s = 10.0  # longer than any pause between this test's questions on a loaded machine
    client = Client(url, verbose=False)
    try:
        streams = layer.served["data"]
        assert _without_timings(client.predict(given, None, api_name="/ask")) == _without_timings(engine.ask(given).to_dict())
        assert layer.served["data"] == streams + 1 and _wait_until(lambda: layer.lingering == 1)
        fresh = "can en Japan keep my video interview after I leave?"
        assert _without_timings(client.predict(fresh, None, api_name="/ask")) == _without_timings(engine.ask(fresh).to_dict())
        demo.pq_answers.can_answer_now = lambda *args: False  # a new question waits in Gradio's queue
        queued = "does JapanWork sell my data to advertisers?"
        try:
            assert _without_timings(client.predict(queued, None, api_name="/ask")) == _without_timings(engine.ask(queued).to_dict())
        finally:
            del demo.pq_answers.can_answer_now
        assert layer.served["data"] == streams + 1  # all three over the first stream
        layer.linger_s = 0.2
        assert _wait_until(lambda: layer.lingering == 0)  # idle: close_stream ended it
        assert client.predict(given, None, api_name="/ask")["answer"]  # ... and the next question opens a new one
        assert layer.served["data"] == streams + 2
    finally:
        layer.linger_s = layer.LINGER_S
        client.close()
    assert _wait_until(lambda: layer.lingering == 0, seconds=layer.LINGER_S + 20)
    assert not demo._queue.event_ids_to_events and not any(demo._queue.pending_event_ids_session.values())


def test_a_lingering_stream_forwards_gradios_messages_then_closes_or_ends_when_the_visitor_leaves(own_app, monkeypatch):
    # On the open stream come, in order, the messages Gradio's queue sends for the session's next question
    # (estimation, process_starts, process_completed), then close_stream once the session is idle; a visitor
    # who leaves while it lingers ends it, and nothing of the session is left pending.
    import json
    import uuid

    import httpx

    demo, url = own_app
    layer = demo.pq_first
    given = "does Gaijin Poole use cookies?"
    _raw_ask(url, [given, None])
    monkeypatch.setattr(layer, "linger_s", 3.0)
    monkeypatch.setattr(demo.pq_answers, "can_answer_now", lambda *args: False)
    join = lambda session, question: httpx.post(  # noqa: E731
        url + "gradio_api/queue/join", timeout=30,
        json={"data": [question, None], "fn_index": layer.fn._id, "session_hash": session}).json()["event_id"]
    session = uuid.uuid4().hex
    first = join(session, given)
    seen = []
    with httpx.stream("GET", url + "gradio_api/queue/data", params={"session_hash": session}, timeout=30) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            seen.append((message["msg"], message.get("event_id")))
            if len(seen) == 1:
                second = join(session, "who can I contact about my data at JACCES?")  # queued while it lingers
    assert seen[0] == ("process_completed", first)
    assert [m for m in seen if m[1] == second][-1] == ("process_completed", second)
    assert ("process_starts", second) in seen and seen[-1] == ("close_stream", None)
    assert layer.lingering == 0 and not demo._queue.pending_event_ids_session.get(session)
    # A visitor who leaves while the stream lingers: it ends at once (not after linger_s) and cleans up.
    monkeypatch.undo()  # answered inside queue/join again: its end is waiting when the stream opens
    monkeypatch.setattr(layer, "linger_s", 60.0)
    session = uuid.uuid4().hex
    join(session, given)
    with httpx.stream("GET", url + "gradio_api/queue/data", params={"session_hash": session}, timeout=30) as stream:
        lines = stream.iter_lines()  # kept: a line iterator dropped unfinished closes the connection (httpcore)
        assert json.loads(next(lines)[5:])["msg"] == "process_completed"
        assert _wait_until(lambda: layer.lingering >= 1)
    assert _wait_until(lambda: layer.lingering == 0, seconds=30)
    assert not demo._queue.pending_event_ids_session.get(session)


def test_requests_the_layer_is_not_sure_of_go_to_gradio_unchanged(own_app, capfd):
    # Everything but a plain JSON /ask of an answer already given reaches Gradio as before: a login
    # configured, an Origin header (Gradio's CORS headers), unknown keys, malformed values, bodies
    # that are not JSON.
    import uuid

    import httpx

    demo, url = own_app
    layer = demo.pq_first
    question = "does Gaijin Poole use cookies?"
    _exchange(url, {"data": [question, None], "fn_index": layer.fn._id, "session_hash": uuid.uuid4().hex})  # given now
    marker = "quokkamarigold-5521 does Gaijin Poole use cookies?"
    cases = [
        ({"data": [question, None], "fn_index": layer.fn._id, "session_hash": "s"}, {"Origin": "http://127.0.0.1"}, None),
        ({"data": [question, None], "fn_index": layer.fn._id, "session_hash": "s", "oauth_token": "x"}, None, None),
        ({"data": [question], "fn_index": layer.fn._id, "session_hash": "s"}, None, None),
        ({"data": [marker, None, "extra"], "fn_index": layer.fn._id, "session_hash": "s"}, None, None),
        ({"data": [question, None], "fn_index": str(layer.fn._id), "session_hash": "s"}, None, None),
        ({"data": [question, None], "fn_index": layer.fn._id}, None, None),
        (None, {"Content-Type": "application/json"}, b'{"data": ["' + marker.encode() + b'", nul'),
    ]

    def run_all():
        results = []
        for body, headers, content in cases:
            if isinstance(body, dict) and "session_hash" in body:
                body = {**body, "session_hash": uuid.uuid4().hex}
            results.append(_exchange(url, body, headers, content))
        return results

    joins = layer.served["join"]
    through = run_all()
    assert layer.served["join"] == joins
    demo.app.middleware_stack = layer.inner
    try:
        stock = run_all()
    finally:
        demo.app.middleware_stack = layer
    assert through == stock
    assert through[0]["cors"] == "true" and through[0]["messages"][0]["success"]  # Origin: Gradio's CORS headers
    assert through[2]["messages"][0]["msg"] == "process_completed" and not through[2]["messages"][0]["success"]
    assert through[5]["join"] == 400 and through[6]["join"] == 422
    # A login configured: Gradio's 401, not an answer.
    demo.app.auth = {"user": "secret"}
    try:
        refused = httpx.post(url + "gradio_api/queue/join", timeout=30,
                             json={"data": [question, None], "fn_index": layer.fn._id, "session_hash": uuid.uuid4().hex})
    finally:
        demo.app.auth = None
    assert refused.status_code == 401 and layer.served["join"] == joins
    out, err = capfd.readouterr()
    assert "quokkamarigold" not in out + err and "Traceback" not in out + err


def test_a_stream_whose_end_is_not_waiting_is_left_to_gradio():
    # GivenAnswersFirst sends a session's stream only when the messages that end it (a completion for
    # every pending event) are all waiting; otherwise it takes nothing and Gradio streams them as they come.
    import asyncio
    import json
    from types import SimpleNamespace

    from gradio.server_messages import EstimationMessage, ProcessCompletedMessage

    import app

    queue = SimpleNamespace(stopped=False, pending_messages_per_session={}, pending_event_ids_session={})
    demo = SimpleNamespace(app=SimpleNamespace(auth=None, auth_dependency=None), _queue=queue)
    layer = app.GivenAnswersFirst(None, demo, None, None)
    layer.linger_s = 0  # the stream in one body, as it was before streams lingered (tested with the real app below)
    scope = {"type": "http", "method": "GET", "path": layer.DATA, "headers": [], "query_string": b"session_hash=s"}

    def done(event_id):
        return ProcessCompletedMessage(output={"data": [event_id]}, success=True, event_id=event_id)

    async def check():
        sent = []

        async def send(message):
            sent.append(message)

        waiting = asyncio.Queue()
        queue.pending_messages_per_session["s"], queue.pending_event_ids_session["s"] = waiting, {"a", "b"}
        waiting.put_nowait(EstimationMessage(queue_size=1, event_id="a"))
        waiting.put_nowait(done("a"))
        assert not await layer.data(scope, None, send)  # "b" has not ended yet
        assert waiting.qsize() == 2 and queue.pending_event_ids_session["s"] == {"a", "b"} and not sent
        waiting.put_nowait(done("b"))
        waiting.put_nowait(EstimationMessage(queue_size=1, event_id="c"))  # after the end: left for the next stream
        assert not await layer.data({**scope, "headers": [(b"origin", b"http://127.0.0.1")]}, None, send)  # CORS: Gradio's
        assert waiting.qsize() == 4 and not sent
        assert await layer.data(scope, None, send)
        assert waiting.qsize() == 1 and queue.pending_event_ids_session["s"] == set()
        body = sent[1]["body"].decode()
        messages = [json.loads(line[len("data: "):]) for line in body.split("\n\n") if line]
        assert [(m["msg"], m["event_id"]) for m in messages] == [
            ("estimation", "a"), ("process_completed", "a"), ("process_completed", "b"), ("close_stream", None)]
        assert not await layer.data({**scope, "query_string": b"session_hash=s&session_hash=t"}, None, send)

    asyncio.run(check())
