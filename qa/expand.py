"""Query expansion from job seekers' words to the words privacy policies use.

People ask "can they sell/share/give my info"; policies say "provide personal information to a third
party". A small, explicit thesaurus bridges the two for the lexical ranker and the encoder alike;
it adds terms, never removes any, so a question the thesaurus does not know is searched as asked.

The entries were first written from our own dev questions; each one kept here earns its place on
questions it was not written from (PolicyQA's, answered k-fold by policy) or, where none of those
matches it, on own dev questions answered by encoders that did not see them; entries that lost answers
or changed none were removed and over-broad words narrowed (`python -m eval.thesaurus_audit --folds DIR`,
eval/reports/thesaurus_audit.md).
"""
from __future__ import annotations

import re

# (pattern over the question, policy vocabulary it stands for)
THESAURUS: list[tuple[str, str]] = [
    (r"\b(shar\w*|sell\w*|sold|give\w*|gave|hand(s|ed|ing)? over|pass(es|ed|ing)? (on|along)|sen[dt]\w*|transfer\w*)\b", "provide provision third party disclose"),
    (r"\b(partners?|other compan(y|ys|ies)|outside)\b", "third party partner companies"),
    (r"\b(delet\w*|eras\w*|remov\w*|wipe\w*|get rid)\b", "deletion delete suspension removal"),
    (r"\b(fix|wrong|incorrect|mistake|change my|correct)\b", "correction correct amendment"),
    (r"\b(see|show|copy|access|what data|what info|know what)\b.*\b(data|info|information|have)\b", "disclosure request"),
    (r"\b(complain\w*|email them|write to|ask them)\b", "contact inquiries complaints"),
    (r"(?<!email )(?<!e-mail )(?<!ip )\b(address|where are they|office|located)\b", "address office postal"),
    (r"\b(safe\w*|secur\w*|hack\w*|leak\w*|breach\w*|stolen|protect\w*)\b", "security measures leakage unauthorized access protection"),
    (r"\b(merg\w*|bought|acquir\w*|sold|takeover|organi[sz]ation)\b", "merger business succession transfer"),
    (r"\b(contractors?|outsourc\w*|vendors?|subcontract\w*)\b", "outsource entrust service providers"),
    (r"\b(track\w*|follow\w*|watch\w*|monitor\w*|analytic\w*|brows\w*)\b", "cookies access history information gathering module analyze"),
    (r"\b(ads?|advertis\w*|marketing)\b", "advertisements behavioral targeting"),
    (r"\b(change|changes|update|updated|revise|amend)\b.*\b(policy|rules|terms)\b", "changes amendment revision review"),
    (r"\b(law|laws|legal|legally|comply|complies)\b", "Personal Information Protection Act laws regulations comply"),
    (r"\b(sign\w* up|regist\w*|creat\w* an account|join\w*|enrol\w*)\b", "registration register registered"),
    (r"\b(have to|must|required|mandatory|optional|voluntary|refuse to give)\b", "voluntary"),
    (r"\b(liable|responsib\w*|blame|damages?)\b", "liable responsibility damages disclaimer"),
    (r"\b(stop\w*|quit\w*|halt\w*)\b", "suspension suspend discontinue cease opt-out disable"),
    (r"\b(stuck|bound|accept\w*|agree\w*)\b", "agree agreed deemed acceptance consent"),
]
_COMPILED = [(re.compile(p, re.I), terms) for p, terms in THESAURUS]


def expand(question: str) -> str:
    """Policy-vocabulary terms the question's own words stand for (empty if none)."""
    added: list[str] = []
    for pattern, terms in _COMPILED:
        if pattern.search(question):
            added.extend(t for t in terms.split() if t not in added)
    return " ".join(added)


def matched_expansions(question: str) -> list[tuple[str, str]]:
    """(words of the question, policy vocabulary they stand for) for every thesaurus match."""
    return [(m.group(0), terms) for pattern, terms in _COMPILED for m in pattern.finditer(question)]
