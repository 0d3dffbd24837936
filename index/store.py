"""The index directory: one format, written atomically, read with checks.

    DIR/CURRENT          name of the live version directory (replaced atomically with os.replace)
    DIR/v-<stamp>/       manifest.json, passages.jsonl, embeddings.npy, dense.faiss,
                         sentences.npz, headings.npz, lexical.npz, lexical_vocab.json, policies/<id>.txt,
                         multilingual.npz (the multilingual encoder's vectors, index.multilingual),
                         query_encoder/ (ONNX query encoder, hard links to one export per model)

A build writes a new version directory, fsyncs it, then swaps CURRENT: a crash at any point leaves
CURRENT naming a complete version, the old or the new one.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse

from index.corpus import checksum
from index.errors import IndexLoadError  # noqa: F401  (raised here; its home is index.errors)
from index.types import Passage, Policy

FORMAT = "policyqa-index"
FORMAT_VERSION = 2  # 2: headings.npz (clause heading vectors)
CURRENT = "CURRENT"
QUERY_ENCODER = "query_encoder"
REBUILD_HINT = "rebuild it with `policyqa index build --out {dir}`"


REPAIR_HINT = "`policyqa index repair --index {dir}` points CURRENT at the newest complete version (nothing is deleted)"


@dataclass
class StoredIndex:
    """Everything a reader needs, as plain arrays; rows of `embeddings` follow `passages`."""

    path: Path
    manifest: dict
    policies: dict[str, Policy]
    passages: list[Passage]
    embeddings: np.ndarray  # (n, d) float32, L2-normalised
    dense: object  # faiss.Index over `embeddings`
    vocab: dict[str, int]
    bm25: sparse.csc_matrix
    sentence_passage: np.ndarray  # (m,) row of the passage each sentence belongs to
    sentence_spans: np.ndarray  # (m, 2) start/end offsets in the policy text
    sentence_embeddings: np.ndarray  # (m, d) float32
    passage_heading: np.ndarray  # (n,) row of the passage's heading in heading_embeddings, -1 for none
    heading_embeddings: np.ndarray  # (h, d) float32, one per distinct heading
    policy_rows: dict[str, np.ndarray] = field(default_factory=dict)  # policy id -> passage rows
    multilingual: object = None  # index.multilingual.MultilingualVectors, when the index was built with them

    @property
    def model(self) -> str:
        return self.manifest["model"]["name"]

    @property
    def query_encoder_dir(self) -> Path | None:
        """The version's exported ONNX query encoder (index.onnx_encoder), if it has a complete one."""
        entry = self.manifest.get("query_encoder")
        if not isinstance(entry, dict) or entry.get("format") != "onnx":
            return None
        name, files = entry.get("path", QUERY_ENCODER), entry.get("files", ())
        if not isinstance(name, str) or not isinstance(files, (list, tuple)) or not all(isinstance(f, str) for f in files):
            return None
        directory = self.path / name
        # Like CURRENT, the manifest names files of its own version only: never a model from elsewhere.
        inside = self.path.resolve()
        if not all((directory / f).resolve().is_relative_to(inside) for f in files) or not directory.resolve().is_relative_to(inside):
            return None
        return directory if all((directory / f).is_file() for f in files) else None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def version_dirs(directory: Path) -> list[Path]:
    """The version folders (v-*) in an index directory, oldest name first (names start with the time)."""
    try:
        return sorted((p for p in Path(directory).iterdir() if p.name.startswith("v-") and p.is_dir() and not p.is_symlink()),
                      key=lambda p: p.name)
    except OSError:
        return []


