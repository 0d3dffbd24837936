"""Japanese questions about English policies: tell the language, and bridge the question's words to
the English the policies use so the lexical ranker, the highlight and abstention have words to go on.

The multilingual encoder (index.e5) carries the meaning across languages; this module carries the
words: "第三者に提供" -> "third party provide provision", read from a small explicit glossary
(ja_glossary.tsv). Measured against JMdict glosses (jamdict) on the Japanese dev questions, the
glossary ranks better: dictionary glosses are many and general ("提供": "offer; program sponsoring;
furnishing"), the policies' own words are few.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

GLOSSARY = Path(__file__).with_name("ja_glossary.tsv")
_KANA_KANJI = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9@.\-']*")


def is_japanese(text: str) -> bool:
    """Whether a question is (at least partly) written in Japanese: two or more kana or kanji.
    Script is enough here: the policies are English, so any Japanese in a question means the
    English-only model cannot read it whole. One stray character ("the 株式会社 part") stays English."""
    return len(_KANA_KANJI.findall(text)) >= 2


@lru_cache(maxsize=1)
def glossary() -> tuple[tuple[str, str], ...]:
    """(Japanese, English) entries, longest Japanese first, so longer terms win over their parts."""
    entries = []
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        japanese, _, english = line.partition("\t")
        if japanese.strip() and english.strip():
            entries.append((unicodedata.normalize("NFKC", japanese.strip()), english.strip()))
    return tuple(sorted(entries, key=lambda e: -len(e[0])))


@lru_cache(maxsize=1)
def _glossary_pattern() -> re.Pattern:
    return re.compile("|".join(re.escape(j) for j, _ in glossary()))


def matched_terms(text: str) -> list[tuple[str, str]]:
    """(Japanese words of `text`, the English they stand for) for each glossary match, in order,
    longest match first at each place, without overlaps."""
    english = dict(glossary())
    normal = unicodedata.normalize("NFKC", text)
    return [(m.group(0), english[m.group(0)]) for m in _glossary_pattern().finditer(normal)]


def bridge(text: str) -> str:
    """The English words standing for a (partly) Japanese question: glossary terms for its Japanese
    words plus the Latin-script words it already has ("Google Analytics", "IP")."""
    normal = unicodedata.normalize("NFKC", text)
    words: list[str] = []
    for _, english in matched_terms(normal):
        words.extend(w for w in english.split() if w not in words)
    latin = [w for w in _LATIN_WORD.findall(normal) if w not in words]
    return " ".join(words + latin)


def unknown_words(text: str) -> list[str]:
    """Runs of kanji or katakana the glossary does not cover (hiragana is mostly grammar): the content
    words of a Japanese question that the lexical bridge cannot carry to English."""
    normal = unicodedata.normalize("NFKC", text)
    covered = _glossary_pattern().sub(" ", normal)
    return re.findall(r"[\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff]{2,}", covered)


# What a Japanese question about these policies talks about, in Japanese (the English _ON_TOPIC in
# qa.abstain covers the Latin-script words of mixed questions): personal data and what is done with
# it, or the sites themselves. Deliberately broad, as in English.
_ON_TOPIC_JA = re.compile(
    r"個人|情報|データ|プライバシー|ポリシー|規約|クッキー|広告|メール|メルマガ|電話|住所|氏名|名前|生年月日|"
    r"登録|退会|アカウント|削除|訂正|修正|開示|提供|共有|第三者|委託|保管|保存|収集|集め|取得|漏|流出|"
    r"セキュリティ|安全|同意|応募|面接|企業|会社|サイト|サービス|アプリ|求人|求職|転職|就職|履歴(?!書)|位置|"
    r"問い合わせ|問合せ|連絡|苦情|録音|トラッキング|追跡|オプトアウト|手数料"
)


def about_the_policies_ja(question: str) -> bool:
    """Whether a Japanese question that names no policy asks about job sites or personal data."""
    return bool(_ON_TOPIC_JA.search(unicodedata.normalize("NFKC", question)))


def coverage_ja(question: str, vocabulary: frozenset[str] | set[str], ignore: set[str]) -> tuple[float, list[str]]:
    """Share of a Japanese question's key terms that a policy vocabulary covers, and the terms it does
    not: a glossary term counts as covered when any of its English words occurs in the policy, a
    Latin-script word when it does itself. Words the glossary does not know are left out (the
    encoder judges those), so an unknown word alone never refuses a question."""
    from index.lexical import tokenize

    terms = [(japanese, tokenize(english)) for japanese, english in matched_terms(question)]
    terms += [(word, tokenize(word)) for word in _LATIN_WORD.findall(unicodedata.normalize("NFKC", question))]
    keys = [(term, [w for w in words if w not in ignore]) for term, words in terms]
    keys = [(term, words) for term, words in keys if words]
    if not keys:
        return 1.0, []
    missing = [term for term, words in keys if not any(w in vocabulary for w in words)]
    return 1 - len(missing) / len(keys), missing
