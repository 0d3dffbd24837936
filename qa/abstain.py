"""Does a policy address the question at all? Judged from coverage, not from similarity alone.

Cosine similarity cannot tell "does en Japan use AI to score my video interview?" (not addressed)
from "who watches my video interview?" (addressed): both land near the video-interview clause.
What differs is coverage: how many of the question's own key words (or the policy words the
thesaurus maps them to) occur anywhere in the policies asked about.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from index.lexical import tokenize
from index.store import StoredIndex
from qa.expand import matched_expansions


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Stemmed English stop words: a question's meaning is in its other words."""
    lines = Path(__file__).with_name("stopwords.txt").read_text(encoding="utf-8").splitlines()
    words = [w for line in lines if not line.startswith("#") for w in line.split()]
    return frozenset(words) | frozenset(tokenize(" ".join(words)))


# What a question about these policies talks about, whichever words it uses: the sites and companies
# themselves, or personal data and what is done with it. Deliberately broad: it only decides for a
# question that names no policy, and letting an off-topic one through costs less than refusing a real one.
_ON_TOPIC = re.compile(
    r"\b(data|info\w*|details?|personal|privacy|polic(y|ies)|cookies?|localstorage|track\w*|analytics?|brows\w*"
    r"|ads?|advert\w*|marketing|e-?mails?|newsletters?|mail magazines?|spam|shar\w*|sell\w*|sold|delet\w*|eras\w*"
    r"|remov\w*|consent\w*|opt[- ]?out|accounts?|profiles?|r[eé]sum[eé]s?|cvs?|records?|recording|leak\w*|hack\w*"
    r"|breach\w*|secur\w*|third[- ]part\w*|disclos\w*|collect\w*|stor(e|es|ed|ing|age)|retain\w*|retention|keeps?"
    r"|kept|access\w*|correct\w*|complain\w*|contact\w*|requests?|employers?|recruiters?|applications?"
    r"|interviews?|sites?|websites?|apps?|services?|compan(y|ies)|operators?|agenc(y|ies))\b"
)


def about_the_policies(question: str) -> bool:
    """Whether a question that names no policy asks about job sites or personal data at all:
    "what's the minimum wage in Tokyo?" does not, however near "Tokyo" in an address it lands."""
    return bool(_ON_TOPIC.search(unicodedata.normalize("NFKC", question).casefold()))


def policy_vocabularies(index: StoredIndex) -> dict[str, frozenset[str]]:
    terms = np.empty(len(index.vocab), dtype=object)
    for term, col in index.vocab.items():
        terms[col] = term
    csr = index.bm25.tocsr()
    return {pid: frozenset(terms[np.unique(csr[rows].indices)]) for pid, rows in index.policy_rows.items()}


_BRITISH = re.compile(r"\b([a-z]{3,}i)s(e|es|ed|ing|ation|ations|er|ers)\b", re.I)


def _american_spellings(question: str) -> list[tuple[str, str]]:
    """(word, its -ize spelling) for each -ise/-isation word: the policies write American English."""
    return [(m.group(0), f"{m.group(1)}z{m.group(2)}") for m in _BRITISH.finditer(question)]


def coverage(question: str, vocabulary: frozenset[str] | set[str], ignore: set[str]) -> tuple[float, list[str]]:
    """Share of the question's key words that the vocabulary covers, and the words it does not."""
    ignore = ignore | common_words()
    words = [t for t in tokenize(question) if t not in ignore]
    if not words:
        return 1.0, []
    covered = {t for t in words if t in vocabulary}
    for word, variant in _american_spellings(question):  # "personalise" asks what "personalize" says
        if set(tokenize(variant)) <= vocabulary:
            covered.update(tokenize(word))
    for matched, expansion in matched_expansions(question):
        if set(tokenize(expansion)) & vocabulary:
            covered.update(tokenize(matched))
    missing = [t for t in words if t not in covered]
    return 1 - len(missing) / len(words), missing


