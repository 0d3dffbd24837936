"""The answer-sentence scorer (qa.scorer): its plain functions, the shipped weights' checks, and
`policyqa train --scorer` end to end on a tiny subset whose result loads and is used when answering."""
from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from index.trainset import policyqa_file
from qa.scorer import (DEFAULT_SCORER, FEATURES, ScorerError, expected_calibration_error, fit, load_scorer, log_loss,
                       scorer_directory, scorer_for)
from qa.scorer_train import Pairs, group_folds, highlight_accuracy, rerank_hits

needs_policyqa = pytest.mark.skipif(not policyqa_file().is_file(), reason="PolicyQA dev split not present (../shared)")


def test_fit_learns_the_sign_and_calibration_of_a_noisy_feature():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2))
    p_true = 1 / (1 + np.exp(-(2.0 * x[:, 0] - 1.0)))  # column 1 is noise
    y = (rng.random(4000) < p_true).astype(float)
    scorer = fit(x, y, "toy", l2=1e-3)
    assert scorer.coef[0] / scorer.scale[0] == pytest.approx(2.0, abs=0.25)
    assert abs(scorer.coef[1]) < 0.15
    p = scorer.probabilities(x)
    assert expected_calibration_error(p, y) < 0.03
    assert log_loss(p, y) < log_loss(np.full(len(y), y.mean()), y)
    again = fit(x, y, "toy", l2=1e-3)
    assert np.array_equal(again.coef, scorer.coef)  # deterministic
    heavy = fit(x, y, "toy", l2=1e-3, weights=np.where(x[:, 0] > 0, 5.0, 1.0))
    assert heavy.coef[0] != scorer.coef[0]  # row weights count


