"""What every front end (the command line, the page, the benchmarks) needs from the library: where
the default index lives, building it, opening an Engine over it, and an EngineHolder that serves the
newest version of an index other processes may change. Messages go to `log` (stderr by default)."""
from __future__ import annotations

import logging
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable

from index.corpus import DEFAULT_CORPUS
from index.embed import DEFAULT_MODEL
from index.paths import default_index_dir
from index.store import CURRENT, IndexLoadError, live_version, older_manifest, read_index
from qa.engine import Engine

__all__ = ["ADD_WAIT_S", "EngineHolder", "build", "default_index_dir", "index_dir_of", "open_engine"]

log = logging.getLogger("policyqa.service")
Log = Callable[[str], None]
ADD_WAIT_S = 30.0  # how long a served add waits for another writer (e.g. `policyqa add`) to release the index
# Answers kept per served index version for the page's APIs: many visitors ask the same few questions,
# and an answer depends only on (index version, question, policy). Measured (eval/load_test.py, 100
# users): the engine's ~7 ms a question is most of what the JSON endpoint costs.
ANSWER_CACHE = 2048


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build(corpus: Path, out: Path, model: str, progress: bool = True, log: Log = _stderr, replace: bool = False) -> dict:
    """Build the index at `out` from the policies in `corpus`, under the index lock (never two writers).
    Refuses to drop policies the corpus lacks, or versions whose CURRENT was lost, unless `replace`."""
    from index.build import build_index
    from index.corpus import load_corpus
    from index.embed import Encoder
    from index.library import check_rebuild, index_lock

    policies = load_corpus(corpus)
    with index_lock(out, log=log):
        check_rebuild(out, policies, replace)  # nothing lost unless asked
        return build_index(policies, out, Encoder(model), progress=progress)


def open_engine(index_dir: Path | str | None, model: str | None = None, log: Log = _stderr) -> Engine:
    """The engine over `index_dir`; the default index (None) is built from the shipped corpus on first
    use, an index of an earlier format is upgraded in place, a default index an earlier release built
    with its shipped encoder is re-encoded with this one's, and it takes the names this release's manifest adds."""
    directory = Path(index_dir) if index_dir else default_index_dir()
    if index_dir is None and live_version(directory) is None:
        log(f"Building the default index at {directory} (first use, about a minute)…")
        build(DEFAULT_CORPUS, directory, model or DEFAULT_MODEL, log=log)
    elif older_manifest(directory) is not None:
        from index.library import upgrade_index

        upgrade_index(directory, log=log)
    else:
        from index.library import add_multilingual, follow_shipped_aliases, follow_shipped_model

        add_multilingual(directory, log=log)  # an index from before Japanese questions: once, dense vectors reused
        if index_dir is None and model is None:  # the default index follows the shipped encoder across upgrades
            follow_shipped_model(directory, DEFAULT_MODEL, log=log)
        if index_dir is None:  # ... and the shipped manifest's names for its sites ("Gaijin Pool")
            follow_shipped_aliases(directory, log=log)
    engine = Engine.open(directory, model=model)
    if engine.index.query_encoder_dir is None and (model or engine.index.model) == engine.index.model:
        # Indexes built before PolicyQA exported its ONNX query encoder answer the slow way.
        log(f"note: the index at {directory} has no ONNX query encoder, so each start loads sentence-transformers "
            "(seconds); rebuild it (`policyqa index build`) to start in under a second")
    return engine


def index_dir_of(engine: Engine) -> Path:
    """The index directory an engine's index was read from (its live version's parent)."""
    version = Path(engine.index.path)
    return version.parent if (version.parent / CURRENT).is_file() else version


