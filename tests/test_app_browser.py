"""The real page in Debian's headless Chromium (Playwright, sync API): ask, read the cards, open the
policy at a clause, follow up, and check that injected markup stays inert. Saves screenshots to
artifacts/ (desktop and 390 px phone width)."""
from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
QUESTION = "can JapanWork share my data with partners?"
ATTACK = ('what does <img src=x onerror="window.__xss=1"> mean? <script>window.__xss=2</script> '
          '[click me](javascript:window.__xss=3)')



def _norm(text: str) -> str:
    return " ".join(text.split())



@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make install-browser` (Debian's chromium) to run the browser tests")
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="policyqa-chromium-")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), args=ARGS, headless=True, viewport={"width": 1366, "height": 900},
            permissions=["clipboard-read", "clipboard-write"],
        )
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


@contextlib.contextmanager
def opened_page(browser, url: str, timeout_ms: int):
    """A tab on the page, ready for a question; fails the test on any JavaScript error."""
    page = browser.new_page()
    page.set_default_timeout(timeout_ms)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("#pq-question textarea")
    yield page
    page.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def page(browser, app_url):
    with opened_page(browser, app_url, 20_000) as page:
        yield page


def ask(page, question: str, turn: int) -> None:
    """Type the question and press Enter (keyboard only), then wait for that turn's sources."""
    box = page.locator("#pq-question textarea")
    box.click()
    box.fill(question)
    box.press("Enter")
    page.wait_for_selector(f'.pq-sources[data-turn="{turn}"]')


def last_bot_text(page) -> str:
    return _norm(page.locator('#pq-chat [data-testid="bot"]').last.inner_text())


def test_ask_cite_open_follow_up_and_inert_injection(page, engine):
    ARTIFACTS.mkdir(exist_ok=True)
    # An empty page offers examples and says what this is (and is not).
    chat = page.locator("#pq-chat")
    assert chat.get_by_text("Which of these sites share my data with employers?").is_visible()
    assert page.get_by_text("How this works").is_visible()
    page.screenshot(path=str(ARTIFACTS / "app-empty-desktop.png"), full_page=True)

    # Ask: the answer quotes JapanWork, and a JapanWork card shows its highlighted sentence.
    ask(page, QUESTION, 1)
    want = engine.ask(QUESTION).to_dict()
    top = want["citations"][0]
    assert top["policy_id"] == "japanwork" and not want["abstained"]
    answer = last_bot_text(page)
    assert "JapanWork" in answer and _norm(top["highlight"]) in answer and "[1]" in answer
    card = page.locator("#pq-card-1-1")
    assert "JapanWork" in card.locator(".pq-company").inner_text()
    assert _norm(card.locator(".pq-section").inner_text()) == _norm(top["section"])
    assert _norm(card.locator("mark.pq-hl").inner_text()) == _norm(top["highlight"])
    assert "JapanWork" in page.locator(".pq-scope").inner_text()
    page.screenshot(path=str(ARTIFACTS / "app-answer-desktop.png"), full_page=True)

    # Copy answer: plain text with the quote and the sources, no Markdown escapes.
    page.locator(".pq-sources [data-pq-copy]").click()
    page.wait_for_function("() => document.querySelector('[data-pq-copy]').textContent === 'Copied'")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(want["answer"]) and "[1] JapanWork" in copied and "\\" not in copied

    # Click the card: the whole policy opens at that clause, marked, and scrolled into view.
    card.locator(".pq-card-head").click()
    viewer = page.locator(".pq-viewer")
    viewer.wait_for(state="visible")
    article = page.locator('.pq-policy[data-policy="japanwork"]')
    assert article.is_visible()
    active = article.locator("mark.pq-active")
    assert _norm("".join(active.all_text_contents())) == _norm(top["text"])
    assert _norm(article.locator("mark.pq-active-hl").first.inner_text()) in _norm(top["highlight"])
    box = article.locator(".pq-policy-text").bounding_box()
    mark = active.first.bounding_box()
    assert box["y"] <= mark["y"] <= box["y"] + box["height"], "the marked clause is not scrolled into view"
    assert top["section"].split(" ›")[0] in viewer.locator(".pq-viewer-title").inner_text()
    # The whole policy is there, not just the clause.
    assert len(_norm(article.locator(".pq-policy-text").inner_text())) > 0.9 * len(_norm(engine.index.policies["japanwork"].text))
    page.screenshot(path=str(ARTIFACTS / "app-policy-view-desktop.png"), full_page=False)

    # The [2] in the answer text opens citation 2 the same way.
    page.locator('#pq-chat a[href="#pq-c-1-2"]').click()
    second = want["citations"][1]
    page.wait_for_function(
        "n => [...document.querySelectorAll('.pq-policy:not([hidden]) mark.pq-active')].some(m => m.dataset.c.includes(' ' + n + ' '))",
        arg=2,
    )
    assert _norm("".join(page.locator(".pq-policy:not([hidden]) mark.pq-active").all_text_contents())) == _norm(second["text"])

    # Follow-up: the previous question is the context, en Japan is the policy.
    ask(page, "what about en Japan?", 2)
    companies = page.locator('.pq-sources[data-turn="2"] .pq-card .pq-company').all_inner_texts()
    assert companies and all("en Japan" in c for c in companies)
    assert "en Japan" in page.locator(".pq-scope").inner_text()
    assert "en Japan" in last_bot_text(page)
    follow = engine.ask("what about en Japan?", history=[QUESTION]).to_dict()
    assert _norm(follow["citations"][0]["highlight"]) in _norm(page.locator("#pq-card-2-1").inner_text())

    # Script injection renders as literal text and never runs.
    ask(page, ATTACK, 3)
    assert page.evaluate("window.__xss") is None
    user = _norm(page.locator('#pq-chat [data-testid="user"]').last.inner_text())
    assert '<img src=x onerror="window.__xss=1">' in user and "<script>window.__xss=2</script>" in user
    assert "[click me](javascript:window.__xss=3)" in user
    assert page.locator("#pq-chat img[src='x'], #pq-chat script, #pq-chat a[href^='javascript']").count() == 0
    page.get_by_text("click me").first.click()
    assert page.evaluate("window.__xss") is None


JAPANESE = "ジャパンワークは私の電話番号を集めていますか？"


def test_japanese_question_answered_in_japanese_with_english_quotes(page, engine):
    ARTIFACTS.mkdir(exist_ok=True)
    ask(page, JAPANESE, 1)
    want = engine.ask(JAPANESE).to_dict()
    top = want["citations"][0]
    assert want["language"] == "ja" and not want["abstained"] and top["policy_id"] == "japanwork"
    answer = last_bot_text(page)
    # Japanese words around the verbatim English quote; no "ask in English" note
    assert answer.startswith("JapanWorkのプライバシーポリシーには次のように書かれています")
    assert _norm(top["highlight"]) in answer and "[1]" in answer and "Try asking in English" not in answer
    sources = page.locator('.pq-sources[data-turn="1"]')
    assert sources.get_attribute("lang") == "ja"
    assert sources.locator(".pq-title").first.inner_text() == "出典"
    assert "検索したポリシー" in sources.locator(".pq-scope").inner_text() and "JapanWork" in sources.locator(".pq-scope").inner_text()
    card = page.locator("#pq-card-1-1")
    assert _norm(card.locator("mark.pq-hl").inner_text()) == _norm(top["highlight"])
    assert "Phone number" in card.locator(".pq-passage").inner_text()
    assert card.locator(".pq-open").inner_text().startswith("ポリシー全文で見る")
    page.screenshot(path=str(ARTIFACTS / "app-answer-japanese-desktop.png"), full_page=True)

    # The card opens the whole English policy at the clause; the viewer's own words are Japanese.
    card.locator(".pq-card-head").click()
    page.locator(".pq-viewer").wait_for(state="visible")
    assert page.locator(".pq-viewer [data-pq-close]").inner_text() == "閉じる"
    assert _norm("".join(page.locator('.pq-policy[data-policy="japanwork"] mark.pq-active').all_text_contents())) == _norm(top["text"])

    # Copy: the Japanese answer and the English sources, and the button says so in Japanese.
    page.locator('.pq-sources [data-pq-copy]').click()
    page.wait_for_function("() => document.querySelector('[data-pq-copy]').textContent === 'コピーしました'")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(want["answer"]) and "出典:" in copied and "[1] JapanWork" in copied

    # Off-topic in Japanese: refused like an English one, the notice in Japanese.
    ask(page, "明日の東京の天気は？", 2)
    assert "この質問に答える記載がありません" in last_bot_text(page)
    assert "ポリシーに答えが書かれていません" in page.locator('.pq-sources[data-turn="2"] .pq-abstain').inner_text()


def test_phone_width_errors_and_keyboard(page, engine):
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(ARTIFACTS / "app-empty-phone.png"), full_page=True)
    # Nothing is wider than the phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    # An empty question gets a plain message, not a stack trace.
    box = page.locator("#pq-question textarea")
    box.click()
    box.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#pq-chat [data-testid=\"bot\"]').length >= 1")
    assert "question is empty" in last_bot_text(page)

    # The Compare question: a per-company table, each row's quote with its [n].
    ask(page, "which of these sites share my data with employers?", 1)
    table = page.locator("table.pq-compare")
    assert table.is_visible()
    want = engine.ask("which of these sites share my data with employers?").to_dict()
    rows = table.locator("tbody tr")
    assert rows.count() == len({c["policy_id"] for c in want["citations"]}) > 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # Keyboard only: focus the first [n] button in the table and press Enter to open it.
    first_button = table.locator("button").first
    first_button.focus()
    page.keyboard.press("Enter")
    page.locator(".pq-viewer").wait_for(state="visible")
    assert page.locator(".pq-policy:not([hidden]) mark.pq-active").count() > 0
    page.locator("#pq-chat").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "app-compare-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.screenshot(path=str(ARTIFACTS / "app-compare-desktop.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})

    # A huge question: a clear message, and the page stays usable.
    box.fill("x" * 100_000)
    box.press("Enter")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#pq-chat [data-testid=\"bot\"]')].some(b => b.innerText.includes('2,000'))"
    )
    assert re.search(r"at most 2,000 characters", last_bot_text(page))


def test_compare_across_sites_at_desktop_and_phone_width(page, engine):
    """A question across sites: a real table (site | what the policy says | [n]) above the cards, which are
    grouped by site; its rows stack at phone width; a follow-up narrows to one site, another widens again."""
    ARTIFACTS.mkdir(exist_ok=True)
    question = "which sites use Google Analytics?"
    ask(page, question, 1)
    want = engine.ask(question)
    table = page.locator('.pq-sources[data-turn="1"] table.pq-compare')
    assert table.is_visible()
    rows = table.locator("tbody tr")
    assert rows.count() == len(want.by_policy) == 5
    by_n = {c.n: c for c in want.citations}
    for i, r in enumerate(want.by_policy):
        text = _norm(rows.nth(i).inner_text())
        assert _norm(rows.nth(i).locator("th").inner_text()) in _norm(engine.index.policies[r.policy_id].aliases[0])
        if r.abstained:
            assert "Does not say." in text and _norm(by_n[r.citations[0]].section) in text
        else:
            assert _norm(by_n[r.citations[0]].highlight) in text
        assert all(f"[{n}]" in text for n in r.citations)
    assert sum(r.abstained for r in want.by_policy) >= 3
    # Desktop: a table, side by side; the table sits above the cards, which are grouped by site.
    assert rows.first.evaluate("e => getComputedStyle(e).display") == "table-row"
    groups = page.locator('.pq-sources[data-turn="1"] .pq-site')
    assert groups.count() == 5
    assert table.bounding_box()["y"] < groups.first.bounding_box()["y"]
    for i, r in enumerate(want.by_policy):
        cards = groups.nth(i).locator(".pq-card")
        assert cards.count() == len(r.citations)
        assert "does not say" in groups.nth(i).locator("h3").inner_text() if r.abstained else "quoted" in groups.nth(i).locator("h3").inner_text()
    assert "every site" in page.locator(".pq-scope").inner_text()
    page.screenshot(path=str(ARTIFACTS / "app-across-sites-desktop.png"), full_page=True)

    # Phone: each row stacks (site, then what it says, then its [n]), nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    assert rows.first.evaluate("e => getComputedStyle(e).display") == "block"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    th, says = rows.first.locator("th").bounding_box(), rows.first.locator("td").first.bounding_box()
    assert says["y"] >= th["y"] + th["height"] - 1, "the row's cells are not stacked"
    # The [n] of a silent site opens its closest clause in the full policy.
    silent = next(i for i, r in enumerate(want.by_policy) if r.abstained)
    rows.nth(silent).locator("button").first.click()
    page.locator(".pq-viewer").wait_for(state="visible")
    pid = want.by_policy[silent].policy_id
    assert page.locator(f'.pq-policy[data-policy="{pid}"]').is_visible()
    page.screenshot(path=str(ARTIFACTS / "app-across-sites-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1366, "height": 900})

    # Follow-ups: one site narrows (no table), "the others" widens to every site again.
    ask(page, "what about JACCES?", 2)
    assert page.locator('.pq-sources[data-turn="2"] table.pq-compare').count() == 0
    companies = page.locator('.pq-sources[data-turn="2"] .pq-card .pq-company').all_inner_texts()
    assert companies and all("JACCES" in c for c in companies)
    ask(page, "which of these sites give my details to employers?", 3)
    assert page.locator('.pq-sources[data-turn="3"] table.pq-compare tbody tr').count() == 5


@pytest.fixture
def add_page(browser, served_index, encoder, launch):
    """The page over its own copy of the index (`served_index`), so adding to it touches no other test."""
    import app
    from index.store import read_index
    from qa.engine import Engine

    holder = app.EngineHolder(Engine(read_index(served_index), encoder), served_index)
    demo = app.build_app(holder)
    try:
        with opened_page(browser, launch(demo), 30_000) as page:
            yield page, holder
    finally:
        demo.close()


def test_add_a_policy_and_ask_it(add_page, served_index, tmp_path):
    from index.store import CURRENT

    ARTIFACTS.mkdir(exist_ok=True)
    page, holder = add_page
    page.locator("#pq-add").get_by_text("Add a policy").click()
    status = page.locator("#pq-add-status")

    # An error first: nothing pasted, nothing chosen -> the library's message; the index stays as it was.
    current = (served_index / CURRENT).read_text()
    page.locator("#pq-add-button").click()
    status.get_by_text("policy text is empty").wait_for()
    assert "Traceback" not in status.inner_text() and "index is unchanged" in status.inner_text()
    assert (served_index / CURRENT).read_text() == current
    page.locator("#pq-add").screenshot(path=str(ARTIFACTS / "app-add-policy-error.png"))

    # Paste a policy, name the company, Add: it is indexed, reported, and selected in the menu.
    page.locator("#pq-add-text textarea").fill(
        "Acme Careers Privacy Policy\n\nArticle 1 (Selling personal information)\n\n"
        "Acme Careers never sells your personal information. We share it with employers only when you apply.\n\n"
        "Article 2 (Deleting your data)\n\nTo delete your account, write to privacy@acme.example; we delete it within 30 days.\n"
    )
    page.locator("#pq-add-company input").fill("Acme Careers")
    page.locator("#pq-add-button").click()
    status.get_by_text("Added Acme Careers").wait_for()
    report = _norm(status.inner_text())
    assert "acme-careers" in report and "passages" in report and "Could not" not in report
    assert (served_index / CURRENT).read_text() != current and "acme-careers" in holder.engine.index.policies
    assert page.locator("#pq-policy input").input_value() == "Acme Careers"
    # cleared for the next one
    assert page.locator("#pq-add-text textarea").input_value() == page.locator("#pq-add-company input").input_value() == ""
    assert str(served_index) not in report  # the server's paths are not shown
    page.screenshot(path=str(ARTIFACTS / "app-add-policy-desktop.png"), full_page=True)
    page.locator("#pq-add").screenshot(path=str(ARTIFACTS / "app-add-policy-panel.png"))

    # Ask about it: the answer quotes the new policy.
    ask(page, "does Acme Careers sell my data?", 1)
    card = page.locator("#pq-card-1-1")
    assert "Acme Careers" in card.locator(".pq-company").inner_text()
    assert "never sells your personal information" in _norm(card.locator("mark.pq-hl").inner_text())
    assert "never sells your personal information" in last_bot_text(page)

    # A file: the company comes from the page title; an injected name stays text.
    path = tmp_path / "globex-jobs.html"
    path.write_text(
        "<!doctype html><html><head><title>Privacy Policy | Globex Jobs</title></head><body><main>"
        "<h2>1. Cookies</h2><p>Globex Jobs uses cookies to keep you signed in.</p></main></body></html>",
        encoding="utf-8",
    )
    page.locator("#pq-add-file input[type=file]").set_input_files(str(path))
    page.locator("#pq-add-company input").fill('<img src=x onerror="window.__xss=1">')
    page.locator("#pq-add-button").click()
    status.get_by_text("Added <img src=x").wait_for()
    assert page.evaluate("window.__xss") is None
    assert page.locator("#pq-add-status img").count() == 0
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.locator("#pq-add").screenshot(path=str(ARTIFACTS / "app-add-policy-phone.png"))
