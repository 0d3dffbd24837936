"""The PolicyQA web page: ask the job-site privacy policies questions, read the quoted clauses.

    python app.py [--host 127.0.0.1] [--port 7860] [--index DIR] [--model NAME] [--no-add-policy | --allow-add-policy]
    policyqa serve            (the same, through the CLI)

The page is a thin layer over the `qa` library the CLI uses: one Engine, loaded once at start,
answers every question (`Engine.ask`); nothing here retrieves on its own.

"Add a policy" (on when serving on loopback, unless --no-add-policy; on another address only with
--allow-add-policy; `build_app(..., allow_add=False)`): an uploaded file or
pasted text goes into the index this page serves through `index.library` (locked, atomic, only the
new passages embedded); the page then reads the new index version into a new Engine and swaps it
into its `EngineHolder`, so every later question, from anyone, can be answered from the new policy.
Questions already being answered finish on the engine they started with.

Layout: the chat (left, or on top on a phone) and the sources of the latest answer (right, or
below): one card per citation with company, clause heading, the passage with the answering
sentence marked, and the [n] the answer uses. Clicking a card or an [n] opens the whole policy
scrolled to that clause, marked. A question over several policies also gets a per-company table.

Policies added on the page are recorded with origin "page": the page may replace or remove only
those, never the shipped ones or those added with `policyqa add` (a clash is refused).

API: POST /api/ask (plain JSON, see `mount_json_api`) and
`/ask` (gradio_client: `client.predict(question, policy, api_name="/ask")`) return exactly
`policyqa ask --json`'s object (Answer.to_dict()). A question the engine refuses (empty, over
2,000 characters, not text, unknown policy id) returns `{"error": "<message for the user>"}`
instead - the same convention as `policyqa ask --questions-file` - never a traceback.

Safety: every piece of question or policy text that reaches the browser is escaped here
(html.escape for HTML, backslash escapes for the chat's Markdown), so `<script>`, `onerror=`
and `javascript:` links render as inert text. Question text is never logged.
"""
from __future__ import annotations

import collections
import gc
import html
import inspect
import json
import logging
import os
import re
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Gradio's queue rebuilds a pandas summary of every recorded event after each event (for its
# monitoring page only); under load that costs more than answering. Summarise rarely, keep few.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "2000")

import anyio  # noqa: E402
import gradio as gr  # noqa: E402

from index.ingest import MAX_BYTES  # noqa: E402
from qa.compose import display_name, short_name  # noqa: E402
from index.errors import PolicyQAError, UsageError  # noqa: E402
from index.types import Answer, Citation  # noqa: E402
from qa.engine import MAX_QUESTION_CHARS, every_site  # noqa: E402
from qa.resolve import resolve_policies  # noqa: E402
from qa.service import EngineHolder, default_index_dir, open_engine  # noqa: E402

log = logging.getLogger("policyqa.app")

ALL = "__all__"  # dropdown value for "All policies" (not a valid policy id: ids are slugs)
DEFAULT_CONCURRENCY = 4  # questions answered at once; more wait in the queue (2 cores, ~10 ms a question)
QUEUE_MAX = 256  # waiting requests beyond this are told the page is busy
# Queue positions go to waiting visitors every 2 s instead of after every answer: with ~10 ms
# answers, per-answer broadcasts to everyone waiting cost more CPU than the answers (load test).
STATUS_EVERY_S = 2.0
HISTORY_TURNS = 8  # previous questions passed to the engine for follow-ups
MAX_MESSAGES = 80  # chat messages kept per session (older ones scroll off)
EXAMPLES = [
    "Can JapanWork share my data with partners?",
    "Which of these sites share my data with employers?",
    "Does Gaijin Poole use cookies?",
    "How do I ask en Japan to delete my personal information?",
    "Who can I contact about my data at JACCES?",
    "エン・ジャパンは私の情報を広告に使いますか？",
]
ABOUT = f"""
**How this works.** Your question is matched against the clauses of the job-site privacy policies
listed in the menu. The answer **quotes** the sentences that answer it and marks each quote with
a number like [1]; the cards under *Sources* show each clause, and clicking one opens the whole
policy at that clause so you can read the context. Name a site in your question ("Does JapanWork…")
or pick it in the menu to ask about one policy; ask "what about en Japan?" to follow up.

**What it cannot do.** It only repeats what the policies say: it does not interpret them, know
how a company behaves in practice, or read policies that are not listed. When no clause answers,
it says so and shows the closest clauses. Ask in English or Japanese (日本語でも質問できます), in at
most {MAX_QUESTION_CHARS:,} characters: the answers quote the English versions of the policies, so
the quotes are in English whatever the language of the question. **This is not legal advice**; for a
decision that matters, read the policy itself or ask the company.
"""

# ---------------------------------------------------------------------------------------------
# Escaping. Everything from a question or a policy goes through one of these two functions.

_MD_INLINE = re.compile(r"([\\`*_\[\]|~$])")
_MD_LINE_START = re.compile(r"^([ \t]*)([#+\-=]|\d+(?=[.)]))", re.M)


def esc_html(text: str) -> str:
    """Text for HTML element content or a quoted attribute value."""
    return html.escape(text, quote=True)


def esc_md(text: str) -> str:
    """Text for the chat's Markdown, shown literally: HTML metacharacters become entities (no tags),
    and the Markdown punctuation that could make emphasis, code, links, images, tables, maths,
    headings or lists is backslash-escaped. Brackets are always escaped, so no link or image
    (`[x](javascript:…)`, `![x](…)`) can form; parentheses, dots and colons stay readable."""
    text = _MD_INLINE.sub(r"\\\1", html.escape(text, quote=False))
    return _MD_LINE_START.sub(_escape_line_start, text)


def _escape_line_start(m: re.Match) -> str:
    lead, mark = m.group(1), m.group(2)
    return f"{lead}{mark}\\" if mark[0].isdigit() else f"{lead}\\{mark}"


def _clip(text: str, limit: int = 300) -> str:
    # Lone surrogates (a JSON "\ud800") cannot be sent to the browser: Gradio's JSON encoder refuses them.
    text = " ".join(str(text).encode("utf-8", "replace").decode("utf-8").split())
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def _where(error: BaseException) -> str:
    """Where an exception came from (file:line of its last frames), without its message, which
    might quote the question."""
    import traceback

    frames = traceback.extract_tb(error.__traceback__)[-4:]
    return " < ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(frames))


def looks_non_english(question: str) -> bool:
    """Most of the letters are outside the Latin script (Japanese, Chinese, Cyrillic, …)."""
    letters = [ch for ch in question if ch.isalpha()]
    if not letters:
        return False
    latin = sum(1 for ch in letters if "LATIN" in unicodedata.name(ch, ""))
    return latin < 0.5 * len(letters)


# The page's own words around an answer follow the question's language (Answer.language); the
# quoted clauses stay as the policies say them.
LABELS = {
    "en": {
        "sources": "Sources", "copy": "Copy answer", "copied": "Copied", "searched": "Searched:", "quoted": "Quoted:",
        "nothing": "nothing", "all": "all {n} policies", "not_answered": "Not answered by the policies.",
        "abstain_one": "The policy searched does not say anything that answers this question. The closest clauses are below so you can check for yourself.",
        "abstain_many": "The policies searched do not say anything that answers this question. The closest clauses are below so you can check for yourself.",
        "compare": "Compare: what each policy says", "company": "Company", "says": "What the policy says", "source": "Source",
        "missing": "Not among the closest clauses: {names}. Pick one in the policy menu to ask it directly.",
        "closest": "Closest clauses", "quoted_clauses": "Quoted clauses", "show": "Show in the full policy ›",
        "untitled": "(untitled clause)", "full": "Full policy", "close": "Close", "policy_name": "{name} — privacy policy{date}",
        "dated": ", dated {date}", "footer": "Quoted from the companies' privacy policies by PolicyQA; not legal advice.",
        "reasons": {},
    },
    "ja": {
        "sources": "出典", "copy": "回答をコピー", "copied": "コピーしました", "searched": "検索したポリシー:", "quoted": "引用元:",
        "nothing": "なし", "all": "全{n}件のポリシー", "not_answered": "ポリシーに答えが書かれていません。",
        "abstain_one": "検索したポリシーには、この質問に答える記載がありません。近い条項を下に示しますので、ご自身でも確かめてください。",
        "abstain_many": "検索したポリシーには、この質問に答える記載がありません。近い条項を下に示しますので、ご自身でも確かめてください。",
        "compare": "比較: 各ポリシーの記載", "company": "会社", "says": "ポリシーの記載（原文）", "source": "出典",
        "missing": "近い条項に含まれなかったポリシー: {names}。ポリシーのメニューで選ぶと、そのポリシーだけに質問できます。",
        "closest": "近い条項", "quoted_clauses": "引用した条項", "show": "ポリシー全文で見る ›",
        "untitled": "（見出しのない条項）", "full": "ポリシー全文", "close": "閉じる", "policy_name": "{name} — プライバシーポリシー{date}",
        "dated": "（{date}付）", "footer": "PolicyQA が各社のプライバシーポリシー（英語の原文）から引用したものです。法的助言ではありません。",
        "reasons": {"named in your question": "質問に名前があったため", "chosen in the policy menu": "ポリシーのメニューで選択",
                    "from your earlier question": "前の質問から"},
    },
}


def labels(answer: Answer) -> dict:
    return LABELS.get(answer.language or "en", LABELS["en"])


# ---------------------------------------------------------------------------------------------
# One answer -> what the page shows.


