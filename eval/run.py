"""`policyqa eval` / `python -m eval`: score PolicyQA, the usual-recipe baselines and ablations on the
gold questions; print a table and write eval/reports/{report.md, results.json, hitk.png, latency.png}.

Every system answers each question twice in batch mode (one question at a time, as a user would):
- "shown": k=3, the answer a user sees; gives hit@1, hit@3, highlight-hit@1, abstention, citation
  lengths and the latency figures;
- "ranked": k=10, gives hit@5, MRR@10, nDCG@10 and the hit@k curves.
The baselines answer once at k=10 (their top 3 is the k=3 answer by construction).
"""
from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from eval.common import REPORTS, jsonable, set_threads, write_atomic  # noqa: F401  (set_threads: tests)
from eval.cross import cross_figures, load_cross, misses, run_cross
from eval.gold import EVAL_DIR, FROZEN, JA_SPLITS, RECORDED, SPLITS, file_sha256, load_questions, load_recorded, score_answer, split_path
from eval.metrics import abstention, collapse, hit_at_k, mean, percentile

SHOWN_K = 3
RANKED_K = 10
TOLERANCE = 0.03  # --check fails when hit@1 or highlight-hit@1 drop by more than 3 points
CHECKED = ("hit@1", "highlight_hit@1")

# (key, column title, format) of the printed and written table
COLUMNS = [
    ("hit@1", "hit@1", "{:.3f}"), ("hit@3", "hit@3", "{:.3f}"), ("hit@5", "hit@5", "{:.3f}"),
    ("mrr@10", "MRR@10", "{:.3f}"), ("ndcg@10", "nDCG@10", "{:.3f}"), ("highlight_hit@1", "hl-hit@1", "{:.3f}"),
    ("correct@1", "correct", "{:.3f}"), ("cite_chars_top1", "len@1", "{:.0f}"), ("cite_chars_all", "len(all)", "{:.0f}"),
    ("abstain_precision", "abst-P", "{:.2f}"), ("abstain_recall", "abst-R", "{:.2f}"),
    ("false_refusal_rate", "false-ref", "{:.2f}"), ("latency_p50_ms", "p50 ms", "{:.1f}"), ("latency_p95_ms", "p95 ms", "{:.1f}"),
]


# (key, column title, format) of the cross-site table (eval/cross_{dev,test}.jsonl)
CROSS_COLUMNS = [
    ("site_recall", "site-recall", "{:.3f}"), ("site_highlight_recall", "site-hl", "{:.3f}"),
    ("site_abstain_precision", "silent-P", "{:.2f}"), ("site_abstain_recall", "silent-R", "{:.2f}"),
    ("site_false_silence", "false-silent", "{:.2f}"), ("followup_scope_accuracy", "follow-up scope", "{:.3f}"),
]
CROSS_SYSTEMS = ("policyqa", "recipe-dense", "recipe-bm25", "abl:no-compare", "abl:base-model", "abl:no-aspects", "abl:aspect-sale", "abl:site-evidence-v2", "abl:site-lexical")


# ---------------------------------------------------------------- running systems

def _ask(system, row: dict, k: int) -> tuple[dict, float]:
    """One system's Answer to one gold question, as the JSON the scorer reads, and its latency."""
    from index.errors import PolicyQAError
    from index.types import Answer

    t0 = time.perf_counter()
    try:
        answer = system.ask(row["question"], k=k, history=row.get("history") or None)
    except PolicyQAError as e:  # recorded as an answer with no citations
        answer = Answer.refused(row["question"], str(e), {"total": 1000 * (time.perf_counter() - t0)})
    return answer.to_dict(), 1000 * (time.perf_counter() - t0)