def live_version(directory: Path) -> Path | None:
    """The version directory CURRENT names, or the directory itself if it holds a bare version;
    None when there is no index there yet. A CURRENT that cannot be read, or names anything but a
    version folder inside `directory`, raises IndexLoadError; so does a directory that holds version
    folders but no CURRENT (it is never taken for empty: an add would replace every policy)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise IndexLoadError(f"{directory} is a file, not an index directory; give --index a directory")
    pointer = directory / CURRENT
    repair = REPAIR_HINT.format(dir=directory)
    page = "the index on this server is damaged (its CURRENT file); its operator can restore it with `policyqa index repair`"
    if pointer.exists() or pointer.is_symlink():
        try:
            if pointer.is_symlink() or not pointer.is_file():
                raise ValueError("not a regular file")
            name = pointer.read_bytes().decode("utf-8").strip()
        except (OSError, ValueError) as e:
            raise IndexLoadError(f"{pointer} cannot be read ({e})", hint=repair, page=page) from None
        # CURRENT names a folder of this directory and nothing else: never a path out of it.
        if not re.fullmatch(r"v-[A-Za-z0-9._-]+", name) or name in (".", ".."):
            raise IndexLoadError(f"{pointer} does not name a version folder of {directory} (it holds {name[:80]!r})",
                                 hint=repair, page=page)
        version = directory / name
        if version.is_symlink() or not version.is_dir():
            raise IndexLoadError(f"{pointer} names {name!r}, which is not a version folder in {directory}", hint=repair, page=page)
        return version
    if (directory / "manifest.json").exists():
        return directory
    if version_dirs(directory):
        raise IndexLoadError(f"the index at {directory} has version folders but no CURRENT file naming the live one",
                             hint=repair, page=page)
    return None


def write_index(
    directory: Path,
    manifest: dict,
    policies: list[Policy],
    passages: list[Passage],
    embeddings: np.ndarray,
    dense_index,
    vocab: dict[str, int],
    bm25: sparse.csc_matrix,
    sentence_passage: np.ndarray,
    sentence_spans: np.ndarray,
    sentence_embeddings: np.ndarray,
    passage_heading: np.ndarray,
    heading_embeddings: np.ndarray,
    query_encoder: Path | None = None,
    multilingual=None,
) -> Path:
    """Write a complete new version beside the live one, then make it live. Returns its path.
    `query_encoder`: a directory of exported query-encoder files, linked into the version."""
    import faiss

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}-{time.monotonic_ns() % 10**6:06d}"
    version = directory / f"v-{stamp}"
    staging = directory / f".tmp-{stamp}"
    staging.mkdir()
    (staging / "policies").mkdir()
    for p in policies:
        _write_file(staging / "policies" / f"{p.id}.txt", p.text.encode("utf-8"))
    _write_file(staging / "passages.jsonl", "".join(json.dumps(x.to_dict(), ensure_ascii=False) + "\n" for x in passages).encode("utf-8"))
    with open(staging / "embeddings.npy", "wb") as f:
        np.save(f, np.ascontiguousarray(embeddings, dtype=np.float32))
        os.fsync(f.fileno())
    # Through bytes, not faiss' own file I/O: SWIG cannot pass a path that is not UTF-8 (an --index named so).
    _write_file(staging / "dense.faiss", faiss.serialize_index(dense_index).tobytes())
    with open(staging / "sentences.npz", "wb") as f:
        np.savez(f, passage=sentence_passage.astype(np.int32), spans=sentence_spans.astype(np.int32),
                 embeddings=sentence_embeddings.astype(np.float32))
        os.fsync(f.fileno())
    with open(staging / "headings.npz", "wb") as f:
        np.savez(f, passage=passage_heading.astype(np.int32), embeddings=heading_embeddings.astype(np.float32))
        os.fsync(f.fileno())
    with open(staging / "lexical.npz", "wb") as f:
        sparse.save_npz(f, bm25.tocsc(), compressed=False)
        os.fsync(f.fileno())
    _write_file(staging / "lexical_vocab.json", json.dumps(vocab, ensure_ascii=False).encode("utf-8"))
    if query_encoder is not None:
        from index.onnx_export import link_files

        link_files(Path(query_encoder), staging / QUERY_ENCODER)
        _fsync_dir(staging / QUERY_ENCODER)
    if multilingual is not None:
        from index import multilingual as ml

        ml.save(multilingual, staging / ml.FILE)
    # The manifest goes last: a version directory without one is never taken for complete.
    _write_file(staging / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"))
    _fsync_dir(staging / "policies")
    _fsync_dir(staging)
    os.rename(staging, version)
    point_current_at(directory, version)
    # Old versions and staging left by crashed builds go only after the swap.
    for stale in directory.iterdir():
        if stale.is_dir() and stale != version and stale.name.startswith((".tmp-", "v-")):
            shutil.rmtree(stale, ignore_errors=True)
    return version


def read_manifest(directory: Path, version: Path | None = None) -> dict:
    directory = Path(directory)
    version = version if version is not None else live_version(directory)
    hint = REBUILD_HINT.format(dir=directory)
    if version is None:
        raise IndexLoadError(f"no index at {directory}; {hint}")
    try:
        manifest = json.loads((version / "manifest.json").read_bytes().decode("utf-8"))
    except FileNotFoundError as e:
        raise IndexLoadError(f"index at {directory} is incomplete (no manifest.json); {hint}") from e
    except (OSError, ValueError, RecursionError) as e:  # RecursionError: "[[[[…" nested thousands deep
        raise IndexLoadError(f"index manifest at {version} is corrupt ({e}); {hint}") from e
    if not isinstance(manifest, dict):
        raise IndexLoadError(f"index manifest at {version} is corrupt (it holds a {type(manifest).__name__}, not an object); {hint}")
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise IndexLoadError(
            f"index at {directory} has format {manifest.get('format')!r} v{manifest.get('format_version')}, "
            f"this PolicyQA reads {FORMAT!r} v{FORMAT_VERSION}; {hint}"
        )
    problem = manifest_problem(manifest)
    if problem:
        raise IndexLoadError(f"index manifest at {version} is corrupt ({problem}); {hint}")
    return manifest


def manifest_problem(manifest: dict) -> str:
    """What is wrong with the shape of a manifest's model and policy entries, or "" (the readers index them)."""
    model = manifest.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str) or type(model.get("dimension")) is not int:
        return "no model name and dimension"
    policies = manifest.get("policies")
    if not isinstance(policies, list):
        return "no list of policies"
    for entry in policies:
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("id", "company", "sha256")):
            return "a policy entry without id, company and sha256"
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,79}", entry["id"]):
            return f"policy id {entry['id'][:80]!r} is not a policy id"
        if type(entry.get("passages", 0)) is not int:
            return f"policy {entry['id']!r} has no passage count"
        aliases = entry.get("aliases") or []
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            return f"policy {entry['id']!r} has aliases that are not a list of names"
        if any(entry.get(k) is not None and not isinstance(entry[k], str) for k in ("service", "date", "source", "added")):
            return f"policy {entry['id']!r} has a service, date, source or added time that is not text"
    return ""


