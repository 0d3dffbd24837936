"""`policyqa`: ask questions, build the index, serve the page, run the benchmarks.

A front end over the library: qa.service opens engines and builds indexes (the page uses the same),
qa.options holds the options `python app.py` and `python -m eval` share, and every error the library
raises on purpose is an index.errors.PolicyQAError, caught once in `main`."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from index.corpus import DEFAULT_CORPUS
from index.embed import DEFAULT_MODEL
from index.errors import PolicyQAError, UsageError
from index.store import live_version
from qa.engine import MAX_K, every_site
from qa.options import add_eval_options, add_index_options, add_serve_options, page_may_add
from qa.service import build, default_index_dir, open_engine  # noqa: F401  (the CLI's library, re-exported)


def _print_answer(answer, policies: dict | None = None) -> None:
    if answer.by_policy:  # across sites: the lead line, then one table row per site
        import shutil

        from qa.compare import comparison_rows, not_shown, text_table

        print(answer.answer.splitlines()[0])
        print(text_table(comparison_rows(answer, policies or {}), width=min(shutil.get_terminal_size((100, 24)).columns, 140),
                         language=answer.language))
        if not_shown(answer):
            print(answer.answer.splitlines()[-1])
    else:
        print(answer.answer)
    print()
    print("出典:" if answer.language == "ja" else "Sources:")
    for c in answer.citations:
        print(f"[{c.n}] {c.company} — {c.section}  (characters {c.start}–{c.end}, score {c.score:.3f})")
        body = " ".join(c.text.split())
        print("    " + (body if len(body) <= 600 else body[:600] + "…"))
    print()


def _open_questions(path: str):
    """The questions file as bytes (each line is decoded alone: one bad line spoils only itself)."""
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise UsageError(f"--questions-file {path}: no such file; give a JSONL file of {{\"question\": ...}} lines, or - for stdin") from None
    except IsADirectoryError:
        raise UsageError(f"--questions-file {path} is a directory; give a JSONL file of {{\"question\": ...}} lines") from None
    except OSError as e:
        raise UsageError(f"--questions-file {path}: cannot read it ({e.strerror})") from None


def _questions(stream):
    with stream:
        for number, raw in enumerate(stream, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as e:
                yield number, None, f"line {number} is not UTF-8 text (byte {e.start + 1}); save the file as UTF-8"
                continue
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError) as e:  # RecursionError: "[[[[…" nested thousands deep
                yield number, None, f"line {number} is not JSON: {e}"
                continue
            if not isinstance(row, dict) or "question" not in row:
                yield number, row, f'line {number} has no "question"'
                continue
            yield number, row, None


def _json_line(obj) -> str:
    """One JSON line; text that cannot be written as UTF-8 (a lone surrogate) is \\u-escaped."""
    line = json.dumps(obj, ensure_ascii=False)
    try:
        line.encode("utf-8")
        return line
    except UnicodeEncodeError:
        return json.dumps(obj)


def cmd_ask(args) -> int:
    if not args.question and not args.questions_file:
        print('error: give a question, e.g. policyqa ask "can JapanWork share my data with partners?"', file=sys.stderr)
        return 2
    if args.question and args.questions_file:
        raise UsageError("give a question or --questions-file, not both")
    stream = _open_questions(args.questions_file) if args.questions_file else None  # a bad path fails before loading
    engine = open_engine(args.index, args.model)
    if stream is not None:
        failures = 0
        for _, row, problem in _questions(stream):
            out = dict(row) if isinstance(row, dict) else {}
            out.pop("error", None)  # passed-through keys are the line's own; "error" says only whether we answered it
            if problem is None:
                try:
                    policy = every_site(row.get("policy"))  # the line's own policy, else --policy
                    answer = engine.ask(row["question"], policy=args.policy if policy is None else policy, k=args.k,
                                        history=row.get("history"))
                    out.update(answer.to_dict())
                except PolicyQAError as e:  # a bad line is reported on its line; the others are answered
                    problem = str(e)
                except Exception as e:  # one line's failure never stops the lines after it
                    problem = f"could not answer this line ({type(e).__name__}); the other lines are answered"
            if problem is not None:
                failures += 1
                out["error"] = problem
            print(_json_line(out), flush=True)
        return 1 if failures else 0
    answer = engine.ask(args.question, policy=args.policy, k=args.k)
    if args.json:
        print(_json_line(answer.to_dict()))
    else:
        _print_answer(answer, engine.index.policies)
    return 0


def cmd_index_build(args) -> int:
    out = Path(args.out) if args.out else default_index_dir()
    report = build(Path(args.corpus), out, args.model or DEFAULT_MODEL, progress=not args.quiet, replace=args.replace)
    s = report["seconds"]
    print(
        f"Indexed {report['policies']} policies into {report['passages']} passages "
        f"({report['embedded']} texts embedded, {report['reused']} reused) at {out} "
        f"in {s['total']:.2f}s (parse {s['parse']:.2f}s, embed {s['embed']:.2f}s, write {s['write']:.2f}s"
        + (f"; {report['embedded_multilingual']} texts encoded for questions in Japanese" if report.get("embedded_multilingual") else "")
        + ")"
    )
    return 0


def _library_target(args) -> tuple[Path, Path | None]:
    """(index directory, corpus to build it from when it does not exist yet): only the default index
    is built from the shipped corpus on first use; a new --index DIR starts empty."""
    if args.index:
        return Path(args.index), None
    return default_index_dir(), DEFAULT_CORPUS


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_add(args) -> int:
    from index.library import add_files, dumps, print_report

    directory, seed = _library_target(args)
    report = add_files(
        directory, args.paths, policy_id=args.id, company=args.company, aliases=args.alias or (), date=args.date,
        model=args.model, wait=args.wait, progress=not args.quiet, seed_corpus=seed, log=_log,  # bars go to stderr
    )
    print(dumps(report)) if args.json else print_report(report)
    return 0


def cmd_remove(args) -> int:
    from index.library import dumps, print_report, remove

    directory, seed = _library_target(args)
    if seed is not None and live_version(directory) is None:
        build(seed, directory, args.model or DEFAULT_MODEL, progress=False)
    report = remove(directory, args.ids, model=args.model, wait=args.wait, log=_log)
    print(dumps(report)) if args.json else print_report(report)
    return 0


def cmd_list(args) -> int:
    from index.library import list_policies

    directory, seed = _library_target(args)
    if seed is not None and live_version(directory) is None:
        _log(f"Building the default index at {directory} (first use, about a minute)…")
        build(seed, directory, DEFAULT_MODEL, progress=False)
    rows = list_policies(directory)
    if args.json:
        text = json.dumps(rows, ensure_ascii=False, indent=2)
    else:
        import unicodedata

        def cells(s: str) -> int:  # terminal columns: CJK characters take two
            return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)

        def fit(s: str, width: int) -> str:
            while cells(s) > width:
                s = s[:-2] + "…"
            return s + " " * (width - cells(s))

        width = min(max([cells(r["id"]) for r in rows] + [2]), 40)
        cwidth = min(max([cells(r["company"]) for r in rows] + [7]), 48)
        lines = [f"{fit('ID', width)}  {fit('COMPANY', cwidth)}  {'DATE':<10}  {'PASSAGES':>8}  {'ORIGIN':<7}  ADDED"]
        for r in rows:
            lines.append(f"{fit(r['id'], width)}  {fit(r['company'], cwidth)}  {r.get('date') or '—':<10}  "
                         f"{r.get('passages', 0):>8}  {r['origin']:<7}  {r.get('added') or '—'}")
        lines.append(f"{len(rows)} policies, {sum(r.get('passages', 0) for r in rows)} passages in {directory}; "
                     "origin: shipped with PolicyQA, added from the command line (cli) or on the web page (page)")
        text = "\n".join(lines)
    try:
        print(text)
    except BrokenPipeError:  # `policyqa list | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def cmd_serve(args) -> int:
    if args.allow_add_policy and args.no_add_policy:
        raise UsageError("give --allow-add-policy or --no-add-policy, not both")
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be 1-65535, not {args.port}")
    import app

    app.serve(index_dir=args.index, host=args.host, port=args.port, model=args.model,
              allow_add=page_may_add(args.host, args.allow_add_policy, args.no_add_policy))
    return 0


def cmd_index_repair(args) -> int:
    from index.library import repair_index

    directory = Path(args.index) if args.index else default_index_dir()
    print(repair_index(directory, log=_log))
    return 0


def cmd_bench(args) -> int:
    from eval.bench import main as bench_main

    return bench_main(args)


def cmd_eval(args) -> int:
    from eval.run import main as eval_main

    return eval_main(args)


def cmd_train(args) -> int:
    if args.scorer:  # the answer-sentence scorer retrieves with the engine, so it is trained from qa/
        from qa.scorer_train import run_from_args as train_scorer

        return train_scorer(args)
    from index.train import run_from_args

    return run_from_args(args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="policyqa", description="Ask job-site privacy policies questions; get quoted, cited answers.")
    sub = p.add_subparsers(dest="command", required=True)

    common = add_index_options

    ask = sub.add_parser("ask", help="answer a question with quotes and citations")
    ask.add_argument("question", nargs="?")
    ask.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    ask.add_argument("--questions-file", help='JSONL file of {"question": ...} lines (or - for stdin); writes JSONL answers')
    ask.add_argument("--policy", help="answer from this policy id only")
    ask.add_argument("-k", type=_k_value, default=3, help=f"number of citations, 1-{MAX_K} (default 3)")
    common(ask)
    ask.set_defaults(func=cmd_ask)

    idx = sub.add_parser("index", help="build the index").add_subparsers(dest="index_command", required=True)
    b = idx.add_parser("build", help="build an index from a directory of policy texts")
    b.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="directory of .txt/.md policies (+ optional manifest.json)")
    b.add_argument("--out", help="index directory to write (default: the default index)")
    b.add_argument("--model", help=f"sentence-transformers model name or path (default {DEFAULT_MODEL})")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.add_argument("--replace", action="store_true",
                   help="replace whatever the index holds: policies added to it that the corpus lacks are dropped")
    b.set_defaults(func=cmd_index_build)
    r = idx.add_parser("repair", help="point CURRENT at the newest complete index version (after CURRENT was lost or damaged)")
    r.add_argument("--index", type=Path, help="index directory (default: the default index)")
    r.set_defaults(func=cmd_index_repair)

    from index.library import DEFAULT_WAIT

    def writer(sp):
        sp.add_argument("--index", type=Path, help="index directory (default: the built-in corpus' index, built on first use)")
        sp.add_argument("--wait", type=_seconds, default=DEFAULT_WAIT, metavar="SECONDS",
                        help=f"how long to wait while another add/remove holds the index (default {DEFAULT_WAIT:g})")
        sp.add_argument("--json", action="store_true", help="print the report as one JSON object")

    add = sub.add_parser("add", help="add or replace policies: .txt, .md, .html/.htm, .pdf files or directories of them")
    add.add_argument("paths", nargs="+", metavar="PATH")
    add.add_argument("--id", help="policy id (default: from the file name)")
    add.add_argument("--company", help="company name (default: from the page title or the text's opening)")
    add.add_argument("--alias", action="append", metavar="NAME", help="another name a question may use (repeatable; replaces the inferred or stored aliases)")
    add.add_argument("--date", metavar="YYYY-MM-DD", help="date of this version of the policy (default: from the text)")
    add.add_argument("--model", help=f"sentence-transformers model name or path (default: the index's, or {DEFAULT_MODEL})")
    add.add_argument("--quiet", action="store_true", help="no progress bar")
    writer(add)
    add.set_defaults(func=cmd_add)

    rm = sub.add_parser("remove", help="remove policies from the index")
    rm.add_argument("ids", nargs="+", metavar="ID")
    rm.add_argument("--model", help="sentence-transformers model name or path (default: the index's)")
    writer(rm)
    rm.set_defaults(func=cmd_remove)

    ls = sub.add_parser("list", help="list the policies in the index")
    ls.add_argument("--index", type=Path, help="index directory (default: the built-in corpus' index)")
    ls.add_argument("--json", action="store_true", help="print the policies as JSON")
    ls.set_defaults(func=cmd_list)

    serve = sub.add_parser("serve", help="start the web page")
    add_serve_options(serve)
    serve.set_defaults(func=cmd_serve)

    bench = sub.add_parser("bench", help="print speed figures (build, warm and cold ask)")
    common(bench)
    bench.set_defaults(func=cmd_bench)

    from index.train import add_arguments as train_arguments  # policyqa train (issue 13): numpy only

    tr = sub.add_parser("train", help="train the shipped retriever from the packaged base model (index/train.py)")
    train_arguments(tr)
    tr.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="run the evaluation harness")
    add_eval_options(ev)
    ev.set_defaults(func=cmd_eval)
    return p


def _k_value(text: str) -> int:
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"-k takes a whole number of citations, 1-{MAX_K}, not {text!r}") from None
    if not 1 <= k <= MAX_K:
        raise argparse.ArgumentTypeError(f"-k must be 1-{MAX_K} citations, not {k}")
    return k


def _seconds(text: str) -> float:
    """--wait: 0 or more seconds, a number a clock can reach (not nan, inf or -1)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= 7 * 24 * 3600:
        raise argparse.ArgumentTypeError(f"--wait takes seconds, 0-604800 (a week), not {text!r}")
    return seconds


def _say(message: str) -> None:
    """An error line on stderr, whatever bytes it quotes (a path that is not UTF-8, say)."""
    line = f"error: {message}".replace("\n", " ")
    sys.stderr.write(line.encode("utf-8", "backslashreplace").decode("utf-8") + "\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    if getattr(sys.stdout, "errors", None) == "strict" and hasattr(sys.stdout, "reconfigure"):
        # A UTF-8 locale's stdout refuses a path holding bytes that are not UTF-8 (an --index or file named so).
        sys.stdout.reconfigure(errors="backslashreplace")
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except PolicyQAError as e:  # every error the library raises on purpose; its message says what to do
        _say(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `policyqa ask ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as e:  # a disk that is full or read-only, a directory we may not write
        _say(f"{e.strerror or e}{f': {e.filename}' if getattr(e, 'filename', None) else ''}; check the path, its permissions and free space")
        return 1
    except Exception as e:  # a bug: one line, not a traceback (POLICYQA_DEBUG=1 shows it)
        if os.environ.get("POLICYQA_DEBUG"):
            raise
        _say(f"unexpected {type(e).__name__}; please report it (run with POLICYQA_DEBUG=1 for the details)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
