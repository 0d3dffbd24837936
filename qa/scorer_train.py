"""`policyqa train --scorer`: fit the answer-sentence scorer (qa.scorer) on what the engine retrieves.

Pairs: each training question is asked of its policy through the engine's own retrieval (qa.engine,
the shipped encoder, the scorer off); every sentence of the top `pool` passages becomes one (question,
sentence) pair, labelled 1 when it holds the answer:
- PolicyQA dev split (Ahmad et al. 2020, MIT; rebuilt as eval.policyqa_bench rebuilds it): the sentence
  overlaps a gold answer span;
- our own dev gold questions (eval/questions_dev.jsonl; never the frozen test split): the sentence and an
  evidence text of that policy contain one another (whitespace collapsed).
Negatives are thus the other sentences of the same passage and of the other retrieved passages of the
same policy. Figures: k-fold by group (PolicyQA policy, own-dev question) beside in-sample, for the
highlight it picks, the passages it reranks and its calibration. Deterministic (Newton's method, fixed folds).
"""
from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from index.trained import file_sha256, publish_directory
from index.trainset import TRAINED_CHUNKING, overlaps, write_policyqa_corpus
from qa.scorer import (DEFAULT_SCORER, FEATURES, FORMAT, MODEL_JSON, SCORER_DIR, WEIGHTS, SentenceScorer,
                       expected_calibration_error, fit, inverse_document_frequencies, log_loss, passage_features)

CARD = "MODEL_CARD.md"
POOL = 5  # passages per question whose sentences are scored (the engine reranks up to its scorer_pool)
L2 = 1.0
OWN_SHARE = 0.0  # share of the fit's weight given to our own dev pairs (0: each pair weighs the same)


@dataclass
class Pairs:
    """One row per (question, sentence of a retrieved passage)."""

    X: np.ndarray  # (n, len(FEATURES))
    y: np.ndarray  # (n,) 1 = holds the answer
    question: np.ndarray  # (n,) index into `groups`
    rank: np.ndarray  # (n,) rank of the sentence's passage among the question's retrieved ones
    passage_gold: list[list[bool]] = field(default_factory=list)  # per question, per retrieved passage
    groups: list[str] = field(default_factory=list)  # per question: what k-fold splits by
    sources: list[str] = field(default_factory=list)  # per question: "policyqa" | "own-dev"
    sentences: list[str] = field(default_factory=list)  # per row: the sentence's text (for experiments beyond features)
    questions: list[str] = field(default_factory=list)  # per question: its text

    def save(self, path: Path) -> None:
        """To an .npz (a cache between runs: `--pairs FILE`)."""
        with open(path, "wb") as f:
            np.savez(f, X=self.X, y=self.y, question=self.question, rank=self.rank,
                     meta=np.array(json.dumps({"passage_gold": self.passage_gold, "groups": self.groups,
                                               "sources": self.sources, "features": list(FEATURES),
                                               "sentences": self.sentences, "questions": self.questions})))

    @classmethod
    def load(cls, path: Path) -> "Pairs":
        z = np.load(path)
        meta = json.loads(str(z["meta"]))
        if meta["features"] != list(FEATURES):
            raise ValueError(f"{path} holds other features than qa.scorer computes; delete it")
        return cls(z["X"], z["y"], z["question"], z["rank"], meta["passage_gold"], meta["groups"], meta["sources"],
                   meta.get("sentences", []), meta.get("questions", []))

    def weights(self, own_share: float) -> np.ndarray:
        """Row weights giving the own-dev pairs `own_share` of the total weight (0: as they come)."""
        own = np.array([self.sources[q] == "own-dev" for q in self.question])
        if own_share <= 0 or own.all() or not own.any():
            return np.ones(len(self.y))
        w = np.ones(len(self.y))
        w[own] = own_share / (1 - own_share) * (~own).sum() / own.sum()
        return w


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def collect(engine, asked: list[tuple[str, str, object, str, str]], pool: int = POOL, progress: bool = False) -> Pairs:
    """Pairs for `asked` = [(question, policy id, gold, source, group)]; gold is [(start, end)] answer spans
    (PolicyQA) or [evidence text] (own dev)."""
    from tqdm import tqdm

    X, y, qs, ranks, passage_gold, groups, sources, sentences, questions = [], [], [], [], [], [], [], [], []
    terms = [engine.query_terms(q, pid) for q, pid, *_ in asked]
    vectors = engine.encoder.encode([t[0] for t in terms], kind="query", batch_size=64)
    idf = inverse_document_frequencies(engine.index)
    bar = tqdm(total=len(asked), desc="Scoring retrieved sentences", unit="q", file=sys.stderr, disable=not progress, mininterval=1.0)
    for (question, pid, gold, source, group), (_, tokens), vector in zip(asked, terms, vectors):
        bar.update(1)
        hits = engine._hits(vector, tokens, [pid], pool)
        if not hits:
            continue
        text = engine.index.policies[pid].text
        token_set = set(tokens)
        n = len(groups)
        golds = []
        for rank, hit in enumerate(hits):
            spans, _, features = passage_features(engine.index, hit.row, vector, token_set, hit.score, hits[0].score, rank, idf)
            if source == "policyqa":
                labels = [overlaps(int(s), int(e), gold) for s, e in spans]
                golds.append(overlaps(hit.passage.start, hit.passage.end, gold))
            else:
                wanted = [_collapse(g) for g in gold]
                labels = [any(w in _collapse(text[s:e]) or _collapse(text[s:e]) in w for w in wanted) for s, e in spans]
                golds.append(any(w in _collapse(hit.passage.text) for w in wanted))
            X.append(features)
            y += labels
            qs += [n] * len(spans)
            ranks += [rank] * len(spans)
            sentences += [text[s:e] for s, e in spans]
        passage_gold.append(golds)
        groups.append(group)
        sources.append(source)
        questions.append(question)
    bar.close()
    return Pairs(np.concatenate(X) if X else np.zeros((0, len(FEATURES))), np.array(y, float), np.array(qs, int),
                 np.array(ranks, int), passage_gold, groups, sources, sentences, questions)


