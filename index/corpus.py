"""Read a directory of policy texts (with or without a manifest.json) into `Policy` records."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from index.errors import PolicyQAError
from index.types import Policy

DEFAULT_CORPUS = Path(__file__).resolve().parent / "default_corpus"
TEXT_SUFFIXES = (".txt", ".md")


class CorpusError(PolicyQAError, ValueError):
    """A corpus directory or policy file that cannot be read; the message says what to fix."""


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "policy"


def read_text(path: Path, detect_encoding: bool = False) -> str:
    """The file's text, line endings normalised. UTF-8 unless `detect_encoding`, which also accepts
    UTF-16 with a BOM and legacy encodings (Shift_JIS, EUC-JP, ...) detected by charset-normalizer."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CorpusError(f"cannot read {path}: {e.strerror}") from e
    if detect_encoding:
        return normalise_newlines(decode_text(raw, path)[0])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path} is not UTF-8 text; convert it (e.g. `iconv -f SHIFT_JIS -t UTF-8`)") from e
    return normalise_newlines(text)


def normalise_newlines(text: str) -> str:
    # Offsets are character positions in this exact string, so only line endings are normalised.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decode_text(raw: bytes, path: Path | str, declared: str | None = None) -> tuple[str, str]:
    """(text, encoding) of bytes that should be text: a BOM, then `declared` (e.g. an HTML meta
    charset), then UTF-8, then charset-normalizer's best guess. Binary data raises CorpusError."""
    for bom, encoding in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if raw.startswith(bom):
            try:
                return raw.decode(encoding), encoding.replace("-sig", "")
            except UnicodeDecodeError:
                break
    binary = CorpusError(f"{path} is binary, not text; save the policy as .txt, .md, .html or .pdf")
    if b"\x00" in raw[:65536]:
        raise binary
    for encoding in (declared, "utf-8"):
        if encoding:
            try:
                return _check_text(raw.decode(encoding), binary), encoding.lower()
            except (UnicodeDecodeError, LookupError):
                pass
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    if best is None:
        raise binary
    return _check_text(str(best), binary), best.encoding


def _check_text(text: str, error: CorpusError) -> str:
    sample = text[:65536]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\n\r\t\f") + sample.count("\ufffd")
    if sample and controls > max(8, len(sample) // 100):
        raise error
    return text


def load_corpus(directory: Path | str = DEFAULT_CORPUS) -> list[Policy]:
    """Policies of a directory: from its manifest.json if there is one, else every .txt/.md file
    (id from the file name)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CorpusError(f"corpus directory {directory} does not exist")
    manifest_path = directory / "manifest.json"
    if manifest_path.exists():
        try:
            entries = json.loads(manifest_path.read_text(encoding="utf-8"))["policies"]
        except (ValueError, KeyError, TypeError) as e:
            raise CorpusError(f"{manifest_path} is not a valid manifest ({e}); fix it or remove it") from e
    else:
        entries = [{"file": p.name} for p in sorted(directory.iterdir()) if p.suffix.lower() in TEXT_SUFFIXES]
    if not entries:
        raise CorpusError(f"no policy files (.txt, .md) in {directory}")
    policies = []
    for entry in entries:
        path = directory / entry["file"]
        policy_id = entry.get("id") or slugify(Path(entry["file"]).stem)
        text = read_text(path)
        if not text.strip():
            raise CorpusError(f"{path} is empty")
        policies.append(
            Policy(
                id=policy_id,
                company=entry.get("company") or Path(entry["file"]).stem,
                text=text,
                service=entry.get("service") or "",
                aliases=tuple(entry.get("aliases") or ()),
                date=entry.get("date"),
                source=entry["file"],
            )
        )
    ids = [p.id for p in policies]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise CorpusError(f"duplicate policy ids in {directory}: {', '.join(duplicates)}")
    return policies