def run_system(system, questions: list[dict], bar=None, ranked_run: bool = True) -> list[dict]:
    """Per-question records of one system: both answers, the latency of the shown one, and its scores.
    ranked_run=False skips the k=10 answer (the depth figures then come from the k=3 one)."""
    records = []
    for row in questions:
        if not ranked_run:
            shown, ms = _ask(system, row, SHOWN_K)
            ranked = shown
            if bar is not None:
                bar.update(2)
        elif system.kind == "baseline":
            ranked, ms = _ask(system, row, RANKED_K)
            shown = {**ranked, "citations": ranked["citations"][:SHOWN_K]}
            if bar is not None:
                bar.update(2)
        else:
            shown, ms = _ask(system, row, SHOWN_K)
            if bar is not None:
                bar.update(1)
            ranked, _ = _ask(system, row, RANKED_K)
            if bar is not None:
                bar.update(1)
        records.append(score_question(row, shown, ranked, ms))
    return records


def score_question(row: dict, shown: dict, ranked: dict, latency_ms: float) -> dict:
    s = score_answer(row, shown, depth=SHOWN_K)
    r = score_answer(row, ranked, depth=RANKED_K)
    return {
        "id": row["id"], "split": row["split"], "kind": row["kind"], "answerable": row["answerable"],
        "latency_ms": latency_ms, "abstained": s["abstained"], "not_addressed": s["not_addressed"],
        "hit1": s["hit1"], "hit3": s["hit3"], "highlight_hit1": s["hl_hit1"], "cover3": s["cover3"],
        "hit5": r["hit5"], "mrr10": r["mrr10"], "ndcg10": r["ndcg10"], "rels10": r["rels"],
        "ranked_hit1": r["hit1"],
        "top1_chars": s["top1_chars"], "all_chars": s["all_chars"], "error": shown.get("error"),
        "citations": [
            {k: c[k] for k in ("policy_id", "section", "start", "end", "highlight_start", "highlight_end", "score")}
            | {"text": c["text"], "highlight": c["highlight"]}
            for c in shown["citations"]
        ],
        "ranked_citations": [{k: c[k] for k in ("policy_id", "section", "start", "end")} for c in ranked["citations"]],
    }


def aggregate(records: list[dict]) -> dict:
    """System-level figures over `records` (one split or all)."""
    ans = [r for r in records if r["hit1"] is not None]
    curve = [mean(hit_at_k(r["rels10"], k) for r in ans) for k in range(1, RANKED_K + 1)]
    abst = abstention([r["abstained"] for r in records], [r["not_addressed"] for r in records])
    correct = [
        (not r["abstained"] and r["hit1"] == 1.0) if r["hit1"] is not None else (r["abstained"] if r["not_addressed"] else None)
        for r in records
    ]
    latencies = [r["latency_ms"] for r in records]
    return {
        "questions": len(records), "answerable": len(ans),
        "hit@1": mean(r["hit1"] for r in ans), "hit@3": mean(r["hit3"] for r in ans),
        "hit@5": mean(r["hit5"] for r in ans), "mrr@10": mean(r["mrr10"] for r in ans),
        "ndcg@10": mean(r["ndcg10"] for r in ans), "highlight_hit@1": mean(r["highlight_hit1"] for r in ans),
        "cover@3": mean(r["cover3"] for r in ans),
        "correct@1": mean(float(c) for c in correct if c is not None),
        "cite_chars_top1": mean(r["top1_chars"] for r in records if r["top1_chars"] is not None),
        "cite_chars_all": mean(n for r in records for n in r["all_chars"]),
        "abstain_precision": abst["precision"], "abstain_recall": abst["recall"],
        "false_refusal_rate": abst["false_refusal_rate"], "abstain_counts": {k: abst[k] for k in ("tp", "fp", "fn", "tn")},
        "latency_p50_ms": percentile(latencies, 50), "latency_p95_ms": percentile(latencies, 95),
        "latency_mean_ms": mean(latencies),
        "hit_curve": curve,
        "shown_vs_ranked_top1_disagree": sum(1 for r in ans if r["hit1"] != r["ranked_hit1"]),
    }


def by_split(records: list[dict], splits: list[str]) -> dict:
    out = {s: aggregate([r for r in records if r["split"] == s]) for s in splits}
    if len(splits) > 1:
        out["all"] = aggregate(records)
    return out


