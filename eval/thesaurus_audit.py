"""The thesaurus of qa/expand.py audited entry by entry, on questions it was not written from.

The thesaurus was written by reading our own dev questions, so dev figures flatter it. The honest check
is the PolicyQA dev split (questions written by others, 20 other policies), answered through the whole
engine by the fold models of `policyqa train --save-folds DIR`, each on the policies it was not trained
on (k-fold by policy, as eval.policyqa_bench.run_folds). Own dev questions are answered the same way by
the fold models that did not see them (as eval.refit), for comparison.

Each fold indexes its held-out policies once. For each entry only the questions whose text it matches
can change, so only those are asked again with the entry taken out; an entry's contribution is
(figures with it) - (figures without it), in questions gained (+) or lost (-). The whole thesaurus off
is a row of its own (every question asked again). Frozen test questions are never read.

Run: `python -m eval.thesaurus_audit --folds DIR` (writes eval/reports/thesaurus_audit.{md,json}).
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from eval.common import REPORTS, jsonable, set_threads, write_atomic

# An entry's net worth in questions: right answers (hit@1 + hit@3) gained with it, minus answerable
# questions it makes the engine refuse (plus, on own dev, unaddressed ones it makes it refuse). It goes
# when it loses PolicyQA questions and wins fewer than OWN_DEV_CLEAR_GAIN own dev ones, or when it
# changes nothing on PolicyQA and wins nothing on own dev.
OWN_DEV_CLEAR_GAIN = 2


PQA_KEYS = ("hit1", "hit3", "hl_hit1", "abstained")
DEV_KEYS = ("hit1", "hit3", "highlight_hit1", "refused_answerable", "refused_unaddressed")
CROSS_KEYS = ("site_cited", "false_silent", "right_silent")


def matching(texts: list[str], patterns: list[str]) -> list[list[int]]:
    """For each pattern, the indexes of the texts it matches (case-insensitive, as qa.expand searches)."""
    compiled = [re.compile(p, re.I) for p in patterns]
    return [[i for i, t in enumerate(texts) if c.search(t)] for c in compiled]


def contribution(with_entry: list[dict], without_entry: list[dict], keys: tuple[str, ...]) -> dict[str, float]:
    """Per key, sum over the same questions of (score with the entry) - (score without it); None scores
    (unanswerable questions) are skipped."""
    if len(with_entry) != len(without_entry):
        raise ValueError("the two runs scored different questions")
    return {k: sum((a[k] or 0.0) - (b[k] or 0.0) for a, b in zip(with_entry, without_entry)
                   if a[k] is not None and b[k] is not None) for k in keys}


def net(figures: dict[str, float]) -> float:
    """Questions an entry wins: hit@1 + hit@3 gained, minus answerable ones refused, plus unaddressed ones
    refused; across sites, (question, site) pairs cited with their evidence, minus answered ones marked
    silent, plus silent ones marked silent."""
    return (figures.get("hit1", 0.0) + figures.get("hit3", 0.0) - figures.get("abstained", 0.0)
            - figures.get("refused_answerable", 0.0) + figures.get("refused_unaddressed", 0.0)
            + figures.get("site_cited", 0.0) - figures.get("false_silent", 0.0) + figures.get("right_silent", 0.0))


def cross_counts(record: dict) -> dict[str, float]:
    """A cross-site record (eval.cross.score_row) as counts of its (question, site) pairs."""
    sites = record["sites"]
    return {"site_cited": float(sum(1 for j in sites if j["cited"])),
            "false_silent": float(sum(1 for j in sites if not j["silent"] and j["marked_silent"])),
            "right_silent": float(sum(1 for j in sites if j["silent"] and j["marked_silent"]))}


def verdict(policyqa: dict[str, float], own_dev: dict[str, float], cross: dict[str, float] | None = None) -> str:
    """keep / remove for one entry from its contributions on PolicyQA k-fold and on own dev held out
    (single-site questions and, if given, questions across sites)."""
    net_pqa, net_dev = net(policyqa), net(own_dev) + (net(cross) if cross else 0.0)
    if net_pqa < 0 and net_dev < OWN_DEV_CLEAR_GAIN:
        return "remove"
    if net_pqa == 0 and net_dev <= 0:
        return "remove (no gain)"
    return "keep"


@contextmanager
def thesaurus(entries: list[tuple[str, str]]):
    """qa.expand answers with `entries` as its thesaurus inside the block (ranking and abstention alike)."""
    import qa.expand as ex

    saved = ex._COMPILED
    ex._COMPILED = [(re.compile(p, re.I), terms) for p, terms in entries]
    try:
        yield
    finally:
        ex._COMPILED = saved


def thesaurus_at(revision: str) -> list[tuple[str, str]]:
    """THESAURUS as qa/expand.py holds it at a git revision (read, not imported)."""
    import ast
    import subprocess

    source = subprocess.run(["git", "show", f"{revision}:qa/expand.py"], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[1]).stdout
    for node in ast.parse(source).body:
        target = getattr(node, "target", None) or (node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == "THESAURUS":
            return [tuple(e) for e in ast.literal_eval(node.value)]
    raise ValueError(f"no THESAURUS in qa/expand.py at {revision}")


def memo_queries(encoder) -> None:
    """Encode each query text once: with expand_dense off the thesaurus never reaches the encoder, so a
    question asked again under another thesaurus gets the same vector."""
    raw, cache = encoder.encode, {}

    def encode(texts, kind="passage", **kw):
        if kind != "query" or len(texts) != 1:
            return raw(texts, kind=kind, **kw)
        if texts[0] not in cache:
            cache[texts[0]] = raw(texts, kind=kind, **kw)
        return cache[texts[0]].copy()

    encoder.encode = encode


def _label(i: int, pattern: str, terms: str) -> str:
    words = re.sub(r"\\w\*|\\b|\.\*|[()?]", " ", pattern).replace("|", " ").split()
    head = " ".join(words[:4]) + (" …" if len(words) > 4 else "")
    return f"{i}: `{head}` → {terms.split()[0]}"


def main(args) -> int:
    from eval.policyqa_bench import K, aggregate as pqa_aggregate, fold_engines as pqa_fold_engines, score as pqa_score
    from eval.refit import fold_engines as dev_fold_engines
    from eval.baselines import EngineSystem
    from eval.cross import ask_row, cross_figures, load_cross, score_row
    from eval.run import aggregate as dev_aggregate, run_system
    from qa.expand import THESAURUS

    set_threads()
    t0 = time.perf_counter()
    entries = list(THESAURUS)
    with tempfile.TemporaryDirectory(prefix="thesaurus-audit-") as tmp:
        pqa = [(e, qs) for e, qs in pqa_fold_engines(Path(args.folds), Path(tmp) / "pqa")]
        dev = [(e, rows) for e, rows in dev_fold_engines(Path(args.folds), Path(tmp) / "dev")]
        for engine, _ in pqa + dev:
            memo_queries(engine.encoder)
        pqa_q = [(engine, q) for engine, qs in pqa for q in qs]
        dev_q = [(engine, r) for engine, rows in dev for r in rows]
        # questions across sites: no fold model was trained on them; each fold's model answers all of them
        cross_q = [(engine, r) for engine, _ in dev for r in load_cross("dev")]

        def ask_pqa(items):
            return [pqa_score(q, e.ask(q["question"], policy=q["policy"], k=K).to_dict()) for e, q in items]

        def ask_dev(items):
            out = []
            for e, r in items:
                out += run_system(EngineSystem("audit", e), [r], ranked_run=False)
            return out

        def dev_key(r):  # hit1/hit3 None for unanswerable rows; refusals counted apart
            return {**r, "refused_answerable": float(r["abstained"] and not r["not_addressed"]),
                    "refused_unaddressed": float(r["abstained"] and r["not_addressed"])}

        def ask_cross(items):
            return [{**r, **cross_counts(r)} for r in (score_row(row, ask_row(EngineSystem("audit", e), row)) for e, row in items)]

        base_pqa = ask_pqa(pqa_q)
        base_cross = ask_cross(cross_q)
        base_dev = [dev_key(r) for r in ask_dev(dev_q)]
        print(f"base: {len(base_pqa)} PolicyQA, {len(base_dev)} own dev, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        whole = {"on": (base_pqa, base_dev, base_cross)}
        for name, other in [("off", []), *((f"as at {rev}", thesaurus_at(rev)) for rev in args.also or [])]:
            with thesaurus(other):
                whole[name] = (ask_pqa(pqa_q), [dev_key(r) for r in ask_dev(dev_q)], ask_cross(cross_q))
        pqa_texts = [q["question"] for _, q in pqa_q]
        dev_texts = [" ".join([*(r.get("history") or []), r["question"]]) for _, r in dev_q]
        cross_texts = [" ".join([*(r.get("history") or []), r["question"]]) for _, r in cross_q]
        cross_hits = matching(cross_texts, [p for p, _ in entries])
        pqa_hits = matching(pqa_texts, [p for p, _ in entries])
        dev_hits = matching(dev_texts, [p for p, _ in entries])
        rows = []
        for i, entry in enumerate(entries):
            rest = entries[:i] + entries[i + 1:]
            with thesaurus(rest):
                p_without = ask_pqa([pqa_q[j] for j in pqa_hits[i]])
                d_without = [dev_key(r) for r in ask_dev([dev_q[j] for j in dev_hits[i]])]
                c_without = ask_cross([cross_q[j] for j in cross_hits[i]])
            p = contribution([base_pqa[j] for j in pqa_hits[i]], p_without, PQA_KEYS)
            d = contribution([base_dev[j] for j in dev_hits[i]], d_without,
                             DEV_KEYS)
            c = contribution([base_cross[j] for j in cross_hits[i]], c_without, CROSS_KEYS)
            rows.append({"entry": i, "pattern": entry[0], "terms": entry[1], "policyqa_matched": len(pqa_hits[i]),
                         "own_dev_matched": len(dev_hits[i]), "cross_matched": len(cross_hits[i]), "policyqa": p,
                         "own_dev": d, "cross": c, "verdict": verdict(p, d, c)})
            print(f"{_label(i, *entry)}: PolicyQA {len(pqa_hits[i])} q {p} | own dev {len(dev_hits[i])} {d}", file=sys.stderr, flush=True)
        # Entries an earlier revision had and the current thesaurus does not, added back one at a time
        # (+ = adding it back would win answers): the removals, measured as the entries that stay are.
        added_back = []
        for rev in args.also or []:
            current = {p for p, _ in entries} | {p for _, p in args.variant or []}  # narrowed: measured as variants
            for entry in [e for e in thesaurus_at(rev) if e[0] not in current]:
                p_idx, d_idx = matching(pqa_texts, [entry[0]])[0], matching(dev_texts, [entry[0]])[0]
                c_idx = matching(cross_texts, [entry[0]])[0]
                with thesaurus(entries + [entry]):
                    p_with = ask_pqa([pqa_q[j] for j in p_idx])
                    d_with = [dev_key(r) for r in ask_dev([dev_q[j] for j in d_idx])]
                    c_with = ask_cross([cross_q[j] for j in c_idx])
                p = contribution(p_with, [base_pqa[j] for j in p_idx], PQA_KEYS)
                d = contribution(d_with, [base_dev[j] for j in d_idx], DEV_KEYS)
                c = contribution(c_with, [base_cross[j] for j in c_idx], CROSS_KEYS)
                added_back.append({"revision": rev, "pattern": entry[0], "terms": entry[1], "policyqa_matched": len(p_idx),
                                   "own_dev_matched": len(d_idx), "cross_matched": len(c_idx), "policyqa": p, "own_dev": d,
                                   "cross": c, "verdict": verdict(p, d, c)})
                print(f"added back {entry[1]}: {p} | {d}", file=sys.stderr, flush=True)
        variants = []
        for i, pattern in args.variant or []:
            i = int(i)
            other = entries[:i] + [(pattern, entries[i][1])] + entries[i + 1:]
            p_idx = sorted(set(pqa_hits[i]) | set(matching(pqa_texts, [pattern])[0]))
            d_idx = sorted(set(dev_hits[i]) | set(matching(dev_texts, [pattern])[0]))
            c_idx = sorted(set(cross_hits[i]) | set(matching(cross_texts, [pattern])[0]))
            with thesaurus(other):
                p_other = ask_pqa([pqa_q[j] for j in p_idx])
                d_other = [dev_key(r) for r in ask_dev([dev_q[j] for j in d_idx])]
                c_other = ask_cross([cross_q[j] for j in c_idx])
            variants.append({"entry": i, "pattern": pattern, "current": entries[i][0], "policyqa_matched": len(p_idx),
                             "own_dev_matched": len(d_idx), "cross_matched": len(c_idx),
                             "cross": contribution([base_cross[j] for j in c_idx], c_other, CROSS_KEYS),
                             "policyqa": contribution([base_pqa[j] for j in p_idx], p_other, PQA_KEYS),
                             "own_dev": contribution([base_dev[j] for j in d_idx], d_other,
                                                     DEV_KEYS)})
    figures = {name: {"policyqa": pqa_aggregate(p), "own_dev": dev_aggregate(d), "cross": cross_figures(c)}
               for name, (p, d, c) in whole.items()}
    command = "python -m eval.thesaurus_audit " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    md = report(args.folds, entries, rows, figures, time.perf_counter() - t0, variants, added_back, command)
    print(md)
    write_atomic(REPORTS / "thesaurus_audit.md", md)
    write_atomic(REPORTS / "thesaurus_audit.json", json.dumps(jsonable({"folds": str(args.folds), "figures": figures,
                                                                         "entries": rows, "variants": variants,
                                                                         "added_back": added_back}), indent=1) + "\n")
    return 0


def _cells(r: dict) -> str:
    p, d, c = r["policyqa"], r["own_dev"], r.get("cross") or {k: 0.0 for k in CROSS_KEYS}
    return (f"{r['policyqa_matched']} | {p['hit1']:+.0f} | {p['hit3']:+.0f} | {p['hl_hit1']:+.0f} | {p['abstained']:+.0f} | "
            f"{r['own_dev_matched']} | {d['hit1']:+.0f} | {d['hit3']:+.0f} | {d['highlight_hit1']:+.0f} | "
            f"{d['refused_answerable']:+.0f} | {d['refused_unaddressed']:+.0f} | {r.get('cross_matched', 0)} | "
            f"{c['site_cited']:+.0f} | {c['false_silent']:+.0f} | {c['right_silent']:+.0f}")


_HEAD = ("PolicyQA q | Δhit@1 | Δhit@3 | Δhl-hit@1 | Δrefused | own dev q | Δhit@1 | Δhit@3 | Δhl-hit@1 | Δref-ans | "
         "Δref-unadd | across q | Δsites cited | Δfalse silent | Δright silent")


def _entry_table(rows: list[dict], labels: list[str]) -> list[str]:
    lines = [f"| entry | {_HEAD} | verdict |", "|---|" + "---:|" * 15 + "---|"]
    for r, label in zip(rows, labels):
        lines.append(f"| {label} | {_cells(r)} | {r['verdict']} |")
    return lines


def report(folds, entries, rows, figures, seconds: float, variants: list[dict] = (), added_back: list[dict] = (),
           command: str = "python -m eval.thesaurus_audit --folds DIR") -> str:
    def g(side, part, key):
        return figures[side][part][key]

    lines = ["# Thesaurus audit: each entry of qa/expand.py on questions it was not written from", "",
             f"Fold models from {folds}; each answers only the questions of the policies (PolicyQA) or the own dev "
             f"questions it was not trained on. {g('on', 'policyqa', 'questions')} PolicyQA questions, "
             f"{g('on', 'own_dev', 'questions')} own dev rows ({g('on', 'own_dev', 'answerable')} answerable), "
             f"{g('on', 'cross', 'answered_pairs') + g('on', 'cross', 'silent_pairs')} (question, site) pairs across sites; "
             f"{len(entries)} entries; {seconds:.0f} s. Regenerate: `{command}`.", "",
             "## Whole thesaurus on / off", "",
             "| thesaurus | PolicyQA hit@1 | hit@3 | hl-hit@1 | refused | own dev hit@1 | hit@3 | hl-hit@1 | abst-P | abst-R | "
             "answerable refused | across: site recall | site hl | silent-P | silent-R | false silent |",
             "|---|" + "---:|" * 15]
    for side in figures:
        p, d, c = figures[side]["policyqa"], figures[side]["own_dev"], figures[side]["cross"]
        lines.append(f"| {side} | {p['hit@1']:.3f} | {p['hit@3']:.3f} | {p['highlight_hit@1']:.3f} | {p['abstained']:.3f} | "
                     f"{d['hit@1']:.3f} | {d['hit@3']:.3f} | {d['highlight_hit@1']:.3f} | {d['abstain_precision']:.2f} | "
                     f"{d['abstain_recall']:.2f} | {d['abstain_counts']['fp']} | {c['site_recall']:.3f} | "
                     f"{c['site_highlight_recall']:.3f} | {c['site_abstain_precision']:.2f} | {c['site_abstain_recall']:.2f} | "
                     f"{c['site_abstain_counts']['fp']} |")
    lines += ["", "## Per entry", "",
              "Contribution of each entry = answers with it minus answers without it, in questions (+ = the entry "
              "helps). Only questions the entry's pattern matches are asked again. `refused` on PolicyQA counts "
              "answerable questions refused (+ = the entry causes refusals); own dev `ref-ans` / `ref-unadd` = "
              "answerable / unaddressed questions refused with the entry minus without. Across sites (eval/cross_dev.jsonl, answered "
              "by every fold's model): (question, site) pairs cited with their evidence, answered pairs marked silent, "
              "silent pairs marked silent. Net = hit@1 + hit@3 gained minus answerable questions refused, plus "
              "unaddressed ones refused (own dev), plus pairs cited minus false silences plus right silences (across "
              f"sites). Verdict: remove when the entry's PolicyQA net is negative and its own dev net (single-site plus "
              f"across sites) under {OWN_DEV_CLEAR_GAIN}, or when it changes nothing on PolicyQA and wins nothing on own dev (entries matching no PolicyQA question are judged on own dev alone, "
              "which they were written from).", "",
              *_entry_table(rows, [_label(r["entry"], r["pattern"], r["terms"]) for r in rows])]
    if added_back:
        lines += ["", "## Removed entries, added back one at a time", "",
                  "Each entry of the earlier thesaurus that the current one lacks, added back alone to the current one: "
                  "its contribution there (+ = adding it back would win answers; the verdict as above).", "",
                  *_entry_table(added_back, [f"`{r['pattern'].replace('|', '/')}` → {r['terms']} ({r['revision']})" for r in added_back])]
    if variants:
        lines += ["", "## The current pattern against another one", "",
                  "Contribution of the current pattern over the other (+ = the current one is better), on the questions "
                  "either matches; the entry's policy words unchanged.", "",
                  f"| entry | other pattern | {_HEAD} |", "|---|---|" + "---:|" * 15]
        for v in variants:
            lines.append(f"| {_label(v['entry'], v['current'], entries[v['entry']][1])} | `{v['pattern'].replace('|', '/')}` | "
                         f"{_cells(v)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m eval.thesaurus_audit", description=__doc__.splitlines()[0])
    p.add_argument("--folds", type=Path, required=True, help="fold models written by `policyqa train --save-folds DIR`")
    p.add_argument("--also", action="append", metavar="REV",
                   help="also answer with the whole thesaurus as qa/expand.py holds it at this git revision (e.g. main)")
    p.add_argument("--variant", nargs=2, action="append", metavar=("I", "PATTERN"),
                   help="also measure entry I with another question pattern (e.g. the wider one it replaced)")
    sys.exit(main(p.parse_args()))
