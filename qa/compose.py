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


def compose_answer(citations: list[Citation], policies: dict[str, Policy], scope: list[str], abstained: bool) -> str:
    """Answer text with [n] markers. `scope` is the policies the question was resolved to."""
    if not citations:
        names = ", ".join(short_name(policies[p]) for p in scope) if scope else "any indexed"
        return f"No policy text could be searched for this question (policies: {names})."
    if abstained:
        marks = "".join(f"[{c.n}]" for c in citations)
        if len(scope) == 1:
            lead = f"The {short_name(policies[scope[0]])} policy does not say anything that answers this."
        else:
            lead = "The policies do not say anything that answers this."
        return f"{lead} The closest clauses are shown for you to check {marks}."
    by_policy: dict[str, list[Citation]] = {}
    for c in citations:
        by_policy.setdefault(c.policy_id, []).append(c)
    lines = []
    for policy_id, cs in by_policy.items():
        top = cs[0]
        lines.append(f"{display_name(policies[policy_id])}, {top.section}: {_quote(top.highlight)} [{top.n}]")
    if len(by_policy) == 1:
        rest = [c for c in citations[1:] if c.policy_id == citations[0].policy_id]
        if rest and rest[0].score >= citations[0].score - SECOND_QUOTE_MARGIN and rest[0].highlight != citations[0].highlight:
            lines.append(f"It also says, in {rest[0].section}: {_quote(rest[0].highlight)} [{rest[0].n}]")
            rest = rest[1:]
        if rest:
            lines.append("See also " + ", ".join(f"{c.section} [{c.n}]" for c in rest) + ".")
        return "\n".join(lines)
    return "What each policy says:\n" + "\n".join(f"• {line}" for line in lines)


def compose_comparison(citations: list[Citation], rows: list, policies: dict[str, Policy], unshown: int = 0) -> str:
    """Answer across sites: one line per site (`rows`: index.types.SiteRow), its quoted sentence or
    that its policy does not say, and how many sites in scope were left out."""
    by_n = {c.n: c for c in citations}
    answered = [r for r in rows if not r.abstained]
    lines = []
    for row in rows:
        top = by_n[row.citations[0]]
        name = display_name(policies[row.policy_id])
        if row.abstained:
            lines.append(f"{name}: does not say (closest: {top.section or 'an untitled clause'} [{top.n}])")
        else:
            lines.append(f"{name}, {top.section}: {_quote(top.highlight)} [{top.n}]")
    if not answered:
        lead = (f"None of the {len(rows)} policies says anything that answers this. "
                "The closest clause of each is shown for you to check:")
    elif len(answered) == len(rows):
        lead = "What each policy says:"
    else:
        lead = f"What each policy says ({len(answered)} of {len(rows)} address this):"
    text = lead + "\n" + "\n".join(f"• {line}" for line in lines)
    if unshown:
        text += f"\n… and {unshown} more {'policy' if unshown == 1 else 'policies'} not shown (ask about one by name)."
    return text
