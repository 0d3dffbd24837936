"""External benchmark: the PolicyQA dev split (Ahmad et al., Findings of EMNLP 2020), open-policy setting.

Each of its 20 website policies is rebuilt as one text (segments in `index` order joined by a blank
line) and written, with a manifest.json, to a temporary corpus directory that goes through the normal
corpus path (`load_corpus` -> `build_index`). Each distinct (policy, question) pair is asked restricted
to its policy; a citation is a hit when its [start, end) span in the rebuilt text overlaps a gold answer
span (all answers of duplicate questions in the same policy are gold).

Systems: PolicyQA (engine.ask, k=10, one question at a time), the usual recipe (500/50 chunks, dense)
and BM25 over the same chunks (questions batch-encoded for the baselines), plus a length-matched control
(the recipe with 750/75 chunks, as long as PolicyQA's passages).

Run: `python -m eval.policyqa_bench [--limit N]` or `policyqa eval --policyqa`. The data is read from
../shared/benchmarks/policyqa/dev.json relative to the repository (env POLICYQA_BENCHMARK: the file or
its directory). Writes eval/reports/policyqa_benchmark.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from eval.common import REPORTS, benchmark_file, jsonable, set_threads, write_atomic
import numpy as np

from eval.metrics import hit_at_k, mean, mrr_at_k, percentile
from index.trainset import overlaps, write_policyqa_corpus

K = 10
SHOWN = 3
MATCHED = (750, 75)  # recipe chunking whose mean chunk length (~540 chars) matches PolicyQA's passages here
# Our own earlier measurements of the usual recipe on this split (open-policy setting), kept as a
# reference point: the data set's paper publishes reading-comprehension F1/EM only, no retrieval figures.
REFERENCE = {
    "recipe-dense": {"hit@1": 0.206, "hit@3": 0.393, "mrr@10": 0.330},
    "recipe-bm25": {"hit@1": 0.161, "hit@3": 0.305, "mrr@10": 0.270},
}


def rebuild(data: dict) -> tuple[list[dict], list[dict]]:
    """(policies, questions) of the SQuAD-format data; one definition, shared with training."""
    from index.trainset import rebuild_policyqa

    return rebuild_policyqa(data)


def score(question: dict, answer: dict) -> dict:
    cites = answer["citations"]
    rels = [1 if overlaps(c["start"], c["end"], question["gold"]) else 0 for c in cites[:K]]
    top = cites[0] if cites else None
    return {
        "rels": rels, "hit1": hit_at_k(rels, 1), "hit3": hit_at_k(rels, 3), "hit5": hit_at_k(rels, 5),
        "mrr10": mrr_at_k(rels, 10),
        "hl_hit1": 1.0 if top and overlaps(top["highlight_start"], top["highlight_end"], question["gold"]) else 0.0,
        "top1_chars": len(top["text"]) if top else None, "shown_chars": [len(c["text"]) for c in cites[:SHOWN]],
        "hl_chars": top["highlight_end"] - top["highlight_start"] if top else None,
        "abstained": bool(answer.get("abstained")), "ms": answer["timings_ms"].get("total", 0.0),
    }


def aggregate(scores: list[dict]) -> dict:
    return {
        "questions": len(scores),
        "hit@1": mean(s["hit1"] for s in scores), "hit@3": mean(s["hit3"] for s in scores),
        "hit@5": mean(s["hit5"] for s in scores), "mrr@10": mean(s["mrr10"] for s in scores),
        "highlight_hit@1": mean(s["hl_hit1"] for s in scores),
        "highlight_chars": mean(s["hl_chars"] for s in scores if s["hl_chars"] is not None),
        "cite_chars_top1": mean(s["top1_chars"] for s in scores if s["top1_chars"] is not None),
        "cite_chars_shown": mean(n for s in scores for n in s["shown_chars"]),
        "abstained": mean(float(s["abstained"]) for s in scores),
        "ms_p50": percentile([s["ms"] for s in scores], 50), "ms_mean": mean(s["ms"] for s in scores),
    }


def run(limit: int | None = None, encoder=None, progress: bool = True, policy_ids: set[str] | None = None,
        baselines: bool = True, settings=None) -> dict:
    from tqdm import tqdm

    from eval.baselines import ChunkIndex, RecipeBM25, RecipeDense, plain_tokens
    from index.build import build_index
    from index.corpus import load_corpus
    from index.embed import Encoder
    from index.store import read_index
    from qa.engine import Engine, Settings

    t_start = time.perf_counter()
    threads = set_threads()
    path = benchmark_file()
    policies, questions = rebuild(json.loads(path.read_text(encoding="utf-8")))
    if policy_ids is not None:  # a fold's held-out policies only
        policies = [p for p in policies if p["id"] in policy_ids]
        questions = [q for q in questions if q["policy"] in policy_ids]
    if limit:
        questions = questions[:limit]
    encoder = encoder or Encoder()
    encoder.load()
    meta = {"generated": datetime.now(timezone.utc).isoformat(timespec="seconds"), "data": str(path),
            "policies": len(policies), "questions": len(questions), "torch_threads": threads, "model": encoder.name,
            "gold_answers": sum(q["answers"] for q in questions), "gold_spans": sum(len(q["gold"]) for q in questions),
            "trained_on_this_data": trained_on(encoder.name, path)}
    results = {}
    with tempfile.TemporaryDirectory(prefix="policyqa-bench-") as tmp:
        corpus = Path(tmp) / "corpus"
        write_policyqa_corpus(policies, corpus)
        loaded = load_corpus(corpus)
        by_id = {p["id"]: p["text"] for p in policies}
        if any(p.text != by_id[p.id] for p in loaded):
            raise AssertionError("a policy text changed on its way through load_corpus; gold offsets would be wrong")
        t0 = time.perf_counter()
        # English questions only: the multilingual vectors would never be read
        figures = build_index(loaded, Path(tmp) / "index", encoder, progress=progress, multilingual=None)
        meta.update(index_build_s=time.perf_counter() - t0, passages=figures["passages"], sentences=figures["sentences"])
        engine = Engine(read_index(Path(tmp) / "index"), encoder, settings or Settings())
        scores = []
        for q in tqdm(questions, desc="policyqa benchmark: PolicyQA", unit="q", disable=not progress,
                      file=sys.stderr, mininterval=1.0):
            scores.append(score(q, engine.ask(q["question"], policy=q["policy"], k=K).to_dict()))
        results["policyqa"] = scores
        if not baselines:
            return {"meta": meta, "scores": results, "questions": questions}
        t0 = time.perf_counter()
        from index.embed import BASE_MODEL

        # The usual recipe is the recipe with the usual model, whichever encoder PolicyQA uses.
        recipe_encoder = encoder if encoder.name == BASE_MODEL else Encoder(BASE_MODEL)
        chunks = ChunkIndex(loaded, recipe_encoder, progress=progress)
        meta.update(baseline_build_s=time.perf_counter() - t0, baseline_chunks=len(chunks.chunks))
        # Control, not a baseline: the recipe with chunks as long as PolicyQA's passages (span overlap favours
        # long citations, so this separates "better retrieval" from "longer citations").
        matched = ChunkIndex(loaded, recipe_encoder, chunk_size=MATCHED[0], chunk_overlap=MATCHED[1], progress=progress)
        control = RecipeDense(matched)
        control.name = f"recipe-dense-{MATCHED[0]}"
        plain = RecipeBM25(chunks, tokenizer=plain_tokens)
        plain.name = "recipe-bm25-plain"
        for system in (RecipeDense(chunks), RecipeBM25(chunks), control, plain):
            answers = system.ask_batch([q["question"] for q in questions], [q["policy"] for q in questions], k=K)
            results[system.name] = [score(q, a.to_dict()) for q, a in zip(questions, answers)]
    meta["total_s"] = time.perf_counter() - t_start
    categories = sorted({q["category"] for q in questions})
    return {
        "meta": meta,
        "systems": {name: aggregate(s) for name, s in results.items()},
        "by_category": {
            name: {c: aggregate([s for s, q in zip(sc, questions) if q["category"] == c]) for c in categories}
            for name, sc in results.items()
        },
        "reference": REFERENCE,
    }


def _f(v, spec="{:.3f}"):
    return "—" if v is None or v != v else spec.format(v)


def report_markdown(out: dict) -> str:
    m = out["meta"]
    cols = [("hit@1", "hit@1"), ("hit@3", "hit@3"), ("hit@5", "hit@5"), ("mrr@10", "MRR@10"),
            ("highlight_hit@1", "hl-hit@1"), ("highlight_chars", "hl len"), ("cite_chars_top1", "len@1"), ("cite_chars_shown", "len@3"),
            ("abstained", "abstained"), ("ms_p50", "p50 ms")]
    lines = [
        "# External benchmark: PolicyQA dev split (open-policy retrieval)", "",
        *([f"**In-sample**: PolicyQA's encoder `{m['model']}` was trained on this very split; for held-out "
            "figures run `python -m eval.policyqa_bench --folds DIR` with the fold models of `policyqa train --save-folds DIR`.", ""]
          if m.get("trained_on_this_data") else []),
        f"Generated {m['generated']}. {m['policies']} policies rebuilt as one text each (segments in `index` order, "
        f"blank-line separated), {m['questions']} distinct (policy, question) pairs, {m['gold_answers']} gold answers "
        f"({m['gold_spans']} distinct spans). Each question is asked restricted to its policy; a citation is a hit "
        "when its character span overlaps a gold answer span. PolicyQA index: "
        f"{m['passages']} passages, {m['sentences']} sentences, built in {m['index_build_s']:.0f} s; baseline "
        f"chunks: {m['baseline_chunks']} (500/50), built in {m['baseline_build_s']:.0f} s; whole run {m['total_s']:.0f} s, "
        f"torch threads {m['torch_threads']}.", "",
        "| system | " + " | ".join(t for _, t in cols) + " |", "|---|" + "---:|" * len(cols),
    ]
    fmt = {"highlight_chars": "{:.0f}", "cite_chars_top1": "{:.0f}", "cite_chars_shown": "{:.0f}", "ms_p50": "{:.1f}"}
    for name, s in out["systems"].items():
        lines.append(f"| {name} | " + " | ".join(_f(s[k], fmt.get(k, "{:.3f}")) for k, _ in cols) + " |")
    lines += ["", "Reference figures for the baselines on this split (our earlier measurements, not published ones):", "",
              "| system | hit@1 | hit@3 | MRR@10 | ours hit@1 | ours hit@3 | ours MRR@10 |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, ref in out["reference"].items():
        ours = out["systems"].get(name, {})
        lines.append(f"| {name} | {ref['hit@1']:.3f} | {ref['hit@3']:.3f} | {ref['mrr@10']:.3f} | "
                     f"{_f(ours.get('hit@1'))} | {_f(ours.get('hit@3'))} | {_f(ours.get('mrr@10'))} |")
    lines += ["", "Notes: `len@1`/`len@3` = mean characters of the top / first three cited passages (longer citations "
              "overlap gold spans more easily: compare hit rates together with length). `hl-hit@1` = the top citation's "
              "highlight span overlaps a gold span (baselines: the chunk's first 300 characters). `abstained` = share of "
              "answers PolicyQA marks as not addressed (every question here has an answer in its policy). "
              "p50 ms for the baselines is per question with batch-encoded questions. "
              f"`recipe-dense-{MATCHED[0]}` is a control, not a baseline: the recipe with {MATCHED[0]}/{MATCHED[1]} "
              "chunks, as long as PolicyQA's passages, to separate better retrieval from longer citations. "
              "`recipe-bm25` uses PolicyQA's tokenizer (stop words, stemming, contractions folded); `recipe-bm25-plain` "
              "is the same BM25 with lower-cased `str.split()` tokens, a diagnostic for the gap to the reference BM25 "
              "figures.", "",
              "## hit@3 by OPP-115 category", "",
              "| category | questions | " + " | ".join(out["by_category"]) + " |", "|---|---:|" + "---:|" * len(out["by_category"])]
    first = next(iter(out["by_category"].values()))
    for cat in first:
        lines.append(f"| {cat} | {first[cat]['questions']} | "
                     + " | ".join(_f(out["by_category"][n][cat]["hit@3"]) for n in out["by_category"]) + " |")
    return "\n".join(lines) + "\n"


def trained_on(model: str, data: Path) -> bool:
    """Whether `model` is a trained model whose training data included this very file (by sha256)."""
    from index.trained import file_sha256, is_trained, record

    if not is_trained(model):
        return False
    spec, _ = record(model)
    return spec.get("data", {}).get("policyqa", {}).get("sha256") == file_sha256(Path(data))


def held_out_folds(folds_dir: Path, policies: list[dict]) -> list[tuple[Path, set[str]]]:
    """(fold model directory, ids of the PolicyQA policies it was not trained on) for each fold model of
    `policyqa train --save-folds DIR`."""
    fold_dirs = sorted(d for d in Path(folds_dir).iterdir() if (d / "model.json").is_file())
    if not fold_dirs:
        raise FileNotFoundError(f"no fold models (fold*/model.json) in {folds_dir}")
    helds = [set(json.loads((d / "model.json").read_text(encoding="utf-8"))["figures"]["held_out"]) for d in fold_dirs]
    # A policy in no fold gave no training question (one passage: every question's answer is in it), so no
    # fold model was trained on it: the first fold answers its questions too.
    helds[0] |= {p["id"] for p in policies} - set().union(*helds)
    return list(zip(fold_dirs, helds))


def fold_engines(folds_dir: Path, tmp: Path):
    """(engine, held-out PolicyQA questions) per fold model in `folds_dir`, each over an index of only its
    held-out policies, built once in `tmp`: for asking them again under other settings (eval.policyqa_refit,
    eval.thesaurus_audit) without indexing again."""
    from index.build import build_index
    from index.corpus import load_corpus
    from index.embed import Encoder
    from index.store import read_index
    from qa.engine import Engine, Settings

    policies, questions = rebuild(json.loads(benchmark_file().read_text(encoding="utf-8")))
    for d, held in held_out_folds(folds_dir, policies):
        corpus = tmp / d.name / "corpus"
        write_policyqa_corpus([p for p in policies if p["id"] in held], corpus)
        encoder = Encoder(str(d))
        build_index(load_corpus(corpus), tmp / d.name / "index", encoder, progress=False, multilingual=None)
        yield Engine(read_index(tmp / d.name / "index"), encoder, Settings()), [q for q in questions if q["policy"] in held]


def run_folds(folds_dir: Path, progress: bool = True, scorer_pairs: Path | None = None) -> dict:
    """Full-pipeline k-fold figures: each fold's model (`policyqa train --save-folds DIR`) answers only the
    questions of the policies it was not trained on; the scores of all folds are pooled. With `scorer_pairs`
    (the cache of `policyqa train --scorer --pairs FILE`), each fold's answer-sentence scorer is fitted
    again without the fold's policies, so it too is held out."""
    from dataclasses import replace

    from index.embed import Encoder
    from qa.engine import Settings

    scores, per_fold, meta = [], [], {}
    policies, _ = rebuild(json.loads(benchmark_file().read_text(encoding="utf-8")))
    folds = held_out_folds(folds_dir, policies)
    tmp = tempfile.TemporaryDirectory(prefix="policyqa-scorer-folds-")
    for d, held in folds:
        settings = Settings()
        if scorer_pairs is not None and settings.scorer:
            settings = replace(settings, scorer=str(fold_scorer(Path(scorer_pairs), held, Path(tmp.name) / d.name)))
        out = run(encoder=Encoder(str(d)), progress=progress, policy_ids=held, baselines=False, settings=settings)
        scores += out["scores"]["policyqa"]
        per_fold.append({"fold": d.name, "policies": out["meta"]["policies"], **aggregate(out["scores"]["policyqa"])})
        meta = out["meta"]
    tmp.cleanup()
    # Without fold scorers it is off: the shipped one reads only its own encoder's cosines (qa.scorer.scorer_for).
    meta["scorer"] = "fitted per fold without its policies" if scorer_pairs else "off (no --scorer-pairs)"
    return {"meta": {**meta, "folds": len(folds), "folds_dir": str(folds_dir), "questions": len(scores)},
            "systems": {"policyqa (k-fold)": aggregate(scores)}, "per_fold": per_fold}