ORIGINS = ("shipped", "cli", "page")


def entry_origin(entry: dict) -> str:
    """Who added a manifest's policy: "shipped", "cli" or "page". Entries written before origins were
    recorded count as the command line's: read-only from the page."""
    origin = entry.get("origin")
    return origin if origin in ORIGINS else "cli"


def _load_policies(version: Path, manifest: dict, hint: str) -> dict[str, Policy]:
    policies = {}
    for entry in manifest["policies"]:
        text = (version / "policies" / f"{entry['id']}.txt").read_text(encoding="utf-8")
        if checksum(text) != entry["sha256"]:
            raise IndexLoadError(f"policy text {entry['id']} in {version} does not match its checksum; {hint}")
        policies[entry["id"]] = Policy(
            id=entry["id"], company=entry["company"], text=text, service=entry.get("service", ""),
            aliases=tuple(entry.get("aliases", ())), date=entry.get("date"), source=entry.get("source", ""),
            origin=entry_origin(entry),
        )
    return policies


def stored_policies(directory: Path) -> list[Policy]:
    """The policies an index directory holds, read from any format version's manifest and policy
    texts (checksums verified): enough to rebuild it in the current format."""
    directory = Path(directory)
    version = live_version(directory)
    hint = REBUILD_HINT.format(dir=directory)
    try:
        manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
        return list(_load_policies(version, manifest, hint).values())
    except IndexLoadError:
        raise
    except Exception as e:
        raise IndexLoadError(f"cannot read the policies of the index at {directory} ({type(e).__name__}: {e}); {hint}") from e


