"""`policyqa train` end to end on a tiny subset, and the checks a shipped trained model passes at load."""
from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys

import pytest

from index.trainset import OWN_DEV, OWN_FRESH, REPO, build_trainset, folds, policyqa_file

needs_policyqa = pytest.mark.skipif(not policyqa_file().is_file(), reason="PolicyQA dev split not present (../shared)")


@needs_policyqa
def test_trainset_positives_hold_the_answer_and_negatives_do_not():
    ts = build_trainset(limit=None)
    assert len(ts.examples) > 2000
    for e in ts.examples:
        assert e.positive in e.gold and e.negative not in e.gold
        assert ts.passages[e.positive].policy_id == e.policy == ts.passages[e.negative].policy_id
    # Own dev questions are in, their positive passage quotes the evidence; the frozen test split never is.
    own = [e for e in ts.examples if e.source == "own-dev"]
    dev_ids = {r["id"] for r in map(json.loads, OWN_DEV.read_text(encoding="utf-8").splitlines()) if r}
    assert own and {e.group for e in own} <= dev_ids
    with pytest.raises(ValueError, match="never trained on"):
        build_trainset(own_dev=OWN_DEV.with_name("questions_test.jsonl"), limit=1)
    with pytest.raises(ValueError, match="never trained on"):
        build_trainset(fresh=OWN_DEV.with_name("questions_test.jsonl"), limit=1)
    with pytest.raises(ValueError, match="never trained on"):
        build_trainset(fresh=OWN_DEV.with_name("questions_held.jsonl"), limit=1)
    # Folds hold out whole policies: no PolicyQA policy is on both sides.
    parts = folds(ts, 5, 0)
    assert sum(len(p) for p in parts) == len({e.group for e in ts.examples})
    assert all(not (a & b) for i, a in enumerate(parts) for b in parts[i + 1:])


@needs_policyqa
def test_fresh_questions_train_as_their_own_source_and_leave_own_dev_folds_as_they_were():
    plain = build_trainset()
    with_fresh = build_trainset(fresh=OWN_FRESH)
    fresh = [e for e in with_fresh.examples if e.source == "own-fresh"]
    fresh_ids = {r["id"] for r in map(json.loads, OWN_FRESH.read_text(encoding="utf-8").splitlines()) if r}
    assert len(fresh) > 100 and {e.group for e in fresh} <= fresh_ids
    assert [e for e in with_fresh.examples if e.source != "own-fresh"] == plain.examples
    for e in fresh:  # the positive passage quotes the evidence, as own dev's does
        assert e.positive in e.gold and with_fresh.passages[e.positive].policy_id == e.policy
    # Fresh groups are dealt after own dev's: every fold holds out the same PolicyQA policies and own dev
    # questions as without them (so figures over own dev compare across the two), plus about half the fresh ones.
    before, after = folds(plain, 2, 0), folds(with_fresh, 2, 0)
    assert [a - fresh_ids for a in after] == before
    assert all(abs(len(a & fresh_ids) - len(fresh_ids & {e.group for e in fresh}) / 2) <= 1 for a in after)


