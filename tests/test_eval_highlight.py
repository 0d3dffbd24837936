"""The k-fold choice of the highlight's join margin (eval.highlight_kfold): a plain function over hits."""
from eval.highlight_kfold import kfold_choice


def test_kfold_choice_scores_each_fold_with_the_margin_best_on_the_others():
    ids = [f"q{i}" for i in range(10)]
    table = {0.1: {q: 1.0 for q in ids}, 0.5: {q: 1.0 for q in ids}, -1.0: {q: 0.0 for q in ids}}
    score, chosen = kfold_choice(table, k=5)
    assert score == 1.0 and chosen == [0.1] * 5  # a tie goes to the smaller margin (the shorter highlight)


def test_kfold_choice_is_held_out_not_the_best_in_sample():
    # one margin right on q0 only, the other right on q1..q4: a fold holding out q0 cannot learn q0's margin
    ids = [f"q{i}" for i in range(5)]
    table = {0.1: {q: 1.0 if q == "q0" else 0.0 for q in ids}, 0.3: {q: 0.0 if q == "q0" else 1.0 for q in ids}}
    score, chosen = kfold_choice(table, k=5)
    assert chosen == [0.3] * 5 and score == 0.8