# What a question asks for when it asks for one kind of fact, and the words a clause stating that fact holds.
# Coverage alone cannot see these: "how long do they keep my data?" shares "keep"/"data" with every
# policy and the thesaurus maps "leak" onto the "security" every policy has, yet a clause answers only
# if it states a period, a fee, a country, a date... So for each kind the question asks about, one of
# the passages retrieved for it (the evidence, not the whole policy) must say that kind of thing.
# General answer types (duration, cost, place, date, notification, age) and a few concepts whose
# words no thesaurus entry may stand in for (AI, encryption, selling, cookies, turning off).
ASPECTS: list[tuple[str, str, str]] = [
    ("duration",
     r"\bhow long\b|\bhow many (years|months|weeks|days)\b|\bretention\b|\buntil when\b|\bforever\b|\bindefinitely\b"
     r"|\b(retain|keep|kept|store|hold|held)\w*\b.{0,40}\b(after|once)\b|\bafter (some|a) (time|while|period)\b",
     r"\b(for|within|after|up to|at least|at most|over)\s+(\w+\s+)?(years?|months?|weeks?|days?|hours?)\b"
     r"|\b\d+\s*(years?|months?|weeks?|days?|hours?)\b|\b(retention|storage|retain\w*|preservation) period\b"
     r"|\bretain\w*\b|\bretention\b|\bas long as\b|\bno longer (necessary|needed|required)\b"),
    ("cost",
     r"\b(fees?|(?<!in )charges?|charged|pay(?! attention)|paid|costs?|money|price|(?<!feel )free)\b",
     r"\b(fees?|charges?|charged|free|costs?|pay\w*|paid|yen|price)\b|¥"),
    ("sale",
     r"\b(sell|sells|selling|sale of|monetiz\w*|monetis\w*|for money|for profit)\b",
     r"\b(sell\w*|sold|sale|monetiz\w*|monetis\w*|for (a )?(fee|consideration|compensation|profit))\b"),
    ("place",
     r"\b(overseas|abroad|foreign|another country|other countr(y|ies)|which country|what country|outside( of)? japan"
     r"|international(ly)?|cross-border)\b|\bservers? (located )?(in|outside|abroad|overseas)\b"
     r"|\bwhere\b.{0,30}\b(stored|kept|hosted|held|processed|servers?)\b"
     r"|\b(stored|kept|hosted|held|processed|saved|sent|transferred)\s+(in|to|outside( of)?)\s+japan\b",
     r"\b(overseas|abroad|foreign|countr(y|ies)|outside( of)? japan|international|cross-border|servers?|data ?cent(er|re)s?)\b"),
    ("notification",
     # being told of something by the site, not "tell me what data they have" nor "do I have to tell them"
     r"\b(tell|inform|warn|alert|let)\s+(me|us|users?|you)\s+(know\s+)?(if|when|whether|before|after|in case|about (a|the|any) (breach|leak|change))\b"
     r"|\b(will|would|do|does|did|can|could) (they|it|\w+) (at least |even |ever )?(tell|inform|warn|alert|contact|let) (me|us|users?|you)( know)?\s*(\?|$)"
     r"|\bnotif(y|ies|ied|ication|ications)\b|\b(be|get|being) (told|notified|informed|warned)\b",
     r"\bnotif\w*|\bannounc\w*|\bpost(s|ed|ing)?\b|\bpublish\w*|\binform(s|ed)? (you|the user|users|the customer|customers|the person)\b"
     r"|\bprovide such information\b|\bcontact (you|the user)\b"),
    ("date",
     r"\bwhen (was|were|did|is)\b.{0,60}\b(updat|revis|chang|writ|made|publish|creat|enact|effective)\w*"
     r"|\blast (updat|revis|chang|modif)\w*|\bwhat date\b|\b(effective|revision|enactment|update) date\b"
     r"|\bhow (old|recent) is\b",
     r"(?<!\d)(19|20)\d\d(?!\d)|\b(january|february|march|april|june|july|august|september|october|november|december)\b"),
    # an age rule, not any mention of children ("to promote the healthy development of children" is not one)
    ("age",
     r"\b(\d+ years? old|how old|age limit|minimum age|age requirement|minors?|underage|under (the age of )?1\d"
     r"|i'?m 1\d|teen(ager)?s?|high school\w*|(my|our) (child|children|kids?|son|daughter)|(children|kids)'?s? (data|info\w*|accounts?|privacy)"
     r"|(from|of|about) (children|kids|minors))\b",
     r"\b(minors?|under (the age of )?\d+|years (old|of age)|aged? \d+|parent\w*|guardian\w*|legal representative"
     r"|age (limit|requirement|of consent))\b"),
    ("automated decisions",
     r"\b(ai|a\.i\.|artificial intelligence|machine learning|algorithms?|automated)\b",
     r"\b(ai|artificial intelligence|machine learning|algorithm\w*|automat\w*|profiling)\b"),
    ("encryption", r"\b(encrypt\w*|ssl|tls|https)\b", r"\b(encrypt\w*|ssl|tls|https)\b"),
    ("security incident",
     r"\b(leak\w*|breach(es|ed)?(?! of contract)|hack\w*|stolen|steal\w*|cyber\w*)\b",
     r"\b(leak\w*|breach\w*|hack\w*|unauthori[sz]ed|los[st]|loss|stolen|falsif\w*|tamper\w*|secur\w*|safe\w*)\b"),
    ("cookies", r"\bcookies?\b", r"\bcookies?\b"),
    ("turning off",
     r"\b(turn (them |it |cookies |\w+ )?off|switch (them |it )?off|disabl\w*|block\w*|opt[- ]?out)\b",
     r"\b(disabl\w*|refus\w*|reject\w*|block\w*|settings?|opt[- ]?out|turn\w* off|stop\w*|suspen\w*|discontinu\w*"
     r"|cease|unsubscrib\w*|cancel\w*)\b"),
]
_ASPECTS = [(name, re.compile(asked, re.I), re.compile(stated, re.I)) for name, asked, stated in ASPECTS]


