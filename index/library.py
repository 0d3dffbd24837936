"""Add, replace, remove and list the policies of an index directory, one writer at a time.

    add_files(index_dir, paths, ...)   .txt/.md/.html/.htm/.pdf files or directories of them
    add_text(index_dir, text, ...)     text already in hand (e.g. pasted or uploaded on the web page)
    remove(index_dir, ids)             drop policies
    list_policies(index_dir)           the manifest's policy entries

Each change writes a complete new index version with `index.build.build_index` (atomic swap of
CURRENT; embeddings reused by content hash, so only changed policies' passages are embedded)
under an exclusive `fcntl.flock` on DIR/.lock: a second writer waits up to `wait` seconds and then
gets IndexBusyError. Every check (readable file, metadata, id conflicts) runs before the lock is
taken and before anything is written: a refused add leaves the index directory byte-for-byte as it
was. A policy is one current version: re-adding changed text replaces it, unchanged text is a no-op.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable

from index.corpus import CorpusError, checksum, load_corpus
from index.errors import PolicyQAError
from index.ingest import (
    MAX_BYTES, Document, IngestError, Metadata, check_date, check_id, clean_text, collect, infer_metadata,
    normalise_name, read_document, visible,
)
from index.store import (
    IndexLoadError, entry_origin, live_version, older_manifest, read_index, read_manifest, stored_policies,
)
from index.types import Policy

LOCK_NAME = ".lock"
DEFAULT_WAIT = 300.0  # seconds a second writer waits for the first
Log = Callable[[str], None]


class LibraryError(CorpusError):
    """An add/remove that cannot be done as asked; the one-line message says what to do instead."""


class IndexBusyError(PolicyQAError):
    """Another process holds the index's lock for longer than we were willing to wait."""


@dataclass
class PolicyChange:
    id: str
    company: str
    action: str  # "added" | "replaced" | "updated" (metadata only) | "unchanged" | "removed"
    source: str = ""
    date: str | None = None
    aliases: tuple[str, ...] = ()
    passages: int = 0
    sha256: str = ""
    inferred: dict[str, str] = field(default_factory=dict)  # field -> where it was inferred from

    def to_dict(self) -> dict:
        d = asdict(self)
        d["aliases"] = list(self.aliases)
        return d