@dataclass(frozen=True)
class Turn:
    """One answered question, as the page renders it."""

    number: int  # per-session turn number; [n] link targets are "turn-n"
    answer: Answer
    policies: dict  # id -> Policy of the engine that answered
    scope_reason: str  # why these policies were searched ("named in your question", …)


def _marker_links(text: str, turn: int, valid: set[int]) -> str:
    """Escape an answer for the chat and turn its [n] markers into links to the cards."""
    out, pos = [], 0
    for m in re.finditer(r"\[(\d{1,2})\]", text):
        n = int(m.group(1))
        if n not in valid:
            continue
        out.append(esc_md(text[pos:m.start()]))
        out.append(f"[\\[{n}\\]](#pq-c-{turn}-{n})")
        pos = m.end()
    out.append(esc_md(text[pos:]))
    return "".join(out)


def chat_answer(turn: Turn, note: str = "") -> str:
    a = turn.answer
    valid = {c.n for c in a.citations}
    body = _marker_links(a.answer, turn.number, valid)
    if note:
        body = f"_{esc_md(note)}_\n\n{body}"
    return body


def _name(policies: dict, policy_id: str) -> str:
    policy = policies.get(policy_id)
    return display_name(policy) if policy else policy_id


def _short(policies: dict, policy_id: str) -> str:
    policy = policies.get(policy_id)
    return short_name(policy) if policy else policy_id


def plain_answer(turn: Turn) -> str:
    """The answer and its sources as plain text, for the Copy button."""
    a = turn.answer
    words = labels(a)
    lines = [a.answer, "", f"{words['sources']}:"]
    for c in a.citations:
        lines.append(f"[{c.n}] {_name(turn.policies, c.policy_id)} — {c.section}")
        lines.append("    " + " ".join(c.text.split()))
    lines += ["", words["footer"]]
    return "\n".join(lines)


def _passage_html(c: Citation) -> str:
    """The passage with its answering sentence marked (offsets are in the policy text)."""
    text, start = c.text, c.start
    hs, he = c.highlight_start - start, c.highlight_end - start
    if not (0 <= hs < he <= len(text)):
        return esc_html(text)
    return (f"{esc_html(text[:hs])}<mark class=\"pq-hl\">{esc_html(text[hs:he])}</mark>{esc_html(text[he:])}")


def policy_html(policy, citations: list[Citation], turn: int) -> str:
    """The whole policy text, every cited passage and sentence wrapped so the page can mark it."""
    text = policy.text
    cuts = {0, len(text)}
    for c in citations:
        for v in (c.start, c.end, c.highlight_start, c.highlight_end):
            if 0 <= v <= len(text):
                cuts.add(v)
    points = sorted(cuts)
    parts = []
    for s, e in zip(points, points[1:]):
        piece = esc_html(text[s:e])
        clause = [c.n for c in citations if c.start <= s and e <= c.end]
        if not clause:
            parts.append(piece)
            continue
        sentence = [c.n for c in citations if c.highlight_start <= s and e <= c.highlight_end]
        first = [n for n in clause if any(c.n == n and c.start == s for c in citations)]
        anchor = "".join(f'<span class="pq-anchor" id="pq-p-{turn}-{n}"></span>' for n in first)
        parts.append(
            f'{anchor}<mark class="pq-clause" data-c=" {" ".join(map(str, clause))} " '
            f'data-h=" {" ".join(map(str, sentence))} ">{piece}</mark>'
        )
    return "".join(parts)


def compare_rows(turn: Turn) -> list[dict]:
    """One row per site in scope (the answer's `by_policy`, in its order: sites that answer first):
    its best clause's quoted sentence, or that its policy does not say (the closest clause still numbered)."""
    a = turn.answer
    by_n = {c.n: c for c in a.citations}
    rows = []
    for r in a.by_policy:
        top = by_n.get(r.citations[0]) if r.citations else None
        rows.append({"policy_id": r.policy_id, "company": _short(turn.policies, r.policy_id),
                     "abstained": r.abstained, "quote": " ".join(top.highlight.split()) if top else "",
                     "section": top.section if top else "", "numbers": list(r.citations)})
    return rows


def compare_table_html(turn: Turn) -> str:
    """The answer across sites as a real table (its rows stack at phone width); all text escaped."""
    rows, t = compare_rows(turn), turn.number
    answered = sum(not r["abstained"] for r in rows)
    out = ['<table class="pq-compare"><caption>Compare: what each policy says '
           f'<span class="pq-count">({answered} of {len(rows)} address this)</span></caption>'
           '<thead><tr><th scope="col">Site</th><th scope="col">What the policy says</th>'
           '<th scope="col">Source</th></tr></thead><tbody>']
    for r in rows:
        if r["abstained"]:
            says = ('<strong class="pq-silent">Does not say.</strong> '
                    f'<span class="pq-closest">Closest: {esc_html(r["section"] or "an untitled clause")}</span>')
        else:
            says = f"“{esc_html(r['quote'])}”"
        buttons = " ".join(f'<button type="button" class="pq-btn pq-n" data-pq-cite="{t}-{n}" '
                           f'aria-label="Open citation {n} in the full policy">[{n}]</button>' for n in r["numbers"])
        out.append(f'<tr class="{"pq-row-silent" if r["abstained"] else "pq-row"}" data-policy="{esc_html(r["policy_id"])}">'
                   f'<th scope="row">{esc_html(r["company"])}</th><td class="pq-says">{says}</td>'
                   f'<td class="pq-refs">{buttons}</td></tr>')
    out.append("</tbody></table>")
    more = len(turn.answer.policies) - len(rows)
    if more > 0:
        out.append(f'<p class="pq-note">… and {more} more {"policy" if more == 1 else "policies"} not shown: '
                   "name one in your question, or pick it in the policy menu, to ask it directly.</p>")
    return "".join(out)


def _silent_line(turn: Turn) -> str:
    silent = [r.policy_id for r in turn.answer.by_policy if r.abstained]
    if not silent:
        return ""
    return f'<br><span>Does not say:</span> {esc_html(", ".join(_short(turn.policies, p) for p in silent))}'


def _card_html(c: Citation, turn: Turn) -> str:
    t = turn.number
    words = labels(turn.answer)
    label = f"Open citation {c.n}, {_short(turn.policies, c.policy_id)} {c.section}, in the full policy"
    return (
        f'<li class="pq-card" id="pq-card-{t}-{c.n}" data-pq-cite="{t}-{c.n}">'
        f'<button type="button" class="pq-card-head" data-pq-cite="{t}-{c.n}" aria-label="{esc_html(label)}">'
        f'<span class="pq-n">[{c.n}]</span> <span class="pq-company">{esc_html(_name(turn.policies, c.policy_id))}</span>'
        f'<span class="pq-section">{esc_html(c.section or words["untitled"])}</span></button>'
        f'<blockquote class="pq-passage">{_passage_html(c)}</blockquote>'
        f'<span class="pq-open" aria-hidden="true">{words["show"]}</span></li>'
    )


def cards_html(turn: Turn) -> str:
    """The source cards; across sites, grouped under each site (in the table's order)."""
    a = turn.answer
    if not a.by_policy:
        words = labels(a)
        return (f'<ol class="pq-cards" aria-label="{words["closest"] if a.abstained else words["quoted_clauses"]}">'
                + "".join(_card_html(c, turn) for c in a.citations) + "</ol>")
    by_n = {c.n: c for c in a.citations}
    out = ['<div class="pq-groups">']
    for r in a.by_policy:
        name = _short(turn.policies, r.policy_id)
        status = "does not say; closest clause" if r.abstained else "quoted"
        out.append(f'<section class="pq-site" data-policy="{esc_html(r.policy_id)}" aria-label="{esc_html(name)}">'
                   f'<h3 class="pq-site-name">{esc_html(name)} <span class="pq-site-status">— {status}</span></h3>'
                   f'<ol class="pq-cards" aria-label="{esc_html(name)} clauses">'
                   + "".join(_card_html(by_n[n], turn) for n in r.citations if n in by_n) + "</ol></section>")
    out.append("</div>")
    return "".join(out)


