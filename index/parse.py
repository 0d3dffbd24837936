"""Split a policy text into clauses with their heading path, keeping character offsets.

Policies come in a few layouts, detected per document:
- "clause":     `Clause 3 (Purpose of use)` (or `Article 3 (…)`, `Section 3 (…)`) headings with `1.` items
- "numbered":   `5. Provision of Personal Information` headings (a heading may break over two lines)
                with `(1)` items and `a)`/`A.`/`(i)`/`・` sub-items; a numbered sentence with no title
                is a section named by its number
- "unnumbered": short title lines (`Third Party Disclosure of Personal Information`) followed by body
Markdown `#` headings count as top-level headings in any layout.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from index.types import Clause

CLAUSE_HEADING = re.compile(r"^\s*(?:Clause|Article|Section)\s+\d+\s*\(.*\)\s*$")
NUMBERED = re.compile(r"^\s*(\d{1,2})\.\s*(\S.*?)\s*$")
MARKDOWN_HEADING = re.compile(r"^\s*#{1,6}\s+(\S.*?)\s*#*\s*$")
# Primary items start a clause of their own; secondary ones belong to the primary item they follow.
PRIMARY_ITEM = re.compile(r"^\s*(?:\((\d{1,2})\)|(\d{1,2})\.(?!\d))")
SECONDARY_ITEM = re.compile(r"^\s*(?:(\((?:[ivx]{1,5})\))|([a-zA-Z])[.)](?=\s)|([・•]))")
TRAILING_PUNCTUATION = ".:;,。、"
CONTINUED_BY = {"of", "for", "and", "or", "the", "to", "in", "on", "with", "regarding", "by", "a", "an", "at"}
PREAMBLE = "Preamble"


@dataclass
class _Line:
    start: int
    end: int
    text: str

    @property
    def stripped(self) -> str:
        return self.text.strip()


def _lines(text: str) -> list[_Line]:
    lines, pos = [], 0
    for raw in text.split("\n"):
        lines.append(_Line(pos, pos + len(raw), raw))
        pos += len(raw) + 1
    return lines


def _title_like(s: str, max_len: int = 130) -> bool:
    s = s.strip()
    return (
        0 < len(s) <= max_len
        and s[-1] not in TRAILING_PUNCTUATION
        and s[0].isalpha()
        and len(s.split()) <= 18
        and "@" not in s
    )


def detect_layout(text: str) -> str:
    lines = text.split("\n")
    if sum(bool(CLAUSE_HEADING.match(l)) for l in lines) >= 2:
        return "clause"
    numbered_titles = sum(bool((m := NUMBERED.match(l)) and _title_like(m.group(2))) for l in lines)
    return "numbered" if numbered_titles >= 3 else "unnumbered"


def _next_nonblank(lines: list[_Line], i: int) -> int | None:
    for j in range(i + 1, len(lines)):
        if lines[j].stripped:
            return j
    return None


def _unnumbered_heading(lines: list[_Line], i: int) -> bool:
    s = lines[i].stripped
    if not _title_like(s, max_len=80) or re.search(r":(?!//)", s) or PRIMARY_ITEM.match(s) or SECONDARY_ITEM.match(s):
        return False
    j = _next_nonblank(lines, i)
    # A heading introduces body text; a run of short lines is a list or an address block.
    return j is not None and len(lines[j].stripped) > 80


def _item_label(s: str, match: re.Match, layout: str) -> str:
    if layout == "clause" and _title_like(s[match.end() - (len(s) - len(s.lstrip())):], max_len=80):
        return " ".join(s.split())  # titled item, e.g. "1. About cookies and localStorage"
    if match.group(2):
        return match.group(2)  # "2." is cited as "› 2"
    return match.group(0).strip()  # "(1)" as written


def parse_clauses(text: str, policy_id: str) -> list[Clause]:
    """Every clause of the policy, in order, with its heading path and body offsets in `text`."""
    layout = detect_layout(text)
    lines = _lines(text)
    clauses: list[Clause] = []
    top: tuple[str, ...] = ()
    current: list | None = None  # [section, start, end, is_primary_item]
    expected_number = 1
    bullets = 0

    def close() -> None:
        nonlocal current
        if current and current[2] > current[1]:
            clauses.append(Clause(policy_id, current[0], current[1], current[2]))
        current = None

    def open_clause(section: tuple[str, ...], start: int, primary: bool) -> None:
        nonlocal current
        close()
        current = [section, start, start, primary]

    first = _next_nonblank(lines, -1)
    i = 0
    if first is not None and _title_like(lines[first].stripped, 60) and not re.search(r"\d", lines[first].text):
        # A title line ("Privacy Policy") names the preamble instead of being part of it.
        top = (" ".join(lines[first].stripped.split()),)
        i = first + 1
    else:
        top = (PREAMBLE,)
    while i < len(lines):
        line = lines[i]
        s = line.stripped
        if not s:
            i += 1
            continue
        heading: str | None = None
        heading_is_body = False
        if m := MARKDOWN_HEADING.match(line.text):
            heading = m.group(1)
        elif layout == "clause" and CLAUSE_HEADING.match(line.text):
            heading = s
        elif layout == "numbered" and (m := NUMBERED.match(line.text)) and int(m.group(1)) == expected_number:
            expected_number += 1
            if _title_like(m.group(2)):
                heading = s
                j = _next_nonblank(lines, i)
                last_word = s.split()[-1].lower()
                if j is not None and last_word in CONTINUED_BY and lines[j].stripped[:1].islower() \
                        and _title_like(lines[j].stripped, 80):
                    heading = f"{s} {lines[j].stripped}"
                    i = j
            else:
                heading, heading_is_body = m.group(1), True
        elif layout == "unnumbered" and _unnumbered_heading(lines, i):
            heading = s
        if heading is not None:
            close()
            top = (" ".join(heading.split()),)
            bullets = 0
            if heading_is_body:
                open_clause(top, line.start, primary=False)
                current[2] = line.end
            i += 1
            continue
        if m := PRIMARY_ITEM.match(line.text):
            open_clause(top + (_item_label(s, m, layout),), line.start + len(line.text) - len(line.text.lstrip()), True)
        elif (m := SECONDARY_ITEM.match(line.text)) and not (current and current[3]):
            bullets += 1
            label = f"・{bullets}" if m.group(3) else m.group(0).strip()
            open_clause(top + (label,), line.start + len(line.text) - len(line.text.lstrip()), False)
        elif current is None:
            open_clause(top, line.start + len(line.text) - len(line.text.lstrip()), False)
        current[2] = line.start + len(line.text.rstrip())
        i += 1
    close()
    return clauses