def rule_scores(X: np.ndarray) -> np.ndarray:
    """The hand-written highlight score qa.highlight uses without the scorer: cosine + 0.1 overlap - 0.1 short."""
    return X[:, FEATURES.index("cosine")] + 0.1 * X[:, FEATURES.index("overlap")] - 0.1 * X[:, FEATURES.index("short")]


def highlight_accuracy(pairs: Pairs, scores: np.ndarray, questions: np.ndarray | None = None) -> dict:
    """Over questions whose top passage holds the answer: share where the best-scoring sentence of that
    passage is one that holds it (the highlight, before joining neighbours)."""
    right, n = 0, 0
    wanted = set(range(len(pairs.groups))) if questions is None else set(int(q) for q in questions)
    for q in sorted(wanted):
        rows = np.flatnonzero((pairs.question == q) & (pairs.rank == 0))
        if not len(rows) or not pairs.y[rows].any():
            continue
        n += 1
        right += int(pairs.y[rows[np.argmax(scores[rows])]] > 0)
    return {"n": n, "accuracy": right / n if n else None}


def rerank_hits(pairs: Pairs, probabilities: np.ndarray, weight: float, questions: np.ndarray | None = None) -> dict:
    """hit@1 / hit@3 of the retrieved passages reordered by score + weight x best sentence probability."""
    score_col = FEATURES.index("passage_score")
    h1 = h3 = n = 0
    wanted = range(len(pairs.groups)) if questions is None else sorted(int(q) for q in questions)
    for q in wanted:
        gold = pairs.passage_gold[q]
        keys = []
        for rank in range(len(gold)):
            rows = np.flatnonzero((pairs.question == q) & (pairs.rank == rank))
            best = float(probabilities[rows].max()) if len(rows) else 0.0
            base = float(pairs.X[rows[0], score_col]) if len(rows) else -1.0
            keys.append(base + weight * best)
        order = np.argsort(-np.array(keys), kind="stable")
        n += 1
        h1 += int(gold[order[0]])
        h3 += int(any(gold[i] for i in order[:3]))
    return {"n": n, "hit@1": h1 / n if n else None, "hit@3": h3 / n if n else None}


