"""`python -m eval [--split dev|test|all] [--fast] [--check] [--policyqa] [--record]` — same as `policyqa eval`,
plus --record, which stores PolicyQA's current figures in eval/recorded.json."""
from __future__ import annotations

import argparse
import sys


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval", description="Run PolicyQA's evaluation harness.")
    p.add_argument("--split", default="all", choices=["dev", "test", "all"])
    p.add_argument("--policyqa", action="store_true", help="also run the external PolicyQA benchmark")
    p.add_argument("--fast", action="store_true", help="skip baselines and ablations")
    p.add_argument("--check", action="store_true", help="fail when hit@1 or highlight-hit@1 regress vs eval/recorded.json")
    p.add_argument("--model", help="embedding model to evaluate (default: the product's default)")
    p.add_argument("--record", action="store_true", help="store PolicyQA's figures (needs --split all) in eval/recorded.json")
    return p


if __name__ == "__main__":
    from eval.run import main

    sys.exit(main(parser().parse_args()))