def asked_aspects(question: str) -> list[str]:
    """The kinds of fact (ASPECTS) a question asks for."""
    text = unicodedata.normalize("NFKC", question)
    return [name for name, asked, _ in _ASPECTS if asked.search(text)]


def stated_patterns(question: str, skip: frozenset[str] = frozenset()) -> list[re.Pattern]:
    """The `stated` patterns of the kinds of fact the question asks for (aspects in `skip` ignored):
    what a clause or sentence that answers it says, whatever else it says."""
    text = unicodedata.normalize("NFKC", question)
    return [stated for name, asked, stated in _ASPECTS if name not in skip and asked.search(text)]


def aspect_share(text: str, patterns: Sequence[re.Pattern]) -> float:
    """Share of `patterns` that `text` matches (0 when there are none)."""
    if not patterns:
        return 0.0
    text = unicodedata.normalize("NFKC", text)
    return sum(1 for p in patterns if p.search(text)) / len(patterns)


def unmet_aspects(question: str, passages: list[str], skip: frozenset[str] = frozenset()) -> list[str]:
    """The kinds of fact the question asks for (aspects in `skip` ignored) that no one of `passages`
    states together: "will they tell me if my data leaks?" needs a clause on notifying about leaks,
    not a security clause beside another that mentions "notification" of the purpose of use."""
    text = unicodedata.normalize("NFKC", question)
    asked = [(name, stated) for name, question_pattern, stated in _ASPECTS
             if name not in skip and question_pattern.search(text)]
    if not asked:
        return []
    best: list[str] = [name for name, _ in asked]
    for passage in passages:
        passage = unicodedata.normalize("NFKC", passage)
        unmet = [name for name, stated in asked if not stated.search(passage)]
        if len(unmet) < len(best):
            best = unmet
    return best
