"""eval.abstain_kfold: choosing the abstention setting on the other folds and scoring it on the held-out one."""
from eval.abstain_kfold import counts, cross_validate

UNADDRESSED = {"u1": True, "u2": True, "a1": False, "a2": False}


def test_counts_are_refused_unaddressed_refused_answerable_and_missed():
    refused = {"u1": True, "u2": False, "a1": True, "a2": False}
    assert counts(refused, UNADDRESSED, UNADDRESSED) == (1, 1, 1)


def test_each_fold_is_scored_with_the_setting_chosen_without_it():
    runs = {
        "refuse all": {i: True for i in UNADDRESSED},  # 2 right, 2 wrong: scores 2 - 2 x 2 = -2
        "refuse u1 only": {"u1": True, "u2": False, "a1": False, "a2": False},
        # perfect, except on u2 it is the only one that refuses, which the fold holding u2 cannot see
        "refuse u1 and u2 (shipped)": {"u1": True, "u2": True, "a1": False, "a2": False},
    }
    out = cross_validate(runs, UNADDRESSED, [["u1", "a1"], ["u2", "a2"]])
    # fold 1 chosen on {u2, a2}: the shipped setting (alone refusing u2); fold 2 chosen on {u1, a1}: a tie
    # between "u1 only" and the shipped one, which the shipped one wins
    assert out["chosen"] == ["refuse u1 and u2 (shipped)", "refuse u1 and u2 (shipped)"]
    assert (out["tp"], out["fp"], out["fn"]) == (2, 0, 0)


def test_a_setting_that_only_wins_in_sample_is_not_credited_out_of_fold():
    runs = {
        "never": {i: False for i in UNADDRESSED},
        # refuses u1 and, wrongly, a2: on the fold {u1, a1} it looks perfect, but it is chosen for the other fold
        "odd": {"u1": True, "u2": False, "a1": False, "a2": True},
    }
    out = cross_validate(runs, UNADDRESSED, [["u1", "a1"], ["u2", "a2"]])
    assert out["chosen"] == ["never", "odd"]
    assert (out["tp"], out["fp"], out["fn"]) == (0, 1, 2)
