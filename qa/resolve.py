"""Which policies a question is about, from the company and service names it uses."""
from __future__ import annotations

import re
import unicodedata

from index.types import Policy


def normalise(text: str) -> str:
    """Case-, width- and spacing-insensitive form: "Japan Work", "JAPANWORK" and "japan-work" agree."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[\s\-_.,・]+", "", text)


_JAPANESE_NAME = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


def _name_pattern(name: str) -> re.Pattern:
    # Allow any spacing/hyphenation between the letters of a name, but demand word edges so that
    # "en japan" does not fire inside "open japanese" (nor "ガイジンプール" inside a longer katakana word;
    # Japanese has no spaces, so a kanji or hiragana neighbour is an edge).
    core = r"[\s\-_.・]*".join(re.escape(ch) for ch in normalise(name))
    return re.compile(rf"(?<![a-z0-9\u30a1-\u30fa\u30fc]){core}(?![a-z0-9\u30a1-\u30fa\u30fc])")


def name_patterns(policies: dict[str, Policy]) -> list[tuple[re.Pattern, str, str]]:
    """(pattern, policy id, name) for every name, longest first."""
    rows = []
    for policy in policies.values():
        for name in policy.names():
            # Three letters make a Latin-script name; two kana or kanji already do ("楽天").
            if len(normalise(name)) >= (2 if _JAPANESE_NAME.search(name) else 3):
                rows.append((_name_pattern(name), policy.id, name))
    return sorted(rows, key=lambda r: -len(r[2]))


def resolve_policies(question: str, patterns: list[tuple[re.Pattern, str, str]]) -> tuple[list[str], list[tuple[int, int]]]:
    """Policy ids named in the question (in order of mention) and the spans of the names."""
    text = unicodedata.normalize("NFKC", question).casefold()
    found: dict[str, int] = {}
    spans: list[tuple[int, int]] = []
    for pattern, policy_id, _ in patterns:
        for m in pattern.finditer(text):
            if any(s <= m.start() < e for s, e in spans):
                continue  # inside a longer name already matched
            spans.append((m.start(), m.end()))
            found.setdefault(policy_id, m.start())
            found[policy_id] = min(found[policy_id], m.start())
    return sorted(found, key=found.get), sorted(spans)


def strip_names(question: str, spans: list[tuple[int, int]]) -> str:
    """The question without the company names (they say which policy, not what is asked)."""
    text = unicodedata.normalize("NFKC", question)
    if len(text) != len(text.casefold()):
        return text
    for s, e in reversed(spans):
        text = text[:s] + " " + text[e:]
    return " ".join(text.split())