def fold_scorer(pairs_file: Path, held: set[str], out: Path) -> Path:
    """A sentence scorer fitted on the cached pairs minus the PolicyQA policies in `held`, written to `out`."""
    from qa.scorer_train import Pairs, publish_fitted

    pairs = Pairs.load(pairs_file)
    keep = np.array([not (pairs.sources[q] == "policyqa" and pairs.groups[q] in held) for q in pairs.question])
    return publish_fitted(pairs, keep, f"fold-without-{len(held)}-policies", out, held_out=sorted(held))


def main(args=None) -> int:
    limit = getattr(args, "limit", None)
    if getattr(args, "folds", None):
        out = run_folds(args.folds, scorer_pairs=getattr(args, "scorer_pairs", None))
        lines = ["| system / fold | questions | hit@1 | hit@3 | hit@5 | MRR@10 | hl-hit@1 | len@1 | abstained | p50 ms |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, a in [*out["systems"].items(), *((f["fold"], f) for f in out["per_fold"])]:
            lines.append(f"| {name} | {a['questions']} | {_f(a['hit@1'])} | {_f(a['hit@3'])} | {_f(a['hit@5'])} | "
                         f"{_f(a['mrr@10'])} | {_f(a['highlight_hit@1'])} | {_f(a['cite_chars_top1'], '{:.0f}')} | "
                         f"{_f(a['abstained'])} | {_f(a['ms_p50'], '{:.1f}')} |")
        md = ("# PolicyQA benchmark, k-fold by policy\n\nEach fold's model (trained without the fold's policies) "
              f"answers the questions of its held-out policies through the whole pipeline; {out['meta']['folds']} folds "
              f"from {out['meta']['folds_dir']}, {out['meta']['questions']} questions; answer-sentence scorer: "
              f"{out['meta'].get('scorer')}.\n\n" + "\n".join(lines) + "\n")
        print(md)
        write_atomic(REPORTS / "policyqa_benchmark_kfold.md", md)
        write_atomic(REPORTS / "policyqa_benchmark_kfold.json", json.dumps(jsonable(out), indent=1) + "\n")
        return 0
    model = getattr(args, "model", None)
    if model:
        from index.embed import Encoder
    out = run(limit=limit, encoder=Encoder(model) if model else None)
    md = report_markdown(out)
    print(md)
    if limit:
        print(f"(--limit {limit}: reports not written)")
        return 0
    write_atomic(REPORTS / "policyqa_benchmark.md", md)
    write_atomic(REPORTS / "policyqa_benchmark.json", json.dumps(jsonable(out), indent=1) + "\n")
    print(f"wrote {REPORTS / 'policyqa_benchmark.md'} and .json")
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m eval.policyqa_bench", description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, help="ask only the first N questions (smoke test; writes no report)")
    p.add_argument("--model", help="embedding model (default: the product's default)")
    p.add_argument("--folds", type=Path, metavar="DIR",
                   help="k-fold figures: each fold model in DIR (policyqa train --save-folds DIR) on its held-out policies")
    p.add_argument("--scorer-pairs", type=Path, metavar="FILE",
                   help="with --folds: refit the sentence scorer per fold from these pairs (policyqa train --scorer --pairs FILE)")
    sys.exit(main(p.parse_args()))
