"""Questions across sites (eval/cross_{dev,test}.jsonl): site recall, per-site abstention and follow-up scoping.

A gold row: {"id", "kind": "compare" | "followup", "question", "history": [earlier questions],
"scope": [the sites the question is about], "sites": {policy_id: [evidence texts] | "not addressed"}}.
"compare" rows judge every site in scope; "followup" rows judge the sites searched (their "sites" may be empty).

Each system answers with k = max(3, sites in scope), so the usual recipe (which cites whatever ranks
highest, one chunk per citation) has as many citations as there are sites to cover.
"""
from __future__ import annotations

from eval.gold import EVAL_DIR, load_questions
from eval.metrics import NOT_ADDRESSED_LABEL, mean, scope_correct, site_abstention, site_judgements, site_recall

CROSS_KINDS = ("compare", "followup")
MIN_K = 3


def cross_path(split: str):
    return EVAL_DIR / f"cross_{split}.jsonl"


def load_cross(split: str = "all") -> list[dict]:
    """Cross-site gold rows of `split` ("dev", "test" or "all"), each with an added "split" key."""
    return load_questions(split, cross_path)


def ask_row(system, row: dict) -> dict:
    """One system's Answer to one cross-site gold row, as the JSON the scorer reads."""
    from index.errors import PolicyQAError
    from index.types import Answer

    try:
        answer = system.ask(row["question"], k=max(MIN_K, len(row["scope"])), history=row.get("history") or None)
    except PolicyQAError as e:
        answer = Answer.refused(row["question"], str(e))
    return answer.to_dict()


def score_row(row: dict, answer: dict) -> dict:
    """Per-row record: the (question, site) judgements and whether the sites searched were right."""
    return {
        "id": row["id"], "split": row["split"], "kind": row["kind"],
        "sites": site_judgements(answer, row["sites"]),
        "highlights": site_judgements(answer, row["sites"], field="highlight"),
        "scope_ok": scope_correct(answer.get("policies") or [], row["scope"]),
        "searched": sorted(answer.get("policies") or []),
        "rows": [r["policy_id"] for r in answer.get("by_policy") or []],
        "latency_ms": (answer.get("timings_ms") or {}).get("total"),
    }


def run_cross(system, rows: list[dict]) -> list[dict]:
    return [score_row(row, ask_row(system, row)) for row in rows]


def cross_figures(records: list[dict]) -> dict:
    """Site recall, highlight recall, per-site abstention and follow-up scoping over `records`."""
    pairs = [j for r in records for j in r["sites"]]
    highlights = [j for r in records for j in r["highlights"]]
    abst = site_abstention(pairs)
    follow = [r for r in records if r["kind"] == "followup"]
    return {
        "questions": sum(1 for r in records if r["kind"] == "compare"),
        "followups": len(follow),
        "answered_pairs": sum(1 for j in pairs if not j["silent"]),
        "silent_pairs": sum(1 for j in pairs if j["silent"]),
        "site_recall": site_recall(pairs),
        "site_highlight_recall": site_recall(highlights),
        "site_abstain_precision": abst["precision"],
        "site_abstain_recall": abst["recall"],
        "site_false_silence": abst["false_refusal_rate"],
        "site_abstain_counts": {k: abst[k] for k in ("tp", "fp", "fn", "tn")},
        "followup_scope_accuracy": mean(1.0 if r["scope_ok"] else 0.0 for r in follow),
        "compare_scope_accuracy": mean(1.0 if r["scope_ok"] else 0.0 for r in records if r["kind"] == "compare"),
    }


def misses(records: list[dict], rows: dict[str, dict]) -> list[str]:
    """Lines naming every (question, site) judged wrong and every follow-up scoped wrong."""
    out = []
    for r in records:
        q = rows[r["id"]]
        for j in r["sites"]:
            if j["silent"] and not j["marked_silent"]:
                out.append(f"- {r['id']} [{j['policy']}] silent but answered: {q['question']}")
            elif not j["silent"] and not j["cited"]:
                why = "marked silent" if j["marked_silent"] else "evidence not cited"
                out.append(f"- {r['id']} [{j['policy']}] {why}: {q['question']}")
        if not r["scope_ok"]:
            out.append(f"- {r['id']} searched {', '.join(r['searched']) or 'nothing'}; expected {', '.join(sorted(q['scope']))}: "
                       f"{' / '.join(q['history'])} → {q['question']}")
    return out


__all__ = ["CROSS_KINDS", "NOT_ADDRESSED_LABEL", "cross_figures", "cross_path", "load_cross", "misses", "run_cross"]
