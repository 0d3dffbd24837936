"""The options of the `policyqa` subcommands that have a second entry point, defined once:
`python app.py` parses `policyqa serve`'s, `python -m eval` parses `policyqa eval`'s."""
from __future__ import annotations

import argparse
from pathlib import Path

from index.embed import DEFAULT_MODEL


def add_index_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", type=Path, help="index directory (default: the built-in corpus' index)")
    p.add_argument("--model", help=f"sentence-transformers model name or path (default: the index's, or {DEFAULT_MODEL})")


def add_serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--no-add-policy", action="store_true",
                   help='leave out the page\'s "Add a policy" panel (on by default on 127.0.0.1 only)')
    p.add_argument("--allow-add-policy", action="store_true",
                   help='show "Add a policy" also when --host is not loopback (anyone reaching the page can add policies)')
    add_index_options(p)


LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def page_may_add(host: str, allow: bool = False, deny: bool = False) -> bool:
    """Whether the page shows "Add a policy": on loopback unless turned off; on any other address only
    when asked for with --allow-add-policy (anyone who can reach the page could add policies)."""
    if deny:
        return False
    return allow or host in LOOPBACK_HOSTS or host.startswith("127.")


def add_eval_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", default="all", choices=["dev", "test", "all"])
    p.add_argument("--policyqa", action="store_true", help="also run the external PolicyQA benchmark")
    p.add_argument("--fast", action="store_true", help="skip baselines and ablations")
    p.add_argument("--check", action="store_true", help="fail when hit@1 or highlight-hit@1 regress vs eval/recorded.json")
    p.add_argument("--model", help=f"embedding model to evaluate (default {DEFAULT_MODEL}; e.g. the base "
                   "sentence-transformers/all-MiniLM-L6-v2)")
    p.add_argument("--record", action="store_true", help="store PolicyQA's figures (needs --split all) in eval/recorded.json")


def serve_parser(prog: str = "python app.py") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Start the PolicyQA web page (same as `policyqa serve`).")
    add_serve_options(p)
    return p


def eval_parser(prog: str = "python -m eval") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Run PolicyQA's evaluation harness (same as `policyqa eval`).")
    add_eval_options(p)
    return p