@needs_policyqa
@pytest.mark.slow
def test_tiny_training_run_loads_is_recorded_in_the_manifest_and_answers(tmp_path):
    from index.build import build_index
    from index.corpus import load_corpus
    from index.embed import Encoder, resolve_model
    from index.store import read_index
    from index.train import TrainConfig, run
    from index.trained import TrainedModelError, materialize
    from qa.engine import Engine

    out = tmp_path / "tiny"
    record = run(out, "policyqa/test-tiny", TrainConfig(max_steps=2, layers=1), k=0, limit=64, progress=False,
                 log=lambda m: None)
    assert record["steps"] == 2 and len(json.loads((out / "loss.json").read_text())["losses"]) == 2
    card = (out / "MODEL_CARD.md").read_text()
    assert "Seed 0" in card and all(h in card for h in record["files"].values())
    assert all((out / f).stat().st_size <= 10 * 2**20 for f in record["files"])
    again = run(tmp_path / "again", "policyqa/test-tiny", TrainConfig(max_steps=2, layers=1), k=0, limit=64,
                progress=False, log=lambda m: None)
    assert again["files"] == record["files"]  # same seed, same bytes

    encoder = Encoder(str(out))  # a trained model's directory loads by path like any model
    policy = [p for p in load_corpus() if p.id == "japanwork"]
    build_index(policy, tmp_path / "index", encoder)
    index = read_index(tmp_path / "index")
    assert index.manifest["model"]["name"] == str(out)
    dense = next(m for m in index.manifest["models"] if m["role"] == "dense")
    assert dense["files"] == record["files"] and dense["base"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert index.query_encoder_dir is not None  # the ONNX query encoder exports the trained model too
    answer = Engine.open(tmp_path / "index").ask("can JapanWork share my data with partners?")
    assert answer.citations and answer.citations[0].policy_id == "japanwork"

    # A damaged layer file is refused at load, with a message naming it.
    damaged = tmp_path / "damaged"
    shutil.copytree(out, damaged)
    layer = damaged / next(iter(record["files"]))
    data = bytearray(layer.read_bytes())
    data[-1] ^= 1
    layer.write_bytes(bytes(data))
    with pytest.raises(TrainedModelError, match=layer.name):
        materialize(str(damaged), resolve_model)


def test_the_shipped_model_matches_its_checksums():
    from index.trained import DEFAULT_TRAINED, record, verify

    spec, directory = record(DEFAULT_TRAINED)
    verify(spec, directory)
    assert spec["base"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert all((directory / f).stat().st_size <= 10 * 2**20 for f in spec["files"])


@needs_policyqa
def test_policy_batches_hold_one_policy_each_and_cover_every_question_once():
    import numpy as np

    from index.train import _policy_batches, _sentences_by_policy

    ts = build_trainset(limit=None)
    batches = _policy_batches(ts.examples, 32, np.random.default_rng(0))
    assert all(len({ts.examples[i].policy for i in b}) == 1 and 1 <= len(b) <= 32 for b in batches)
    assert sorted(i for b in batches for i in b) == list(range(len(ts.examples)))
    # Sentence targets: the sentences, cut and headed as the index cuts them, lie inside their passages,
    # and nearly every question's answer overlaps one of its policy's sentences.
    sentences = _sentences_by_policy(ts)
    by_policy = {}
    for p in ts.passages:
        by_policy.setdefault(p.policy_id, []).append(p)
    for pid, (texts, spans) in sentences.items():
        assert len(texts) == len(spans) and all(any(p.start <= s < e <= p.end for p in by_policy[pid]) for s, e in spans)
    covered = [any(ss < ge and gs < se for gs, ge in e.spans for ss, se in sentences[e.policy][1]) for e in ts.examples]
    assert sum(covered) / len(covered) > 0.95


@needs_policyqa
@pytest.mark.slow
def test_policy_batched_training_with_the_sentence_loss_runs_and_is_seeded():
    from index.train import TrainConfig, train

    ts = build_trainset(limit=64)
    config = TrainConfig(max_steps=2, layers=1, batching="policy", sentence_weight=1.0)
    first = train(ts, ts.examples, config, progress=False)
    second = train(ts, ts.examples, config, progress=False)
    assert first.steps == 2 and all(x > 0 for x in first.losses)
    assert first.losses == second.losses
    with pytest.raises(ValueError, match="batching"):
        train(ts, ts.examples, TrainConfig(max_steps=1, layers=1, batching="random"), progress=False)


_ALLOCATE_AND_FREE = """
import resource, sys, torch
from index.train import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    a = torch.ones(10 << 20)  # 40 MB, the size of a training step's larger activations
    del a
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_training_keeps_freed_memory_instead_of_faulting_it_in_again():
    # In child processes: the setting is process-wide.
    def faults(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _ALLOCATE_AND_FREE, mode], capture_output=True, text=True,
                             check=True, cwd=REPO)
        return int(out.stdout.strip())

    # By default each tensor is a fresh mmap, faulted in page by page (here 204,866 faults for the 20); kept,
    # the first one's memory serves the others (20,420). Relative, since huge pages change the page size.
    assert 4 * faults("keep") < faults("default")


@needs_policyqa
def test_paraphrases_are_trained_with_their_source_group_and_leave_the_folds_unchanged(tmp_path):
    rows = [r for r in map(json.loads, OWN_DEV.read_text(encoding="utf-8").splitlines())
            if r.get("answerable") and r.get("evidence") and not r.get("history")][:2]
    extra = tmp_path / "paraphrases.jsonl"
    extra.write_text("".join(json.dumps({**r, "id": f"{r['id']}-p{i}", "source": r["id"], "question": f"so, {r['question'].lower()}"}) + "\n"
                             for r in rows for i in (1, 2)), encoding="utf-8")
    plain = build_trainset(limit=None)
    more = build_trainset(limit=None, paraphrases=extra)
    added = [e for e in more.examples if e.paraphrase]
    assert not any(e.paraphrase for e in plain.examples)
    assert [e for e in more.examples if not e.paraphrase] == plain.examples
    assert {e.group for e in added} == {r["id"] for r in rows} and all(e.source == "own-dev" for e in added)
    sources = {e.group: e for e in plain.examples if e.source == "own-dev"}
    assert len(added) == 4 and all(e.gold == sources[e.group].gold and e.question.startswith("so, ") for e in added)
    # k-fold deals groups, so a paraphrase lands in its source's fold and the split does not move.
    assert folds(more, 2, 0) == folds(plain, 2, 0)
    stray = tmp_path / "stray.jsonl"
    stray.write_text(json.dumps({**rows[0], "id": "x-p1", "source": "not-a-dev-id"}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not-a-dev-id"):
        build_trainset(limit=1, paraphrases=stray)
