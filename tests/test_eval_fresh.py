"""eval.fresh: which encoders it measures, and what its line says."""
from __future__ import annotations

import pytest

import json

from eval.fresh import encoders, line, rows_for


def test_encoders_lists_models_then_each_fold_model(tmp_path):
    for name in ("fold1", "fold0", "notes"):
        (tmp_path / name).mkdir()
    for name in ("fold0", "fold1"):
        (tmp_path / name / "model.json").write_text("{}", encoding="utf-8")
    assert encoders(["m"], [tmp_path]) == ["m", str(tmp_path / "fold0"), str(tmp_path / "fold1")]
    with pytest.raises(SystemExit, match="no fold models"):
        encoders([], [tmp_path / "notes"])


def test_line_reports_refusals_of_both_kinds():
    figures = {"answerable": 111, "hit@1": 0.7568, "hit@3": 0.91, "highlight_hit@1": 0.6216, "cite_chars_top1": 483.2,
               "abstain_counts": {"tp": 15, "fn": 2, "fp": 4, "tn": 107}}
    assert line("v3", figures) == ("v3: 111 answerable: hit@1 0.757 hit@3 0.910 highlight 0.622 len@1 483; "
                                   "refused 15 of 17 not addressed, 4 answerable")


def test_a_fold_model_that_trained_on_fresh_questions_answers_only_those_it_held_out(tmp_path):
    rows = [{"id": "fA001", "answerable": True, "evidence": [{}]}, {"id": "fA002", "answerable": True, "evidence": [{}]},
            {"id": "fB001", "answerable": False, "evidence": []}]
    older, newer = tmp_path / "v5-fold0", tmp_path / "v6-fold0"
    for d, held in ((older, ["d001", "yahoo-com"]), (newer, ["d001", "fA002"])):
        d.mkdir()
        (d / "model.json").write_text(json.dumps({"figures": {"held_out": held}}), encoding="utf-8")
    assert rows_for(str(older), rows) == rows  # trained on none of them
    assert [r["id"] for r in rows_for(str(newer), rows)] == ["fA002", "fB001"]
    assert rows_for("policyqa/minilm-policy-v6", rows) == rows  # a shipped name: every question (in-sample for v6)
