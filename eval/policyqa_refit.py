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

from eval.common import REPORTS, benchmark_file, jsonable, set_threads, write_atomic
from eval.refit import settings_for

GRID = {
    "lexical_weight": (0.0, 0.08, 0.15, 0.25),
    "sentence_weight": (0.5, 1.0),
    "heading_weight": (0.0, 0.2),
}


def fold_engines(folds_dir: Path, tmp: Path):
    """(engine, held-out PolicyQA questions) per fold model in `folds_dir`, each over an index of its held-out policies."""
    from eval.policyqa_bench import rebuild
    from index.build import build_index
    from index.corpus import load_corpus
    from index.embed import Encoder
    from index.store import read_index
    from index.trainset import write_policyqa_corpus
    from qa.engine import Engine, Settings

    policies, questions = rebuild(json.loads(benchmark_file().read_text(encoding="utf-8")))
    fold_dirs = sorted(d for d in Path(folds_dir).iterdir() if (d / "model.json").is_file())
    helds = [set(json.loads((d / "model.json").read_text(encoding="utf-8"))["figures"]["held_out"]) for d in fold_dirs]
    helds[0] |= {p["id"] for p in policies} - set().union(*helds)  # as eval.policyqa_bench.run_folds
    for d, held in zip(fold_dirs, helds):
        corpus = tmp / d.name / "corpus"
        write_policyqa_corpus([p for p in policies if p["id"] in held], corpus)
        encoder = Encoder(str(d))
        build_index(load_corpus(corpus), tmp / d.name / "index", encoder, progress=False, multilingual=None)
        yield Engine(read_index(tmp / d.name / "index"), encoder, Settings()), [q for q in questions if q["policy"] in held]


def main(args) -> int:
    from eval.policyqa_bench import K, aggregate, score
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
