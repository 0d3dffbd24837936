"""Scale benchmark of `policyqa add` (prints figures; not a test).

Policies: the 20 website policies of the PolicyQA dev split (../shared/benchmarks/policyqa/dev.json;
segments in `index` order joined by a blank line), repeated under different ids as .txt files, each
copy headed by a made-up company name ("Privacy policy of Kaede Careers 0042 K.K.") so that its id
and company are inferred like any file's. Two runs, both through the real CLI (`policyqa add DIR
--index IDX --json`, a subprocess: wall time and its own peak RSS) into a temp index seeded with
the shipped corpus (5 policies):

  distinct  N policies (default 1,000), each copy lightly reworded (a random subset of ~20 word
            substitutions, and the site's name replaced by the copy's company). Sentences holding
            none or few of those words still repeat between copies of the same base policy and are
            embedded once (reuse by content hash), so the report gives the embedded counts, the
            encoder rates, and -- ESTIMATED, labelled -- the embedding time if every text of the
            1,000 policies were distinct (all their passages and sentences at the measured rates).
            Fewer than 1,000: the figures are also extrapolated linearly (labelled).
  scale     M policies (default 0) repeated verbatim but for a company sentence: embeddings are
            reused by content hash, so this measures the rest at full size -- parse, write, RSS,
            index size on disk, question latency -- in minutes.

Then, on the scale index: re-adding one changed policy, re-adding it unchanged, removing one.
Warm question latency (qa.engine.Engine.ask, k=3) before (5 policies) and after, over the gold dev
questions, without `policy=` and with it. Writes eval/reports/scale_add.{json,md}.

Run: python -m eval.scale_add [--distinct 200] [--scale 1000] [--questions 40] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from eval.common import REPORTS, benchmark_file, write_atomic
from eval.gold import load_questions
from eval.metrics import percentile

SEPARATOR = "\n\n"
# Word substitutions, each switched on or off per copy: a sentence with k of these words is the
# same in two copies with probability 2^-k, so short boilerplate may still be shared (as in life).
REWORDINGS = [
    ("information", "data"), ("collect", "gather"), ("provide", "supply"), ("may", "might"), ("use", "utilize"),
    ("third parties", "outside parties"), ("website", "site"), ("services", "offerings"), ("personal", "individual"),
    ("users", "members"), ("share", "disclose"), ("such as", "including"), ("receive", "obtain"), ("order", "request"),
    ("contact", "reach"), ("policy", "notice"), ("access", "view"), ("ensure", "make sure"), ("visit", "browse"),
    ("also", "additionally"), ("the", "this"), ("our", "the company's"),
]
FIRST = ["Kaede", "Sakura", "Momiji", "Hinoki", "Tsubaki", "Ayame", "Kiri", "Sumire", "Ume", "Yuzu"]
SECOND = ["Careers", "Jobs", "Works", "Staffing", "Recruit", "Talent", "Agent", "Navi"]


def base_policies() -> list[tuple[str, str]]:
    data = json.loads(benchmark_file().read_text(encoding="utf-8"))
    out = []
    for doc in data["data"]:
        segments = sorted(doc["paragraphs"], key=lambda p: p["index"])
        out.append((doc["title"], SEPARATOR.join(s["context"] for s in segments)))
    return out


def _brand(title: str) -> str:
    return re.sub(r"\.(com|org|net|co\.jp|jp)$", "", title).split(".")[-1]


def variant(title: str, text: str, copy: int, distinct: bool, rng: random.Random) -> tuple[str, str]:
    """(company, text) of copy `copy` of a base policy."""
    company = f"{FIRST[copy % len(FIRST)]} {SECOND[(copy // len(FIRST)) % len(SECOND)]} {copy:04d} K.K."
    if distinct:
        brand = _brand(title)
        if len(brand) >= 3:
            text = re.sub(rf"(?i)\b{re.escape(brand)}(?:\.com)?\b", company.removesuffix(" K.K."), text)
        for old, new in REWORDINGS:
            if rng.random() < 0.5:
                text = re.sub(rf"\b{old}\b", new, text)
                text = re.sub(rf"\b{old.capitalize()}\b", new[0].upper() + new[1:], text)
    # A sentence, not a title line: the parser keeps "Preamble" as the first section instead of making
    # the header every passage's heading (which would make every passage of every copy unique).
    return company, f"This is the privacy policy of {company} (revision {copy % 7 + 1}).\n\n{text}"


def write_corpus(directory: Path, n: int, distinct: bool, seed: int = 7) -> list[str]:
    bases = base_policies()
    rng = random.Random(seed)
    directory.mkdir(parents=True)
    names = []
    for copy in range(n):
        title, text = bases[copy % len(bases)]
        company, body = variant(title, text, copy, distinct, rng)
        name = re.sub(r"[^a-z0-9]+", "-", company.lower()).strip("-").removesuffix("-k-k")
        (directory / f"{name}.txt").write_text(body, encoding="utf-8")
        names.append(name)
    return names


# Linux carries a process's peak RSS across fork+exec, so a child forked from this (large) process
# would report at least our own RSS: the CLI is forked from a tiny launcher instead, which reports it.
_LAUNCHER = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n    os.execv(sys.executable, [sys.executable, *sys.argv[2:]])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def run_cli(*args: str, progress: bool = True) -> dict:
    """A real `policyqa` subprocess: its JSON report, wall time and own peak RSS."""
    cmd = ["-m", "qa.cli", *args, "--json"] + ([] if progress or args[0] != "add" else ["--quiet"])
    with tempfile.TemporaryDirectory() as tmp:
        rss_file, out_file = Path(tmp) / "rss", Path(tmp) / "out"
        t0 = time.perf_counter()
        with open(out_file, "wb") as out:  # the progress bar (with ETA) shows on our stderr
            code = subprocess.call([sys.executable, "-c", _LAUNCHER, str(rss_file), *cmd], stdout=out)
        wall = time.perf_counter() - t0
        if code != 0:
            raise SystemExit(f"policyqa {' '.join(args)} failed with exit {code}")
        report = json.loads(out_file.read_text(encoding="utf-8"))
        peak_kb = int(rss_file.read_text())
    return {"report": report, "wall_s": wall, "peak_rss_mb": peak_kb / 1024}


def latency(index_dir: Path, rows: list[dict], scoped_extra: list[str] = ()) -> dict:
    from qa.engine import Engine

    t0 = time.perf_counter()
    engine = Engine.open(index_dir)
    load = time.perf_counter() - t0
    for row in rows[:3]:  # first calls pay one-off costs
        engine.ask(row["question"])
    out = {"load_s": load, "passages": len(engine.index.passages), "policies": len(engine.index.policies)}
    for mode in ("no_policy", "policy"):
        times = []
        for i, row in enumerate(rows):
            policy = None
            if mode == "policy":
                policy = row["policies"][0] if row.get("policies") else "japanwork"
                if scoped_extra and i % 2:
                    policy = scoped_extra[i % len(scoped_extra)]  # half on newly added policies
            t = time.perf_counter()
            engine.ask(row["question"], policy=policy)
            times.append(1000 * (time.perf_counter() - t))
        out[mode] = {"p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95), "n": len(times)}
    return out


def all_texts(index_dir: Path, seed: Path) -> dict:
    """Passages and sentences the added policies hold (whether embedded now or reused)."""
    from index.store import read_manifest

    after, before = read_manifest(index_dir), read_manifest(seed)
    return {"passages": after["passages"] - before["passages"], "sentences": after["sentences"] - before["sentences"]}


def disk_usage(index_dir: Path) -> dict:
    from index.store import live_version

    version = live_version(index_dir)
    sizes: dict[str, int] = {}
    for p in version.rglob("*"):
        if p.is_file():
            part = p.relative_to(version).parts[0]
            sizes[part] = sizes.get(part, 0) + p.stat().st_size
    mb = {k: round(v / 2**20, 1) for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])}
    total = sum(sizes.values())
    query_encoder = sizes.get("query_encoder", 0)
    return {"total_mb": round(total / 2**20, 1), "without_query_encoder_mb": round((total - query_encoder) / 2**20, 1), "by_part_mb": mb}


def single_ops(idx: Path, corpus: Path, added: list[str]) -> dict:
    """One policy of the full-size index: changed (re-embeds only its changed passages), re-added
    unchanged (no-op), removed (nothing embedded)."""
    one = corpus / f"{added[len(added) // 2]}.txt"
    one.write_text(one.read_text(encoding="utf-8") + "\n\nWe keep application records for five years.\n", encoding="utf-8")
    single = {}
    for label, args_ in (("replace_one_changed", ("add", str(one), "--index", str(idx))),
                         ("readd_one_unchanged", ("add", str(one), "--index", str(idx))),
                         ("remove_one", ("remove", added[0], "--index", str(idx)))):
        r = run_cli(*args_, progress=False)
        single[label] = {"wall_s": r["wall_s"], "peak_rss_mb": r["peak_rss_mb"], "embedded": r["report"]["embedded"],
                         "embedded_passages": r["report"]["embedded_passages"],
                         "action": [c["action"] for c in r["report"]["changes"]],
                         "seconds": {k: round(v, 2) for k, v in r["report"]["seconds"].items()}}
    return single


def summarize(run: dict, n: int) -> dict:
    r, s = run["report"], run["report"]["seconds"]
    embed = s.get("embed_passages", 0) + s.get("embed_sentences", 0)
    return {
        "policies_added": n, "wall_s": run["wall_s"], "peak_rss_mb": run["peak_rss_mb"],
        "passages_in_index": r["passages"], "policies_in_index": r["policies"],
        "embedded_passages": r["embedded_passages"], "embedded_sentences": r["embedded_sentences"], "reused": r["reused"],
        "seconds": {k: round(v, 2) for k, v in s.items()},
        "passages_per_s_encoder": r["embedded_passages"] / s["embed_passages"] if s.get("embed_passages") else None,
        "sentences_per_s_encoder": r["embedded_sentences"] / s["embed_sentences"] if s.get("embed_sentences") else None,
        "passages_per_s_end_to_end": sum(c["passages"] for c in r["changes"]) / run["wall_s"],
        "sentence_share_of_embed": s.get("embed_sentences", 0) / embed if embed else None,
    }


def add_to_copy(seed: Path, work: Path, label: str, n: int, distinct: bool) -> tuple[dict, Path, Path, dict]:
    """`policyqa add` of `n` generated policies into a fresh copy of the seed index: (figures, index, corpus, run)."""
    idx, corpus = work / f"idx-{label}", work / f"corpus-{label}"
    shutil.rmtree(idx, ignore_errors=True)
    shutil.copytree(seed, idx)
    shutil.rmtree(corpus, ignore_errors=True)
    write_corpus(corpus, n, distinct=distinct)
    print(f"{label}: adding {n} policies…", file=sys.stderr)
    run = run_cli("add", str(corpus), "--index", str(idx))
    figures = summarize(run, n)
    figures["disk"] = disk_usage(idx)
    return figures, idx, corpus, run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--distinct", type=int, default=1000, help="distinct policies to add (every text embedded)")
    p.add_argument("--scale", type=int, default=0, help="policies to add with reused embeddings (full-size index, fast)")
    p.add_argument("--questions", type=int, default=40, help="gold dev questions for the latency figures")
    p.add_argument("--keep", type=Path, help="work here and keep the indexes (default: a temp dir, removed)")
    args = p.parse_args(argv)

    from index.build import build_index
    from index.corpus import load_corpus
    from index.embed import Encoder

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="policyqa-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = load_questions("dev")[: args.questions]
    results: dict = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
                     "loadavg_start": os.getloadavg()}
    try:
        seed = work / "seed"
        if not (seed / "CURRENT").exists():
            build_index(load_corpus(), seed, Encoder())
        results["latency_before"] = latency(seed, rows)
        print(f"before: {results['latency_before']}", file=sys.stderr)

        if args.distinct:
            d, idx, corpus, run = add_to_copy(seed, work, "distinct", args.distinct, distinct=True)
            d["all_texts_of_added"] = all_texts(idx, seed)
            a = d["all_texts_of_added"]
            if d["passages_per_s_encoder"] and d["sentences_per_s_encoder"]:
                a["estimated_embed_s_if_all_distinct"] = round(
                    a["passages"] / d["passages_per_s_encoder"] + a["sentences"] / d["sentences_per_s_encoder"])
            added = [c["id"] for c in run["report"]["changes"]]
            d["latency_after"] = latency(idx, rows, scoped_extra=added[:: max(1, len(added) // 20)])
            d["single_policy_at_scale"] = single_ops(idx, corpus, added)
            factor = 1000 / args.distinct  # 1 when 1,000 were measured
            texts_per_s = (d["embedded_passages"] + d["embedded_sentences"]) / max(1e-9, d["seconds"]["embed"])
            d["extrapolated_1000"] = None if args.distinct >= 1000 else {
                "label": f"EXTRAPOLATED linearly from {args.distinct} distinct policies (x{factor:g}), not measured",
                "embedded_passages": round(d["embedded_passages"] * factor),
                "embedded_sentences": round(d["embedded_sentences"] * factor),
                "embed_s": round(d["seconds"]["embed"] * factor),
                "embed_passages_only_s": round(d["seconds"]["embed_passages"] * factor),
                "wall_s": round(d["wall_s"] * factor),
                "texts_per_s": texts_per_s,
            }
            results["distinct"] = d
            results["loadavg_after_distinct"] = os.getloadavg()
            print(json.dumps(d, indent=1), file=sys.stderr)

        if args.scale:
            sc, idx, corpus, run = add_to_copy(seed, work, "scale", args.scale, distinct=False)
            added = [c["id"] for c in run["report"]["changes"]]
            sc["latency_after"] = latency(idx, rows, scoped_extra=added[:: max(1, len(added) // 20)])
            sc["single_policy_at_scale"] = single_ops(idx, corpus, added)
            results["scale"] = sc
            print(json.dumps(sc, indent=1), file=sys.stderr)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    results["loadavg_end"] = os.getloadavg()
    write_atomic(REPORTS / "scale_add.json", json.dumps(results, indent=2))
    text = render(results)
    write_atomic(REPORTS / "scale_add.md", text)
    print(text)
    return 0


def render(r: dict) -> str:
    def lat(x):
        return (f"no policy p50 {x['no_policy']['p50_ms']:.0f} ms / p95 {x['no_policy']['p95_ms']:.0f} ms; "
                f"policy= p50 {x['policy']['p50_ms']:.0f} ms / p95 {x['policy']['p95_ms']:.0f} ms "
                f"({x['policies']} policies, {x['passages']:,} passages)")

    lines = [f"# `policyqa add` at scale ({r['when']}, {r['cpus']} CPUs, load average at start "
             f"{r['loadavg_start'][0]:.1f}, at end {r['loadavg_end'][0]:.1f})", ""]
    lines.append(f"Warm question latency before (shipped 5 policies): {lat(r['latency_before'])}")
    def singles(x):
        return [f"- {label}: {v['action']} wall {v['wall_s']:.1f} s, embedded {v['embedded']} texts "
                f"({v['embedded_passages']} passages), peak RSS {v['peak_rss_mb']:.0f} MB; phases {v['seconds']}"
                for label, v in x.get("single_policy_at_scale", {}).items()]

    if d := r.get("distinct"):
        e = d["extrapolated_1000"]
        lines += ["", f"## Distinct: {d['policies_added']} policies, lightly reworded copies (measured)", "",
                  f"- wall {d['wall_s']:.0f} s, peak RSS {d['peak_rss_mb']:.0f} MB; "
                  f"{d['passages_per_s_end_to_end']:.1f} passages/s end to end",
                  f"- embedded {d['embedded_passages']:,} passages at {d['passages_per_s_encoder']:.1f}/s and "
                  f"{d['embedded_sentences']:,} sentences at {d['sentences_per_s_encoder']:.1f}/s; sentence embeddings take "
                  f"{100 * d['sentence_share_of_embed']:.0f}% of the embedding time",
                  f"- the added policies hold {d['all_texts_of_added']['passages']:,} passages and "
                  f"{d['all_texts_of_added']['sentences']:,} sentences; **ESTIMATED** embedding time if every one were "
                  f"distinct, at the measured rates: ~{d['all_texts_of_added'].get('estimated_embed_s_if_all_distinct', 0) / 60:.0f} min",
                  f"- phases (s): {d['seconds']}",
                  f"- index on disk {d['disk']['total_mb']} MB ({d['disk']['without_query_encoder_mb']} MB without the ONNX "
                  f"query encoder): {d['disk']['by_part_mb']}",
                  f"- latency after: {lat(d['latency_after'])}", *singles(d)]
        if e:
            lines += ["", f"**{e['label']}**: {e['embedded_passages']:,} passages + {e['embedded_sentences']:,} sentences, "
                      f"embedding ~{e['embed_s'] / 60:.0f} min (passages alone ~{e['embed_passages_only_s'] / 60:.0f} min), "
                      f"wall ~{e['wall_s'] / 60:.0f} min on this machine."]
    if s := r.get("scale"):
        lines += ["", f"## Scale: {s['policies_added']} policies, embeddings reused (measured)", "",
                  f"- wall {s['wall_s']:.0f} s, peak RSS {s['peak_rss_mb']:.0f} MB; index now {s['policies_in_index']:,} "
                  f"policies, {s['passages_in_index']:,} passages; embedded {s['embedded_passages']:,} passages + "
                  f"{s['embedded_sentences']:,} sentences, reused {s['reused']:,}",
                  f"- phases (s): {s['seconds']}",
                  f"- index on disk {s['disk']['total_mb']} MB ({s['disk']['without_query_encoder_mb']} MB without the ONNX "
                  f"query encoder): {s['disk']['by_part_mb']}",
                  f"- latency after: {lat(s['latency_after'])}", *singles(s)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