class EngineHolder:
    """The engine every request uses, and the index directory it was read from.

    After an add, `reload` reads the new index version into a new Engine and rebinds `engine`: one
    reference assignment, atomic in CPython. A request reads `holder.current()` once and uses that
    engine to the end, so questions already being answered finish on the old one (its index is
    fully in memory; the old version's files may be gone)."""

    def __init__(self, engine: Engine, index_dir: Path | str | None = None, build_encoder=None, wait: float = ADD_WAIT_S):
        self.engine = engine
        self.index_dir = Path(index_dir) if index_dir is not None else index_dir_of(engine)
        self.wait = wait  # seconds an add waits for another writer before it gives up (IndexBusyError)
        self._build_encoder = build_encoder
        self._lock = threading.Lock()  # one add at a time in this process; index_lock covers other processes
        self._unreadable: Path | None = None  # a live version that failed to load (not retried)
        self._answers: OrderedDict = OrderedDict()  # (engine, question, policy) -> Answer.to_dict(), most recent last
        self._answers_lock = threading.Lock()

    def answer(self, question, policy: str | None = None) -> dict:
        """`policyqa ask --json`'s object for a question, from the engine `current()` serves; an answer
        already given by that engine is given again without asking (its timings are the first ask's).
        Raises UsageError (QuestionError) like Engine.ask."""
        engine = self.current()
        key, hit = self._cached(engine, question, policy)
        if hit is not None:
            return hit
        result = engine.ask(question, policy=policy).to_dict()
        if key is not None:
            with self._answers_lock:
                self._answers[key] = (engine, result)  # the engine kept alongside: its id is never reused meanwhile
                while len(self._answers) > ANSWER_CACHE:
                    self._answers.popitem(last=False)
        return result

    def cached(self, question, policy: str | None = None) -> dict | None:
        """What `answer` would return when the current engine has already answered this question, else
        None (it never asks: cheap enough for the page's event loop)."""
        return self._cached(self.current(), question, policy)[1]

    def _cached(self, engine: Engine, question, policy) -> tuple:
        key = (id(engine), question, policy) if isinstance(question, str) and (policy is None or isinstance(policy, str)) else None
        if key is not None:
            with self._answers_lock:
                hit = self._answers.get(key)
                if hit is not None and hit[0] is engine:
                    self._answers.move_to_end(key)
                    return key, hit[1]
        return key, None

    def build_encoder(self):
        """An encoder of the index's model to embed new passages: the engine's own, unless that one is
        for questions only (`query_only`: the ONNX export), then sentence-transformers, loaded on the
        first add and kept."""
        if self._build_encoder is None:
            from index.embed import Encoder

            current = self.engine.encoder
            self._build_encoder = Encoder(self.engine.index.model) if getattr(current, "query_only", False) else current
        return self._build_encoder

    def add(self, *, path: str | Path | None = None, text: str | None = None, company: str | None = None,
            policy_id: str | None = None):
        """Add one policy file (`path`) or pasted `text` to the served index, then serve the new
        index. Raises the library's errors (PolicyQAError) with the index untouched."""
        from index.library import add_file, add_text

        with self._lock:
            encoder = self.build_encoder()
            # origin "page": the page adds new policies and replaces only those the page added.
            if path is not None:
                report = add_file(self.index_dir, path, policy_id=policy_id, company=company, encoder=encoder,
                                  wait=self.wait, origin="page")
            else:
                report = add_text(self.index_dir, text, company=company, policy_id=policy_id, encoder=encoder,
                                  wait=self.wait, origin="page")
            served = self.engine.index.policies
            # Re-read also when nothing changed but the policy is not served (added by `policyqa add` meanwhile).
            if report.changed or any(c.id not in served for c in report.changes):
                self.reload()
        return report

    def reload(self) -> None:
        old = self.engine
        self.engine = Engine(read_index(self.index_dir), old.encoder, old.settings)
        with self._answers_lock:
            self._answers.clear()  # answers of the old version must not be served for the new one

    def current(self) -> Engine:
        """The engine to answer with. When the index's live version is no longer the one served (a
        `policyqa add` or `remove` from the shell), it is read first, so it is served without a
        restart; one that cannot be read is logged once and the version in memory goes on serving."""
        try:
            live = live_version(self.index_dir)  # one small file read per question
        except IndexLoadError:  # CURRENT damaged or lost meanwhile: `policyqa index repair` fixes it
            live = None
        if live is None or live == self.engine.index.path or live == self._unreadable:
            return self.engine
        with self._lock:
            try:
                changed = live_version(self.index_dir) != self.engine.index.path
            except IndexLoadError:
                changed = False
            if changed:
                try:
                    self.reload()
                except IndexLoadError as e:
                    self._unreadable = live
                    log.error("serving the index in memory; its new version cannot be read: %s", e)
            return self.engine
