"""Compose the answer a person reads: quotes from the cited clauses, never more than they say."""
from __future__ import annotations

from index.types import Citation, Policy


def display_name(policy: Policy) -> str:
    if policy.service and policy.service != policy.company and policy.company not in policy.service:
        return f"{policy.service} ({policy.company})"
    return policy.company or policy.service or policy.id


def short_name(policy: Policy) -> str:
    return policy.aliases[0] if policy.aliases else (policy.service or policy.company or policy.id)


def _quote(text: str) -> str:
    return "“" + " ".join(text.split()) + "”"


SECOND_QUOTE_MARGIN = 0.15  # a second clause this close in score to the first is quoted too


# The answer's own words, by the question's language; the quotes stay verbatim English in both (they
# are the evidence: a translation would say more, or less, than the clause does).
PHRASES = {
    "en": {
        "sep": ", ", "all": "any indexed",
        "no_text": "No policy text could be searched for this question (policies: {names}).",
        "abstain_one": "The {name} policy does not say anything that answers this.",
        "abstain_many": "The policies do not say anything that answers this.",
        "abstain_tail": " The closest clauses are shown for you to check {marks}.",
        "first": "{display}, {section}: {quote} [{n}]",
        "also": "It also says, in {section}: {quote} [{n}]",
        "see_also": "See also {refs}.",
        "each": "What each policy says:",
        "item": "{display}, {section}: {quote} [{n}]",
        "row_silent": "{display}: does not say (closest: {section} [{n}])", "untitled": "an untitled clause",
        "none_say": "None of the {sites} policies says anything that answers this. The closest clause of each is shown for you to check:",
        "some_say": "What each policy says ({answered} of {sites} address this):",
        "unshown": "… and {unshown} more {policies} not shown (ask about one by name).",
    },
    "ja": {
        "sep": "、", "all": "登録されているすべてのポリシー",
        "no_text": "この質問で検索できるポリシーの本文がありませんでした（対象: {names}）。",
        "abstain_one": "{name}のポリシーには、この質問に答える記載がありません。",
        "abstain_many": "これらのポリシーには、この質問に答える記載がありません。",
        "abstain_tail": "近い条項を示しますので、ご自身でも確かめてください {marks}。",
        "first": "{name}のプライバシーポリシーには次のように書かれています（{section}）:\n{quote} [{n}]",
        "also": "また、{section}には次のようにあります: {quote} [{n}]",
        "see_also": "関連する条項: {refs}",
        "each": "各ポリシーの記載:",
        "item": "{display}（{section}）: {quote} [{n}]",
        "row_silent": "{display}: 記載なし（最も近い条項: {section} [{n}]）", "untitled": "見出しのない条項",
        "none_say": "{sites}件のどのポリシーにも、この質問に答える記載がありません。各ポリシーの最も近い条項を示しますので、ご自身でも確かめてください:",
        "some_say": "各ポリシーの記載（{sites}件中{answered}件に記載あり）:",
        "unshown": "…ほか{unshown}件のポリシーは表示していません（名前を挙げて質問してください）。",
    },
}


def compose_answer(citations: list[Citation], policies: dict[str, Policy], scope: list[str], abstained: bool,
                   language: str = "en") -> str:
    """Answer text with [n] markers. `scope` is the policies the question was resolved to; `language`
    ("en" or "ja") is the language of the answer's own words."""
    say = PHRASES[language]
    if not citations:
        names = say["sep"].join(short_name(policies[p]) for p in scope) if scope else say["all"]
        return say["no_text"].format(names=names)
    if abstained:
        marks = "".join(f"[{c.n}]" for c in citations)
        if len(scope) == 1:
            lead = say["abstain_one"].format(name=short_name(policies[scope[0]]))
        else:
            lead = say["abstain_many"]
        return lead + say["abstain_tail"].format(marks=marks)
    by_policy: dict[str, list[Citation]] = {}
    for c in citations:
        by_policy.setdefault(c.policy_id, []).append(c)

    def line(key: str, c: Citation) -> str:
        policy = policies[c.policy_id]
        return say[key].format(display=display_name(policy), name=short_name(policy), section=c.section,
                               quote=_quote(c.highlight), n=c.n)

    if len(by_policy) == 1:
        first = citations[0]
        lines = [line("first", first)]
        rest = [c for c in citations[1:] if c.policy_id == first.policy_id]
        if rest and rest[0].score >= first.score - SECOND_QUOTE_MARGIN and rest[0].highlight != first.highlight:
            lines.append(line("also", rest[0]))
            rest = rest[1:]
        if rest:
            lines.append(say["see_also"].format(refs=say["sep"].join(f"{c.section} [{c.n}]" for c in rest)))
        return "\n".join(lines)
    return say["each"] + "\n" + "\n".join(f"• {line('item', cs[0])}" for cs in by_policy.values())


def compose_comparison(citations: list[Citation], rows: list, policies: dict[str, Policy], unshown: int = 0,
                       language: str = "en") -> str:
    """Answer across sites: one line per site (`rows`: index.types.SiteRow), its quoted sentence or
    that its policy does not say, and how many sites in scope were left out."""
    say = PHRASES[language]
    by_n = {c.n: c for c in citations}
    answered = [r for r in rows if not r.abstained]
    lines = []
    for row in rows:
        top = by_n[row.citations[0]]
        display = display_name(policies[row.policy_id])
        if row.abstained:
            lines.append(say["row_silent"].format(display=display, section=top.section or say["untitled"], n=top.n))
        else:
            lines.append(say["item"].format(display=display, section=top.section, quote=_quote(top.highlight), n=top.n))
    if not answered:
        lead = say["none_say"].format(sites=len(rows))
    elif len(answered) == len(rows):
        lead = say["each"]
    else:
        lead = say["some_say"].format(answered=len(answered), sites=len(rows))
    text = lead + "\n" + "\n".join(f"• {line}" for line in lines)
    if unshown:
        text += "\n" + say["unshown"].format(unshown=unshown, policies="policy" if unshown == 1 else "policies")
    return text