def by_kind(records: list[dict]) -> dict:
    kinds = sorted({r["kind"] for r in records})
    out = {}
    for kind in kinds:
        rs = [r for r in records if r["kind"] == kind]
        ans = [r for r in rs if r["hit1"] is not None]
        out[kind] = {
            "questions": len(rs), "hit@1": mean(r["hit1"] for r in ans), "hit@3": mean(r["hit3"] for r in ans),
            "cover@3": mean(r["cover3"] for r in ans), "highlight_hit@1": mean(r["highlight_hit1"] for r in ans),
            "abstained": mean(float(r["abstained"]) for r in rs),
        }
    return out


# ---------------------------------------------------------------- formatting

def fmt(value, spec: str = "{:.3f}") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return spec.format(value)


def table_rows(results: dict, split: str) -> tuple[list[str], list[list[str]]]:
    header = ["system"] + [title for _, title, _ in COLUMNS]
    rows = []
    for name, sysres in results.items():
        m = sysres["metrics"].get(split)
        if m is not None:
            rows.append([name] + [fmt(m[key], spec) for key, _, spec in COLUMNS])
    return header, rows


def japanese_table_rows(results: dict, split: str) -> tuple[list[str], list[list[str]]]:
    """Table rows of PolicyQA on the Japanese questions of one split: as shipped, and with its
    multilingual path switched off (the English-only pipeline, as before it existed)."""
    header = ["system"] + [title for _, title, _ in COLUMNS] + ["refused"]
    ja = results["policyqa"]["japanese"]
    rows = []
    for name, m in (("policyqa", ja["metrics"][split]), ("policyqa:english-only", ja["english_only"][split])):
        rows.append([name] + [fmt(m.get(key), spec) for key, _, spec in COLUMNS] + [str(m["abstain_counts"]["fp"])])
    return header, rows


