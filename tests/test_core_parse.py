"""Structure-aware parsing of the five default layouts, and chunking that keeps offsets."""
import pytest

from index.chunk import ChunkSettings, chunk_clauses
from index.corpus import load_corpus
from index.parse import detect_layout, parse_clauses
from index.sentences import sentence_spans

# Every top-level heading of every default policy, as the policy writes it.
HEADINGS = {
    "japanwork": [f"Clause {n} ({t})" for n, t in enumerate([
        "Definition of personal information", "Personal information collected by this Service", "Purpose of use",
        "Use of cookies and localStorage", "Acquisition of personal information", "Information gathering module",
        "Disclosure and Sharing of Personal Information", "Disclosure and correction of information",
        "Suspension and Removal of Personal Information", "Contact", "Changes to this Policy"], start=1)],
    "en-japan": [
        "1. Company name", "2. Personal information protection manager", "3. Purpose of use of personal information",
        "4. Provision of personal information", "5. Outsourcing of handling of personal information",
        "6. Disclosure, correction, or deletion of personal information",
        "7. Voluntary provision of personal information",  # broken over two lines in the source
        "8. Collecting personal information through unnoticeable means", "9. Amendment to this provision",
        "10. Customer service for complaints, inquiries, and disclosure requests regarding the handling of personal information",
    ],
    "highly-skilled-japan": [
        "1", "2", "3. Purpose of Use of User Information", "4. Providing User Information to Third Party",
        "5. Request for Disclosure and Amendment of User Information", "6. Change of Privacy Policy",
    ],
    "jacces": [
        "Handling of Personal Information at JACCES(https://www.jacces.or.jp/)", "Collection and Purpose of Personal Information",
        "Third Party Disclosure of Personal Information", "Disclosure of Personal Information",
        "Correction and Suspension of Use of Personal Information", "Disclaimer", "About Cookie", "contact", "Amendment Clause",
    ],
    "gaijin-poole": [
        "1. Personal Information", "2. Acquisition of Personal Information", "3. Managing Personal Information",
        "4. Purpose of Using Personal Information", "5. Provision of Personal Information",
        "6. Disclosure, Correction, and Deletion of Personal Information to be disclosed",
        "7. Secure Management of Personal Information", "8.Observing Laws and Standards and Reviewing Policy",
    ],
}
LAYOUTS = {"japanwork": "clause", "en-japan": "numbered", "highly-skilled-japan": "numbered", "jacces": "unnumbered", "gaijin-poole": "numbered"}


@pytest.fixture(scope="module")
def policies():
    return {p.id: p for p in load_corpus()}


@pytest.mark.parametrize("policy_id", sorted(HEADINGS))
def test_every_heading_is_a_section(policies, policy_id):
    policy = policies[policy_id]
    assert detect_layout(policy.text) == LAYOUTS[policy_id]
    tops = [c.section[0] for c in parse_clauses(policy.text, policy_id)]
    for heading in HEADINGS[policy_id]:
        assert heading in tops, f"{heading!r} not parsed in {policy_id}: {sorted(set(tops))}"
    # in document order
    first_seen = [tops.index(h) for h in HEADINGS[policy_id]]
    assert first_seen == sorted(first_seen)


def test_items_keep_their_labels(policies):
    sections = {c.heading for p in policies.values() for c in parse_clauses(p.text, p.id)}
    for expected in ["Clause 3 (Purpose of use) › 2", "5. Provision of Personal Information › (1)",
                     "Third Party Disclosure of Personal Information › 8", "4. Provision of personal information › (2)",
                     "Clause 4 (Use of cookies and localStorage) › 1. About cookies and localStorage"]:
        assert expected in sections, expected


def test_sub_items_stay_with_their_item(policies):
    """`a)`..`d)` under Gaijin Poole 5 (2) and `A.`..`D.` under en Japan 4 (1) belong to that item."""
    gp = policies["gaijin-poole"]
    clause = next(c for c in parse_clauses(gp.text, gp.id) if c.heading == "5. Provision of Personal Information › (2)")
    body = gp.text[clause.start:clause.end]
    assert "a) Laws and regulation" in body and "d) Provision is necessary to cooperate" in body


@pytest.mark.parametrize("policy_id", sorted(HEADINGS))
def test_passages_are_verbatim_slices_with_sections(policies, policy_id):
    policy = policies[policy_id]
    settings = ChunkSettings()
    passages = chunk_clauses(parse_clauses(policy.text, policy_id), policy.text, settings)
    assert passages
    covered = set()
    for p in passages:
        assert policy.text[p.start:p.end] == p.text
        assert p.section and all(p.section)
        assert len(p.text) <= settings.max_chars + settings.min_chars
        covered.update(range(p.start, p.end))
    # every line of text is in some passage, except the headings (which passages carry as `section`)
    headings = " ".join(" ".join(p.section) for p in passages) + " " + " ".join(HEADINGS[policy_id])
    uncovered = "".join(ch if i not in covered else "\n" for i, ch in enumerate(policy.text))
    for line in uncovered.splitlines():
        if line.strip():
            assert " ".join(line.split()) in headings, line


def test_long_clause_is_split_with_langchain_and_keeps_heading(policies):
    jw = policies["japanwork"]
    passages = chunk_clauses(parse_clauses(jw.text, jw.id), jw.text, ChunkSettings(max_chars=400, overlap=50))
    cookie = [p for p in passages if p.heading.startswith("Clause 4 (Use of cookies and localStorage) › 1")]
    assert len(cookie) >= 3
    assert all(len(p.text) <= 400 + 160 for p in cookie)


def test_sentences_do_not_split_item_markers_or_abbreviations():
    text = "INNTEGRA, Co., Ltd. (hereinafter “INNTEGRA”) sets this. 1.\nCompany name\n(1) To provide this Service"
    pieces = [text[s:e] for s, e in sentence_spans(text)]
    assert pieces[0] == "INNTEGRA, Co., Ltd. (hereinafter “INNTEGRA”) sets this."
    assert "(1) To provide this Service" in pieces


def test_same_text_same_key_different_text_different_key(policies):
    jw = policies["japanwork"]
    a = chunk_clauses(parse_clauses(jw.text, jw.id), jw.text)
    b = chunk_clauses(parse_clauses(jw.text, jw.id), jw.text)
    assert [p.key for p in a] == [p.key for p in b]
    assert len({p.key for p in a}) == len(a)


def test_article_headings_are_clauses():
    text = "Privacy Policy\n\nArticle 1 (Scope)\nThis policy covers the site.\n\nArticle 2 (Cookies)\n1. We use cookies.\n2. You can refuse them.\n"
    assert detect_layout(text) == "clause"
    assert [c.heading for c in parse_clauses(text, "x")] == ["Article 1 (Scope)", "Article 2 (Cookies) › 1", "Article 2 (Cookies) › 2"]