def sources_html(turn: Turn | None, message: str = "") -> str:
    if turn is None:
        return (
            '<div class="pq-sources pq-empty"><h2 class="pq-title">Sources</h2>'
            f'<p>{esc_html(message or "Ask a question: the clauses each answer quotes appear here, one card per citation. Click a card to read it in the whole policy.")}</p></div>'
        )
    a, t = turn.answer, turn.number
    words = labels(a)
    cites = a.citations
    searched = a.policies
    all_ids = sorted(turn.policies)
    if sorted(searched) == all_ids and len(all_ids) > 1:
        scope = words["all"].format(n=len(all_ids))
    else:
        scope = ", ".join(_short(turn.policies, p) for p in searched)
    if turn.scope_reason:
        scope += f" ({words['reasons'].get(turn.scope_reason, turn.scope_reason)})"
    quoted = []
    for c in cites:
        if c.policy_id not in quoted:
            quoted.append(c.policy_id)
    shown_quoted = quoted  # across sites, "Quoted" names the sites whose policy answers
    if a.by_policy:
        shown_quoted = [r.policy_id for r in a.by_policy if not r.abstained]
    lang = esc_html(a.language or "en")
    out = [f'<div class="pq-sources" data-turn="{t}" lang="{lang}">', f'<div class="pq-head"><h2 class="pq-title">{words["sources"]}</h2>',
           f'<button type="button" class="pq-btn pq-copy" data-pq-copy data-label="{words["copy"]}" data-done="{words["copied"]}">{words["copy"]}</button></div>',
           f'<p class="pq-scope"><span>{words["searched"]}</span> {esc_html(scope)}<br><span>{words["quoted"]}</span> '
           f'{esc_html(", ".join(_name(turn.policies, p) for p in shown_quoted) or words["nothing"])}{_silent_line(turn)}</p>',
           f'<pre class="pq-plain" hidden>{esc_html(plain_answer(turn))}</pre>']
    if a.abstained:
        out.append(
            f'<p class="pq-abstain" role="status"><strong>{words["not_answered"]}</strong> '
            f'{words["abstain_one"] if len(searched) == 1 else words["abstain_many"]}</p>'
        )
    if any(not r.abstained for r in a.by_policy):
        out.append(compare_table_html(turn))
    out.append(cards_html(turn))
    out.append(f'<section class="pq-viewer" hidden aria-label="{words["full"]}">'
               f'<div class="pq-viewer-bar"><h3 class="pq-viewer-title">{words["full"]}</h3>'
               f'<button type="button" class="pq-btn" data-pq-close>{words["close"]}</button></div>')
    for policy_id in quoted:
        policy = turn.policies.get(policy_id)
        if policy is None:
            continue
        own = [c for c in cites if c.policy_id == policy_id]
        date = words["dated"].format(date=policy.date) if policy.date else ""
        out.append(
            f'<article class="pq-policy" lang="en" data-policy="{esc_html(policy_id)}" hidden tabindex="-1" '
            f'aria-label="{esc_html(display_name(policy))} privacy policy">'
            f'<p class="pq-policy-name">{esc_html(words["policy_name"].format(name=display_name(policy), date=date))}</p>'
            f'<div class="pq-policy-text">{policy_html(policy, own, t)}</div></article>'
        )
    for c in cites:  # which article and title each citation opens
        title = "[{}] {} — {}".format(c.n, _name(turn.policies, c.policy_id), c.section)
        out.append(f'<span hidden class="pq-target" data-for="{t}-{c.n}" data-policy="{esc_html(c.policy_id)}" '
                   f'data-title="{esc_html(title)}"></span>')
    out.append("</section></div>")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Browser side: one delegated click handler for cards, [n] links, Copy and Close. Static code;
# it reads only attributes this module wrote and never evaluates page text.

SOURCES_JS = r"""
const root = element;
function openCite(key) {
  const sources = document.querySelector('.pq-sources');
  if (!sources) return false;
  const target = sources.querySelector('.pq-target[data-for="' + CSS.escape(key) + '"]');
  if (!target) return false;
  const n = key.split('-')[1];
  const viewer = sources.querySelector('.pq-viewer');
  viewer.hidden = false;
  viewer.querySelector('.pq-viewer-title').textContent = target.dataset.title;
  let article = null;
  sources.querySelectorAll('.pq-policy').forEach(a => {
    const on = a.dataset.policy === target.dataset.policy;
    a.hidden = !on;
    if (on) article = a;
  });
  sources.querySelectorAll('.pq-card').forEach(c => c.classList.toggle('pq-selected', c.dataset.pqCite === key));
  let first = null;
  article.querySelectorAll('mark.pq-clause').forEach(m => {
    const on = m.dataset.c.includes(' ' + n + ' ');
    m.classList.toggle('pq-active', on);
    m.classList.toggle('pq-active-hl', on && m.dataset.h.includes(' ' + n + ' '));
    if (on && !first) first = m;
  });
  viewer.scrollIntoView({block: 'start', behavior: 'instant'});
  if (first) {
    const box = article.querySelector('.pq-policy-text');
    box.scrollTop += first.getBoundingClientRect().top - box.getBoundingClientRect().top - 24;
  }
  article.focus({preventScroll: true});
  return true;
}
async function copyAnswer(button) {
  const text = document.querySelector('.pq-sources .pq-plain')?.textContent || '';
  try {
    await navigator.clipboard.writeText(text);
  } catch (e) {
    const area = document.createElement('textarea');
    area.value = text; area.setAttribute('readonly', ''); area.style.position = 'fixed'; area.style.left = '-9999px';
    document.body.appendChild(area); area.select();
    try { document.execCommand('copy'); } catch (e2) {}
    area.remove();
  }
  button.textContent = button.dataset.done || 'Copied';
  setTimeout(() => { button.textContent = button.dataset.label || 'Copy answer'; }, 1500);
}
if (!window.__pqHandler) {
  window.__pqHandler = (event) => {
    const el = event.target instanceof Element ? event.target : null;
    if (!el) return;
    const link = el.closest('a[href^="#pq-c-"]');
    if (link) {
      event.preventDefault(); event.stopPropagation();
      if (!openCite(link.getAttribute('href').slice(6))) {
        link.title = 'The sources of earlier answers are not kept; ask the question again to see them.';
      }
      return;
    }
    if (!el.closest('.pq-sources')) return;
    const copy = el.closest('[data-pq-copy]');
    if (copy) { copyAnswer(copy); return; }
    if (el.closest('[data-pq-close]')) {
      const viewer = el.closest('.pq-viewer'); viewer.hidden = true;
      const selected = document.querySelector('.pq-card.pq-selected .pq-card-head');
      if (selected) selected.focus();
      return;
    }
    const cite = el.closest('[data-pq-cite]');
    if (cite) {
      if (String(window.getSelection() || '').length && !el.closest('button')) return;  // selecting text to copy
      openCite(cite.dataset.pqCite);
    }
  };
  document.addEventListener('click', window.__pqHandler, true);
}
"""

SOURCES_CSS = r"""
.pq-sources { font-size: 0.95rem; line-height: 1.5; color: var(--body-text-color); }
.pq-head { display: flex; align-items: center; justify-content: space-between; gap: .5rem; }
.pq-title { font-size: 1.15rem; font-weight: 600; margin: 0 0 .25rem 0; }
.pq-scope { margin: .25rem 0 .75rem 0; color: var(--body-text-color); opacity: .8; overflow-wrap: anywhere; }
.pq-scope span { font-weight: 600; color: var(--body-text-color); }
.pq-btn { border: 1px solid var(--border-color-primary); border-radius: 6px; padding: .2rem .6rem;
  background: var(--button-secondary-background-fill); color: var(--button-secondary-text-color); cursor: pointer; font: inherit; }
.pq-btn:hover { background: var(--button-secondary-background-fill-hover); }
.pq-abstain { border-left: 4px solid #d97706; background: rgba(217, 119, 6, .12); padding: .5rem .75rem; border-radius: 4px; }
.pq-compare { width: 100%; border-collapse: collapse; margin: .5rem 0 .75rem 0; table-layout: auto; }
.pq-compare caption { text-align: left; font-weight: 600; padding-bottom: .25rem; }
.pq-compare th, .pq-compare td { border: 1px solid var(--border-color-primary); padding: .35rem .5rem; vertical-align: top; text-align: left; overflow-wrap: break-word; }
.pq-compare th[scope="row"] { min-width: 6.5rem; }
.pq-compare td:last-child, .pq-compare thead th:last-child { width: 1%; white-space: nowrap; }
.pq-compare thead th { background: var(--background-fill-secondary); }
.pq-note { color: var(--body-text-color); opacity: .8; font-size: .9rem; }
.pq-cards { list-style: none; padding: 0; margin: 0; display: flex; flex-direction: column; gap: .6rem; }
.pq-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .5rem .75rem; cursor: pointer;
  background: var(--background-fill-primary); }
.pq-card:hover, .pq-card.pq-selected { border-color: var(--color-accent); box-shadow: 0 0 0 1px var(--color-accent); }
.pq-card-head { all: unset; display: block; width: 100%; cursor: pointer; }
.pq-card-head:focus-visible, .pq-btn:focus-visible, .pq-policy:focus-visible { outline: 2px solid var(--color-accent); outline-offset: 2px; }
.pq-n { font-weight: 700; color: var(--color-accent); }
.pq-company { font-weight: 600; }
.pq-section { display: block; color: var(--body-text-color); opacity: .8; font-size: .9rem; overflow-wrap: anywhere; }
.pq-passage { margin: .4rem 0; padding: 0 0 0 .6rem; border-left: 3px solid var(--border-color-primary); white-space: pre-wrap; overflow-wrap: anywhere; }
.pq-open { font-size: .85rem; color: var(--color-accent); }
mark.pq-hl, mark.pq-active-hl { background: #fde68a; color: #1f2937; padding: 0 .1em; border-radius: 2px; }
.pq-viewer { margin-top: 1rem; border: 2px solid var(--color-accent); border-radius: 8px; padding: .5rem .75rem; }
.pq-viewer[hidden], .pq-policy[hidden] { display: none; }
.pq-viewer-bar { display: flex; justify-content: space-between; align-items: flex-start; gap: .5rem; }
.pq-viewer-title { font-size: 1rem; font-weight: 600; margin: 0; overflow-wrap: anywhere; }
.pq-policy-name { color: var(--body-text-color); opacity: .8; margin: .25rem 0; }
.pq-policy-text { white-space: pre-wrap; overflow-wrap: anywhere; max-height: 60vh; overflow-y: auto; position: relative;
  padding-right: .25rem; border-top: 1px solid var(--border-color-primary); padding-top: .5rem; }
mark.pq-clause { background: transparent; color: inherit; border-bottom: 1px dotted var(--color-accent); }
mark.pq-clause.pq-active { background: rgba(59, 130, 246, .18); border-bottom: 2px solid var(--color-accent); }
mark.pq-clause.pq-active-hl { background: #fde68a; color: #1f2937; }
.pq-compare .pq-count { font-weight: 400; opacity: .8; }
.pq-compare tr.pq-row-silent td.pq-says { opacity: .85; }
.pq-silent { font-weight: 600; }
.pq-closest { font-size: .9rem; opacity: .85; overflow-wrap: anywhere; }
.pq-refs .pq-btn { margin: 0 .15rem .15rem 0; }
.pq-groups { display: flex; flex-direction: column; gap: .9rem; }
.pq-site-name { font-size: 1rem; font-weight: 600; margin: 0 0 .35rem 0; }
.pq-site-status { font-weight: 400; opacity: .75; font-size: .9rem; }
@media (max-width: 640px) { .pq-compare thead { display: none; } .pq-compare tr { display: block; border: 1px solid var(--border-color-primary); margin-bottom: .4rem; }
  .pq-compare th, .pq-compare td { display: block; border: none; } .pq-compare td.pq-refs { width: auto; white-space: normal; } }
"""

