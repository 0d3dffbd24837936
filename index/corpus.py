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


def refuse_outside_link(path: Path) -> None:
    """A symbolic link is followed only to a target inside the link's own folder: `ln -s /etc/passwd p.txt`
    must not put the password file into the index (and before the page quotes it to anyone)."""
    path = Path(path)
    if not path.is_symlink():
        return
    folder = path.absolute().parent.resolve()
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise CorpusError(f"{path} is a symbolic link to nothing readable; name the policy file itself") from None
    if not target.is_relative_to(folder):
        raise CorpusError(f"{path} is a symbolic link to {target}, outside its own folder; "
                          "copy the policy file there (links are followed only within their folder)")


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
    if declared and not _ascii_compatible(declared):  # as browsers do: a page cannot declare UTF-7, UTF-16 or an escape codec
        declared = None
    for encoding in (declared, "utf-8"):
        if encoding:
            try:
                return _check_text(raw.decode(encoding), binary), encoding.lower()
            except (UnicodeDecodeError, LookupError):
                pass
    # UTF-8 with a few damaged bytes (a stray byte from another encoding, a cut character) is still UTF-8:
    # its other non-ASCII characters are well-formed sequences, which text in a legacy encoding almost never
    # makes. The damaged bytes read as U+FFFD, as browsers show them. A guess would read all of it wrongly
    # (English as mac_iceland, "don’t" -> "don‚Äôt") or refuse it (Japanese as binary).
    lenient = raw.decode("utf-8", errors="replace")
    damaged = lenient.count("\ufffd")
    well_formed = sum(1 for ch in lenient if ord(ch) > 127) - damaged
    if well_formed > damaged and damaged <= _damage_limit(len(lenient)):
        return _check_text(lenient, binary), "utf-8"
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    if best is None:
        raise binary
    if best.encoding.startswith("mac_"):
        # Web and Windows text without a declaration is windows-1252 far more often than a Mac codepage
        # (the WHATWG default for Western pages); the detector cannot tell them apart on short text.
        try:
            return _check_text(raw.decode("cp1252"), binary), "cp1252"
        except UnicodeDecodeError:
            pass
    return _check_text(str(best), binary), best.encoding


_PROBE = b'<meta charset="x"> +-\\n \\u0041 09;&'


def _ascii_compatible(encoding: str) -> bool:
    """Whether `encoding` reads ASCII as ASCII: UTF-7 reads "+ADw-" as "<" (a page could smuggle tags past what it shows)."""
    try:
        return _PROBE.decode(encoding) == _PROBE.decode("ascii")
    except (LookupError, UnicodeError, ValueError):
        return False


def _damage_limit(length: int) -> int:
    """How many control characters or U+FFFD a text of `length` characters may hold and still be text."""
    return max(8, length // 100)


def _check_text(text: str, error: CorpusError) -> str:
    sample = text[:65536]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\n\r\t\f") + sample.count("\ufffd")
    if sample and controls > _damage_limit(len(sample)):
        raise error
    return text


def load_corpus(directory: Path | str = DEFAULT_CORPUS) -> list[Policy]:
    """Policies of a directory: from its manifest.json if there is one, else every .txt/.md file
    (id from the file name)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CorpusError(f"corpus directory {directory} {'is a file' if directory.exists() else 'does not exist'}; "
                          "give --corpus a directory of .txt/.md policies")
    manifest_path = directory / "manifest.json"
    if manifest_path.exists():
        try:
            entries = json.loads(manifest_path.read_text(encoding="utf-8"))["policies"]
        except (ValueError, KeyError, TypeError, RecursionError) as e:  # RecursionError: "[[[[…" nested thousands deep
            raise CorpusError(f"{manifest_path} is not a valid manifest ({e}); fix it or remove it") from e
    else:
        entries = [{"file": p.name} for p in sorted(directory.iterdir()) if p.suffix.lower() in TEXT_SUFFIXES]
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get("file"), str) for e in entries):
        raise CorpusError(f"{manifest_path} is not a valid manifest (\"policies\" must be a list of {{\"file\": ...}} objects); fix it")
    if not entries:
        raise CorpusError(f"no policy files (.txt, .md) in {directory}")
    origin = "shipped" if directory.resolve() == DEFAULT_CORPUS else "cli"
    policies = []
    for entry in entries:
        path = directory / entry["file"]
        refuse_outside_link(path)
        if not path.absolute().resolve().is_relative_to(directory.absolute().resolve()):
            raise CorpusError(f"{manifest_path} names {entry['file']!r}, outside {directory}; list only files in it")
        for key in ("id", "company", "service", "date"):
            if entry.get(key) is not None and not isinstance(entry[key], str):
                raise CorpusError(f"{manifest_path}: {key!r} of {entry['file']!r} must be text")
        policy_id = entry.get("id") or slugify(Path(entry["file"]).stem)
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,79}", policy_id):
            raise CorpusError(f"{manifest_path}: id {policy_id[:80]!r} is not usable; use lowercase letters, digits and '-'")
        aliases = entry.get("aliases") or []
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise CorpusError(f"{manifest_path}: aliases of {entry['file']!r} must be a list of names")
        text = read_text(path)
        if not text.strip():
            raise CorpusError(f"{path} is empty")
        policies.append(
            Policy(
                id=policy_id,
                company=entry.get("company") or Path(entry["file"]).stem,
                text=text,
                service=entry.get("service") or "",
                aliases=tuple(aliases),
                date=entry.get("date"),
                source=entry["file"],
                origin=origin,
            )
        )
    ids = [p.id for p in policies]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise CorpusError(f"duplicate policy ids in {directory}: {', '.join(duplicates)}")
    return policies
