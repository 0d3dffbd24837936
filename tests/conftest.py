"""Shared fixtures: the real packaged model and a real index of the default corpus, built once."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

REPO = Path(__file__).resolve().parents[1]


# Test tiers: a test that needs the real model (the `encoder` fixture, directly or through an index or
# an engine built with it) is `slow`; browser tests mark themselves `browser`. `pytest -m "not slow and
# not browser"` runs the model-free tests in seconds; CI (`make test`) runs every tier.
MODEL_FIXTURES = {"encoder"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def encoder():
    from index.embed import Encoder

    enc = Encoder()
    enc.load()  # once for the whole session
    return enc


@pytest.fixture(scope="session")
def default_index(tmp_path_factory, encoder) -> Path:
    from index.build import build_index
    from index.corpus import load_corpus

    out = tmp_path_factory.mktemp("index") / "default"
    build_index(load_corpus(), out, encoder)
    return out


@pytest.fixture(scope="session")
def engine(default_index, encoder):
    from index.store import read_index
    from qa.engine import Engine

    return Engine(read_index(default_index), encoder)


def copy_index(source: Path, destination: Path) -> Path:
    """A private copy of an index directory. Large files are hard-linked (an index version's files are
    never rewritten, only replaced by a new version), small ones (CURRENT, .lock) copied."""
    import shutil

    def copy(src, dst):
        if os.path.getsize(src) > 1 << 20:
            try:
                os.link(src, dst)
                return dst
            except OSError:
                pass
        return shutil.copy2(src, dst)

    shutil.copytree(source, destination, copy_function=copy)
    return destination


@pytest.fixture
def served_index(default_index, tmp_path) -> Path:
    """A copy of the default index for a page that adds policies to it (never the shared one, never ~/.cache)."""
    return copy_index(default_index, tmp_path / "served-index")


def launch_on_loopback(demo) -> str:
    """Start a Gradio app on a free 127.0.0.1 port without blocking; returns its URL."""
    import app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, url, _ = app.launch_app(demo, host="127.0.0.1", port=port, block=False, quiet=True)
    return url


@pytest.fixture(scope="session")
def launch():
    return launch_on_loopback


@pytest.fixture(scope="module")
def app_url(engine):
    """The real page over the shared test index, on loopback, for a module's tests."""
    import app

    demo = app.build_app(engine)
    yield launch_on_loopback(demo)
    demo.close()