@dataclass
class AddReport:
    """What an add/remove did. `changed` is False when nothing was written."""

    index: str
    changes: list[PolicyChange]
    policies: int = 0  # in the index afterwards
    passages: int = 0
    embedded: int = 0  # texts embedded now (passages, new headings, sentences)
    embedded_passages: int = 0
    embedded_headings: int = 0
    embedded_sentences: int = 0
    reused: int = 0  # texts whose embeddings the index already held
    version: str = ""  # the version directory now live ("" if nothing was written)
    seconds: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # files in directories that are not policies

    @property
    def changed(self) -> bool:
        return any(c.action != "unchanged" for c in self.changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["changes"] = [c.to_dict() for c in self.changes]
        d["changed"] = self.changed
        d["seconds"] = {k: round(v, 3) for k, v in self.seconds.items()}
        return d


# ---------------------------------------------------------------- lock


def _holder(lock_path: Path) -> str:
    try:
        pid, _, since = lock_path.read_text(encoding="utf-8").strip().partition(" ")
        return f"pid {pid}, since {since.split()[-1] if since else '?'}" if pid else "another process"
    except OSError:
        return "another process"


@contextmanager
def index_lock(directory: Path | str, wait: float = DEFAULT_WAIT, log: Log | None = None):
    """Exclusive lock on DIR/.lock (fcntl.flock: released by the kernel if the holder dies).
    Waits up to `wait` seconds, then raises IndexBusyError."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    try:  # never through a symbolic link: the lock file is truncated and written below
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        raise LibraryError(f"cannot open the index lock file {path} ({e.strerror}); "
                           "it must be a regular file (delete it if it is a link)") from None
    try:
        deadline = time.monotonic() + max(0.0, wait)
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise IndexBusyError(
                        f"the index at {directory} is busy: another add/remove ({_holder(path)}) still holds {path} "
                        f"after {wait:g}s", hint="try again when it has finished, or wait longer with --wait SECONDS",
                        page=f"the index is busy: another add is still running after {wait:g}s; try again when it has finished",
                    ) from None
                if not announced and log:
                    log(f"The index at {directory} is busy ({_holder(path)}); waiting up to {wait:g}s…")
                    announced = True
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()} {datetime.now().isoformat(timespec='seconds')}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


# ---------------------------------------------------------------- helpers

_ENCODERS: dict[str, object] = {}


def get_encoder(model: str):
    """One loaded encoder per model per process (loading costs seconds)."""
    from index.embed import Encoder

    if model not in _ENCODERS:
        _ENCODERS[model] = Encoder(model)
    return _ENCODERS[model]


@dataclass
class _Incoming:
    policy: Policy
    meta: Metadata


def upgrade_index(directory: Path | str, encoder=None, wait: float = DEFAULT_WAIT, log: Log | None = None) -> dict | None:
    """Rebuild an index written in an earlier format from the policies it holds (added ones too), with
    its model and chunking; None if it needs no upgrade (or another process did it meanwhile)."""
    from index.build import build_index
    from index.chunk import ChunkSettings

    directory = Path(directory)
    with index_lock(directory, wait=wait, log=log):
        manifest = older_manifest(directory)
        if manifest is None:
            return None
        policies = stored_policies(directory)
        if log:
            log(f"Upgrading the index at {directory} from format v{manifest['format_version']} "
                f"(rebuilding its {len(policies)} policies, once)…")
        model = manifest["model"]["name"]
        encoder = encoder if encoder is not None and encoder.name == model else get_encoder(model)
        return build_index(policies, directory, encoder,
                           ChunkSettings(**manifest.get("chunking", {})), progress=log is not None)


def _rebuild_in_place(directory: Path, why: Callable[[], str | None], say: Callable[[str, int], str], model: str | None = None,
                      encoder=None, wait: float = DEFAULT_WAIT, log: Log | None = None, **build) -> dict | None:
    """Rebuild the index in `directory` from the policies it holds (added ones too), with its chunking and `model`
    (default: its own), when `why()` names a reason, checked again under the index lock; the shipped policies take
    the shipped manifest's new aliases while their text is unchanged. Every vector of unchanged text is reused.
    `say(reason, policies)` is the line logged. None when there is nothing to do (or another process did it)."""
    from index.build import build_index
    from index.chunk import ChunkSettings

    if why() is None:
        return None
    with index_lock(directory, wait=wait, log=log):
        reason = why()
        if reason is None:
            return None  # another process did it meanwhile
        manifest = read_manifest(directory)
        policies = with_shipped_aliases(stored_policies(directory))
        if log:
            log(say(reason, len(policies)))
        model = model or manifest["model"]["name"]
        encoder = encoder if encoder is not None and encoder.name == model else get_encoder(model)
        return build_index(policies, directory, encoder, ChunkSettings(**manifest.get("chunking", {})),
                           progress=log is not None, **build)


def add_multilingual(directory: Path | str, encoder=None, wait: float = DEFAULT_WAIT, log: Log | None = None) -> dict | None:
    """Give an index built before PolicyQA read questions in Japanese its multilingual vectors, once:
    rebuilt from the policies it holds (added ones too) with its model and chunking, every dense
    vector reused; the shipped policies also take the shipped manifest's new aliases (ジャパンワーク…)
    while their text is unchanged. None when it has them already, or the multilingual encoder is off
    or not installed (index.multilingual.default_encoder says why)."""
    from index.multilingual import default_encoder

    directory = Path(directory)

    def lacking() -> str | None:
        return "no multilingual vectors" if live_version(directory) is not None and not read_manifest(directory).get("multilingual") else None

    if lacking() is None:
        return None
    multilingual = default_encoder()
    if multilingual is None:
        return None
    return _rebuild_in_place(
        directory, lacking, lambda _, n: f"Adding multilingual vectors to the index at {directory} so it reads questions in "
                                         f"Japanese ({n} policies, once)…",
        encoder=encoder, wait=wait, log=log, multilingual=multilingual)


def with_shipped_aliases(policies: list[Policy]) -> list[Policy]:
    """`policies` with the shipped manifest's aliases added to each shipped policy whose text is unchanged
    (a later release may know more names for a site: ジャパンワーク, "Gaijin Pool")."""
    from dataclasses import replace

    shipped = {p.id: p for p in load_corpus()}
    out = []
    for p in policies:
        new = shipped.get(p.id)
        if new is not None and new.text == p.text:
            p = replace(p, aliases=tuple(dict.fromkeys(p.aliases + new.aliases)))
        out.append(p)
    return out


def missing_shipped_aliases(directory: Path | str) -> dict[str, list[str]]:
    """{policy id: the shipped manifest's aliases it lacks} for each shipped policy of the index in `directory`
    whose text is the shipped text; {} when there is no index. Reads the manifests and shipped texts only (1-2 ms a start)."""
    directory = Path(directory)
    try:
        if live_version(directory) is None:
            return {}
        entries = {e["id"]: e for e in read_manifest(directory)["policies"]}
    except (IndexLoadError, KeyError, TypeError):
        return {}  # reading the index says what is wrong with it
    out = {}
    for p in load_corpus():
        entry = entries.get(p.id)
        if entry is not None and entry.get("sha256") == checksum(p.text):
            missing = [a for a in p.aliases if a not in (entry.get("aliases") or ())]
            if missing:
                out[p.id] = missing
    return out


def follow_shipped_aliases(directory: Path | str, wait: float = DEFAULT_WAIT, log: Log | None = None) -> dict | None:
    """Give the default index the names for the shipped sites that this release's manifest adds ("Gaijin Pool"),
    so a question using one is answered from its site without a rebuild by hand: rebuilt once, every vector reused.
    None when it has them all."""
    directory = Path(directory)

    def why() -> str | None:
        missing = missing_shipped_aliases(directory)
        return ", ".join(f"{a!r} for {pid}" for pid, names in sorted(missing.items()) for a in names) or None

    return _rebuild_in_place(directory, why, lambda names, n: f"Adding this release's site names ({names}) to the index at "
                                                              f"{directory} ({n} policies, once)…", wait=wait, log=log)


def superseded_model(directory: Path | str, model: str) -> str | None:
    """The model of the index in `directory` when it is an earlier release's shipped trained encoder
    (policyqa/minilm-policy-v4 when `model`, the shipped default, is v5), else None: no index there, the
    index already uses `model`, or it was built with a model of the user's choosing (`--model`)."""
    from index.trained import is_trained

    directory = Path(directory)
    try:
        if live_version(directory) is None:
            return None
        built = read_manifest(directory)["model"]["name"]
    except (IndexLoadError, KeyError, TypeError):
        return None  # reading the index says what is wrong with it
    return built if built != model and built.startswith("policyqa/") and is_trained(built) else None


def follow_shipped_model(directory: Path | str, model: str, wait: float = DEFAULT_WAIT, log: Log | None = None) -> dict | None:
    """Rebuild the default index with `model`, the shipped default encoder, when an earlier release's shipped
    encoder built it (superseded_model): after an upgrade it answers as a fresh install does. Every policy it
    holds is kept (added ones too) with its chunking; unchanged passages keep their multilingual vectors, and
    shipped policies take the shipped manifest's new aliases. None when there is nothing to do."""
    directory = Path(directory)
    return _rebuild_in_place(
        directory, lambda: superseded_model(directory, model),
        lambda old, n: f"Re-encoding the index at {directory} with {model}, this release's encoder (it was built with "
                       f"{old}; {n} policies, once)…",
        model=model, wait=wait, log=log)


def check_rebuild(directory: Path | str, policies: list[Policy], replace: bool = False) -> None:
    """Before `policyqa index build --out DIR` writes over DIR: refuse (unless `replace`) when that
    would lose policies added to the index that the corpus lacks, or index versions whose CURRENT
    was lost (`policyqa index repair` recovers those). A damaged index is rebuilt: nothing there loads."""
    from index.store import newest_complete_version

    directory = Path(directory)
    if replace:
        return
    try:
        live = live_version(directory)
    except IndexLoadError:
        if newest_complete_version(directory) is not None:
            raise
        return
    try:
        entries = read_manifest(directory)["policies"] if live is not None else []
    except IndexLoadError:
        return
    dropped = [e["id"] for e in entries if e["id"] not in {p.id for p in policies}]
    if dropped:
        raise LibraryError(
            f"the index at {directory} holds {len(dropped)} {_plural(len(dropped), 'policy', 'policies')} the corpus lacks "
            f"({', '.join(dropped[:5])}{', …' if len(dropped) > 5 else ''}), which a build from it would drop; add them to "
            "the corpus, `policyqa remove` them first, or build with --replace to drop them"
        )


def repair_index(directory: Path | str, wait: float = DEFAULT_WAIT, log: Log | None = None) -> str:
    """Point CURRENT at the newest version folder that loads completely, when CURRENT is missing,
    unreadable or names a broken version. Nothing is deleted. Returns what was done, in words."""
    from index.store import newest_complete_version, point_current_at, version_dirs

    directory = Path(directory)
    if not directory.is_dir():
        raise IndexLoadError(f"no index directory at {directory}; give the index directory with --index")
    with index_lock(directory, wait=wait, log=log):
        try:
            live = live_version(directory)
            if live is not None:
                read_index(directory)
                return f"The index at {directory} is fine: CURRENT names {live.name}, which loads; nothing to repair."
        except IndexLoadError:
            pass
        if not version_dirs(directory):
            raise LibraryError(f"{directory} holds no index version folders (v-*) to repair from; "
                               f"build one with `policyqa index build --out {directory}`")
        version = newest_complete_version(directory)
        if version is None:
            raise LibraryError(f"none of the {len(version_dirs(directory))} version folders in {directory} is complete; "
                               f"rebuild with `policyqa index build --out {directory} --replace` (then re-add your own policies)")
        point_current_at(directory, version)
        count = len(read_manifest(directory)["policies"])
        return f"Repaired the index at {directory}: CURRENT now names {version.name} ({count} policies)."


def _entries(directory: Path) -> dict[str, dict] | None:
    """The manifest's policy entries by id, or None when there is no index yet."""
    if live_version(directory) is None:
        return None
    return {e["id"]: e for e in read_manifest(directory)["policies"]}


def _names(entry: dict) -> set[str]:
    names = {entry.get("company") or "", entry.get("service") or "", *(entry.get("aliases") or ())}
    return {normalise_name(n) for n in names if n and normalise_name(n)}


def _plan(directory: Path, entries: dict[str, dict], incoming: list[_Incoming]) -> tuple[list[PolicyChange], list[Policy]]:
    """What each incoming policy does to the index: (changes, policies to write). Raises
    LibraryError for an id that already belongs to a different company."""
    changes, writes = [], []
    for item in incoming:
        p, meta = item.policy, item.meta
        old = entries.get(p.id)
        digest = checksum(p.text)
        if p.origin == "page":
            _check_page_may_write(p, old, entries)
        if old is None:
            changes.append(PolicyChange(p.id, p.company, "added", p.source, p.date, p.aliases, 0, digest, meta.inferred))
            writes.append(p)
            continue
        given = {k for k, v in meta.origin.items() if v == "given"}
        same_text = old.get("sha256") == digest
        if normalise_name(p.company) not in _names(old) and not (same_text and "company" not in given):
            inferred = f"from the {meta.origin.get('company', 'text')}"
            clash = f"policy id {p.id!r} already belongs to {old['company']!r}, but {p.source or 'this text'} is {p.company!r}"
            raise LibraryError(
                f"{clash} ({'given with --company' if 'company' in given else inferred})",
                hint=f"add it beside it with --id {p.id}-2 (or another id), or replace {p.id!r} with --company {old['company']!r}",
                page=f"{clash} ({'the Company given' if 'company' in given else inferred}); add it beside it with Id "
                     f"{p.id}-2 (or another id), or replace {p.id!r} with Company {old['company']!r}",
            )
        # Names not given now stay as they were; the date is the new text's (given, inferred or unknown).
        merged = Policy(
            id=p.id, text=p.text, source=p.source or old.get("source", ""),
            company=p.company if "company" in given else old["company"],
            service=p.service or old.get("service", ""),
            aliases=p.aliases if "aliases" in given else tuple(old.get("aliases") or ()),
            date=p.date if ("date" in given or not same_text) else old.get("date"),
            origin=p.origin,
        )
        inferred = {k: v for k, v in meta.inferred.items() if k == "date" and not same_text}
        if same_text:
            meta_same = (merged.company, merged.aliases, merged.date) == (
                old["company"], tuple(old.get("aliases") or ()), old.get("date"))
            action = "unchanged" if meta_same else "updated"
        else:
            action = "replaced"
        changes.append(PolicyChange(p.id, merged.company, action, merged.source, merged.date, merged.aliases,
                                    old.get("passages", 0), digest, inferred))
        if action != "unchanged":
            writes.append(merged)
    return changes, writes


def _check_page_may_write(p: Policy, old: dict | None, entries: dict[str, dict]) -> None:
    """The web page changes only what the page added: a shipped policy, or one added from the command
    line, is read-only there, and a page policy may not take the name of one (questions naming
    "JapanWork" would then be answered from a visitor's text)."""
    if old is not None and entry_origin(old) != "page":
        raise LibraryError(
            f"the id {p.id!r} belongs to {old['company']!r}, which this page cannot replace (it was not added here); "
            f"add your policy under another Id"
        )
    # Questions are routed by every name of a policy, its id included ("japan-work" reads as "JapanWork"),
    # longest name first: a new name equal to, or containing, a protected one would capture its questions.
    mine = {normalise_name(n) for n in (p.company, *p.aliases, p.service, p.id) if n and normalise_name(n)}
    for entry in entries.values():
        if entry["id"] == p.id or entry_origin(entry) == "page":
            continue
        theirs = _names(entry) | {normalise_name(entry["id"])}
        if any(a == b or (len(b) >= 5 and b in a) for a in mine for b in theirs):
            raise LibraryError(
                f"the name {p.company!r} (id {p.id!r}) is taken by {entry['company']!r} ({entry['id']!r}), which this "
                "page cannot change; a policy added here needs a company name and id of its own"
            )


def _incoming_from(doc: Document, policy_id: str | None, company: str | None, aliases: Iterable[str],
                   date: str | None, service: str = "", origin: str = "cli") -> _Incoming:
    meta = infer_metadata(doc, policy_id=policy_id, company=company, aliases=tuple(aliases), date=date)
    if meta.origin.get("id") != "given":
        meta.id = meta.id[:80].rstrip("-") or "policy"
    check_id(meta.id)
    policy = Policy(id=meta.id, company=meta.company, text=doc.text, service=service, aliases=meta.aliases,
                    date=meta.date, source=doc.source, origin=origin)
    from index.build import passages_of
    from index.chunk import ChunkSettings

    if not passages_of(policy, ChunkSettings()):  # e.g. a heading alone: a policy no answer could ever quote
        raise IngestError(f"{doc.source or 'the text'} has no clause text to quote (only {len(doc.text.split())} words); "
                          "add the whole policy")
    return _Incoming(policy, meta)


def _check_args(policy_id, company, aliases, date) -> tuple[str | None, str | None, tuple[str, ...], str | None]:
    for what, value in (("id", policy_id), ("company", company), ("date", date), *(("alias", a) for a in aliases)):
        if value is not None and not isinstance(value, str):
            raise IngestError(f"the {what} must be text")
        if value and any("\ud800" <= ch <= "\udfff" for ch in value):
            raise IngestError(f"the {what} holds bytes that are not UTF-8 text; type it again")
    if policy_id is not None:
        check_id(policy_id)
    if company is not None:
        company = " ".join(visible(company).split())
        if not company or len(company) > 200:
            raise IngestError("the company name must be 1-200 characters", hint='e.g. --company "Acme Jobs, Inc."',
                              page="the company name must be 1-200 characters")
    aliases = tuple(dict.fromkeys(" ".join(visible(a).split()) for a in aliases if visible(a).strip()))
    if date:
        check_date(date)
    return policy_id, company or None, aliases, date or None


# ---------------------------------------------------------------- the operations


def add_files(
    index_dir: Path | str,
    paths: list[Path | str],
    *,
    policy_id: str | None = None,
    company: str | None = None,
    aliases: Iterable[str] = (),
    date: str | None = None,
    encoder=None,
    model: str | None = None,
    wait: float = DEFAULT_WAIT,
    progress: bool = False,
    seed_corpus: Path | None = None,
    log: Log | None = None,
    origin: str = "cli",
) -> AddReport:
    """Add (or replace) the policies in `paths` (files or directories of .txt/.md/.html/.htm/.pdf).
    Names not given are inferred and listed in each change's `inferred`. `seed_corpus`: build the
    index from this corpus first if `index_dir` holds none yet (the default index). `origin`: who
    adds ("cli" or "page"; the page may replace only policies the page added)."""
    policy_id, company, aliases, date = _check_args(policy_id, company, aliases, date)
    files, skipped = collect(paths)
    if policy_id and len(files) > 1:
        raise IngestError(f"--id names one policy but {len(files)} files were given; add them one at a time")
    iterator = files
    if progress and len(files) > 20:
        from tqdm import tqdm

        iterator = tqdm(files, desc="Reading", unit="file", dynamic_ncols=True)
    elif log and len(files) > 1:
        log(f"Reading {len(files)} files…")
    incoming = [_incoming_from(read_document(f), policy_id, company, aliases, date, origin=origin) for f in iterator]
    report = _apply(Path(index_dir), incoming, [], encoder, model, wait, progress, seed_corpus, log)
    report.skipped = skipped
    return report


def add_file(index_dir: Path | str, path: Path | str, **kwargs) -> AddReport:
    """`add_files` for one file (e.g. an upload on the web page)."""
    return add_files(index_dir, [path], **kwargs)


def add_text(
    index_dir: Path | str,
    text: str,
    company: str | None = None,
    policy_id: str | None = None,
    aliases: Iterable[str] = (),
    date: str | None = None,
    encoder=None,
    *,
    source: str = "",
    service: str = "",
    wait: float = 30.0,
    progress: bool = False,
    log: Log | None = None,
    origin: str = "cli",
) -> AddReport:
    """Add (or replace) one policy from its text. `company`, `policy_id` (slug of the company),
    `aliases` and `date` are inferred from the text when not given. Raises CorpusError (IngestError,
    LibraryError, IndexBusyError) with a one-line message; the index is then unchanged."""
    if not isinstance(text, str):
        raise IngestError("the policy text must be text")
    if any("\ud800" <= ch <= "\udfff" for ch in text):  # a lone surrogate (JSON "\ud800") cannot be stored
        raise IngestError("the policy text holds characters that are not valid text (lone surrogates); paste it again")
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise IngestError(f"the text is over the {MAX_BYTES // 2**20} MB limit; add only the privacy policy")
    text = clean_text(text)
    if not text.strip():
        raise IngestError("the policy text is empty; paste the policy text and try again")
    policy_id, company, aliases, date = _check_args(policy_id, company, aliases, date)
    # Without a file name the id comes from the company's name.
    doc = Document(Path(source).name if source else "", "text", text)
    item = _incoming_from(doc, policy_id, company, aliases, date, service=" ".join(service.split()), origin=origin)
    return _apply(Path(index_dir), [item], [], encoder, None, wait, progress, None, log)


def remove(index_dir: Path | str, policy_ids: list[str] | str, *, encoder=None, model: str | None = None,
           wait: float = DEFAULT_WAIT, log: Log | None = None, origin: str = "cli") -> AddReport:
    """Remove policies by id. Unknown ids (and, for `origin="page"`, policies the page did not add)
    raise LibraryError before anything is touched."""
    ids = [policy_ids] if isinstance(policy_ids, str) else list(dict.fromkeys(policy_ids))
    return _apply(Path(index_dir), [], ids, encoder, model, wait, False, None, log, remover=origin)


def list_policies(index_dir: Path | str) -> list[dict]:
    """The policies in the index: id, company, service, aliases, date, source, sha256, passages, added,
    origin ("shipped", "cli" or "page": who added it)."""
    return [{**e, "origin": entry_origin(e)} for e in read_manifest(Path(index_dir))["policies"]]


def _apply(directory: Path, incoming: list[_Incoming], removals: list[str], encoder, model, wait, progress,
           seed_corpus, log, remover: str = "cli") -> AddReport:
    ids = [i.policy.id for i in incoming]
    for pid in dict.fromkeys(ids):
        if ids.count(pid) > 1:
            sources = [i.policy.source for i in incoming if i.policy.id == pid]
            raise IngestError(f"{' and '.join(sources[:3])} all get the id {pid!r}; add them one at a time with --id")

    def check(entries: dict[str, dict] | None) -> tuple[list[PolicyChange], list[Policy]]:
        entries = entries or {}
        missing = [pid for pid in removals if pid not in entries]
        if missing:
            raise LibraryError(
                f"no policy {missing[0]!r} in the index at {directory}; `policyqa list --index {directory}` shows the ids"
            )
        kept = [pid for pid in removals if remover == "page" and entry_origin(entries[pid]) != "page"]
        if kept:
            raise LibraryError(f"{entries[kept[0]]['company']!r} ({kept[0]!r}) was not added on this page, so it cannot be removed here")
        changes, writes = _plan(directory, entries, incoming)
        changes += [PolicyChange(pid, entries[pid]["company"], "removed", entries[pid].get("source", ""),
                                 entries[pid].get("date"), tuple(entries[pid].get("aliases") or ()),
                                 entries[pid].get("passages", 0), entries[pid].get("sha256", "")) for pid in removals]
        return changes, writes

    if older_manifest(directory) is not None:  # content-preserving, and `ask` would do it anyway
        upgrade_index(directory, encoder, wait=wait, log=log)
    # Everything that can be refused is refused here, before the lock file or any version is written.
    entries = _entries(directory)
    if entries is None and removals:
        raise IndexLoadError(f"no index at {directory}; add policies first with `policyqa add FILE --index {directory}`")
    changes, _ = check(entries)
    report = AddReport(str(directory), changes)
    if not any(c.action != "unchanged" for c in changes) and entries is not None:
        _fill_totals(report, entries.values())
        return report
    index_model = read_manifest(directory)["model"]["name"] if entries is not None else None
    if model and index_model and model != index_model:
        raise LibraryError(f"the index at {directory} was built with {index_model!r}; add with --model {index_model!r} (or leave --model out)")
    if encoder is not None and index_model and encoder.name != index_model:
        raise LibraryError(f"the index at {directory} was built with {index_model!r}, not {encoder.name!r}; use an encoder of {index_model!r}")

    t0 = time.perf_counter()
    # The model is loaded before the lock is taken (a second writer loads its model while the first
    # writes), and only when there is new text to embed: a removal never loads it.
    if encoder is None:
        encoder = get_encoder(model or index_model or _default_model())
    if any(c.action in ("added", "replaced") for c in changes) or entries is None:
        encoder.load()
    t_model = time.perf_counter() - t0
    t0 = time.perf_counter()
    with index_lock(directory, wait=wait, log=log):
        t_lock = time.perf_counter()
        from index.build import build_index

        base: list[Policy] = []
        previous = None
        if live_version(directory) is not None:
            previous = read_index(directory)
            base = list(previous.policies.values())
        elif seed_corpus is not None:
            if log:
                log(f"Building the default index at {directory} from the shipped corpus first…")
            base = load_corpus(seed_corpus)
        t_read = time.perf_counter() - t_lock
        # Re-check under the lock: another writer may have changed the index while we waited.
        current = {e["id"]: e for e in previous.manifest["policies"]} if previous is not None else {
            p.id: {"id": p.id, "company": p.company, "service": p.service, "aliases": list(p.aliases), "date": p.date,
                   "source": p.source, "sha256": "", "passages": 0, "origin": p.origin or "shipped"} for p in base}
        changes, writes = check(current)
        report.changes = changes
        if not writes and not removals and previous is not None:
            _fill_totals(report, current.values())
            return report
        by_id = {p.id: p for p in base}
        for p in writes:
            by_id[p.id] = p  # replaced in place, new ones appended
        for pid in removals:
            by_id.pop(pid, None)
        if previous is not None and previous.model != encoder.name:  # replaced meanwhile by an index of another model
            raise LibraryError(f"the index at {directory} was built with {previous.model!r}; add with --model {previous.model!r}")
        if log and progress:
            n = sum(c.action in ("added", "replaced") for c in changes)
            log(f"Indexing {len(by_id)} {_plural(len(by_id), 'policy', 'policies')} ({n} new or changed)…")
        built = build_index(list(by_id.values()), directory, encoder, progress=progress, previous=previous, reuse_parsed=True)
        manifest = read_manifest(directory)
    after = {e["id"]: e for e in manifest["policies"]}
    for c in report.changes:
        if c.id in after:
            c.passages = after[c.id]["passages"]
    report.version = built["path"]
    report.embedded, report.reused = built["embedded"], built["reused"]
    report.embedded_passages, report.embedded_headings = built["embedded_passages"], built["embedded_headings"]
    report.embedded_sentences = built["embedded_sentences"]
    report.seconds = {"load_model": t_model, "wait_lock": t_lock - t0, "read_index": t_read, **built["seconds"],
                      "total": time.perf_counter() - t0 + t_model}
    _fill_totals(report, after.values())
    return report


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def _default_model() -> str:
    from index.embed import DEFAULT_MODEL

    return DEFAULT_MODEL


def _fill_totals(report: AddReport, entries: Iterable[dict]) -> None:
    entries = list(entries)
    report.policies = len(entries)
    report.passages = sum(e.get("passages", 0) for e in entries)


# ---------------------------------------------------------------- text for people

_ORIGIN_WORDS = {"page site name": "the page's site name", "page title": "the page title", "PDF title": "the PDF title",
                 "policy text": "the policy text", "file name": "the file name", "company name": "the company name"}


def describe(report: AddReport, limit: int = 20, for_page: bool = False) -> list[str]:
    """Lines for a person: one per policy (with what was inferred), then the totals. `for_page`: for a
    visitor of the web page, who sees no server paths and corrects names in the form's fields."""
    lines: list[str] = []
    where = "the index" if for_page else f"the index at {report.index}"
    width = min(max((len(c.id) for c in report.changes), default=8), 40)
    shown = report.changes if len(report.changes) <= limit else report.changes[: limit // 2]
    for c in shown:
        what = f"{c.action:<9}  {c.id:<{width}}  {c.company}"
        extra = []
        if c.action != "removed":
            extra.append(f"date {c.date or 'unknown'}")
        if c.passages:
            extra.append(f"{c.passages} {_plural(c.passages, 'passage', 'passages')}")
        if c.source:
            extra.append(c.source)
        line = f"{what}  ({', '.join(extra)})" if extra else what
        if c.action == "unchanged":
            line += " — same text as in the index; nothing to do"
        lines.append(line)
        if c.inferred and len(report.changes) <= limit:
            parts = []
            for key in ("id", "company", "aliases", "date"):
                if key in c.inferred:
                    value = ", ".join(c.aliases) if key == "aliases" else getattr(c, key)
                    parts.append(f"{key} {value!r} from {_ORIGIN_WORDS.get(c.inferred[key], c.inferred[key])}")
            lines.append(" " * 11 + "inferred: " + "; ".join(parts))
    if len(shown) < len(report.changes):
        counts: dict[str, int] = {}
        for c in report.changes:
            counts[c.action] = counts.get(c.action, 0) + 1
        lines.append(f"… and {len(report.changes) - len(shown)} more ({', '.join(f'{n} {a}' for a, n in counts.items())} in all); "
                     "`policyqa list` shows every policy")
    for note in report.skipped[:5]:
        lines.append(f"skipped    {note}")
    if len(report.skipped) > 5:
        lines.append(f"skipped    … and {len(report.skipped) - 5} more files that are not policies")
    if report.changed:
        s = report.seconds
        lines.append(
            f"{'Index' if for_page else f'Index {report.index}'}: {report.policies} {_plural(report.policies, 'policy', 'policies')}, {report.passages} passages. Embedded {report.embedded} new texts "
            f"({report.embedded_passages} passages + {report.embedded_headings} headings + {report.embedded_sentences} sentences), reused {report.reused}; "
            f"{s.get('total', 0):.1f}s (embed {s.get('embed', 0):.1f}s, write {s.get('write', 0):.1f}s)."
        )
        if any(c.inferred for c in report.changes):
            fix = "add it again with the Company and Id filled in" if for_page else "add the file again with --id/--company/--alias/--date"
            lines.append(f"Check the inferred names above; to correct one, {fix}.")
    else:
        lines.append(f"Nothing to do: {where} already holds this text ({report.policies} {_plural(report.policies, 'policy', 'policies')}).")
    return lines


def print_report(report: AddReport, stream=None) -> None:
    for line in describe(report):
        print(line, file=stream or sys.stdout)


def dumps(report: AddReport) -> str:
    return json.dumps(report.to_dict(), ensure_ascii=False)
