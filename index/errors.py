"""The one root of PolicyQA's errors. Every error the project raises on purpose derives from
`PolicyQAError` and carries a message a user can act on; front ends catch the root once and print
`str(error)` (the command line) or `error.for_page()` (the page). `exit_code` is what the command line
exits with: 2 for input the user can correct (usage), 1 for a state the user must repair (a missing index).

One error, two audiences: `hint` is what to do on the command line ("... with --id acme-2"); `page`,
when given, is the whole message for a page visitor, who has form fields instead of options and must
not see the server's paths. Without `page` both read the same."""
from __future__ import annotations


class PolicyQAError(Exception):
    """Base of every error PolicyQA raises on purpose; the message says what to do."""

    exit_code: int = 1

    def __init__(self, message: str = "", *, hint: str | None = None, page: str | None = None):
        self.message, self.hint, self.page = message, hint, page
        super().__init__(f"{message}; {hint}" if hint else message)

    def for_page(self) -> str:
        """The message for someone using the web page."""
        return self.page if self.page is not None else str(self)


class IndexLoadError(PolicyQAError, RuntimeError):
    """An index directory that is missing, partial, corrupt or built with other models (defined here,
    not in index.store, so that index.models can refuse a mismatch without importing the store)."""


class UsageError(PolicyQAError):
    """Input the user can correct: a bad question, option or policy id (exit status 2)."""

    exit_code = 2
