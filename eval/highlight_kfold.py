"""The highlight's join margin (Settings.highlight_margin), measured in-sample, k-fold over the dev questions
and held out by the fold encoders.

Each margin of GRID answers the dev questions through the whole engine (k=3); per question we keep whether
the top citation's highlight holds an evidence text and how long it is. The k-fold figure chooses the margin on
k-1 folds of the answerable dev questions (best highlight-hit@1, the smaller margin on a tie: the shorter
highlight) and scores it on the fold left out. With --folds DIR (`policyqa train --save-folds DIR`), each fold
encoder answers only the dev questions it was not trained on (as eval.refit does). Frozen test questions are
never read.

Run: `python -m eval.highlight_kfold [--folds DIR] [--k 5]` (prints a table; writes eval/reports/highlight_kfold.md).
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from eval.common import REPORTS, write_atomic

GRID = (-1.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)  # -1: the best sentence alone


def kfold_choice(table: dict[float, dict[str, float]], k: int = 5, seed: int = 0) -> tuple[float, list[float]]:
    """(held-out mean, margin chosen per fold) of `table` (margin -> question id -> 0/1 hit): each fold's
    questions are scored with the margin best on the other folds (the smaller one on a tie)."""
    ids = sorted(next(iter(table.values())))
    random.Random(seed).shuffle(ids)
    folds = [ids[i::k] for i in range(k)]
    held, chosen = [], []
    for fold in folds:
        train = set(ids) - set(fold)
        best = max(sorted(table), key=lambda m: (sum(table[m][i] for i in train), -m))
        chosen.append(best)
        held += [table[best][i] for i in fold]
    return sum(held) / len(held), chosen


def answer_table(engines_rows, margins=GRID) -> tuple[dict, dict, dict]:
    """margin -> {question key: highlight hit}, margin -> mean top highlight length, margin -> hit@1."""
    from eval.baselines import EngineSystem
    from eval.run import run_system

    hits: dict[float, dict[str, float]] = {m: {} for m in margins}
    lengths: dict[float, float] = {}
    top: dict[float, float] = {}
    for m in margins:
        chars, right = [], []
        for n, (engine, rows) in enumerate(engines_rows):
            system = EngineSystem("highlight", engine.with_settings(replace(engine.settings, highlight_margin=m)))
            for r in run_system(system, rows, ranked_run=False):
                if r["citations"]:
                    chars.append(r["citations"][0]["highlight_end"] - r["citations"][0]["highlight_start"])
                if r["highlight_hit1"] is not None:
                    hits[m][f"{n}:{r['id']}"] = r["highlight_hit1"]
                    right.append(r["hit1"])
        lengths[m] = sum(chars) / len(chars)
        top[m] = sum(right) / len(right)
    return hits, lengths, top


def rows_table(name: str, hits: dict, lengths: dict, top: dict, k: int) -> list[str]:
    from qa.highlight import JOIN_MARGIN

    score, chosen = kfold_choice(hits, k)
    lines = [f"| {name}, margin {m:g}{' (shipped)' if m == JOIN_MARGIN else ''} | {top[m]:.3f} | "
             f"{sum(hits[m].values()) / len(hits[m]):.3f} | {lengths[m]:.0f} |" for m in hits]
    lines.append(f"| {name}, margin chosen by {k}-fold ({', '.join(f'{c:g}' for c in chosen)}) | | **{score:.3f}** | |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.highlight_kfold", description=__doc__.splitlines()[0])
    p.add_argument("--folds", type=Path, help="fold encoders (policyqa train --save-folds DIR): held-out dev figures too")
    p.add_argument("--k", type=int, default=5)
    args = p.parse_args(argv)

    from eval.common import set_threads
    from eval.gold import load_questions
    from eval.refit import fold_engines
    from index.build import build_index
    from index.corpus import load_corpus
    from index.embed import Encoder
    from index.store import read_index
    from qa.engine import Engine, Settings

    set_threads()
    lines = ["| engine, margin | hit@1 | hl-hit@1 | top highlight chars |", "|---|---:|---:|---:|"]
    with tempfile.TemporaryDirectory(prefix="policyqa-highlight-") as tmp:
        encoder = Encoder()
        encoder.load()
        build_index(load_corpus(), Path(tmp) / "index", encoder)
        engine = Engine(read_index(Path(tmp) / "index"), encoder, Settings())
        lines += rows_table("shipped encoder, dev in-sample", *answer_table([(engine, load_questions("dev"))]), args.k)
        if args.folds:
            folds = list(fold_engines(args.folds, Path(tmp)))
            lines += rows_table("fold encoders, held-out dev", *answer_table(folds), args.k)
    md = ("# The highlight's join margin: in-sample, k-fold over dev, held out by the fold encoders\n\n"
          "The top citation's highlight holds an evidence text (hl-hit@1) for each margin by which the best sentence's "
          "better neighbour joins it (-1: never). Frozen test questions are not read.\n\n" + "\n".join(lines) + "\n")
    print(md)
    write_atomic(REPORTS / "highlight_kfold.md", md)
    return 0

if __name__ == "__main__":
    sys.exit(main())
