"""`python -m eval [--split dev|test|all] [--fast] [--check] [--policyqa] [--record]` — the same as
`policyqa eval` (qa.options defines the options once); --record stores PolicyQA's current figures in
eval/recorded.json."""
from __future__ import annotations

import sys

from qa.options import eval_parser

if __name__ == "__main__":
    from eval.run import main

    sys.exit(main(eval_parser().parse_args()))
