"""The engine's fusion weights measured on PolicyQA, k-fold by policy (the other half of eval.refit).

eval.refit fits the fusion weights on our own dev questions; this asks whether a setting serves the
PolicyQA questions too. Each fold model of `policyqa train --save-folds DIR` indexes only the policies it
was not trained on (once), then answers their questions under every setting of a small grid; the scores
of all folds are pooled per setting. Choose a setting only with its own-dev held-out figures beside
(`python -m eval.refit --folds DIR`); the frozen test questions are never read.

Run: `python -m eval.policyqa_refit --folds DIR` (prints a table; writes eval/reports/policyqa_refit.{md,json}).
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from pathlib import Path

from eval.common import REPORTS, jsonable, set_threads, write_atomic
from eval.refit import settings_for

GRID = {
    "lexical_weight": (0.0, 0.08, 0.15, 0.25),
    "sentence_weight": (0.5, 1.0),
    "heading_weight": (0.0, 0.2),
}


def main(args) -> int:
    from eval.policyqa_bench import K, aggregate, fold_engines, score
    from qa.engine import Settings

    set_threads()
    base = Settings()
    current = {k: getattr(base.retrieval, k, getattr(base, k, None)) for k in GRID}
    grid = {**GRID, **({"lexical_weight": args.lexical} if getattr(args, "lexical", None) else {})}
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    if getattr(args, "lexical", None):  # only the lexical weight moves
        points = [p for p in points if all(p[k] == current[k] for k in grid if k != "lexical_weight")]
    if current not in points:
        points.append(current)
    # Nearest to the current setting first (it leads): the table fills in printed order, so a cut-short run
    # has measured the likeliest moves.
    points.sort(key=lambda p: sum(abs(p[k] - current[k]) / max(max(grid[k]), 1e-9) for k in grid))
    with tempfile.TemporaryDirectory(prefix="policyqa-refit-") as tmp:
        folds = list(fold_engines(Path(args.folds), Path(tmp)))
        figures = []
        for point in points:
            scores = []
            for engine, questions in folds:
                e = engine.with_settings(settings_for(base, point))
                scores += [score(q, e.ask(q["question"], policy=q["policy"], k=K).to_dict()) for q in questions]
            figures.append(aggregate(scores))
            f = figures[-1]
            print(f"{point}: hit@1 {f['hit@1']:.3f} hit@3 {f['hit@3']:.3f} len@1 {f['cite_chars_top1']:.0f}", file=sys.stderr, flush=True)
    lines = ["| lexical | sentence | heading | hit@1 | hit@3 | MRR@10 | hl-hit@1 | len@1 |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p, f in sorted(zip(points, figures), key=lambda x: -x[1]["hit@3"]):
        mark = " (current)" if p == current else ""
        lines.append(f"| {p['lexical_weight']} | {p['sentence_weight']} | {p['heading_weight']}{mark} | {f['hit@1']:.3f} | "
                     f"{f['hit@3']:.3f} | {f['mrr@10']:.3f} | {f['highlight_hit@1']:.3f} | {f['cite_chars_top1']:.0f} |")
    md = ("# Fusion weights on PolicyQA, k-fold by policy\n\n"
          f"Fold models from {args.folds}; each answers only the questions of the policies it was not trained on, "
          f"{figures[0]['questions']} questions pooled per setting. Read beside `python -m eval.refit` (own dev).\n\n"
          + "\n".join(lines) + "\n")
    print(md)
    write_atomic(REPORTS / "policyqa_refit.md", md)
    write_atomic(REPORTS / "policyqa_refit.json", json.dumps(jsonable({"folds": str(args.folds), "points": points,
                                                                       "figures": figures}), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m eval.policyqa_refit", description=__doc__.splitlines()[0])
    p.add_argument("--folds", type=Path, required=True, help="fold models written by `policyqa train --save-folds DIR`")
    p.add_argument("--lexical", type=lambda v: tuple(float(x) for x in v.split(",")), metavar="W,W,...",
                   help="try only these lexical weights, the other weights as they are")
    sys.exit(main(p.parse_args()))