def older_manifest(directory: Path) -> dict | None:
    """The manifest of a PolicyQA index in `directory` written in an earlier format version, else None."""
    try:
        version = live_version(Path(directory))
        manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    except Exception:  # no index, or a damaged one: not an upgrade case (reading it says what is wrong)
        return None
    if not isinstance(manifest, dict):
        return None
    found = manifest.get("format_version")
    return manifest if manifest.get("format") == FORMAT and isinstance(found, int) and found < FORMAT_VERSION else None


def read_index(directory: Path) -> StoredIndex:
    """Load and check an index; any missing, corrupt or inconsistent part raises IndexLoadError.
    A read that fails because a writer swapped CURRENT (and removed the old version) meanwhile is retried."""
    for attempt in range(3):
        before = live_version(Path(directory))
        try:
            return _read_index(directory)
        except IndexLoadError:
            if attempt == 2 or live_version(Path(directory)) == before:
                raise
    raise AssertionError("unreachable")


def _read_index(directory: Path, version: Path | None = None) -> StoredIndex:
    import faiss

    directory = Path(directory)
    version = version if version is not None else live_version(directory)
    manifest = read_manifest(directory, version)
    hint = REBUILD_HINT.format(dir=directory)
    try:
        # Split on "\n" only: JSON leaves U+2028, U+0085 and the like raw in a line, and str.splitlines()
        # would cut a passage quoting them in two (an index that could not be read after its add).
        lines = (version / "passages.jsonl").read_text(encoding="utf-8").split("\n")
        passages = [Passage.from_dict(json.loads(line)) for line in lines if line]
        embeddings = np.load(version / "embeddings.npy", allow_pickle=False)
        dense = faiss.deserialize_index(np.fromfile(version / "dense.faiss", dtype=np.uint8))
        with np.load(version / "sentences.npz", allow_pickle=False) as s:
            sentence_passage, sentence_spans, sentence_embeddings = s["passage"], s["spans"], s["embeddings"]
        with np.load(version / "headings.npz", allow_pickle=False) as h:
            passage_heading, heading_embeddings = h["passage"], h["embeddings"]
        bm25 = sparse.load_npz(version / "lexical.npz").tocsc()
        vocab = json.loads((version / "lexical_vocab.json").read_text(encoding="utf-8"))
        policies = _load_policies(version, manifest, hint)
        multilingual = None
        if manifest.get("multilingual"):
            from index import multilingual as ml

            multilingual = ml.load(version / manifest["multilingual"].get("file", ml.FILE), manifest["multilingual"]["name"])
    except IndexLoadError:
        raise
    except Exception as e:  # numpy, faiss, scipy and json each fail their own way on a damaged file
        raise IndexLoadError(f"index at {directory} is corrupt or incomplete ({type(e).__name__}: {e}); {hint}") from e
    dim = manifest["model"]["dimension"]
    n = len(passages)
    checks = [
        (embeddings.ndim == 2 and embeddings.shape == (n, dim), f"embeddings {embeddings.shape} vs {n} passages x {dim}"),
        (dense.ntotal == n and dense.d == dim, f"FAISS index holds {dense.ntotal} x {dense.d}"),
        (bm25.shape[0] == n, f"lexical index holds {bm25.shape[0]} rows"),
        (manifest.get("passages") == n, f"manifest counts {manifest.get('passages')} passages"),
        (len(sentence_passage) == len(sentence_spans) == len(sentence_embeddings), "sentence arrays disagree"),
        (len(passage_heading) == n and heading_embeddings.ndim == 2 and heading_embeddings.shape[1] == dim
         and (len(passage_heading) == 0 or -1 <= int(passage_heading.min()) <= int(passage_heading.max()) < len(heading_embeddings)),
         "heading arrays disagree"),
        (isinstance(vocab, dict) and all(type(c) is int and 0 <= c < bm25.shape[1] for c in vocab.values()),
         "lexical vocabulary is not a map of words to columns"),
        (all(isinstance(p.policy_id, str) and p.policy_id in policies for p in passages), "passages name policies the manifest lacks"),
        (multilingual is None or (
            multilingual.embeddings.shape == (n, manifest["multilingual"]["dimension"])
            and len(multilingual.sentence_embeddings) == len(sentence_passage)
            and len(multilingual.heading_embeddings) == len(heading_embeddings)), "multilingual vectors disagree"),
    ]
    for ok, what in checks:
        if not ok:
            raise IndexLoadError(f"index at {directory} is inconsistent: {what}; {hint}")
    problem = _offsets_problem(passages, policies, sentence_passage, sentence_spans)
    if problem:
        raise IndexLoadError(f"index at {directory} is inconsistent: {problem}; {hint}")
    # One pass over the passages: a comparison per policy is quadratic (minutes at 1M passages, 20k policies).
    grouped: dict[str, list[int]] = {pid: [] for pid in policies}
    for row, p in enumerate(passages):
        grouped[p.policy_id].append(row)
    policy_rows = {pid: np.array(rows, dtype=np.intp) for pid, rows in grouped.items()}
    return StoredIndex(version, manifest, policies, passages, embeddings, dense, vocab, bm25,
                       sentence_passage, sentence_spans, sentence_embeddings, passage_heading, heading_embeddings, policy_rows,
                       multilingual)


