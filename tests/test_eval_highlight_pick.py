"""eval.highlight_pick: scoring a re-chosen highlight as the engine is scored, the listwise sentence model and
the chooser folds, on small cases made here (no model)."""
import numpy as np

from eval.highlight_pick import (Case, choose, evaluate, fit_listwise, group_folds, hit, model_features,
                                 rule_scores)
from qa.scorer import FEATURES

SENTENCES = ["We collect your name and address when you apply.", "Cookies help us count visits to each page.",
             "You may ask us to delete your data at any time.", "We keep records for five years after you leave."]
TEXT = " ".join(SENTENCES)


def spans() -> np.ndarray:
    out, pos = [], 0
    for s in SENTENCES:
        out.append((pos, pos + len(s)))
        pos += len(s) + 1
    return np.array(out)


def case(answer: int, cosine, marker=None, source="policyqa", group="p0") -> Case:
    """A passage of SENTENCES whose answer is sentence `answer`; `marker` fills the idf_coverage column."""
    X = np.zeros((len(SENTENCES), len(FEATURES)))
    X[:, FEATURES.index("cosine")] = cosine
    if marker is not None:
        X[:, FEATURES.index("idf_coverage")] = marker
    X[:, FEATURES.index("log_chars")] = np.log1p(spans()[:, 1] - spans()[:, 0])
    s, e = spans()[answer]
    gold = [(int(s) + 3, int(s) + 8)] if source == "policyqa" else [{"policy": "p", "text": SENTENCES[answer]}]
    c = Case(source, group, "fold0", "p", spans(), X, np.zeros(len(SENTENCES)), frozenset(), gold, (0, 0))
    c.labels = np.array([i == answer for i in range(len(SENTENCES))], float)
    return c


def test_hit_scores_the_highlight_as_the_engine_does():
    s = spans()
    own = case(2, [0.1, 0.2, 0.9, 0.3], source="own-dev")
    assert hit(own, TEXT, *s[2]) and not hit(own, TEXT, *s[1])
    assert hit(own, TEXT, s[1][0], s[2][1])  # a joined neighbour still contains the evidence
    assert not hit(own, TEXT, s[2][0], s[2][1] - 5)  # a cut that loses part of it does not
    pqa = case(2, [0.1, 0.2, 0.9, 0.3])
    assert hit(pqa, TEXT, *s[2]) and not hit(pqa, TEXT, *s[3])  # overlapping the gold answer span


def test_the_rule_picks_the_best_cosine_and_a_citation_less_question_is_a_miss():
    c = case(1, [0.2, 0.8, 0.3, 0.1])
    assert choose(c, TEXT, rule_scores(c), -1.0) == tuple(spans()[1])
    hits, lengths = evaluate([c, None], {("fold0", "p"): TEXT}, rule_scores, -1.0)
    assert hits == [1.0, 0.0] and lengths[1] == 0


def test_listwise_model_learns_a_signal_the_rule_lacks_and_stays_the_rule_when_shrunk():
    # The cosine points at sentence 0 every time; the answer is where idf_coverage is high.
    rng = np.random.default_rng(0)
    train, test = [], []
    for i in range(80):
        answer = int(rng.integers(1, 4))
        marker = rng.uniform(0, 0.3, 4)
        marker[answer] = 0.9
        cos = rng.uniform(0.3, 0.5, 4)
        cos[0] = 0.6
        (train if i < 60 else test).append(case(answer, cos, marker))
    texts = {("fold0", "p"): TEXT}
    model = fit_listwise(train, l2=1.0)
    learnt, _ = evaluate(test, texts, lambda c: rule_scores(c) + model.delta(model_features(c)), -1.0)
    rule, _ = evaluate(test, texts, rule_scores, -1.0)
    assert np.mean(rule) == 0.0 and np.mean(learnt) == 1.0
    shrunk = fit_listwise(train, l2=1e9)  # every correction shrunk away: the rule's own choice
    kept, _ = evaluate(test, texts, lambda c: rule_scores(c) + shrunk.delta(model_features(c)), -1.0)
    assert kept == rule


def test_chooser_folds_keep_a_group_together():
    cases = [case(1, [0.1, 0.5, 0.2, 0.3], group=f"p{i % 4}") for i in range(12)] + [None]
    folds = group_folds(cases, 2)
    for g in ("p0", "p1", "p2", "p3"):
        assert len({f for c, f in zip(cases, folds) if c is not None and c.group == g}) == 1
    assert folds[-1] == -1 and set(folds[:-1]) == {0, 1}


def test_recorded_cases_round_trip_through_the_cache(tmp_path):
    from eval.highlight_pick import load_cases, save_cases

    c = case(2, [0.1, 0.2, 0.9, 0.3])
    save_cases({"own-dev": [None], "policyqa": [c], "texts": {("fold0", "p"): TEXT}}, tmp_path / "cases.pkl")
    back = load_cases(tmp_path / "cases.pkl")
    assert back["own-dev"] == [None] and back["texts"] == {("fold0", "p"): TEXT}
    got = back["policyqa"][0]
    assert isinstance(got, Case) and np.array_equal(got.X, c.X) and np.array_equal(got.labels, c.labels)