def group_folds(pairs: Pairs, k: int, seed: int) -> list[np.ndarray]:
    """`k` disjoint arrays of question indices: whole groups (a PolicyQA policy, an own-dev question),
    each source's groups shuffled with `seed` and dealt round-robin."""
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    for source in ("policyqa", "own-dev"):
        names = sorted({g for g, s in zip(pairs.groups, pairs.sources) if s == source})
        for i, g in enumerate(rng.permutation(names)):
            fold_of[str(g)] = i % k
    return [np.array([q for q, g in enumerate(pairs.groups) if fold_of[g] == f], int) for f in range(k)]


def cross_fitted(pairs: Pairs, k: int, seed: int, l2: float = L2, own_share: float = OWN_SHARE) -> np.ndarray:
    """Each pair's probability from a scorer fitted without its fold's groups."""
    out = np.full(len(pairs.y), np.nan)
    weights = pairs.weights(own_share)
    for held in group_folds(pairs, k, seed):
        rows = np.isin(pairs.question, held)
        if rows.all() or not rows.any():
            continue
        out[rows] = fit(pairs.X[~rows], pairs.y[~rows], "fold", l2, weights=weights[~rows]).probabilities(pairs.X[rows])
    return out


WEIGHTS_TRIED = (0.0, 0.1, 0.2, 0.3, 0.5)


def figures(pairs: Pairs, probabilities: np.ndarray) -> dict:
    """Per source: highlight accuracy (rule vs scorer), rerank hit@1/3 per weight, log loss, ECE."""
    out = {}
    for source in ("policyqa", "own-dev"):
        questions = np.array([q for q, s in enumerate(pairs.sources) if s == source], int)
        if not len(questions):
            continue
        rows = np.isin(pairs.question, questions) & ~np.isnan(probabilities)
        out[source] = {
            "questions": int(len(questions)), "pairs": int(rows.sum()), "positives": int(pairs.y[rows].sum()),
            "highlight_rule": highlight_accuracy(pairs, rule_scores(pairs.X), questions),
            "highlight_scorer": highlight_accuracy(pairs, np.nan_to_num(probabilities, nan=-1.0), questions),
            "rerank": {str(w): rerank_hits(pairs, np.nan_to_num(probabilities), w, questions) for w in WEIGHTS_TRIED},
            "log_loss": log_loss(probabilities[rows], pairs.y[rows]),
            "ece": expected_calibration_error(probabilities[rows], pairs.y[rows]),
        }
    return out


