"""Which sites a question is about, read the way people mean it across a conversation.

- A question that names sites is about those ("what about en Japan?" narrows to en Japan), unless it
  adds to the sites asked about before ("and JapanWork?", "JapanWork too?").
- A question that asks across sites ("which of these sites…", "any of them", "all sites", "the others",
  "compare") is about every site, even right after a question about one.
- Any other question carries on with the sites of the question before it; the first one naming none
  is about every site.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from qa.resolve import resolve_policies

_SITES = r"(?:job\s+)?(?:sites|websites|platforms|policies)"
_SITE = r"(?:job\s+)?(?:site|website|platform|company|policy)"
# Asking across sites. "them/these/those" alone refer to the sites just discussed (see _REFERS_BACK).
# "companies" only counts with "all/these/those" ("which companies does it share with?" asks for recipients).
_ACROSS = re.compile(
    rf"\b(?:any|all|each|every|which|both|none|either|neither|most|some)\s+(?:one\s+)?of\s+(?:them|you|(?:these|those)(?:\s+(?:other\s+)?(?:{_SITES}|companies))?|the\s+(?:other\s+)?(?:{_SITES}|companies))\b"
    rf"|\b(?:all|any|which|what|these|those|the|both)\s+(?:of\s+the\s+)?(?:other\s+)?{_SITES}\b"
    rf"|\b(?:all|these|those|both)\s+(?:of\s+the\s+)?(?:job\s+)?companies\b"
    rf"|\b(?:every|each)\s+{_SITE}\b|\bany\s+(?:job\s+)?(?:site|website|platform)\b"
    r"|\bthe\s+others\b|\bthe\s+rest\b|\bcompar(?:e|es|ed|ing|ison|isons)\b|\bside\s+by\s+side\b|\bdiffer\w*\s+(?:between|among)\b"
    # the same in Japanese: どのサイト, 各サイト, すべてのサイト, 他のサイト, 比較, それぞれ
    r"|どの(?:サイト|会社|企業|サービス)|(?:各|全|すべての|全ての|他の|ほかの)(?:サイト|会社|企業|サービス)|比較|比べ|それぞれ",
    re.I,
)
# After a question naming a site, these still mean "every site" ("how does JapanWork compare with the others?").
_ALL_SITES = re.compile(r"\b(?:the\s+others|the\s+rest|the\s+other\s+(?:job\s+)?sites|all\s+(?:the\s+|these\s+)?(?:job\s+)?sites"
                        r"|every\s+(?:job\s+)?site|each\s+(?:job\s+)?site)\b|(?:他の|ほかの|すべての|全ての|各)サイト", re.I)
# "any of them", "which of these" point back at the sites just asked about when those were several.
_REFERS_BACK = re.compile(r"\b(?:any|all|each|which|both|none|either|neither|most|some)\s+(?:one\s+)?of\s+(?:them|these|those)\b(?!\s+" + _SITES + ")", re.I)
# "and JapanWork?", "JapanWork too", "also en Japan", "what about JACCES as well?" add to the sites before.
_ADDS = re.compile(r"^\s*(?:and|also|plus)\b(?!\s+(?:what|how)\s+about\b)|\b(?:too|as\s+well|also|plus)\b", re.I)
# Words that point back at the previous question's topic ("that", "it", "them").
_ANAPHOR = re.compile(r"\b(?:it|its|that|this|those|these|they|them|their|there|same|so)\b", re.I)


@dataclass(frozen=True)
class Scope:
    policies: tuple[str, ...]  # ids in scope, in order of mention; () = every site
    spans: tuple[tuple[int, int], ...]  # where the question names them
    reason: str  # why, in words the page can show
    across: bool = False  # the question itself asks across sites


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def asks_across(question: str) -> bool:
    return bool(_ACROSS.search(_norm(question)))


def without_across_words(question: str) -> str:
    """The question without its "which of these sites" words: what is left says what is asked."""
    return " ".join(_ACROSS.sub(" ", _norm(question)).split())


def refers_back(question: str) -> bool:
    """Whether the question leans on the one before ("do they charge for that?")."""
    return bool(_ANAPHOR.search(without_across_words(question)))


def _step(question: str, previous: tuple[str, ...] | None, patterns) -> Scope:
    named, spans = resolve_policies(question, patterns)
    text = _norm(question)
    across = bool(_ACROSS.search(text))
    if named:
        if previous and _ADDS.search(text) and not across:
            merged = tuple(dict.fromkeys([*previous, *named]))
            return Scope(merged, tuple(spans), "named in your question, added to the sites asked about before")
        if _ALL_SITES.search(text):
            return Scope((), tuple(spans), "every site: your question compares it with the others", True)
        return Scope(tuple(named), tuple(spans), "named in your question")
    if across:
        if previous and len(previous) > 1 and _REFERS_BACK.search(text):
            return Scope(previous, (), "the sites of your earlier question")
        return Scope((), (), "every site: your question asks across sites", True)
    if previous is not None:
        if not previous:
            return Scope((), (), "every site, as in your earlier question")
        return Scope(previous, (), "from your earlier question")
    return Scope((), (), "every site: your question names none")


def conversation_scope(question: str, history: list[str], patterns) -> Scope:
    """The scope of `question` after the `history` questions (oldest first), folding turn by turn."""
    previous: tuple[str, ...] | None = None
    for earlier in history:
        previous = _step(earlier, previous, patterns).policies
    return _step(question, previous, patterns)
