"""An answer across sites as a table: one row per site (what its policy says, or that it does not say)."""
from __future__ import annotations

import textwrap
import unicodedata
from dataclasses import dataclass

from index.types import Answer, Policy
from qa.compose import short_name


# The table's own words follow the question's language (Answer.language); the quotes stay English.
WORDS = {
    "en": {"site": "Site", "says": "What the policy says", "source": "Source", "silent": "Does not say.",
           "closest": " (closest: {section})", "untitled": "an untitled clause"},
    "ja": {"site": "サイト", "says": "ポリシーの記載（原文）", "source": "出典", "silent": "記載なし。",
           "closest": "（最も近い条項: {section}）", "untitled": "見出しのない条項"},
}


@dataclass(frozen=True)
class ComparisonRow:
    policy_id: str
    site: str  # the name a reader knows the site by
    says: str  # the quoted sentence of its best clause, or that the policy does not say
    abstained: bool
    numbers: tuple[int, ...]  # the [n] of its citations, best first


def comparison_rows(answer: Answer, policies: dict[str, Policy]) -> list[ComparisonRow]:
    """The rows of an answer across sites (none for an answer about one site)."""
    by_n = {c.n: c for c in answer.citations}
    words = WORDS.get(answer.language, WORDS["en"])
    rows = []
    for row in answer.by_policy:
        policy = policies.get(row.policy_id)
        site = short_name(policy) if policy else row.company or row.policy_id
        top = by_n.get(row.citations[0]) if row.citations else None
        if row.abstained or top is None:
            closest = words["closest"].format(section=top.section or words["untitled"]) if top is not None else ""
            says = words["silent"] + closest
        else:
            says = "“" + " ".join(top.highlight.split()) + "”"
        rows.append(ComparisonRow(row.policy_id, site, says, row.abstained, tuple(row.citations)))
    return rows


def not_shown(answer: Answer) -> int:
    """Sites in scope left out of the table (beyond the engine's limit)."""
    return max(0, len(answer.policies) - len(answer.by_policy)) if answer.by_policy else 0


def _cells(text: str) -> int:  # terminal columns: CJK characters take two
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _cells(text))


def _wrap(text: str, width: int) -> list[str]:
    if _cells(text) == len(text):
        return textwrap.wrap(text, width) or [""]
    lines, line = [], ""  # wide characters: cut by columns, not by spaces
    for ch in text:
        if _cells(line + ch) > width:
            lines.append(line)
            line = ""
        line += ch
    return lines + [line]


def text_table(rows: list[ComparisonRow], width: int = 100, language: str = "en") -> str:
    """site | what the policy says | [n], the middle column wrapped to fit `width` terminal columns."""
    words = WORDS.get(language, WORDS["en"])
    site_w = min(max([_cells(r.site) for r in rows] + [4]), 30)
    refs = [" ".join(f"[{n}]" for n in r.numbers) for r in rows]
    ref_w = max([len(x) for x in refs] + [6])
    says_w = max(30, width - site_w - ref_w - 6)
    lines = [f"{_pad(words['site'], site_w)} | {_pad(words['says'], says_w)} | {words['source']}",
             f"{'-' * site_w}-+-{'-' * says_w}-+-{'-' * ref_w}"]
    for row, ref in zip(rows, refs):
        site_lines = _wrap(row.site, site_w)
        says_lines = _wrap(row.says, says_w)
        for i in range(max(len(site_lines), len(says_lines))):
            site = site_lines[i] if i < len(site_lines) else ""
            says = says_lines[i] if i < len(says_lines) else ""
            lines.append(f"{_pad(site, site_w)} | {_pad(says, says_w)} | {ref if i == 0 else ''}".rstrip())
    return "\n".join(lines)