def test_log_loss_and_calibration_error_by_hand():
    assert log_loss(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(math.log(2))
    assert log_loss(np.array([0.9, 0.2]), np.array([1, 0])) == pytest.approx(-(math.log(0.9) + math.log(0.8)) / 2)
    # bin 0.0-0.1: p 0.05, nothing positive -> |0.05 - 0|; bin 0.9-1.0: p 0.95 twice, one positive -> |0.95 - 0.5|
    p, y = np.array([0.05, 0.95, 0.95]), np.array([0, 1, 0])
    assert expected_calibration_error(p, y) == pytest.approx((0.05 + 2 * 0.45) / 3)
    assert expected_calibration_error(np.array([0.3, 0.3]), np.array([0, 1])) == pytest.approx(0.2)


def _pairs() -> Pairs:
    """Two questions: q0's top passage (3 sentences, the 2nd answers) and second passage (the answer is
    there too); q1's top passage holds nothing, its second passage answers."""
    score = FEATURES.index("passage_score")
    rows = [(0, 0, 0), (0, 0, 1), (0, 0, 0), (0, 1, 1), (1, 0, 0), (1, 0, 0), (1, 1, 1)]
    X = np.zeros((len(rows), len(FEATURES)))
    X[:, score] = [0.9, 0.9, 0.9, 0.5, 0.8, 0.8, 0.7]
    return Pairs(X, np.array([r[2] for r in rows], float), np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                 passage_gold=[[True, True], [False, True]], groups=["a", "b"], sources=["policyqa", "own-dev"])


def test_highlight_accuracy_counts_only_questions_whose_top_passage_answers():
    pairs = _pairs()
    assert highlight_accuracy(pairs, np.array([0.1, 0.8, 0.2, 0, 0, 0, 0])) == {"n": 1, "accuracy": 1.0}
    assert highlight_accuracy(pairs, np.array([0.9, 0.8, 0.2, 0, 0, 0, 0])) == {"n": 1, "accuracy": 0.0}


def test_rerank_hits_moves_a_likely_passage_up_only_with_weight():
    pairs = _pairs()
    probabilities = np.array([0.1, 0.1, 0.1, 0.1, 0.0, 0.0, 0.9])
    assert rerank_hits(pairs, probabilities, 0.0) == {"n": 2, "hit@1": 0.5, "hit@3": 1.0}
    assert rerank_hits(pairs, probabilities, 0.5) == {"n": 2, "hit@1": 1.0, "hit@3": 1.0}


def test_group_folds_hold_out_whole_groups():
    pairs = _pairs()
    pairs.groups = ["p1", "p1", "p2", "q1"]
    pairs.sources = ["policyqa", "policyqa", "policyqa", "own-dev"]
    folds = group_folds(pairs, 2, 0)
    assert sorted(int(q) for f in folds for q in f) == [0, 1, 2, 3]
    assert any({0, 1} <= set(f.tolist()) for f in folds)  # both questions of policy p1 in one fold


def test_the_shipped_scorer_loads_and_refuses_damaged_weights(tmp_path):
    scorer = load_scorer(DEFAULT_SCORER)
    assert len(scorer.coef) == len(FEATURES)
    directory = scorer_directory(DEFAULT_SCORER)
    assert (directory / "MODEL_CARD.md").is_file()
    assert all((directory / f).stat().st_size <= 10 * 2**20 for f in directory.iterdir())
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in directory.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    weights = json.loads((copy / "weights.json").read_text())
    weights["coef"][0] += 1.0
    (copy / "weights.json").write_text(json.dumps(weights))
    with pytest.raises(ScorerError, match="sha256"):
        load_scorer(str(copy))
    from index.trained import trained_names

    assert DEFAULT_SCORER not in trained_names()  # a scorer is not an encoder to build an index with


@needs_policyqa
@pytest.mark.slow
def test_tiny_scorer_training_loads_and_is_used_when_answering(tmp_path, engine):
    from qa.scorer_train import run

    out = tmp_path / "tiny-scorer"
    record = run(out, "policyqa/test-tiny-scorer", k=2, limit=16, progress=False, log=lambda m: None)
    assert 16 <= record["data"]["pairs"] and record["data"]["positives"] > 0
    card = (out / "MODEL_CARD.md").read_text()
    assert all(h in card for h in record["files"].values()) and "k-fold" in card
    scorer = load_scorer(str(out))
    assert scorer.name == "policyqa/test-tiny-scorer"

    question = "can I get JapanWork to delete my account?"
    trained = engine.with_settings(replace(engine.settings, scorer=str(out), scorer_rerank=100.0))
    answer = trained.ask(question, k=3)
    assert answer.to_dict()["scorer"] == str(out)
    # With an overwhelming weight the top citation is the pooled passage the scorer rates most likely.
    query, tokens = trained.query_terms(question, "japanwork")
    vector = trained.encoder.encode([query], kind="query")[0]
    pool = trained._hits(vector, tokens, ["japanwork"], trained.settings.scorer_pool)
    best = [float(p.max()) for _, p in trained._probabilities(pool, vector, set(tokens))]
    top = pool[int(np.argmax(best))]
    assert (answer.citations[0].start, answer.citations[0].end) == (top.passage.start, top.passage.end)
    off = engine.with_settings(replace(engine.settings, scorer=None)).ask(question, k=3)
    assert "scorer" not in off.to_dict()


def test_the_scorer_reads_only_the_cosines_of_the_encoder_it_was_fitted_on():
    from index.embed import BASE_MODEL, DEFAULT_MODEL

    shipped = load_scorer(DEFAULT_SCORER)
    assert shipped.encoder == DEFAULT_MODEL  # recorded in its model.json
    assert scorer_for(DEFAULT_SCORER, DEFAULT_MODEL) == shipped
    assert scorer_for(DEFAULT_SCORER, BASE_MODEL) is None  # an index built with --model BASE_MODEL: rule only
    assert scorer_for(None, DEFAULT_MODEL) is None


@pytest.mark.slow
def test_an_answer_names_the_scorer_only_when_its_path_consulted_it(engine):
    """The single-site English path judges abstention by the scorer's probability; a comparison's rows
    (cosine rule) and a Japanese question (another encoder's cosines) never read it."""
    assert engine.scorer is not None and engine.settings.scorer_evidence > 0
    single = engine.ask("can I get JapanWork to delete my account?", k=3).to_dict()
    assert single["scorer"] == engine.settings.scorer
    compared = engine.ask("which sites let me delete my data?", k=3)
    assert compared.by_policy and "scorer" not in compared.to_dict()
    with_highlight = engine.with_settings(replace(engine.settings, scorer_highlight=True))
    assert with_highlight.ask("which sites let me delete my data?", k=3).to_dict()["scorer"] == engine.settings.scorer
    japanese = engine.ask("JapanWorkは私の電話番号を集めていますか？", k=3)
    assert japanese.language == "ja" and "scorer" not in japanese.to_dict()


@needs_policyqa
@pytest.mark.parametrize("name", ["questions_test.jsonl", "questions_held.jsonl"])
def test_the_scorer_never_trains_on_the_held_out_questions(name):
    from index.trainset import OWN_DEV
    from qa.scorer_train import training_questions

    with pytest.raises(ValueError, match="never trained on"):
        training_questions(None, OWN_DEV.with_name(name), limit=1)
