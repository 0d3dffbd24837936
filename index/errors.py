"""The one root of PolicyQA's errors. Every error the project raises on purpose derives from
`PolicyQAError` and carries a message a user can act on; front ends catch the root once and print
`str(error)` (the command line) or show it (the page). `exit_code` is what the command line exits with:
2 for input the user can correct (usage), 1 for a state the user must repair (a missing index)."""
from __future__ import annotations


class PolicyQAError(Exception):
    """Base of every error PolicyQA raises on purpose; the message says what to do."""

    exit_code: int = 1


class UsageError(PolicyQAError):
    """Input the user can correct: a bad question, option or policy id (exit status 2)."""

    exit_code = 2
