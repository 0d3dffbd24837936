"""`python -m eval [--split dev|test|all] [--fast] [--check] [--policyqa] [--record]` — the same as
`policyqa eval` (qa.options defines the options once); --record stores PolicyQA's current figures in
eval/recorded.json."""
from __future__ import annotations

import sys

from index.errors import PolicyQAError
from qa.options import eval_parser


def main(argv: list[str] | None = None) -> int:
    from eval.run import main as run

    try:
        return run(eval_parser().parse_args(argv))
    except PolicyQAError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
