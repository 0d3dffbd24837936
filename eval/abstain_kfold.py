"""Held-out figures for the abstention settings chosen on the dev questions.

The abstention rule's numbers (Settings.aspect_passages, scorer_evidence, min_coverage, min_coverage_always)
are chosen on eval/questions_dev.jsonl, so `python -m eval` measures them in-sample. Here every setting of a
small grid answers every dev question once (k=3, batch mode, as shown); then for each fold the setting with
the best (refused unaddressed - 2 x refused answerable) on the other folds is scored on the held-out fold.
Two foldings: 5 folds stratified by answerable / unaddressed (seed 0), and one fold per site the question
names (questions naming none or several form one more fold).

Run: `python -m eval.abstain_kfold`. Writes eval/reports/abstain_kfold.{md,json}. Dev questions only: the
frozen test split is never read.
"""
from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import tempfile
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from eval.common import REPORTS, jsonable, set_threads, write_atomic

GRID = {"aspect_passages": (0, 1, 3, 5), "scorer_evidence": (0.05, 0.1, 0.2), "min_coverage": (0.5, 0.67),
        "min_coverage_always": (0.0, 0.2)}
REFUSED_ANSWERABLE_COST = 2  # refusing an answerable question costs twice a missed refusal


def counts(refused: dict[str, bool], unaddressed: dict[str, bool], ids) -> tuple[int, int, int]:
    """(unaddressed refused, answerable refused, unaddressed answered) over `ids`."""
    tp = sum(1 for i in ids if refused[i] and unaddressed[i])
    fp = sum(1 for i in ids if refused[i] and not unaddressed[i])
    return tp, fp, sum(1 for i in ids if not refused[i] and unaddressed[i])


def cross_validate(runs: dict[str, dict[str, bool]], unaddressed: dict[str, bool], folds: list[list[str]]) -> dict:
    """Out-of-fold (tp, fp, fn) of choosing, for each fold, the best setting on the other folds."""
    everyone = [i for fold in folds for i in fold]
    score = lambda name, ids: (lambda c: c[0] - REFUSED_ANSWERABLE_COST * c[1])(counts(runs[name], unaddressed, ids))
    total, chosen = [0, 0, 0], []
    for fold in folds:
        held = set(fold)
        rest = [i for i in everyone if i not in held]
        best = max(runs, key=lambda name: (score(name, rest), name.endswith("(shipped)")))  # ties: the shipped one
        chosen.append(best)
        total = [a + b for a, b in zip(total, counts(runs[best], unaddressed, fold))]
    return {"tp": total[0], "fp": total[1], "fn": total[2], "chosen": chosen}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.abstain_kfold", description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from eval.baselines import EngineSystem
    from eval.gold import NOT_ADDRESSED, load_questions
    from eval.run import run_system
    from index.build import build_index
    from index.corpus import load_corpus
    from index.embed import Encoder
    from index.store import read_index
    from qa.engine import Engine, Settings
    from qa.resolve import resolve_policies

    set_threads()
    questions = load_questions("dev")
    unaddressed = {q["id"]: q["kind"] in NOT_ADDRESSED for q in questions}
    encoder = Encoder()
    encoder.load()
    runs: dict[str, dict[str, bool]] = {}
    with tempfile.TemporaryDirectory(prefix="policyqa-abstain-kfold-") as tmp:
        build_index(load_corpus(), Path(tmp) / "index", encoder)
        engine = Engine(read_index(Path(tmp) / "index"), encoder, Settings())
        shipped = tuple(getattr(engine.settings, k) for k in GRID)
        for values in itertools.product(*GRID.values()):
            name = " ".join(f"{k}={v}" for k, v in zip(GRID, values)) + (" (shipped)" if values == shipped else "")
            system = EngineSystem(name, engine.with_settings(replace(engine.settings, **dict(zip(GRID, values)))))
            runs[name] = {r["id"]: r["abstained"] for r in run_system(system, questions, ranked_run=False)}
            print(name, counts(runs[name], unaddressed, list(unaddressed)), file=sys.stderr)
        site = {q["id"]: resolve_policies(q["question"], engine.patterns)[0] for q in questions}
    ids = [q["id"] for q in questions]
    rng = random.Random(args.seed)
    positives, negatives = [i for i in ids if unaddressed[i]], [i for i in ids if not unaddressed[i]]
    rng.shuffle(positives)
    rng.shuffle(negatives)
    by_site = defaultdict(list)
    for i in ids:
        by_site[site[i][0] if len(site[i]) == 1 else "none or several"].append(i)
    out = {"grid": GRID, "seed": args.seed, "questions": len(ids), "unaddressed": len(positives),
           "in_sample": {name: counts(r, unaddressed, ids) for name, r in runs.items()},
           "5-fold": cross_validate(runs, unaddressed, [positives[k::5] + negatives[k::5] for k in range(5)]),
           "leave-one-site-out": cross_validate(runs, unaddressed, list(by_site.values()))}
    lines = ["# Abstention settings on the dev questions: in-sample and cross-validated", "",
             f"{len(ids)} dev questions ({len(positives)} unaddressed); a setting's score is refused unaddressed - "
             f"{REFUSED_ANSWERABLE_COST} x refused answerable. The frozen test split is not read.", "",
             "| folding | unaddressed refused | answerable refused | settings chosen |", "|---|---:|---:|---|"]
    for folding in ("5-fold", "leave-one-site-out"):
        r = out[folding]
        chosen = "; ".join(f"{r['chosen'].count(c)} x {c}" for c in sorted(set(r["chosen"])))
        lines.append(f"| {folding} | {r['tp']} of {len(positives)} | {r['fp']} of {len(ids) - len(positives)} | {chosen} |")
    lines += ["", "| setting (in-sample) | unaddressed refused | answerable refused |", "|---|---:|---:|"]
    lines += [f"| {name} | {tp} | {fp} |" for name, (tp, fp, _) in out["in_sample"].items()]
    md = "\n".join(lines) + "\n"
    print(md)
    write_atomic(REPORTS / "abstain_kfold.md", md)
    write_atomic(REPORTS / "abstain_kfold.json", json.dumps(jsonable(out), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
