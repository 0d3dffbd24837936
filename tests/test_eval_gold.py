"""The gold questions are well-formed, their evidence is verbatim policy text, and the held-out test split is frozen."""
from __future__ import annotations

import pytest

from eval.gold import FROZEN, KINDS, NOT_ADDRESSED, RECORDED, file_sha256, load_questions, load_recorded, split_path
from index.corpus import load_corpus

POLICIES = {p.id: p.text for p in load_corpus()}
ROWS = load_questions("all") + load_questions("ja") + load_questions("fresh") + load_questions("held")


def test_splits_are_the_expected_size():
    assert sum(r["split"] == "dev" for r in ROWS) == 172  # 99 first written + 73 added later (x063 dropped: it repeated a test question)
    assert sum(r["split"] == "test" for r in ROWS) == 47
    assert sum(r["split"] == "ja_dev" for r in ROWS) == 43
    assert sum(r["split"] == "ja_test" for r in ROWS) == 24
    assert sum(r["split"] == "fresh" for r in ROWS) == 128  # 111 answerable, 17 not addressed (fB052 dropped: it repeated a dev question)
    assert sum(r["split"] == "held" for r in ROWS) == 58  # 48 answerable, 10 not addressed (fD001, fD026 dropped: repeats)


def test_japanese_questions_are_written_in_japanese():
    japanese = [r for r in ROWS if r["split"].startswith("ja_")]
    assert all(any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in r["question"]) for r in japanese)
    # every default policy is asked about, and the refusals are tested too
    assert {p for r in japanese for p in r["policies"]} == set(POLICIES)
    assert {r["kind"] for r in japanese} >= {"single", "unaddressed", "offtopic"}


def test_ids_are_unique_across_splits():
    ids = [r["id"] for r in ROWS]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_row_is_well_formed_and_evidence_is_verbatim(row):
    assert row["question"].strip()
    assert row["kind"] in KINDS
    assert row["answerable"] == (row["kind"] not in NOT_ADDRESSED)
    assert bool(row["evidence"]) == row["answerable"]
    assert set(row["policies"]) <= set(POLICIES)
    assert isinstance(row["history"], list) and (row["kind"] == "followup") == bool(row["history"])
    for e in row["evidence"]:
        assert e["policy"] in row["policies"]
        assert e["text"].strip() and e["text"] in POLICIES[e["policy"]], f"{row['id']}: evidence not in {e['policy']}"


def test_questions_are_not_duplicated():
    seen = {}
    for r in ROWS:
        key = (" ".join(r["question"].lower().split()), tuple(r["history"]))
        assert key not in seen, f"{r['id']} repeats {seen.get(key)}"
        seen[key] = r["id"]


@pytest.mark.parametrize("split", sorted(FROZEN))
def test_test_split_is_frozen(split):
    recorded = load_recorded()
    key = FROZEN[split]
    assert key in recorded, f"{RECORDED} holds no checksum of the {split} split"
    assert file_sha256(split_path(split)) == recorded[key], (
        f"{split_path(split).name} changed: the held-out split is frozen; add new questions to its dev split"
    )