PAGE_CSS = """
.pq-page { max-width: 1400px; margin: 0 auto; }
#pq-chat .message { overflow-wrap: anywhere; }
#pq-chat a[href^="#pq-c-"] { color: var(--color-accent); font-weight: 600; text-decoration: none; }
#pq-chat a[href^="#pq-c-"]:hover, #pq-chat a[href^="#pq-c-"]:focus-visible { text-decoration: underline; }
#pq-sources-col { min-width: min(320px, 100%); }
.pq-add-result p { margin: .25rem 0; }
.pq-add-ok { border-left: 4px solid #16a34a; padding: .25rem .75rem; }
.pq-add-error { border-left: 4px solid #dc2626; background: rgba(220, 38, 38, .08); padding: .25rem .75rem; border-radius: 4px; }
.pq-add-report { white-space: pre-wrap; overflow-wrap: anywhere; font-size: .8rem; margin: .4rem 0 0 0; opacity: .85; }
/* Side by side, the sources scroll on their own, so opening a clause never scrolls the chat away. */
@media (min-width: 900px) {
  #pq-sources-col { position: sticky; top: .5rem; align-self: flex-start; max-height: calc(100vh - 1rem); overflow-y: auto; }
}
"""


# ---------------------------------------------------------------------------------------------
# A conversation turn.


def _policy_choices(engine) -> list[tuple[str, str]]:
    choices = [("All policies", ALL)]
    choices += sorted(((display_name(p), pid) for pid, p in engine.index.policies.items()), key=lambda c: c[0].lower())
    return choices


def _new_session() -> dict:
    return {"questions": [], "messages": [], "turn": 0}


def _scope_reason(engine, question: str, history: list[str], choice: str, searched: list[str], said: str = "") -> str:
    if choice and choice != ALL:
        return "chosen in the policy menu"
    if said:  # the engine's own words: named, added, widened, carried on from the earlier question
        return said
    if len(searched) >= len(engine.index.policies):
        return ""
    if resolve_policies(question, engine.patterns)[0]:
        return "named in your question"
    return "from your earlier question" if history else ""


def answer_question(engine, question, choice, session: dict) -> tuple[list, str, dict]:
    """Ask the engine; return (chat messages, sources HTML or None to keep, session)."""
    session = dict(session or _new_session())
    messages = list(session["messages"])
    text = question if isinstance(question, str) else ""
    messages.append({"role": "user", "content": esc_md(_clip(text)) if text.strip() else "_(empty question)_"})
    policy = None if not choice or choice == ALL else choice
    history = session["questions"][-HISTORY_TURNS:]
    try:
        answer = engine.ask(text, policy=policy, history=history)
    except PolicyQAError as e:
        message = e.for_page()
        messages.append({"role": "assistant", "content": esc_md(f"⚠ I can't take that question: {message}")})
        session["messages"] = messages
        return messages, None, session
    except Exception as e:  # never show a traceback; never log the question
        log.error("answering failed: %s at %s", type(e).__name__, _where(e))
        messages.append({"role": "assistant", "content": esc_md("⚠ Something went wrong while answering. Please try again.")})
        session["messages"] = messages
        return messages, None, session
    session["turn"] = session.get("turn", 0) + 1
    reason = _scope_reason(engine, answer.question, history, choice, answer.policies, answer.scope_reason)
    turn = Turn(session["turn"], answer, engine.index.policies, reason)
    note = ""
    if looks_non_english(text) and answer.language == "en":
        note = ("PolicyQA reads the English versions of these policies and understands questions in English; "
                "this question does not look English, so the match below may be poor. Try asking in English.")
    # Only the latest answer's [n] links point at cards on the page; earlier ones become plain text.
    for m in messages:
        if m["role"] == "assistant":
            m["content"] = re.sub(r"\[\\\[(\d+)\\\]\]\(#pq-c-[\d-]+\)", r"\\[\1\\]", m["content"])
    messages.append({"role": "assistant", "content": chat_answer(turn, note)})
    messages = messages[-MAX_MESSAGES:]
    session["messages"] = messages
    session["questions"] = (session["questions"] + [answer.question])[-HISTORY_TURNS:]
    return messages, sources_html(turn), session


# ---------------------------------------------------------------------------------------------
# The served engine, and adding policies to its index.


_HEADLINES = {
    "added": "Added {company} as “{id}” ({passages}).",
    "replaced": "Replaced the text of {company} (“{id}”, now {passages}).",
    "updated": "Updated the details of {company} (“{id}”); its text was already in the index.",
    "unchanged": "{company} (“{id}”) is already in the index with this text; nothing to do.",
}


def add_status_html(report) -> str:
    """What an add did: a headline per policy, then the library's own report lines."""
    from index.library import describe

    out = ['<div class="pq-add-result pq-add-ok" role="status">']
    for c in report.changes:
        passages = f"{c.passages} passage{'' if c.passages == 1 else 's'}"
        line = _HEADLINES.get(c.action, "{company} (“{id}”): " + c.action).format(company=c.company, id=c.id, passages=passages)
        out.append(f"<p><strong>{esc_html(line)}</strong></p>")
    out.append("<p>Questions about it work now, for everyone using this page; it is selected in the Policy menu.</p>")
    lines = "\n".join(describe(report, for_page=True))
    out.append(f'<pre class="pq-add-report">{esc_html(lines)}</pre></div>')
    return "".join(out)


def add_error_html(message: str, untouched: bool = True) -> str:
    tail = "<p>The index is unchanged.</p>" if untouched else ""
    return (f'<div class="pq-add-result pq-add-error" role="alert"><p>⚠ Could not add the policy: '
            f"{esc_html(message)}</p>{tail}</div>")


def add_policy(holder: EngineHolder, file, text, company, policy_id) -> tuple[str | None, str]:
    """The Add button: an uploaded file (its temporary path) or pasted text, with an optional
    company and id. Returns (the policy id to select, or None after an error; status HTML)."""
    path = str(file) if file else None
    pasted = text if isinstance(text, str) and text.strip() else ""
    company = " ".join(company.split()) if isinstance(company, str) and company.strip() else None
    policy_id = policy_id.strip() if isinstance(policy_id, str) and policy_id.strip() else None
    if path and pasted:
        return None, add_error_html("choose a file or paste text, not both; clear one of them and press Add again")
    if not path and pasted and not company:
        return None, add_error_html("enter the company's name for pasted text (a file's can be inferred)")
    try:
        if path:
            report = holder.add(path=path, company=company, policy_id=policy_id)
        else:  # empty text: the library says so
            report = holder.add(text=text if isinstance(text, str) else "", company=company, policy_id=policy_id)
    except PolicyQAError as e:
        message = e.for_page()
        if path:  # the upload's temporary path means nothing to the visitor: name the file they chose
            message = message.replace(path, Path(path).name)
        return None, add_error_html(message)
    except Exception as e:  # never a traceback on the page
        log.error("adding a policy failed: %s at %s", type(e).__name__, _where(e))
        return None, add_error_html("something went wrong while adding the policy; please try again", untouched=False)
    return report.changes[0].id if report.changes else None, add_status_html(report)


# ---------------------------------------------------------------------------------------------
# The page.


