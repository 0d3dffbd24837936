"""The answer's own words in Japanese, for a question asked in Japanese. The quotes stay verbatim
English: they are the evidence, and a translation would say more (or less) than the clause does."""
from __future__ import annotations

from index.types import Citation, Policy
from qa.compose import SECOND_QUOTE_MARGIN, _quote, display_name, short_name


def compose_answer_ja(citations: list[Citation], policies: dict[str, Policy], scope: list[str], abstained: bool) -> str:
    """Answer text with [n] markers, as qa.compose.compose_answer, its framing in Japanese."""
    if not citations:
        names = "、".join(short_name(policies[p]) for p in scope) if scope else "登録されているすべてのポリシー"
        return f"この質問で検索できるポリシーの本文がありませんでした（対象: {names}）。"
    if abstained:
        marks = "".join(f"[{c.n}]" for c in citations)
        if len(scope) == 1:
            lead = f"{short_name(policies[scope[0]])}のポリシーには、この質問に答える記載がありません。"
        else:
            lead = "これらのポリシーには、この質問に答える記載がありません。"
        return f"{lead}近い条項を示しますので、ご自身でも確かめてください {marks}。"
    by_policy: dict[str, list[Citation]] = {}
    for c in citations:
        by_policy.setdefault(c.policy_id, []).append(c)
    if len(by_policy) == 1:
        first = citations[0]
        lines = [f"{short_name(policies[first.policy_id])}のプライバシーポリシーには次のように書かれています（{first.section}）:",
                 f"{_quote(first.highlight)} [{first.n}]"]
        rest = [c for c in citations[1:] if c.policy_id == first.policy_id]
        if rest and rest[0].score >= first.score - SECOND_QUOTE_MARGIN and rest[0].highlight != first.highlight:
            lines.append(f"また、{rest[0].section}には次のようにあります: {_quote(rest[0].highlight)} [{rest[0].n}]")
            rest = rest[1:]
        if rest:
            lines.append("関連する条項: " + "、".join(f"{c.section} [{c.n}]" for c in rest))
        return "\n".join(lines)
    lines = [f"• {display_name(policies[pid])}（{cs[0].section}）: {_quote(cs[0].highlight)} [{cs[0].n}]" for pid, cs in by_policy.items()]
    return "各ポリシーの記載:\n" + "\n".join(lines)