def training_questions(policyqa: Path | None, own_dev: Path | None, limit: int | None):
    """(PolicyQA policies, [(question, policy, gold spans, "policyqa", policy)], own-dev rows)."""
    from index.trainset import OWN_DEV, policyqa_file, rebuild_policyqa, refuse_held_out, trained_on

    data = json.loads(Path(policyqa or policyqa_file()).read_text(encoding="utf-8"))
    policies, questions = rebuild_policyqa(data)
    asked = [(q["question"], q["policy"], q["gold"], "policyqa", q["policy"]) for q in questions]
    if limit is not None:
        asked = asked[:limit]
        policies = [p for p in policies if p["id"] in {a[1] for a in asked}]
    own = []
    path = Path(own_dev or OWN_DEV)
    if own_dev is not False and path.exists():
        refuse_held_out(path)
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else None
            if not row or not trained_on(row):
                continue
            for pid in sorted({e["policy"] for e in row["evidence"]}):
                own.append((row["question"], pid, [e["text"] for e in row["evidence"] if e["policy"] == pid], "own-dev", row["id"]))
        if limit is not None:
            own = own[:max(1, limit // 4)]
    return policies, asked, own


def build_pairs(encoder=None, policyqa: Path | None = None, own_dev: Path | None = None, limit: int | None = None,
                pool: int = POOL, progress: bool = True, log=print) -> tuple[Pairs, dict]:
    """Index the PolicyQA policies and the default corpus with `encoder` (default: the shipped one) in a
    temporary directory, ask every training question of its policy, and return the pairs."""
    from index.build import build_index
    from index.corpus import load_corpus
    from index.embed import Encoder
    from index.store import read_index
    from qa.engine import Engine, Settings

    policies, asked, own = training_questions(policyqa, own_dev, limit)
    encoder = encoder or Encoder()
    encoder.load()
    # What the engine retrieved when sentence-scorer-v2 and -v3 were trained (their model cards): passages cut as then,
    # BM25 weight 0.1 with no floor, clause headings weighted 0.2, no aspect boost. Later retrieval changes do not
    # silently change what a re-run trains on.
    settings = Settings(scorer=None, aspect_boost=0.0, aspect_highlight=0.0,
                        retrieval=replace(Settings().retrieval, lexical_weight=0.1, sentence_weight=1.0, heading_weight=0.2,
                                          lexical_floor=0.0))
    with tempfile.TemporaryDirectory(prefix="policyqa-scorer-") as tmp:
        corpus = Path(tmp) / "corpus"
        write_policyqa_corpus(policies, corpus)
        log(f"indexing {len(policies)} PolicyQA policies and the default corpus with {encoder.name}")
        build_index(load_corpus(corpus), Path(tmp) / "policyqa", encoder, TRAINED_CHUNKING, progress=progress, multilingual=None)
        build_index(load_corpus(), Path(tmp) / "default", encoder, TRAINED_CHUNKING, progress=progress, multilingual=None)
        first = collect(Engine(read_index(Path(tmp) / "policyqa"), encoder, settings), asked, pool, progress)
        second = collect(Engine(read_index(Path(tmp) / "default"), encoder, settings), own, pool, progress)
    offset = len(first.groups)
    pairs = Pairs(np.concatenate([first.X, second.X]), np.concatenate([first.y, second.y]),
                  np.concatenate([first.question, second.question + offset]), np.concatenate([first.rank, second.rank]),
                  first.passage_gold + second.passage_gold, first.groups + second.groups, first.sources + second.sources,
                  first.sentences + second.sentences, first.questions + second.questions)
    data = {"policyqa_questions": len(first.groups), "own_dev_questions": len(second.groups),
            "policyqa_policies": len(policies), "pairs": int(len(pairs.y)), "positives": int(pairs.y.sum()),
            "encoder": encoder.name, "pool": pool}
    return pairs, data


def run(out: Path, name: str = DEFAULT_SCORER, k: int = 5, seed: int = 0, limit: int | None = None,
        policyqa: Path | None = None, progress: bool = True, log=print, encoder=None, pairs_file: Path | None = None,
        own_share: float = OWN_SHARE) -> dict:
    """Build the pairs, fit the scorer on all of them, measure k-fold and in-sample, write `out`."""
    from index.trainset import policyqa_file

    t0 = time.perf_counter()
    if pairs_file is not None and Path(pairs_file).is_file():  # a cache of an earlier run's pairs
        pairs = Pairs.load(pairs_file)
        data = json.loads(Path(pairs_file).with_suffix(".json").read_text(encoding="utf-8"))
    else:
        pairs, data = build_pairs(encoder, policyqa, limit=limit, progress=progress, log=log)
        if pairs_file is not None:
            pairs.save(pairs_file)
            Path(pairs_file).with_suffix(".json").write_text(json.dumps(data), encoding="utf-8")
    data_file = Path(policyqa or policyqa_file())
    data["policyqa_file"] = data_file.name
    data["policyqa_sha256"] = file_sha256(data_file)
    log(f"{data['pairs']} (question, sentence) pairs, {data['positives']} holding the answer, "
        f"from {data['policyqa_questions']} PolicyQA and {data['own_dev_questions']} own-dev questions")
    t1 = time.perf_counter()
    scorer = fit(pairs.X, pairs.y, name, weights=pairs.weights(own_share))
    seconds_fit = time.perf_counter() - t1
    found = {"in_sample": figures(pairs, scorer.probabilities(pairs.X)), "k": k}
    if k > 1 and len(set(pairs.groups)) >= k:
        found["k_fold"] = figures(pairs, cross_fitted(pairs, k, seed, own_share=own_share))
    for label in ("k_fold", "in_sample"):
        for source, f in found.get(label, {}).items() if label in found else []:
            log(f"{label} {source}: highlight {f['highlight_rule']['accuracy']:.3f} (rule) -> {f['highlight_scorer']['accuracy']:.3f} "
                f"(scorer); rerank hit@1 {f['rerank']['0.0']['hit@1']:.3f} -> {f['rerank']['0.3']['hit@1']:.3f} (w 0.3); "
                f"log loss {f['log_loss']:.3f}, ECE {f['ece']:.3f}")
    record = {"format": FORMAT, "name": name, "kind": "sentence-scorer", "features": list(FEATURES),
              "model": f"logistic regression (L2 {L2:g}, Newton), standardised features, own-dev share of the weight {own_share:g}",
              "seed": seed, "own_share": own_share,
              "data": data, "figures": found, "files": {},
              "seconds": {"fit": round(seconds_fit, 3), "total": round(time.perf_counter() - t0, 1)}}
    publish(Path(out), scorer, record)
    return record


def publish(out: Path, scorer: SentenceScorer, record: dict, card: bool = True) -> None:
    """Write weights.json, model.json (with the weights' sha256) and the card into `out`, replacing it whole."""
    def write(staging: Path) -> None:
        (staging / WEIGHTS).write_text(json.dumps(scorer.to_dict(), indent=1) + "\n", encoding="utf-8")
        record["files"] = {WEIGHTS: file_sha256(staging / WEIGHTS)}
        (staging / MODEL_JSON).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        if card:
            (staging / CARD).write_text(model_card(record, scorer), encoding="utf-8")

    publish_directory(out, write)


def publish_fitted(pairs: Pairs, keep: np.ndarray, name: str, out: Path, **record) -> Path:
    """A scorer fitted on the pairs where `keep` (a fold's scorer: some groups held out), written to `out`
    without a card; `record` adds to its model.json."""
    publish(out, fit(pairs.X[keep], pairs.y[keep], name), {"format": FORMAT, "name": name, **record}, card=False)
    return out


def _f(v, spec="{:.3f}") -> str:
    return "—" if v is None or v != v else spec.format(v)


def model_card(record: dict, scorer: SentenceScorer) -> str:
    d, f = record["data"], record["figures"]
    lines = [
        f"# {record['name']}", "",
        "The answer-sentence scorer: P(a sentence of a retrieved passage holds the answer), a logistic regression "
        "over features the engine already computes (qa.scorer). The engine (qa.engine.Settings) judges the abstention "
        "rule's \"a sentence close in meaning\" by it (>= 0.1); reranking the top 5 passages by 0.3 x their best "
        "sentence probability (`scorer_rerank`) and choosing the highlight by it (`scorer_highlight`) are measured but "
        "off, as over minilm-policy-v2 they gained our dev questions nothing and cost highlight hits respectively. Whole-engine figures, in-sample and k-fold: "
        "`eval/reports/scorer_kfold.md` (own dev), `eval/reports/policyqa_benchmark_kfold.md` (PolicyQA), and the "
        "ablation rows of `eval/reports/report.md`.", "",
        "Retrain: `policyqa train --scorer` (or `python -m qa.cli train --scorer`); deterministic.", "",
        "## Data", "",
        f"- PolicyQA dev split (Ahmad et al., Findings of EMNLP 2020; MIT): `{d['policyqa_file']}` sha256 "
        f"`{d['policyqa_sha256']}`, {d['policyqa_questions']} (policy, question) pairs over {d['policyqa_policies']} policies, "
        "each asked of its policy; a sentence is positive when it overlaps a gold answer span.",
        f"- Our own dev gold questions (`eval/questions_dev.jsonl`; never the frozen test split): {d['own_dev_questions']} "
        "(question, policy) pairs; positive when the sentence and an evidence text contain one another.",
        f"- Pairs: every sentence of the top {d['pool']} passages the engine retrieves ({d['encoder']}, scorer off): "
        f"{d['pairs']} pairs, {d['positives']} positive. Negatives: the other sentences of the same passage and of the "
        "other retrieved passages of the same policy.", "",
        "## Model", "",
        f"{record['model']}; seed {record['seed']} (the folds); fitted in {record['seconds']['fit']:.2f} s, the whole "
        f"command {record['seconds']['total']:.0f} s on 2 CPU cores.", "",
        "| feature | mean | scale | weight |", "|---|---:|---:|---:|",
        *[f"| {n} | {m:.3f} | {s:.3f} | {c:+.3f} |" for n, m, s, c in zip(FEATURES, scorer.mean, scorer.scale, scorer.coef)],
        f"| (intercept) | | | {scorer.intercept:+.3f} |", "",
        "## Figures", "",
        "`highlight`: questions whose top retrieved passage holds the answer; share where the best sentence of it by "
        "the rule (cosine + 0.1 overlap - 0.1 short, the engine without a scorer) or by the scorer holds the answer. "
        "`rerank`: hit@1 of the retrieved passages reordered by fused score + w x best sentence probability. "
        f"`k-fold`: {f.get('k')} folds, each group (PolicyQA policy, own-dev question) scored by a scorer fitted "
        "without it; `in-sample`: the shipped scorer on its own training pairs. The encoder itself was trained on "
        "these questions (see its card), so its cosines are in-sample for both.", "",
        "| scorer | data | questions | hl rule | hl scorer | hit@1 w=0 | w=0.1 | w=0.2 | w=0.3 | w=0.5 | log loss | ECE |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label in ("k_fold", "in_sample"):
        for source, x in (f.get(label) or {}).items():
            r = x["rerank"]
            lines.append(f"| {label.replace('_', '-')} | {source} | {x['questions']} | {_f(x['highlight_rule']['accuracy'])} | "
                         f"{_f(x['highlight_scorer']['accuracy'])} | " + " | ".join(_f(r[str(w)]['hit@1']) for w in WEIGHTS_TRIED)
                         + f" | {_f(x['log_loss'])} | {_f(x['ece'])} |")
    lines += ["", "## Files", "", "| file | sha256 |", "|---|---|",
              *[f"| {n} | `{h}` |" for n, h in record["files"].items()], ""]
    return "\n".join(lines)


def run_from_args(args) -> int:
    from index.embed import ModelError
    from index.trainset import policyqa_file

    data = args.policyqa or policyqa_file()
    if not Path(data).is_file():
        raise ModelError(f"no PolicyQA training data at {data}; pass --policyqa PATH/TO/dev.json")
    name = args.name or DEFAULT_SCORER
    out = args.out or SCORER_DIR / name.rsplit("/", 1)[-1]
    encoder = None
    if getattr(args, "encoder", None):
        from index.embed import Encoder

        encoder = Encoder(args.encoder)
    record = run(out, name, k=args.folds if args.folds > 1 else 0, seed=args.seed, limit=args.limit, policyqa=args.policyqa,
                 log=lambda m: print(m, file=sys.stderr, flush=True), encoder=encoder, pairs_file=getattr(args, "pairs", None))
    print(f"wrote {out} ({', '.join(record['files'])}; model card {out / CARD}) in {record['seconds']['total']:.0f} s")
    return 0