def build_app(engine, allow_add: bool = True, *, allow_upload: bool | None = None) -> gr.Blocks:
    """The page over `engine`: an Engine (its index directory is where it was read from) or an
    EngineHolder. `allow_add=False` leaves out the "Add a policy" panel and its endpoint
    (`allow_upload` is the old name of the same switch). Holds no global mutable state: the served
    engine lives in the holder, each browser session's conversation in its own gr.State."""
    holder = engine if isinstance(engine, EngineHolder) else EngineHolder(engine)
    if allow_upload is not None:
        allow_add = allow_upload

    def respond(question, choice, session):
        messages, sources, session = answer_question(holder.current(), question, choice, session)
        if sources is None:  # refused: keep the old sources, and the text so it can be shortened
            return messages, gr.skip(), gr.skip(), session
        return messages, sources, "", session

    def respond_example(choice, session, evt: gr.SelectData):
        value = evt.value if isinstance(evt.value, dict) else {}
        return respond(value.get("text", ""), choice, session)

    def new_conversation(session):
        return [], sources_html(None), "", _new_session()

    probe = _queue_cache_probe()
    shared = SharedAnswers(holder)

    async def ask(question: str, policy: str | None = None) -> dict:
        """Answer a question from the privacy policies. Returns the same JSON object as
        `policyqa ask --json`, or {"error": message} for a question that cannot be asked."""
        # An answer already given is returned on the event loop; only a new question takes a worker
        # thread (Gradio runs a plain function in one for every event: a hop that cost more than the
        # cached answer under 100 users).
        hit = shared.given(question, policy)
        if hit is not None:
            return hit
        # Gradio asks "answered already?" inside queue/join. Not yet, but when the same question is being
        # answered for someone else, or a thread is free to answer it now, it is answered inside the
        # join too: a crowd's first questions then skip the queue's per-event work and its 4-at-a-time
        # (measured: what made the first round of the 100-user load test the slowest). Only when every
        # thread is busy does the question wait in Gradio's queue, with its position reports.
        if probe is not None and probe[0].get() and not shared.can_answer_now(question, policy):
            raise probe[1]()
        return (await shared.answer(question, policy, limiter=shared.limiter))[0]

    # Real types, not the strings `from __future__ import annotations` leaves: Gradio reads the hints
    # for every event (typing.get_type_hints), and evaluating strings there was a visible cost.
    ask.__annotations__ = {"question": str, "policy": str | None, "return": dict}
    ask.__signature__ = inspect.signature(ask)  # read for every event too (special_args)
    if probe is not None:
        # Gradio's cache fast path (see _queue_cache_probe): an answer already given goes back inside
        # the `queue/join` request as one process_completed message, without a queue slot.
        ask.cache = holder

    with gr.Blocks(title="PolicyQA — job-site privacy policies, quoted", analytics_enabled=False,
                   elem_classes=["pq-page"], delete_cache=(3600, 3600)) as demo:
        # Per browser session; dropped when the tab closes, or after 2 idle hours.
        session = gr.State(_new_session(), time_to_live=2 * 3600)
        gr.Markdown("# PolicyQA\nAsk what Japanese job sites' privacy policies say. Answers quote the policies and "
                    "cite the clauses; they are not legal advice.", elem_id="pq-intro")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                chat = gr.Chatbot(
                    elem_id="pq-chat", label="Conversation", height=520, layout="bubble",
                    sanitize_html=True, render_markdown=True, allow_tags=False, latex_delimiters=[],
                    line_breaks=True, buttons=[], feedback_options=None, autoscroll=True,
                    placeholder="**Ask about a job site's privacy policy.** Try one of these:",
                    examples=[{"text": q} for q in EXAMPLES],
                )
                with gr.Row(equal_height=True):
                    policy = gr.Dropdown(
                        _policy_choices(holder.current()), value=ALL, label="Policy", scale=1, min_width=200,
                        elem_id="pq-policy", info="Scope questions to one site, or ask all of them.",
                        interactive=True,
                    )
                question = gr.Textbox(
                    label="Your question", placeholder="e.g. Can JapanWork share my data with partners?  (Enter to ask)",
                    lines=1, max_lines=6, elem_id="pq-question", submit_btn="Ask", autofocus=False,
                )
                with gr.Row():
                    clear = gr.Button("New conversation", size="sm", variant="secondary", elem_id="pq-new")
                if allow_add:
                    with gr.Accordion("Add a policy", open=False, elem_id="pq-add"):
                        gr.Markdown(
                            "Add a privacy policy to the ones this page answers from. It is indexed on this server "
                            "and questions about it work at once, **for everyone using this page**. A policy added "
                            "here can be replaced here; the policies this page ships with, and those added by its "
                            "operator, cannot.", elem_id="pq-add-intro")
                        # No file_types filter: the library names what it cannot read, in the panel below.
                        add_file = gr.File(label=f"Policy file: .txt, .md, .html/.htm or .pdf, up to {MAX_BYTES // 2**20} MB",
                                           file_count="single", type="filepath", elem_id="pq-add-file")
                        add_text = gr.Textbox(label="…or paste the policy text", lines=5, max_lines=14,
                                              elem_id="pq-add-text", placeholder="Paste the whole privacy policy here")
                        with gr.Row(equal_height=True):
                            add_company = gr.Textbox(label="Company", elem_id="pq-add-company", max_lines=1,
                                                     info="Required for pasted text; read from a file when left empty.")
                            add_id = gr.Textbox(label="Id (optional)", elem_id="pq-add-id", max_lines=1,
                                                info="Lowercase letters, digits and -; default: from the file name or company.")
                        add_button = gr.Button("Add", variant="primary", elem_id="pq-add-button")
                        add_status = gr.HTML("", elem_id="pq-add-status")
                with gr.Accordion("How this works — and what it cannot do", open=False, elem_id="pq-about"):
                    gr.Markdown(ABOUT)
            with gr.Column(scale=2, min_width=320, elem_id="pq-sources-col"):
                sources = gr.HTML(sources_html(None), elem_id="pq-sources", js_on_load=SOURCES_JS,
                                  css_template=SOURCES_CSS, apply_default_css=True)

        outs = [chat, sources, question, session]
        question.submit(respond, [question, policy, session], outs, api_visibility="private",
                        show_progress="minimal", show_progress_on=[chat])
        chat.example_select(respond_example, [policy, session], outs, api_visibility="private",
                            show_progress="minimal", show_progress_on=[chat])
        clear.click(new_conversation, [session], outs, api_visibility="private", queue=False)
        chat.clear(new_conversation, [session], outs, api_visibility="private", queue=False)

        if allow_add:
            def on_add(file, text, company, policy_id):
                selected, status = add_policy(holder, file, text, company, policy_id)
                if selected is None:  # refused: keep everything so it can be corrected
                    return gr.skip(), status, gr.skip(), gr.skip(), gr.skip(), gr.skip()
                # Cleared, so the next policy does not get this one's company or id.
                return gr.update(choices=_policy_choices(holder.engine), value=selected), status, None, "", "", ""

            add_button.click(on_add, [add_file, add_text, add_company, add_id],
                             [policy, add_status, add_file, add_text, add_company, add_id],
                             api_visibility="private", concurrency_limit=1, concurrency_id="add",
                             show_progress="full", show_progress_on=[add_status])

            def current_choices(choice):
                # A page opened (or reloaded) after someone else's add lists that policy too.
                choices = _policy_choices(holder.current())
                return gr.update(choices=choices, value=choice if choice in {c[1] for c in choices} else ALL)

            demo.load(current_choices, [policy], [policy], api_visibility="private", queue=False)

        gr.api(ask, api_name="ask")
    demo.pq_max_upload = f"{MAX_BYTES // 2**20}mb" if allow_add else "1mb"
    demo.pq_holder = holder  # for POST /api/ask, mounted at launch
    demo.pq_answers = shared  # the same questions in flight for both APIs
    return demo


def api_answer(holder: "EngineHolder", question, policy=None) -> tuple[dict, int]:
    """(`policyqa ask --json`'s object, 200), or ({"error": message}, 400) for a question that cannot
    be asked (empty, too long, not text, unknown policy) and ({"error": ...}, 500) for a failure of ours.
    The one answering function of /ask (gradio_client) and POST /api/ask (plain JSON)."""
    try:
        return holder.answer(question, every_site(policy)), 200
    except PolicyQAError as e:  # a question refused (400), or an index that cannot serve (500)
        return {"error": e.for_page()}, 400 if isinstance(e, UsageError) else 500
    except Exception as e:  # never a traceback; never the question in the log
        log.error("/ask failed: %s at %s", type(e).__name__, _where(e))
        return {"error": "something went wrong while answering; please try again"}, 500


class SharedAnswers:
    """`api_answer` in a worker thread, once per question in flight: when visitors ask the same new
    question at the same time (a popular question after start-up, the first round of a load test),
    one thread asks the engine and the others await its answer; before, each of them (up to the
    queue's 4 at once for /ask, the thread limit for POST /api/ask) ran the engine again, ~15 ms of
    the two cores each. Questions that are not plain text are never shared; the answer cache
    (`EngineHolder.cached`) serves repeats afterwards. Lives on the server's event loop: no locks."""

    def __init__(self, holder: "EngineHolder", threads: int = DEFAULT_CONCURRENCY):
        self.holder = holder
        self._flights: dict = {}  # (id(engine), question, policy) -> (engine, task)
        self.limiter = anyio.CapacityLimiter(threads)  # /ask's engine threads, queued or not (launch_app sets it)

    def can_answer_now(self, question, policy=None) -> bool:
        """Whether `answer` would not wait for a thread: the question is in flight, or a thread is free."""
        if self.limiter.available_tokens >= 1:
            return True
        if not isinstance(question, str) or not (policy is None or isinstance(policy, str)):
            return False  # never shared (see `answer`), and perhaps not even hashable
        engine = self.holder.current()  # one read of the index's CURRENT file
        flight = self._flights.get((id(engine), question, every_site(policy)))
        return flight is not None and flight[0] is engine

    def given(self, question, policy=None) -> dict | None:
        """The answer the served engine already gave to this question, or None (cheap: for the event loop)."""
        try:
            return self.holder.cached(question, every_site(policy))
        except Exception:  # whatever it was, `answer` reports it properly
            return None

    async def answer(self, question, policy=None, limiter=None) -> tuple[dict, int]:
        import asyncio

        policy = every_site(policy)
        if not isinstance(question, str) or not (policy is None or isinstance(policy, str)):
            return await anyio.to_thread.run_sync(api_answer, self.holder, question, policy, limiter=limiter)
        engine = self.holder.current()
        key = (id(engine), question, policy)
        flight = self._flights.get(key)
        if flight is None or flight[0] is not engine:
            task = asyncio.ensure_future(anyio.to_thread.run_sync(api_answer, self.holder, question, policy, limiter=limiter))
            flight = self._flights[key] = (engine, task)
            task.add_done_callback(lambda _, key=key, flight=flight: self._flights.pop(key, None)
                                   if self._flights.get(key) is flight else None)
        # Shielded: a visitor who leaves cancels only their own wait, never the answer others await.
        return await asyncio.shield(flight[1])


API_MAX_BODY = 64 * 1024  # bytes of JSON a POST /api/ask may send (a question is at most 2,000 characters)


