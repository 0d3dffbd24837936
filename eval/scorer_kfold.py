"""Held-out figures for the answer-sentence scorer on our own dev questions, through the whole engine.

The shipped scorer (index/trained/sentence-scorer-v4) was fitted on pairs from eval/questions_dev.jsonl,
so `python -m eval` measures it in-sample on dev. Here each dev question is answered by a scorer
fitted without it: the own-dev questions are dealt into k folds (qa.scorer_train.group_folds, the
training command's folds); fold i's scorer is fitted on every PolicyQA pair and the other folds' own-dev
pairs, and answers fold i's questions. Dev questions that gave no training pair (unanswerable, follow-ups)
are answered by the shipped scorer, which never saw them. Printed beside the in-sample and no-scorer rows.

Run: `python -m eval.scorer_kfold --pairs FILE` (FILE: `policyqa train --scorer --pairs FILE`'s cache;
built when missing). Writes eval/reports/scorer_kfold.{md,json}. Dev questions only: the frozen test split
is never read here.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from eval.common import REPORTS, jsonable, set_threads, write_atomic

ROWS = ("no scorer", "scorer in-sample", "scorer k-fold (held out)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.scorer_kfold", description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=Path, required=True, help="the (question, sentence) pairs cache (.npz)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from eval.baselines import EngineSystem
    from eval.gold import load_questions
    from eval.run import aggregate, fmt, run_system
    from index.build import build_index
    from index.corpus import load_corpus
    from index.embed import Encoder
    from index.store import read_index
    from qa.engine import Engine, Settings
    from qa.scorer_train import Pairs, group_folds, publish_fitted, run as train_scorer

    set_threads()
    if not args.pairs.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            train_scorer(Path(tmp) / "scorer", k=0, pairs_file=args.pairs, log=lambda m: print(m, file=sys.stderr))
    pairs = Pairs.load(args.pairs)
    folds = group_folds(pairs, args.folds, args.seed)
    fold_of = {pairs.groups[q]: f for f, held in enumerate(folds) for q in held if pairs.sources[q] == "own-dev"}
    questions = load_questions("dev")
    encoder = Encoder()
    encoder.load()
    out: dict = {"folds": args.folds, "seed": args.seed, "pairs": str(args.pairs)}
    with tempfile.TemporaryDirectory(prefix="policyqa-scorer-kfold-") as tmp:
        build_index(load_corpus(), Path(tmp) / "index", encoder)
        engine = Engine(read_index(Path(tmp) / "index"), encoder, Settings())
        records = {ROWS[0]: run_system(EngineSystem("no-scorer", engine.with_settings(replace(engine.settings, scorer=None))), questions),
                   ROWS[1]: run_system(EngineSystem("in-sample", engine), questions)}
        held_out = []
        for f, held in enumerate(folds):
            keep = ~np.isin(pairs.question, held)
            scorer_dir = publish_fitted(pairs, keep, f"fold{f}", Path(tmp) / f"fold{f}")
            mine = [q for q in questions if fold_of.get(q["id"]) == f]
            held_out += run_system(EngineSystem(f"fold{f}", engine.with_settings(replace(engine.settings, scorer=str(scorer_dir)))), mine)
        untrained = [q for q in questions if q["id"] not in fold_of]
        held_out += run_system(EngineSystem("untrained", engine), untrained)
        records[ROWS[2]] = held_out
    out["rows"] = {name: aggregate(r) for name, r in records.items()}
    out["held_out_by_fold"] = len(questions) - len(untrained)
    lines = ["# The answer-sentence scorer on the dev questions: in-sample and k-fold", "",
             f"{len(questions)} dev questions ({out['held_out_by_fold']} answered by a scorer fitted without their fold of "
             f"{args.folds}; the others gave no training pair and are answered by the shipped scorer). Whole engine, k=3, "
             "batch mode. The frozen test split is not read.", "",
             "| engine | hit@1 | hit@3 | hl-hit@1 | abst-P | abst-R | refused answerable | p50 ms |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in out["rows"].items():
        lines.append(f"| {name} | {m['hit@1']:.3f} | {m['hit@3']:.3f} | {m['highlight_hit@1']:.3f} | {fmt(m['abstain_precision'], '{:.2f}')} | "
                     f"{fmt(m['abstain_recall'], '{:.2f}')} | {m['abstain_counts']['fp']} | {m['latency_p50_ms']:.1f} |")
    md = "\n".join(lines) + "\n"
    print(md)
    write_atomic(REPORTS / "scorer_kfold.md", md)
    write_atomic(REPORTS / "scorer_kfold.json", json.dumps(jsonable({k: v for k, v in out.items()}), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
