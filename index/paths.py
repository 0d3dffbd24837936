"""Where PolicyQA keeps things on this machine: one place for the cache directory and the default index."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/policyqa (default ~/.cache/policyqa): the default index and the exported encoders."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "policyqa"


def default_index_dir() -> Path:
    """$POLICYQA_INDEX, else the cache's index/ (built from the shipped corpus on first use)."""
    if os.environ.get("POLICYQA_INDEX"):
        return Path(os.environ["POLICYQA_INDEX"])
    return cache_dir() / "index"