def mount_json_api(demo: gr.Blocks, holder: "EngineHolder", threads: int = DEFAULT_CONCURRENCY) -> None:
    """POST /api/ask beside the page, for scripts without gradio_client:
    {"question": "...", "policy": "japanwork" (optional)} -> `policyqa ask --json`'s object, or
    {"error": "..."} with status 400 (bad question or body), 413 (body too large) or 415 (not JSON).
    It answers outside Gradio's queue, `threads` questions at once (more wait for a thread)."""
    import anyio
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    limiter = anyio.CapacityLimiter(threads)
    shared = getattr(demo, "pq_answers", None)
    if shared is None or shared.holder is not holder:
        shared = SharedAnswers(holder)

    def refuse(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def api_ask(request: Request) -> JSONResponse:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > API_MAX_BODY):
            return refuse(413, f"the request body is over {API_MAX_BODY // 1024} KB; send one question of at most {MAX_QUESTION_CHARS:,} characters")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > API_MAX_BODY:
                return refuse(413, f"the request body is over {API_MAX_BODY // 1024} KB; send one question of at most {MAX_QUESTION_CHARS:,} characters")
        try:
            data = json.loads(body.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: "[[[[…" nested thousands deep
            return refuse(415, 'the request body must be JSON, e.g. {"question": "can JapanWork share my data?", "policy": "japanwork"}')
        if not isinstance(data, dict) or "question" not in data:
            return refuse(400, 'the JSON body must be an object with a "question", e.g. {"question": "can JapanWork share my data?"}')
        unknown = sorted(set(data) - {"question", "policy"})
        if unknown:
            return refuse(400, f"unknown field {unknown[0][:40]!r}; send \"question\" and, optionally, \"policy\"")
        # An answer already given is returned on the event loop, as /ask does; a new one takes a thread.
        result = shared.given(data["question"], data.get("policy"))
        status = 200
        if result is None:
            result, status = await shared.answer(data["question"], data.get("policy"), limiter=limiter)
        return JSONResponse(result, status_code=status)

    demo.app.add_route("/api/ask", api_ask, methods=["POST"], include_in_schema=False)  # plain Starlette: no FastAPI injection


def _analytics_summary_without_thread_hop() -> None:
    """Gradio's queue hands `compute_analytics_summary` to a worker thread after every event, though
    it only recomputes every GRADIO_ANALYTICS_CACHE_FREQUENCY events (for the monitoring page, which is
    off) and otherwise returns its cached dict at once. Under 100 users that thread hop per event
    competed with the event loop for the GIL; run the no-op case inline, the real one still in a thread."""
    import gradio.queueing as queueing

    if getattr(queueing, "run_sync", None) is not anyio.to_thread.run_sync:
        return  # another Gradio version, or already done

    async def run_sync(fn, *args, **kwargs):
        queue = getattr(fn, "__self__", None)
        if (getattr(fn, "__name__", "") == "compute_analytics_summary" and queue is not None
                and queue.events_recorded - queue.event_count_at_last_cache < queue.ANAYLTICS_CACHE_FREQUENCY):
            return fn(*args)
        return await anyio.to_thread.run_sync(fn, *args, **kwargs)

    queueing.run_sync = run_sync


def _cache_block_signatures(demo: gr.Blocks) -> None:
    """Gradio builds each new session's copy of the page config (a gradio_client user's first question)
    by reading `inspect.signature(cls.__init__)` of every component, again and again; that was the
    largest single cost in the load test's profile. A signature cannot change, so store it on the
    function (`__signature__`, which `inspect.signature` returns as is)."""
    for block in list(demo.blocks.values()):
        for cls in type(block).__mro__:
            init = cls.__dict__.get("__init__")
            if inspect.isfunction(init) and "__signature__" not in init.__dict__:
                try:
                    init.__signature__ = inspect.signature(init)
                except (TypeError, ValueError):
                    pass


def _session_configs_on_demand() -> bool:
    """Gradio makes a per-session copy of every component's config (`SessionState.config_values`) the
    first time it sees a session: for this page ~1 ms of the shared cores inside each gradio_client
    user's first question, all of them at once when a crowd connects, though /ask touches only its
    own 3 components' copies (and only the deep-link route reads them all). Build each copy when it is
    first read or written instead, from the component the session had when it was made (what the
    eager copy saw), in the same order. Returns whether Gradio's SessionState was changed (False:
    already, or another Gradio)."""
    from collections.abc import MutableMapping

    try:
        from gradio.state_holder import SessionState

        source = inspect.getsource(SessionState.__init__)
    except (ImportError, AttributeError, OSError, TypeError):
        return False
    if (getattr(SessionState, "pq_on_demand", False) or "self.config_values = {" not in source
            or "config_for_block(k, [], v)" not in source or "if k in blocks.blocks" not in source):
        return False
    eager_init, unbuilt = SessionState.__init__, object()

    class NoBlocks:  # the Blocks as the eager __init__ sees it, minus the components to copy
        blocks: dict = {}

        def __init__(self, blocks):
            self.real = blocks

        def __getattr__(self, name):
            return getattr(self.real, name)

    class ConfigCopies(MutableMapping):
        """The session's config copies, each built from its component on first use."""

        def __init__(self, blocks_config, components: dict):
            self.blocks_config, self.components = blocks_config, components
            self.copies = dict.fromkeys(components, unbuilt)  # the eager dict's keys, in its order

        def __getitem__(self, key):
            value = self.copies[key]
            if value is unbuilt:
                value = self.copies[key] = self.blocks_config.config_for_block(key, [], self.components[key])
            return value

        def __setitem__(self, key, value) -> None:
            self.copies[key] = value

        def __delitem__(self, key) -> None:
            del self.copies[key]

        def __iter__(self):
            return iter(self.copies)

        def __len__(self) -> int:
            return len(self.copies)

    def __init__(self, blocks) -> None:
        eager_init(self, NoBlocks(blocks))  # everything else as Gradio does it; no copies made
        self.config_values = ConfigCopies(self.blocks_config, {
            k: v for k, v in self.blocks_config.blocks.items() if k in blocks.blocks})

    SessionState.__init__ = __init__
    SessionState.pq_on_demand = True
    return True


def _queue_cache_probe():
    """Gradio 6 answers an event whose function has a `cache` attribute (what `gr.cache` sets) inside
    the `queue/join` request, under `ProbeCache`: when the function returns, its output goes to the
    visitor as a single process_completed message (no queue slot, no estimation or process_starts
    message, no worker); when it raises `CacheMissError`, the event is queued as usual. Under 100
    gradio_client users that halves the messages per question. Returns (the probe flag, the error
    to raise on a miss), or None where this Gradio does not work that way (then /ask is queued as
    stock Gradio does)."""
    import contextvars

    try:
        import gradio.caching as caching
        import gradio.queueing as queueing

        major = int(gr.__version__.split(".")[0])
        probe, miss = caching._probe_mode_active, caching.CacheMissError
        source = inspect.getsource(queueing.Queue.push)
    except (ImportError, AttributeError, ValueError, OSError, TypeError):
        return None
    if (major != 6 or not isinstance(probe, contextvars.ContextVar) or queueing.ProbeCache is not caching.ProbeCache
            or queueing.CacheMissError is not miss or 'hasattr(fn.fn, "cache")' not in source
            or "except CacheMissError" not in source):
        return None
    return probe, miss


def _finish_events_answered_in_join(queue) -> bool:
    """Two gaps of Gradio's cache fast path (see _queue_cache_probe), closed around `Queue.push`:
    - it registers the event in `Queue.event_ids_to_events` and never removes it (the queue's worker,
      which would, never sees the event): one leaked Event, with its request, per cached answer. It is
      removed once `push` returns with the event in no queue (a queued event is in its queue then:
      nothing is awaited in between);
    - a malformed request (e.g. one value for /ask's two) fails there with an exception, a 500 for
      `queue/join` and a traceback quoting the inputs in the log; the queue path answers it with a
      process_completed error message instead. It gets that message here, and a one-line log entry
      without the inputs.
    Returns whether `push` was wrapped (False: already, or not this Queue)."""
    from gradio.server_messages import ProcessCompletedMessage
    from gradio.utils import error_payload

    push = getattr(queue, "push", None)
    if push is None or getattr(push, "pq_finishes", False) or not isinstance(getattr(queue, "event_ids_to_events", None), dict):
        return False

    async def finishing_push(*args, **kwargs):
        body = kwargs.get("body", args[0] if args else None)
        sent_id = getattr(body, "event_id", None)  # a visitor may send any id: only one `push` made is ours
        try:
            result = await push(*args, **kwargs)
        except Exception as e:
            made_id = getattr(body, "event_id", None)
            event = queue.event_ids_to_events.get(made_id) if made_id and made_id != sent_id else None
            if event is None or event.session_hash != getattr(body, "session_hash", None):
                raise
            queue.event_ids_to_events.pop(made_id, None)
            log.error("/ask failed before it was queued: %s at %s", type(e).__name__, _where(e))
            content = error_payload(e, queue.blocks.show_error)
            queue.send_message(event, ProcessCompletedMessage(output=content, title=content.get("title", "Error"),
                                                              success=False))
            return True, event._id, "success"
        try:
            success, event_id = result[0], result[1]
            event = queue.event_ids_to_events.get(event_id) if success and isinstance(event_id, str) else None
            if event is not None and not any(event in q.queue for q in queue.event_queue_per_concurrency_id.values()):
                queue.event_ids_to_events.pop(event_id, None)
        except Exception:  # bookkeeping only: never fail a question for it
            pass
        return result

    finishing_push.pq_finishes = True
    queue.push = finishing_push
    return True


def _queue_errors_without_inputs() -> bool:
    """Gradio's queue prints the traceback of a page event that fails (`traceback.print_exc()` in
    gradio.queueing), and for a malformed event (too few values, say) its message quotes the inputs:
    a visitor's question in the server log. /ask's malformed events are caught before the queue
    (`_finish_events_answered_in_join`); for the page's other events log the same one line instead:
    the exception's type and where it came from, never its message. Returns whether it was changed."""
    import traceback

    import gradio.queueing as queueing

    if getattr(queueing, "traceback", None) is not traceback:
        return False  # already, or a Gradio that no longer prints there

    class TracebackWithoutMessages:
        def print_exc(self, *args, **kwargs) -> None:
            error = sys.exc_info()[1]
            if error is not None:
                log.error("a page event failed: %s at %s", type(error).__name__, _where(error))

        def __getattr__(self, name):
            return getattr(traceback, name)

    queueing.traceback = TracebackWithoutMessages()
    return True


def _login_check_on_event_loop(app) -> int:
    """Gradio guards /queue/join and /queue/data (two requests per gradio_client question) with
    `login_check`, a plain function FastAPI runs in a worker thread for every request, though it only
    compares values. Run the same function on the event loop: same check, same 401, no thread hop.
    Returns how many routes were changed."""
    changed, seen = 0, set()

    def visit_dependant(dependant) -> None:
        nonlocal changed
        for sub in getattr(dependant, "dependencies", None) or []:
            call = getattr(sub, "call", None)
            if getattr(call, "__name__", "") == "login_check" and not inspect.iscoroutinefunction(call):
                def on_loop(check):
                    async def login_check(user: str | None = None):
                        return check(user=user)
                    return login_check
                sub.call = on_loop(call)
                changed += 1
            visit_dependant(sub)

    def visit(routes) -> None:
        for route in routes or []:
            if id(route) in seen:
                continue
            seen.add(id(route))
            visit_dependant(getattr(route, "dependant", None))
            # An included router (FastAPI >= 0.16x) keeps its routes and its own per-route copies.
            visit(getattr(getattr(route, "original_router", None), "routes", None))
            visit(getattr(route, "_effective_candidates", None))

    visit(app.routes)
    return changed


class GivenAnswersFirst:
    """A raw-ASGI layer outside Gradio's app (before its middlewares and FastAPI's routing) for the two
    requests of a gradio_client /ask whose answer was already given, the load test's steady state:
    - POST /gradio_api/queue/join: does what Gradio's cache fast path does for it (see
      _queue_cache_probe; no session state, no Event, no process_api, as the answer is known), queues
      the same process_completed message and returns the same {"event_id": ...};
    - GET /gradio_api/queue/data: when the session's messages that end its stream are all waiting
      already (always, after such a join), sends them at once, as Gradio's stream would one by one,
      without its streaming task group and heartbeat task; then holds the stream open for the session's
      next question (`linger`, LINGER_S) before close_stream.
    Anything else, or anything it is not sure of, goes to Gradio unchanged (the body it read replayed):
    another path or function, a login configured, an Origin header (Gradio's CORS answers those),
    a body that is not a plain JSON /ask of a text question, a question not answered yet, a queue that is
    stopped, full or locked, a stream whose end is not waiting yet. Measured with eval/load_test.py
    (100 gradio_client users x 5 questions, the machine shared, load average 4-12), the app's CPU per
    question: 6.0 ms (median of 14 runs) through Gradio, 3.4 ms (20 runs) with this layer; p50 0.74 -> 0.55 s."""

    JOIN, DATA = "/gradio_api/queue/join", "/gradio_api/queue/data"
    # A stream it sends stays open this long after the session's last answer, for its next question.
    # gradio_client (protocol sse_v3) opens a /queue/data stream for a question only when its previous
    # stream has ended (close_stream), and that stream costs it as much CPU as the question's own POST
    # (a new httpx client and connection each): 5.6 -> 3.2 ms a question for one client asking one
    # question after another. In the 100-user load test the clients, one Python process, are what
    # limits the two cores; 3 alternating pairs (machine load 5): /ask p95 1.48/0.85/1.27 s ->
    # 0.94/0.80/0.95 s, 107-184 -> 182-235 questions/s, 0 errors (0.5 s lingered too briefly:
    # 140-150 questions/s; 2 s no better than 1 s); 10 runs with the machine otherwise idle: p95
    # 0.69-0.91 s. A client that ends without closing waits this long at exit, as its stream's reader
    # thread is joined. Gradio's own stream closes at once.
    LINGER_S = 1.0
    MAX_BODY = 64 * 1024  # a longer body (never an /ask of at most 2,000 characters) goes to Gradio
    BODY_KEYS = frozenset({"data", "fn_index", "session_hash", "event_data", "trigger_id"})

    def __init__(self, inner, demo: gr.Blocks, fn, shared: "SharedAnswers"):
        import orjson
        from gradio.server_messages import CloseStreamMessage, HeartbeatMessage, ProcessCompletedMessage, UnexpectedErrorMessage
        from gradio.utils import get_heartbeat_rate
        from gradio_client.utils import ServerMessage

        self.inner, self.demo, self.fn, self.shared = inner, demo, fn, shared
        self.dumps, self.Completed, self.ServerMessage = orjson.dumps, ProcessCompletedMessage, ServerMessage
        self.close, self.heartbeat = self.sse(CloseStreamMessage()), self.sse(HeartbeatMessage())
        self.Unexpected = UnexpectedErrorMessage
        self.served = collections.Counter()  # requests answered here, "join" and "data" (the tests read it)
        self.lingering = 0  # streams held open now (see linger)
        self.linger_s, self.heartbeat_s = self.LINGER_S, float(get_heartbeat_rate())

    def sse(self, message) -> bytes:
        return b"data: " + self.dumps(message.model_dump(), default=str) + b"\n\n"  # as Gradio's queue_data

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            path = scope["path"]
            if path == self.JOIN and scope["method"] == "POST":
                return await self.join(scope, receive, send)
            if path == self.DATA and scope["method"] == "GET" and await self.data(scope, receive, send):
                return
        await self.inner(scope, receive, send)

    def plain(self, scope, content_type: bytes | None) -> bool:
        """No login to check, no Origin (so Gradio's CORS middleware would add nothing), and the content type."""
        app = self.demo.app
        if app.auth is not None or app.auth_dependency is not None:
            return False
        seen = None
        for name, value in scope["headers"]:
            if name == b"origin":
                return False
            if name == b"content-type":
                seen = value
        return seen == content_type

    async def join(self, scope, receive, send) -> None:
        received, body, event_id = [], b"", None
        if self.plain(scope, b"application/json"):
            while len(body) <= self.MAX_BODY:
                message = await receive()
                received.append(message)
                if message["type"] != "http.request":
                    break
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    try:
                        event_id = self.answer_given(body)
                    except Exception:  # whatever it is, Gradio answers it as before
                        event_id = None
                    break
        if event_id is None:
            async def replay():
                return received.pop(0) if received else await receive()

            return await self.inner(scope, replay, send)
        self.served["join"] += 1
        reply = b'{"event_id":"' + event_id.encode() + b'"}'  # ORJSONResponse's bytes
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"%d" % len(reply)), (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": reply})

    def answer_given(self, body: bytes) -> str | None:
        """The event id of an /ask answered from the answers already given, its message queued, or None."""
        import asyncio
        import time
        import uuid

        request = json.loads(body)
        if type(request) is not dict or not request.keys() <= self.BODY_KEYS:
            return None
        values, session = request.get("data"), request.get("session_hash")
        trigger = request.get("trigger_id")
        if (type(request.get("fn_index")) is not int or request["fn_index"] != self.fn._id
                or type(values) is not list or len(values) != 2 or type(session) is not str or not session
                or request.get("event_data") is not None or not (trigger is None or type(trigger) is int)):
            return None
        question, policy = values
        if type(question) is not str or not (policy is None or type(policy) is str):
            return None
        queue, demo = self.demo._queue, self.demo
        state = demo.state_holder.session_data.get(session)  # a session's own functions (gr.render) differ
        if (queue.stopped or queue.server_app is None or queue.pending_message_lock.locked()
                or (queue.max_size is not None and len(queue) >= queue.max_size)
                or (state is not None and state.blocks_config.fns.get(self.fn._id) is not self.fn)):
            return None
        started = time.time()
        answer = self.shared.given(question, policy)
        if answer is None:
            return None
        fn = self.fn
        duration = time.time() - started
        fn.total_runtime += duration  # as process_api counts a run
        fn.total_runs += 1
        output = {"data": [answer], "is_generating": False, "duration": duration,
                  "average_duration": fn.total_runtime / fn.total_runs, "render_config": None,
                  "changed_state_ids": [], "used_cache": None}
        avg = queue.process_time_per_fn[fn].avg_time if fn in queue.process_time_per_fn else None
        message = self.Completed(output=output, success=True, used_cache="full",
                                 cache_duration=time.time() - started, avg_time=avg)
        event_id = message.event_id = uuid.uuid4().hex
        # Queue.push's bookkeeping for a session and its event (under its lock, checked free above).
        if session not in queue.pending_messages_per_session:
            queue.pending_messages_per_session[session] = asyncio.Queue()
        queue.pending_event_ids_session.setdefault(session, set()).add(event_id)
        queue.pending_messages_per_session[session].put_nowait(message)
        return event_id

    async def data(self, scope, receive, send) -> bool:
        """Send the session's stream when its end is already waiting, then hold it open for the session's next
        question (`linger`); False: Gradio streams it."""
        from urllib.parse import parse_qsl

        if not self.plain(scope, None):
            return False
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)  # as Starlette reads it
        if len(query) != 1 or query[0][0] != "session_hash":
            return False
        session, queue = query[0][1], self.demo._queue
        messages = queue.pending_messages_per_session.get(session)
        pending = queue.pending_event_ids_session.get(session)
        waiting = getattr(messages, "_queue", None)
        if queue.stopped or pending is None or not isinstance(waiting, collections.deque):
            return False
        left, count = set(pending), 0
        for message in waiting:  # where Gradio's stream would end (routes.py, queue_data_helper)
            count += 1
            if isinstance(message, self.Completed) and message.event_id:
                left.discard(message.event_id)
                if message.msg == self.ServerMessage.server_stopped or not left:
                    break
        else:
            return False
        try:
            body = b"".join(self.sse(waiting[i]) for i in range(count))
        except Exception:  # Gradio's stream reports it as its own error message
            return False
        stopped = False
        for _ in range(count):  # taken as Gradio's stream takes them, only now that they are written
            message = messages.get_nowait()
            if isinstance(message, self.Completed) and message.event_id:
                pending.discard(message.event_id)
                stopped = message.msg == self.ServerMessage.server_stopped
        self.served["data"] += 1
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream; charset=utf-8")]})
        if stopped or self.linger_s <= 0:
            await send({"type": "http.response.body", "body": body + self.close})
        else:
            await send({"type": "http.response.body", "body": body, "more_body": True})
            await self.linger(session, messages, receive, send)
        return True

    async def linger(self, session: str, messages, receive, send) -> None:
        """Forward the session's next messages on its open stream (answers given here, or Gradio's queue's
        messages for a new question), as Gradio's stream does, until no question of the session is pending
        and none came for `linger_s` seconds; then close_stream ends it. It also ends on the server stopping
        (Gradio's error message, then close_stream) and when the visitor leaves (the session's events are
        cleaned, as Gradio does)."""
        import asyncio

        queue = self.demo._queue

        async def gone() -> None:  # the request's (empty) body first, then http.disconnect when the visitor goes
            while (await receive())["type"] != "http.disconnect":
                pass

        left = asyncio.ensure_future(gone())
        self.lingering += 1
        try:
            while True:
                if queue.stopped:
                    await send({"type": "http.response.body", "more_body": True,
                                "body": self.sse(self.Unexpected(message="Server stopped unexpectedly.", success=False))})
                    break
                if queue.pending_messages_per_session.get(session) is not messages:
                    break  # the session's messages now go to another queue: the client opens a new stream for them
                pending = queue.pending_event_ids_session.get(session)
                get = asyncio.ensure_future(messages.get())
                done, _ = await asyncio.wait({get, left}, timeout=self.heartbeat_s if pending else self.linger_s,
                                             return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()  # a message not yet taken stays in the queue (asyncio.Queue.get)
                    if left in done:
                        await queue.clean_events(session_hash=session)
                        return
                    if messages.empty():
                        if not queue.pending_event_ids_session.get(session):  # read again: a join may have come
                            break
                        await send({"type": "http.response.body", "body": self.heartbeat, "more_body": True})
                    continue
                message = get.result()
                if isinstance(message, self.Completed) and message.event_id:
                    queue.pending_event_ids_session.get(session, set()).discard(message.event_id)
                try:
                    body = self.sse(message)
                except Exception as e:  # as Gradio's stream: its error message, and the stream ends
                    await send({"type": "http.response.body", "body": self.sse(self.Unexpected(message=str(e)))})
                    return
                await send({"type": "http.response.body", "body": body, "more_body": True})
                if message.msg == self.ServerMessage.server_stopped:
                    break
            await send({"type": "http.response.body", "body": self.close})
        except OSError:  # the connection went while writing (uvicorn's ClientDisconnected)
            await queue.clean_events(session_hash=session)
        finally:
            left.cancel()
            self.lingering -= 1


def _answer_given_questions_first(demo: gr.Blocks) -> GivenAnswersFirst | None:
    """Put GivenAnswersFirst in front of the launched app's middleware stack, when /ask takes Gradio's
    cache fast path (its function has `cache`; see _queue_cache_probe) and run history is off (it would
    record each run). Returns the layer, or None (then Gradio answers everything, as before)."""
    app, shared = getattr(demo, "app", None), getattr(demo, "pq_answers", None)
    fn = next((f for f in demo.fns.values() if f.api_name == "ask" and hasattr(f.fn, "cache")), None)
    if (app is None or shared is None or fn is None or fn.batch or fn.validator is not None
            or getattr(demo, "run_history", True) or _queue_cache_probe() is None
            or isinstance(app.middleware_stack, GivenAnswersFirst)):
        return None
    layer = GivenAnswersFirst(app.middleware_stack or app.build_middleware_stack(), demo, fn, shared)
    app.middleware_stack = layer
    return layer


def launch_app(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = 7860, block: bool = True,
               concurrency: int | None = None, quiet: bool = False):
    """Queue and start the page; `block=False` returns at once (tests, load test). `concurrency`
    (default: $POLICYQA_CONCURRENCY or 4) questions are answered at once; the rest wait in the queue."""
    concurrency = concurrency or int(os.environ.get("POLICYQA_CONCURRENCY") or DEFAULT_CONCURRENCY)
    demo.queue(default_concurrency_limit=concurrency, max_size=QUEUE_MAX, status_update_rate=STATUS_EVERY_S)
    if getattr(demo, "pq_answers", None) is not None:
        demo.pq_answers.limiter.total_tokens = concurrency
    # Gradio's per-question overhead, cut where it costs without changing what any request returns
    # (profiled under eval/load_test.py, 100 users): see each function.
    _analytics_summary_without_thread_hop()
    _cache_block_signatures(demo)
    _session_configs_on_demand()
    _queue_errors_without_inputs()
    try:
        launched = demo.launch(
            server_name=host, server_port=port, prevent_thread_lock=True, share=False, inbrowser=False,
            show_error=False, quiet=quiet, ssr_mode=False, run_history=False, mcp_server=False,
            footer_links=["api"], max_file_size=getattr(demo, "pq_max_upload", "1mb"), css=PAGE_CSS, enable_monitoring=False, theme=theme(),
        )
    except OSError as e:  # the port is taken, or the address is not this machine's
        from index.errors import UsageError

        raise UsageError(f"cannot serve on {host}:{port} ({str(e).split('. ')[0]}); choose another --port or --host") from None
    _login_check_on_event_loop(demo.app)
    if _queue_cache_probe() is not None:
        _finish_events_answered_in_join(demo._queue)
        demo.pq_first = _answer_given_questions_first(demo)
    if getattr(demo, "pq_holder", None) is not None:
        mount_json_api(demo, demo.pq_holder, concurrency)
    # Everything loaded so far (Gradio, the engine, the index: ~230,000 objects) lives as long as the
    # server. Left to the garbage collector, each full collection walks all of it (~140 ms measured on
    # the busy 2 cores), stalling every request in flight; frozen, collections see only new objects.
    gc.collect()
    gc.freeze()
    if block:
        demo.block_thread()
    return launched


def theme() -> gr.themes.Base:
    """The default look with the visitor's own system fonts: the page loads nothing from other sites."""
    return gr.themes.Default(
        font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    )


def single_threaded_inference() -> None:
    """One thread per question inside torch and FAISS. The page answers several questions at once
    (the queue's concurrency); letting each also split across both cores makes OpenMP threads fight:
    measured on 2 busy cores, 160 ms a question with 2 threads against 15 ms with 1."""
    try:
        import torch

        torch.set_num_threads(1)
    except Exception:  # torch missing or already initialised its pool: keep its default
        pass
    try:
        import faiss

        faiss.omp_set_num_threads(1)
    except Exception:
        pass


def serve(index_dir=None, host: str = "127.0.0.1", port: int = 7860, model: str | None = None, block: bool = True,
          allow_add: bool = True):
    """Load the engine once (building the default index on first use), warm it, start the page.
    `allow_add`: the "Add a policy" panel, which adds to the index at `index_dir` (or the default one)."""
    directory = Path(index_dir) if index_dir else default_index_dir()
    engine = open_engine(Path(index_dir) if index_dir else None, model)
    single_threaded_inference()
    engine.ask("can I delete my data?")  # the first ask pays one-off model warm-up; not a visitor
    print(f"PolicyQA: {len(engine.index.policies)} policies loaded; open http://{host}:{port}", file=sys.stderr, flush=True)
    if allow_add:
        print(f"PolicyQA: \"Add a policy\" is on: visitors can add policies to the index at {directory} "
              "and replace those added on the page, never the others (--no-add-policy turns it off)", file=sys.stderr, flush=True)
    else:
        print("PolicyQA: \"Add a policy\" is off" + ("" if host in ("127.0.0.1", "localhost", "::1") else
              f" because the page listens on {host}, not only this machine (--allow-add-policy turns it on)"),
              file=sys.stderr, flush=True)
    holder = EngineHolder(engine, directory)
    return launch_app(build_app(holder, allow_add=allow_add), host=host, port=port, block=block)


def main(argv: list[str] | None = None) -> int:
    from index.errors import PolicyQAError
    from qa.options import serve_parser
    from qa.options import page_may_add

    args = serve_parser().parse_args(argv)
    try:
        serve(index_dir=args.index, host=args.host, port=args.port, model=args.model,
              allow_add=page_may_add(args.host, args.allow_add_policy, args.no_add_policy))
    except PolicyQAError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