def _offsets_problem(passages: list[Passage], policies: dict[str, Policy], sentence_passage: np.ndarray,
                     sentence_spans: np.ndarray) -> str:
    """What is wrong with the passages' and sentences' offsets, or "": answers quote policy texts by
    these offsets and index arrays by these rows, so one out of place would quote the wrong words."""
    for p in passages:
        if not (type(p.start) is int and type(p.end) is int and isinstance(p.text, str)
                and policies[p.policy_id].text[p.start:p.end] == p.text and 0 <= p.start <= p.end):
            return f"passage {str(p.key)[:80]!r} does not match its policy text"
    if len(sentence_passage) == 0:
        return ""
    if sentence_passage.ndim != 1 or sentence_spans.shape != (len(sentence_passage), 2):
        return "sentence arrays have the wrong shape"
    if int(sentence_passage.min()) < 0 or int(sentence_passage.max()) >= len(passages):
        return "sentences name passages the index lacks"
    starts = np.array([p.start for p in passages])[sentence_passage]
    ends = np.array([p.end for p in passages])[sentence_passage]
    if not ((sentence_spans[:, 0] >= starts) & (sentence_spans[:, 0] <= sentence_spans[:, 1]) & (sentence_spans[:, 1] <= ends)).all():
        return "sentence offsets lie outside their passages"
    return ""


def newest_complete_version(directory: Path) -> Path | None:
    """The newest version folder that loads and passes every check of `read_index`, or None."""
    for version in reversed(version_dirs(directory)):
        try:
            _read_index(Path(directory), version)
            return version
        except IndexLoadError:
            continue
    return None


def point_current_at(directory: Path, version: Path) -> None:
    """Make `version` (a folder of `directory`) live: CURRENT replaced atomically."""
    directory = Path(directory)
    (directory / f"{CURRENT}.tmp").unlink(missing_ok=True)  # a planted link there is replaced, not written through
    _write_file(directory / f"{CURRENT}.tmp", Path(version).name.encode("utf-8"))
    os.replace(directory / f"{CURRENT}.tmp", directory / CURRENT)
    _fsync_dir(directory)