def cross_table_rows(results: dict, split: str) -> tuple[list[str], list[list[str]]]:
    header = ["system"] + [title for _, title, _ in CROSS_COLUMNS]
    rows = [[name] + [fmt(r["cross"][split][key], spec) for key, _, spec in CROSS_COLUMNS]
            for name, r in results.items() if split in r.get("cross", {})]
    return header, rows


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=EVAL_DIR, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "qa", "index"], cwd=EVAL_DIR.parent,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + (" (+ uncommitted changes in qa/ or index/)" if dirty else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


# ---------------------------------------------------------------- report

def _short(text: str, n: int = 120) -> str:
    text = collapse(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def _cited(citation: dict | None, field: str = "text") -> str:
    if citation is None:
        return "no citation"
    return f"{citation['policy_id']} › {citation['section'] or '—'}: “{_short(citation[field])}”"


def failure_list(records: list[dict], questions: dict[str, dict]) -> str:
    lines = []
    misses = [r for r in records if r["hit1"] == 0.0]
    lines.append(f"### Retrieval misses: top citation holds no evidence ({len(misses)} of "
                 f"{sum(1 for r in records if r['hit1'] is not None)} answerable)\n")
    for r in misses:
        q = questions[r["id"]]
        rank = next((i for i, x in enumerate(r["rels10"] or [], start=1) if x), None)
        where = f"first hit at rank {rank} of 10" if rank else "no hit in the top 10"
        flag = " · abstained" if r["abstained"] else ""
        lines.append(f"- **{r['id']}** ({r['kind']}; {where}{flag}) {q['question']}")
        if q.get("history"):
            lines.append(f"  - history: {' / '.join(q['history'])}")
        for e in q["evidence"]:
            lines.append(f"  - expected [{e['policy']}]: “{_short(e['text'])}”")
        for n, c in enumerate(r["citations"], start=1):
            lines.append(f"  - cited [{n}] {_cited(c)}")
    hl = [r for r in records if r["hit1"] == 1.0 and r["highlight_hit1"] == 0.0]
    lines.append(f"\n### Highlight misses: right clause, highlight misses the evidence ({len(hl)})\n")
    for r in hl:
        q = questions[r["id"]]
        top = r["citations"][0]
        expected = "; ".join(f"[{e['policy']}] “{_short(e['text'], 90)}”" for e in q["evidence"] if e["policy"] == top["policy_id"])
        lines.append(f"- **{r['id']}** {q['question']}\n  - expected: {expected}\n  - highlighted: “{_short(top['highlight'])}”")
    refused = [r for r in records if r["abstained"] and not r["not_addressed"]]
    lines.append(f"\n### False refusals: answerable but abstained ({len(refused)})\n")
    for r in refused:
        got = _cited(r["citations"][0] if r["citations"] else None)
        lines.append(f"- **{r['id']}** ({r['kind']}, hit@1={fmt(r['hit1'], '{:.0f}')}) {questions[r['id']]['question']}\n  - top citation: {got}")
    answered = [r for r in records if r["not_addressed"] and not r["abstained"]]
    lines.append(f"\n### Missed abstentions: not addressed but answered ({len(answered)})\n")
    for r in answered:
        got = _cited(r["citations"][0] if r["citations"] else None, "highlight")
        lines.append(f"- **{r['id']}** ({r['kind']}) {questions[r['id']]['question']}\n  - answered from: {got}")
    errors = [r for r in records if r.get("error")]
    if errors:
        lines.append(f"\n### Errors ({len(errors)})\n")
        lines += [f"- **{r['id']}** {r['error']}" for r in errors]
    return "\n".join(lines)


def write_report(results: dict, meta: dict, splits: list[str], records_of: dict, questions: list[dict]) -> str:
    qmap = {q["id"]: q for q in questions}
    shown = [s for s in ([*splits, "all"] if len(splits) > 1 else splits)]
    parts = [
        "# PolicyQA evaluation report", "",
        f"Generated {meta['generated']} by `python -m eval` (commit {meta.get('commit') or 'unknown'}). "
        f"Model `{meta['model']}`; model load {meta['model_load_s']:.1f} s; default index build after model load "
        f"{meta['index_build_s']:.1f} s ({meta['index_passages']} passages, {meta['index_sentences']} sentences); "
        + (f"baseline chunk index {meta['baseline_build_s']:.1f} s ({meta['baseline_chunks']} chunks); " if meta.get("baseline_build_s") else "")
        + f"whole run {meta['total_s']:.0f} s on {meta['cpus']} CPU(s), torch threads {meta['torch_threads']}.", "",
        "Metrics: retrieval figures are over answerable questions; a citation is a hit when it is from an evidence "
        "item's policy and its text contains that evidence text (whitespace collapsed). hit@1/hit@3/highlight-hit@1, "
        "abstention, citation lengths (characters of the cited passage) and latency come from the k=3 answer a user sees; "
        "hit@5, MRR@10, nDCG@10 and the hit@k curve from a k=10 answer. `correct` = answerable questions answered "
        "(not abstained) with a hit at rank 1, plus not-addressed questions abstained on, over all questions. "
        "Abstention: positive class = not addressed (unaddressed + offtopic); `abst-P`/`abst-R` = precision/recall, "
        "`false-ref` = share of answerable questions abstained on. Latency = wall time of one `ask` (batch mode, one "
        "question at a time).", "",
    ]
    for split in shown:
        n = next(iter(results.values()))["metrics"][split]
        parts += [f"## {split} ({n['questions']} questions, {n['answerable']} answerable)", "",
                  markdown_table(*table_rows(results, split)), ""]
    if "japanese" in results.get("policyqa", {}):
        parts += ["## Questions in Japanese", "",
                  "Written as job seekers in Japan would type them (eval/questions_ja_{dev,test}.jsonl; the test part is "
                  "frozen); evidence is the policies' English text. `policyqa:english-only` is the same engine with "
                  "its multilingual path switched off (as before it existed). `refused` counts answerable questions "
                  "abstained on.", ""]
        for split in results["policyqa"]["japanese"]["metrics"]:
            n = results["policyqa"]["japanese"]["metrics"][split]
            parts += [f"### Japanese {split} ({n['questions']} questions, {n['answerable']} answerable)", "",
                      markdown_table(*japanese_table_rows(results, split)), ""]
        ja_records = results["policyqa"]["japanese"]["records"]
        parts += ["### PolicyQA failures on the Japanese questions", "",
                  failure_list(ja_records, {q["id"]: q for q in load_questions("ja")}), ""]
    cross_q = {r["id"]: r for r in load_cross("all")}
    parts += ["## Across sites (eval/cross_{dev,test}.jsonl)", "",
              "Questions naming no site or several, judged per (question, site): `site-recall` = pairs whose policy "
              "answers where the answer cites that site with an evidence clause (in a row not marked silent); `site-hl` = "
              "the same with the highlighted sentence; `silent-P`/`silent-R` = precision/recall of marking a site "
              "\"does not say\" (positive class: its policy is silent); `false-silent` = answering sites marked silent; "
              "`follow-up scope` = follow-ups whose sites searched are exactly the expected ones. Every system answers "
              "with k = max(3, sites in scope); the usual recipe cites whatever ranks highest and never marks a site silent.", ""]
    for split in shown:
        parts += [f"### {split}", "", markdown_table(*cross_table_rows(results, split)), ""]
    parts += ["Misses of PolicyQA:", ""] + (misses(results["policyqa"].get("cross_records", []), cross_q) or ["- none"]) + [""]
    parts += ["![hit@k](hitk.png)", "", "![latency](latency.png)", "",
              "Notes: latency is dominated by encoding the question (one MiniLM forward pass) and depends on what "
              "else the machine is doing; compare systems within one run, and see `policyqa bench` for the product's "
              "own figures (torch's default threads vs one thread). The BM25 baseline uses PolicyQA's tokenizer "
              "(`index.lexical.tokenize`: stop words, stemming), so it moves when that tokenizer changes. "
              "Baselines never abstain, so their abstention precision is undefined (—).", "",
              "## Systems", ""]
    parts += [f"- `{name}`: {r['about']}" for name, r in results.items()]
    pq = records_of["policyqa"]
    parts += ["", "## PolicyQA by question kind", "",
              markdown_table(["kind", "questions", "hit@1", "hit@3", "cover@3", "hl-hit@1", "abstained"],
                             [[k, str(v["questions"])] + [fmt(v[x]) for x in ("hit@1", "hit@3", "cover@3", "highlight_hit@1", "abstained")]
                              for k, v in by_kind(pq).items()]),
              "", "`cover@3`: share of the policies holding evidence that have a hit among the 3 citations (matters for cross questions).",
              "", "## PolicyQA failures", "", failure_list(pq, qmap), ""]
    return "\n".join(parts)


def plot(results: dict, split: str, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = list(range(1, RANKED_K + 1))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, r in results.items():
        curve = r["metrics"][split]["hit_curve"]
        if r["kind"] == "ablation":
            ax.plot(ks, curve, lw=1, ls="--", alpha=0.55, label=name)
        else:
            ax.plot(ks, curve, lw=2.4 if name == "policyqa" else 1.8, marker="o", ms=4, label=name)
    ax.set(xlabel="k (citations)", ylabel="hit@k", title=f"hit@k on gold questions ({split}, answerable)", ylim=(0, 1.02), xticks=ks)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    fig.tight_layout()
    fig.savefig(out_dir / "hitk.png.tmp", dpi=120, format="png")
    plt.close(fig)
    os.replace(out_dir / "hitk.png.tmp", out_dir / "hitk.png")

    names = list(results)
    data = [[x["latency_ms"] for x in results[n]["records"] if split == "all" or x["split"] == split] for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.4))
    ax.boxplot(data, vert=False, showfliers=True, whis=(5, 95), flierprops={"ms": 2})
    ax.set_yticks(range(1, len(names) + 1), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set(xlabel="ms per question (log scale; whiskers p5–p95)", title=f"ask latency, batch mode ({split})")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(out_dir / "latency.png.tmp", dpi=120, format="png")
    plt.close(fig)
    os.replace(out_dir / "latency.png.tmp", out_dir / "latency.png")


# ---------------------------------------------------------------- main

def check(metrics_all: dict, recorded: dict) -> list[str]:
    """Regressions of the checked figures versus recorded.json (empty when fine)."""
    base = recorded.get("policyqa", {}).get("all", {})
    problems = []
    for key in CHECKED:
        if key not in base:
            problems.append(f"{key}: nothing recorded in {RECORDED.name}")
        elif metrics_all[key] < base[key] - TOLERANCE - 1e-9:
            problems.append(f"{key} dropped from {base[key]:.3f} to {metrics_all[key]:.3f} (> {TOLERANCE * 100:.0f} points)")
    return problems


def results_json(results: dict, meta: dict) -> str:
    """Metrics per system and split, and compact per-question records (citations as offsets, no text)."""
    slim = {}
    for name, r in results.items():
        records = [
            {**{k: v for k, v in x.items() if k not in ("citations", "ranked_citations", "all_chars")},
             "cited": [[c["policy_id"], c["start"], c["end"], c["highlight_start"], c["highlight_end"]] for c in x["citations"]],
             "ranked": [[c["policy_id"], c["start"], c["end"]] for c in x["ranked_citations"]]}
            for x in r["records"]
        ]
        slim[name] = {k: v for k, v in r.items() if k not in ("records", "cross_records", "japanese")} | {"records": records}
        if "japanese" in r:
            slim[name]["japanese"] = {k: v for k, v in r["japanese"].items() if k != "records"} | {"records": [
                {**{k: v for k, v in x.items() if k not in ("citations", "ranked_citations", "all_chars")},
                 "cited": [[c["policy_id"], c["start"], c["end"], c["highlight_start"], c["highlight_end"]] for c in x["citations"]]}
                for x in r["japanese"]["records"]]}
    body = {"meta": meta, "record_fields": "cited: [policy, start, end, highlight_start, highlight_end] of the k=3 "
            "citations; ranked: [policy, start, end] of the k=10 ones (offsets in the policy text)", "systems": slim}
    return json.dumps(jsonable(body), ensure_ascii=False, separators=(",", ":")) + "\n"


def record(results: dict) -> None:
    """Store PolicyQA's current figures (and the test split's checksum) as the new baseline."""
    recorded = load_recorded()
    keep = ("questions", "answerable", "hit@1", "hit@3", "hit@5", "mrr@10", "ndcg@10", "highlight_hit@1", "correct@1",
            "abstain_precision", "abstain_recall", "false_refusal_rate")
    recorded.update({
        "about": "PolicyQA's recorded figures on the gold questions; `policyqa eval --check` and "
                 "tests/test_eval_regression.py fail when hit@1 or highlight-hit@1 on dev+test drop > 3 points. "
                 "Re-record with `python -m eval --record` after a deliberate change.",
        **{key: file_sha256(split_path(split)) for split, key in FROZEN.items()},
        "recorded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "policyqa": {s: {k: m[k] for k in keep} for s, m in jsonable(results["policyqa"]["metrics"]).items()},
        "policyqa_japanese": {s: {k: m[k] for k in keep} for s, m in jsonable(results["policyqa"]["japanese"]["metrics"]).items()},
        "policyqa_cross": {s: {k: v for k, v in m.items() if k != "site_abstain_counts"}
                           for s, m in jsonable(results["policyqa"].get("cross", {})).items()},
    })
    write_atomic(RECORDED, json.dumps(recorded, indent=2, ensure_ascii=False) + "\n")


def japanese_splits(split: str, check_all: bool = False) -> list[str]:
    """The Japanese gold splits asked with English `split`: its own part only (`--split dev` never runs a
    frozen test part), or all of them for "all" and for the regression check, which reads the recorded
    "all" figures."""
    return list(JA_SPLITS) if split == "all" or check_all else [f"ja_{split}"]


def evaluate(split: str = "all", fast: bool = False, encoder=None, progress: bool = True, check_all: bool = False) -> tuple[dict, dict, list[dict]]:
    """Build the default index in a temp dir, run the systems; returns (results, meta, questions)."""
    from tqdm import tqdm

    from eval.baselines import ChunkIndex, EngineSystem, RecipeBM25, RecipeDense, ablations
    from index.build import build_index
    from index.corpus import load_corpus
    from index.embed import Encoder
    from index.store import read_index
    from dataclasses import replace

    from qa.engine import Engine, Settings

    t_start = time.perf_counter()
    threads = set_threads()
    splits = list(SPLITS) if split == "all" else [split]
    questions = load_questions(split)
    ja_splits = japanese_splits(split, check_all)
    japanese = [q for q in load_questions("ja") if q["split"] in ja_splits]
    extra = [q for q in load_questions("all") if q["split"] not in splits] if check_all else []
    t0 = time.perf_counter()
    encoder = encoder or Encoder()
    encoder.load()
    model_load = time.perf_counter() - t0
    policies = load_corpus()
    meta = {"generated": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": git_commit(),
            "model": encoder.name, "model_load_s": model_load, "cpus": os.cpu_count(), "torch_threads": threads,
            "python": platform.python_version(), "splits": splits, "fast": fast, "shown_k": SHOWN_K, "ranked_k": RANKED_K}
    with tempfile.TemporaryDirectory(prefix="policyqa-eval-") as tmp:
        t0 = time.perf_counter()
        figures = build_index(policies, Path(tmp) / "index", encoder)
        meta.update(index_build_s=time.perf_counter() - t0, index_build=figures["seconds"],
                    index_passages=figures["passages"], index_sentences=figures["sentences"])
        engine = Engine(read_index(Path(tmp) / "index"), encoder, Settings())
        systems = [EngineSystem("policyqa", engine, "PolicyQA as shipped (Settings() defaults)")]
        if not fast:
            from index.embed import BASE_MODEL

            # The usual recipe is the recipe with the usual model, whichever encoder PolicyQA uses.
            base = encoder if encoder.name == BASE_MODEL else Encoder(BASE_MODEL)
            t0 = time.perf_counter()
            chunks = ChunkIndex(policies, base)
            meta.update(baseline_build_s=time.perf_counter() - t0, baseline_chunks=len(chunks.chunks))
            systems += [RecipeDense(chunks), RecipeBM25(chunks), *ablations(engine)]
            if base is not encoder:  # the trained encoder's ablation: the model it was trained from
                build_index(policies, Path(tmp) / "base-index", base)
                systems.append(EngineSystem("abl:base-model", Engine(read_index(Path(tmp) / "base-index"), base, Settings()),
                                            f"the base {BASE_MODEL} instead of {encoder.name} (same settings)", kind="ablation"))
        calls = 2 * len(questions) * len(systems) + 2 * len(extra)  # (the cross-site questions are not counted)
        results = {}
        with tqdm(total=calls, desc="eval", unit="ask", disable=not progress, file=sys.stderr, dynamic_ncols=True, mininterval=1.0) as bar:
            for system in systems:
                bar.set_description(f"eval {system.name}")
                records = run_system(system, questions, bar)
                results[system.name] = {"kind": system.kind, "about": system.about, "records": records,
                                        "metrics": by_split(records, splits)}
            # Questions in Japanese: PolicyQA as shipped, and without its multilingual path (the
            # English-only pipeline they had before), scored apart from the English splits.
            bar.total += 4 * len(japanese)
            bar.set_description("eval policyqa (Japanese)")
            records = run_system(systems[0], japanese, bar)
            results["policyqa"]["japanese"] = {"records": records, "metrics": by_split(records, ja_splits)}
            bar.set_description("eval policyqa english-only (Japanese)")
            english_only = EngineSystem("policyqa:english-only", engine.with_settings(replace(engine.settings, multilingual=False)))
            results["policyqa"]["japanese"]["english_only"] = by_split(run_system(english_only, japanese, bar), ja_splits)
            cross_rows = [r for s in splits for r in load_cross(s)]
            for system in systems:
                if system.name in CROSS_SYSTEMS:
                    bar.set_description(f"eval {system.name} (across sites)")
                    records = run_cross(system, cross_rows)
                    results[system.name]["cross_records"] = records
                    results[system.name]["cross"] = {s: cross_figures([r for r in records if r["split"] == s]) for s in splits}
                    if len(splits) > 1:
                        results[system.name]["cross"]["all"] = cross_figures(records)
            if extra:
                bar.set_description("eval policyqa (check)")
                everything = results["policyqa"]["records"] + run_system(systems[0], extra, bar)
                results["policyqa"]["check_all"] = aggregate(everything)
    meta["total_s"] = time.perf_counter() - t_start
    return results, meta, questions


def main(args) -> int:
    split = getattr(args, "split", None) or "all"
    fast = bool(getattr(args, "fast", False))
    do_check = bool(getattr(args, "check", False))
    model = getattr(args, "model", None)
    if model:
        from index.embed import Encoder
    results, meta, questions = evaluate(split, fast=fast, encoder=Encoder(model) if model else None,
                                        check_all=do_check and split != "all")
    splits = meta["splits"]
    shown = [*splits, "all"] if len(splits) > 1 else splits
    for s in shown:
        n = results["policyqa"]["metrics"][s]
        print(f"\n{s}: {n['questions']} questions ({n['answerable']} answerable)")
        print(text_table(*table_rows(results, s)))
    for s in results["policyqa"]["japanese"]["metrics"]:
        n = results["policyqa"]["japanese"]["metrics"][s]
        print(f"\nJapanese {s}: {n['questions']} questions ({n['answerable']} answerable)")
        print(text_table(*japanese_table_rows(results, s)))
    for s in shown:
        c = results["policyqa"]["cross"][s]
        print(f"\n{s}, across sites: {c['questions']} questions ({c['answered_pairs']} (question, site) pairs answered by "
              f"the policy, {c['silent_pairs']} silent), {c['followups']} follow-ups")
        print(text_table(*cross_table_rows(results, s)))
    print(f"\nmodel load {meta['model_load_s']:.1f} s · index build {meta['index_build_s']:.1f} s · whole run {meta['total_s']:.0f} s")

    REPORTS.mkdir(parents=True, exist_ok=True)
    main_split = "all" if len(splits) > 1 else splits[0]
    plot(results, main_split, REPORTS)
    write_atomic(REPORTS / "report.md", write_report(results, meta, splits, {k: v["records"] for k, v in results.items()}, questions))
    write_atomic(REPORTS / "results.json", results_json(results, meta))
    print(f"wrote {REPORTS / 'report.md'}, results.json, hitk.png, latency.png")

    rc = 0
    if getattr(args, "record", False):
        if split != "all":
            print("error: --record needs --split all", file=sys.stderr)
            return 2
        record(results)
        print(f"recorded PolicyQA's figures in {RECORDED}")
    if do_check:
        metrics_all = results["policyqa"].get("check_all") or results["policyqa"]["metrics"]["all"]
        recorded = load_recorded()
        problems = check(metrics_all, recorded)
        for split, key in FROZEN.items():
            if recorded.get(key) and recorded[key] != file_sha256(split_path(split)):
                problems.append(f"eval/{split_path(split).name} changed since it was frozen (sha256 differs from recorded.json)")
        if "policyqa_japanese" in recorded:
            problems += [f"Japanese {p}" for p in check(results["policyqa"]["japanese"]["metrics"]["all"],
                                                        {"policyqa": recorded["policyqa_japanese"]})]
        base = recorded.get("policyqa", {}).get("all", {})
        summary = ", ".join(f"{k} {metrics_all[k]:.3f} (recorded {fmt(base.get(k))})" for k in CHECKED)
        if problems:
            print("CHECK FAILED: " + "; ".join(problems) + f" [{summary}]", file=sys.stderr)
            rc = 1
        else:
            print(f"check passed: {summary}")
    if getattr(args, "policyqa", False):
        from eval.policyqa_bench import main as bench_main

        rc = bench_main(args) or rc
    return rc
