"""Re-fit the engine's fusion weights and abstention threshold around a trained encoder, cross-fitted.

The shipped encoder was trained on our dev questions, so choosing settings with it on those questions
would choose on answers it has seen. Instead each fold model of `policyqa train --save-folds DIR`
answers only the dev questions it was not trained on (and every unanswerable dev question: none is
trained on); the figures of the folds are pooled per setting. Frozen test questions are never read.

Run: `python -m eval.refit --folds DIR` (prints a table; writes eval/reports/refit.{md,json}).
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

REPORTS = Path(__file__).resolve().parent / "reports"
GRID = {
    "lexical_weight": (0.0, 0.15, 0.25, 0.4),
    "sentence_weight": (0.25, 0.5, 1.0),
    "heading_weight": (0.0, 0.2),
    "expand_lexical": (True, False),
}
THRESHOLDS = (0.35, 0.4, 0.45, 0.5, 0.55, 0.6)


def settings_for(base, point: dict):
    retrieval = replace(base.retrieval, **{k: v for k, v in point.items() if hasattr(base.retrieval, k)})
    return replace(base, retrieval=retrieval, **{k: v for k, v in point.items() if not hasattr(base.retrieval, k)})


def held_out(model_dir: Path) -> set[str]:
    """The groups (PolicyQA policies, own question ids) a fold model of `policyqa train --save-folds` held out."""
    return set((json.loads((Path(model_dir) / "model.json").read_text(encoding="utf-8")).get("figures") or {}).get("held_out") or ())


def held_out_rows(held: set[str], rows: list[dict]) -> list[dict]:
    """The gold `rows` a fold model that held out `held` never trained on: those held out, and those training
    never takes (index.trainset.trained_on)."""
    from index.trainset import trained_on

    return [r for r in rows if r["id"] in held or not trained_on(r)]


def fold_engines(folds_dir: Path, tmp: Path):
    """(engine, held-out dev rows) per fold model in `folds_dir`."""
    from eval.common import default_corpus_engine
    from eval.gold import load_questions
    from index.embed import Encoder

    dev = load_questions("dev")
    for d in sorted(p for p in Path(folds_dir).iterdir() if (p / "model.json").is_file()):
        yield default_corpus_engine(Encoder(str(d)), tmp / d.name), held_out_rows(held_out(d), dev)


def main(args) -> int:
    from eval.baselines import EngineSystem
    from eval.common import jsonable, write_atomic
    from eval.run import aggregate, run_system
    from qa.engine import Settings

    base = Settings()
    points = [dict(zip(GRID, values)) for values in itertools.product(*GRID.values())]
    if getattr(args, "current", False):  # only the shipped settings: held-out dev figures of a set of fold models
        points = [{k: getattr(base.retrieval, k, getattr(base, k, None)) for k in GRID}]
    records: dict[int, list[dict]] = {i: [] for i in range(len(points))}
    thresholds_tried = (base.strong_evidence,) if getattr(args, "current", False) else THRESHOLDS
    threshold_records: dict[float, list[dict]] = {t: [] for t in thresholds_tried}
    with tempfile.TemporaryDirectory(prefix="policyqa-refit-") as tmp:
        folds = list(fold_engines(Path(args.folds), Path(tmp)))
        for i, point in enumerate(points):
            for engine, rows in folds:
                system = EngineSystem("refit", engine.with_settings(settings_for(base, point)))
                records[i] += run_system(system, rows, ranked_run=False)
        figures = [aggregate(records[i]) for i in range(len(points))]
        # hit@1 first, then the highlight; the current default wins ties (listed first when equal).
        current = {k: getattr(base.retrieval, k, getattr(base, k, None)) for k in GRID}
        best = max(range(len(points)), key=lambda i: (round(figures[i]["hit@1"], 4), round(figures[i]["highlight_hit@1"], 4),
                                                       points[i] == current))
        chosen = settings_for(base, points[best])
        for t in thresholds_tried:
            for engine, rows in folds:
                system = EngineSystem("refit", engine.with_settings(replace(chosen, strong_evidence=t)))
                threshold_records[t] += run_system(system, rows, ranked_run=False)
    thresholds = {t: aggregate(r) for t, r in threshold_records.items()}
    lines = ["| lexical | sentence | heading | expand | hit@1 | hit@3 | hl-hit@1 | correct@1 |", "|---:|---:|---:|---|---:|---:|---:|---:|"]
    order = sorted(range(len(points)), key=lambda i: -figures[i]["hit@1"])
    for i in order:
        p, f = points[i], figures[i]
        mark = " **(chosen)**" if i == best else (" (current)" if p == current else "")
        lines.append(f"| {p['lexical_weight']} | {p['sentence_weight']} | {p['heading_weight']} | {p['expand_lexical']}{mark} | "
                     f"{f['hit@1']:.3f} | {f['hit@3']:.3f} | {f['highlight_hit@1']:.3f} | {f['correct@1']:.3f} |")
    lines += ["", "| strong_evidence | correct@1 | abstain precision | abstain recall | false refusals |", "|---:|---:|---:|---:|---:|"]
    for t, f in thresholds.items():
        lines.append(f"| {t} | {f['correct@1']:.3f} | {f['abstain_precision']:.3f} | {f['abstain_recall']:.3f} | {f['false_refusal_rate']:.3f} |")
    md = ("# Engine settings re-fitted around the trained encoder (cross-fitted on dev)\n\n"
          f"Fold models from {args.folds}; each answers only dev questions it was not trained on. "
          f"{figures[best]['answerable']} answerable answers pooled per setting.\n\n" + "\n".join(lines) + "\n")
    print(md)
    if getattr(args, "current", False):
        return 0
    write_atomic(REPORTS / "refit.md", md)
    write_atomic(REPORTS / "refit.json", json.dumps(jsonable({"points": points, "figures": figures, "best": points[best],
                                                               "thresholds": thresholds}), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m eval.refit", description=__doc__.splitlines()[0])
    p.add_argument("--folds", type=Path, required=True, help="fold models written by `policyqa train --save-folds DIR`")
    p.add_argument("--current", action="store_true",
                   help="evaluate the current settings only (compare sets of fold models); writes no report")
    sys.exit(main(p.parse_args()))
