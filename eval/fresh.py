"""The fresh questions (eval/questions_fresh.jsonl): 128 questions by writers who saw only the policies. The
dev questions are held out from the fold encoders but not from the engine's hand-set rules, which were tuned on
them, so held-out dev figures read high; these do not (issue 13). minilm-policy-v1 to v5 never trained on them;
v6 does (`policyqa train --fresh`, the default), so the shipped model's figures on them are in-sample and the
honest ones come from its fold models.

Run: `python -m eval.fresh [--model NAME ...] [--folds DIR ...]`: one line of figures per encoder (default: the
shipped one); a --folds DIR of `policyqa train --save-folds` gives one line per fold model, each answering the
fresh questions it did not train on (all of them for a fold model of v5 or before, the half it held out for
v6's), then one line pooling them. A model the index's answer-sentence scorer was not fitted on answers without
it, as in eval.refit.

`--split held` measures the held-out questions (eval/questions_held.jsonl, 58 written on 2026-12-03 the same way,
after every choice about v6): no model or rule has seen them, so every model answers all of them.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def encoders(models: list[str], folds: list[Path]) -> list[str]:
    """The encoders to measure: each --model, then each fold model of each --folds DIR."""
    out = list(models)
    for d in folds:
        found = sorted(str(p) for p in Path(d).iterdir() if (p / "model.json").is_file())
        if not found:
            raise SystemExit(f"error: no fold models (DIR/fold<i>/model.json) in {d}")
        out += found
    return out


def rows_for(encoder_name: str, rows: list[dict]) -> list[dict]:
    """The fresh `rows` a model may be measured on: all of them, or for a fold model that trained on some (its
    model.json's held-out groups name fresh questions) those it held out and those no model trains on (not
    answerable, without evidence, or a follow-up)."""
    from eval.refit import held_out, held_out_rows

    if not (Path(encoder_name) / "model.json").is_file():
        return rows
    held = held_out(Path(encoder_name))
    return held_out_rows(held, rows) if held & {r["id"] for r in rows} else rows


def measure(encoder_name: str, rows: list[dict], tmp: Path) -> list[dict]:
    from eval.baselines import EngineSystem
    from eval.common import default_corpus_engine
    from eval.run import run_system
    from index.embed import Encoder

    engine = default_corpus_engine(Encoder(encoder_name), tmp)
    return run_system(EngineSystem("policyqa", engine), rows_for(encoder_name, rows), ranked_run=False)


def line(name: str, f: dict) -> str:
    c = f["abstain_counts"]
    return (f"{name}: {f['answerable']} answerable: hit@1 {f['hit@1']:.3f} hit@3 {f['hit@3']:.3f} "
            f"highlight {f['highlight_hit@1']:.3f} len@1 {f['cite_chars_top1']:.0f}; refused {c['tp']} of "
            f"{c['tp'] + c['fn']} not addressed, {c['fp']} answerable")


def main(argv: list[str] | None = None) -> int:
    from eval.gold import FRESH_SPLITS, load_questions
    from eval.run import aggregate
    from index.errors import PolicyQAError
    from index.trained import DEFAULT_TRAINED

    p = argparse.ArgumentParser(prog="python -m eval.fresh", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", default=[], help="an encoder to measure (repeatable)")
    p.add_argument("--folds", action="append", default=[], type=Path, help="fold models of `policyqa train --save-folds`")
    p.add_argument("--split", choices=FRESH_SPLITS, default="fresh", help="the fresh questions (default) or the held-out ones")
    args = p.parse_args(argv)
    rows = load_questions(args.split)
    names = encoders(args.model or ([] if args.folds else [DEFAULT_TRAINED]), args.folds)
    try:
        with tempfile.TemporaryDirectory(prefix="policyqa-fresh-") as tmp:
            pooled: list[dict] = []
            for i, name in enumerate(names):
                results = measure(name, rows, Path(tmp) / str(i))
                print(line(name, aggregate(results)), flush=True)
                pooled += results if name not in args.model else []
            if args.folds:
                print(line("fold models pooled", aggregate(pooled)), flush=True)
    except PolicyQAError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
