"""Read policy files a person has at hand -- .txt, .md, a saved web page (.html/.htm) or a .pdf --
into plain policy text, and infer what was not given: the id, the company, the date.

Every failure is a `IngestError` (a CorpusError) whose one-line message says what to do.
Policy text is data: HTML scripts, styles, forms and navigation are dropped, never run or kept.
"""
from __future__ import annotations

import io
import logging
import re
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import date as Date
from pathlib import Path

from index.corpus import CorpusError, checksum, decode_text, normalise_newlines, refuse_outside_link, slugify

MAX_BYTES = 20 * 1024 * 1024
MAX_HTML_DEPTH = 256  # elements nested deeper than this are no policy page (real ones stay under ~60)
READ_SECONDS = 60.0  # one file's text extraction may take this long; then it is refused
UNKNOWN_COMPANY = "Unknown company"
KINDS = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
         ".html": "html", ".htm": "html", ".xhtml": "html", ".pdf": "pdf"}
SUPPORTED = ".txt, .md, .html/.htm or .pdf"


class IngestError(CorpusError):
    """A file that cannot be added; the message is one line and says what to do."""


@dataclass(frozen=True)
class Document:
    """A policy file's text and what the file itself says about it."""

    source: str  # file name
    kind: str  # text | markdown | html | pdf
    text: str
    encoding: str = ""
    title: str = ""  # <title> or PDF metadata title
    site_name: str = ""  # <meta property="og:site_name"> / application-name
    pages: int = 0


@dataclass
class Metadata:
    """A policy's id/company/aliases/date, each with where it came from ("given", "page title", ...)."""

    id: str
    company: str
    aliases: tuple[str, ...] = ()
    date: str | None = None
    origin: dict[str, str] = field(default_factory=dict)

    @property
    def inferred(self) -> dict[str, str]:
        return {k: v for k, v in self.origin.items() if v != "given"}


# ---------------------------------------------------------------- files


def collect(paths: list[Path | str]) -> tuple[list[Path], list[str]]:
    """The policy files named by `paths` (directories expanded, sorted) and notes on files skipped
    inside directories. A named file of an unknown type, or a path that does not exist, raises."""
    files: list[Path] = []
    skipped: list[str] = []
    for raw in paths:
        path = Path(raw)
        _refuse_link(path)
        if path.is_dir():
            found = []
            for p in sorted(path.rglob("*")):
                if any(part.startswith(".") for part in p.relative_to(path).parts) or not p.is_file():
                    continue
                _refuse_link(p)
                if p.suffix.lower() in KINDS:
                    found.append(p)
                else:
                    skipped.append(f"{p} (not a policy file: {SUPPORTED})")
            if not found:
                raise IngestError(f"no policy files ({SUPPORTED}) in {path}; put the policies there or name the files")
            files.extend(found)
        elif path.is_file():
            if path.suffix.lower() not in KINDS:
                kind = path.suffix or "without an extension"
                raise IngestError(f"{path}: cannot read {kind} files; save the policy as {SUPPORTED} and add that")
            files.append(path)
        elif path.exists():
            raise IngestError(f"{path} is not a regular file; name a policy file or a directory of them")
        else:
            raise IngestError(f"{path} does not exist; check the path")
    seen, unique = set(), []
    for f in files:
        if f.resolve() not in seen:
            seen.add(f.resolve())
            unique.append(f)
    return unique, skipped


def _refuse_link(path: Path) -> None:
    try:
        refuse_outside_link(path)
    except IngestError:
        raise
    except CorpusError as e:
        raise IngestError(str(e)) from None


def shown_name(path: Path | str) -> str:
    """A file name fit to store and print: bytes that are not UTF-8 (kept by Python as lone
    surrogates) become U+FFFD instead of failing every later write of the manifest."""
    return Path(path).name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class Deadline:
    """A time bound on one file's extraction, checked in its loops: a page built to be slow
    (deep nesting, millions of tags, a PDF of endless pages) is refused instead of hanging `add`."""

    def __init__(self, path: Path, seconds: float | None = None):
        seconds = READ_SECONDS if seconds is None else seconds
        self.path, self.seconds, self.end = path, seconds, time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise IngestError(f"reading {self.path} took over {self.seconds:g} s, so it was stopped; "
                              "save only the policy text as .txt and add that")


def read_document(path: Path | str) -> Document:
    """The text of one policy file. Raises IngestError for empty, binary, oversized, text-less or
    unknown files, links out of their folder, and files whose text takes too long to extract."""
    path = Path(path)
    _refuse_link(path)
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        raise IngestError(f"{path}: cannot read {path.suffix or 'extension-less'} files; save the policy as {SUPPORTED}")
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise IngestError(
                f"{path} is {size / 2**20:.1f} MB, over the {MAX_BYTES // 2**20} MB limit; "
                "save only the privacy policy (not the whole site) and add that"
            )
        raw = path.read_bytes()
    except OSError as e:
        raise IngestError(f"cannot read {path}: {e.strerror}; check the path and its permissions") from e
    if not raw.strip():
        raise IngestError(f"{path} is empty; save the policy text into it and add it again")
    deadline = Deadline(path)
    name = shown_name(path)
    if kind == "pdf":
        doc = _read_pdf(raw, path, deadline)
    elif kind == "html":
        doc = _read_html(raw, path, deadline)
    else:
        if raw.startswith(b"%PDF-"):
            raise IngestError(f"{path} is a PDF named {path.suffix}; rename it to .pdf and add it again")
        text, encoding = _decode(raw, path)
        if re.match(r"\s*(<!doctype html|<html)", text[:200], re.I):
            doc = Document(name, "html", *_html_text(text, path, deadline))
            doc = Document(name, "html", doc.text, encoding, doc.title, doc.site_name)
        else:
            doc = Document(name, kind, clean_text(text), encoding)
    doc = Document(name, doc.kind, doc.text, doc.encoding, doc.title, doc.site_name, doc.pages)
    if not doc.text.strip():
        raise IngestError(f"{path} has no text; save the policy text into it and add it again")
    return doc


def _decode(raw: bytes, path: Path, declared: str | None = None) -> tuple[str, str]:
    try:
        return decode_text(raw, path, declared=declared)
    except IngestError:
        raise
    except CorpusError as e:
        raise IngestError(str(e)) from None


def clean_text(text: str) -> str:
    """Newlines normalised, stray control characters and trailing spaces removed, at most one blank line."""
    text = normalise_newlines(text).replace("\ufeff", "").replace("\u00a0", " ")
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", text)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


# ---------------------------------------------------------------- HTML

_DROP = {"script", "style", "noscript", "template", "nav", "iframe", "svg", "canvas", "form", "button", "select",
         "input", "textarea", "object", "embed", "audio", "video", "picture", "img", "map", "dialog", "menu", "head",
         "link", "meta"}
_DROP_ROLES = {"navigation", "banner", "contentinfo", "search", "menu", "menubar", "dialog", "alertdialog"}
_PAGE_CHROME = {"header", "footer", "aside"}  # dropped unless inside the main content
_HEADINGS = {"h1", "h2", "h3", "h4"}
_BLOCK = {"p", "div", "section", "article", "main", "body", "blockquote", "address", "figure", "figcaption", "dl",
          "dt", "dd", "table", "thead", "tbody", "tfoot", "tr", "caption", "ul", "ol", "li", "h5", "h6", "hr",
          "center", "details", "summary", "header", "footer", "aside", "fieldset", "legend"}
_ITEM_MARKER = re.compile(r"^\s*(?:\(?\d{1,3}[.)]|\(?[a-zA-Z][.)]\s|\([ivx]{1,5}\)|[・•●○■□◆◇※\-–—*]|[①-⑳]|第[0-9０-９一二三四五六七八九十]+[条項])")
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)


def _read_html(raw: bytes, path: Path, deadline: Deadline | None = None) -> Document:
    from bs4.dammit import EncodingDetector

    declared = EncodingDetector.find_declared_encoding(raw[:4096], is_html=True, search_entire_document=False)
    source, encoding = _decode(raw, path, declared)
    text, title, site_name = _html_text(source, path, deadline)
    if not text.strip():
        raise IngestError(
            f"{path} has no policy text (only scripts, navigation or an empty page); "
            "save the page after it has finished loading, or paste the policy text into a .txt file"
        )
    return Document(path.name, "html", text, encoding, title, site_name)


def _tree_depth(root, limit: int) -> int:
    """How deep the parsed page's elements nest, walked without recursion; stops past `limit`."""
    deepest, stack = 0, [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
        stack.extend((child, depth + 1) for child in getattr(node, "contents", ()) if hasattr(child, "contents"))
    return deepest


def _html_text(source: str, path: Path | str = "the page", deadline: Deadline | None = None) -> tuple[str, str, str]:
    """(text, title, site name) of an HTML page: headings h1-h4 become `# ` heading lines, list
    items and table rows become lines, everything that is not content is dropped."""
    from bs4 import BeautifulSoup, Comment, Doctype, ProcessingInstruction

    deadline = deadline or Deadline(Path(str(path)))
    try:
        soup = BeautifulSoup(source, "lxml")
    except Exception:  # lxml missing or refusing the input: the standard library parser always works
        soup = BeautifulSoup(source, "html.parser")
    deadline.check()
    # The writer below walks the tree recursively, and the chrome checks cost the depth per tag.
    if _tree_depth(soup, MAX_HTML_DEPTH) > MAX_HTML_DEPTH:
        raise IngestError(f"{path} nests its HTML elements over {MAX_HTML_DEPTH} levels deep, which no policy page does; "
                          "save the policy text as .txt and add that")
    title = " ".join(soup.title.get_text(" ").split()) if soup.title else ""
    site_name = ""
    for attrs in ({"property": "og:site_name"}, {"name": "application-name"}, {"name": "author"}):
        tag = soup.find("meta", attrs=attrs)
        if tag and tag.get("content", "").strip():
            site_name = " ".join(tag["content"].split())
            break
    for node in soup.find_all(string=lambda s: isinstance(s, (Comment, Doctype, ProcessingInstruction))):
        node.extract()
    for tag in soup.find_all(True):
        deadline.check()
        if tag.decomposed:
            continue
        if tag.name == "form" or (
            tag.has_attr("hidden")
            or (tag.get("aria-hidden") or "").lower() == "true"
            or _HIDDEN_STYLE.search(tag.get("style") or "")
        ):
            # ASP.NET pages wrap the whole body in a <form>, and policies often sit in collapsed
            # (display:none) accordion sections: those are kept; hidden menus and small forms are not.
            if not _mostly_prose(tag):
                tag.decompose()
        elif tag.name in _DROP or (tag.get("role") or "").lower() in _DROP_ROLES:
            tag.decompose()
        elif tag.name in ("ul", "ol", "div", "section") and _link_block(tag):
            tag.decompose()  # menus, breadcrumbs, a table of contents: links, not policy text
    root = soup.find("main") or soup.find(attrs={"role": "main"}) or soup.body or soup
    articles = [a for a in root.find_all("article") if len(a.get_text(strip=True)) > 200] if root is soup.body else []
    if len(articles) == 1:
        root = articles[0]
    for tag in root.find_all(_PAGE_CHROME):
        if not tag.decomposed and not tag.find_parent(["main", "article"]):
            tag.decompose()
    out = _HtmlWriter(deadline)
    out.walk(root)
    return clean_text(out.text()), title, site_name


_CHROME_NAME = re.compile(r"(?:^|[-_\s])(?:header|footer|nav|navi|navbar|gnav|menu|breadcrumbs?|sidebar|cookie|banner|share|"
                          r"social|pagetop|sns)(?:[-_\s]|$)", re.I)


def _link_share(tag) -> tuple[int, float]:
    text = len(tag.get_text(" ", strip=True))
    links = sum(len(a.get_text(" ", strip=True)) for a in tag.find_all("a"))
    return text, links / text if text else 0.0


def _mostly_prose(tag) -> bool:
    """At least a paragraph of text (80 characters: Japanese is dense), most of it not link text."""
    text, share = _link_share(tag)
    return text >= 80 and share < 0.5


def _link_block(tag) -> bool:
    """A list made of links only, or a block named like page chrome (class/id "header", "menu",
    "breadcrumb"...) that is mostly links."""
    text, share = _link_share(tag)
    if not text:
        return False
    if tag.name in ("ul", "ol"):
        return len(tag.find_all("li")) >= 2 and share >= 0.8
    names = " ".join([tag.get("id") or "", *(tag.get("class") or [])])
    return bool(names.strip()) and bool(_CHROME_NAME.search(names)) and share >= 0.5


class _HtmlWriter:
    def __init__(self, deadline: Deadline | None = None):
        self.parts: list[str] = []
        self.deadline = deadline

    def text(self) -> str:
        lines = []
        for line in "".join(self.parts).split("\n"):
            line = re.sub(r"[ \t\u3000]+", " ", line).strip()
            if line.startswith("#") and not re.match(r"#{1,6} ", line):
                line = line.lstrip("#").strip()  # literal '#' in the text is not a heading
            lines.append(line)
        return "\n".join(lines)

    def newline(self, blank: bool = False) -> None:
        tail = "".join(self.parts[-2:])
        want = "\n\n" if blank else "\n"
        if not self.parts or tail.endswith(want):
            return
        self.parts.append("\n" if tail.endswith("\n") else want)

    def walk(self, node, list_kind: str | None = None) -> None:
        from bs4 import NavigableString, Tag

        if self.deadline is not None:
            self.deadline.check()
        for child in node.children:
            if isinstance(child, NavigableString):
                text = re.sub(r"\s+", " ", str(child))
                if text.strip() or (text and self.parts and not self.parts[-1].endswith((" ", "\n"))):
                    self.parts.append(text)
                continue
            if not isinstance(child, Tag) or child.decomposed:
                continue
            name = child.name
            if name == "br":
                self.parts.append("\n")
            elif name in _HEADINGS:
                heading = " ".join(child.get_text(" ").split()).lstrip("#").strip()
                if heading:
                    self.newline(blank=True)
                    self.parts.append(f"# {heading}")
                    self.newline(blank=True)
            elif name == "pre":
                self.newline(blank=True)
                self.parts.append(normalise_newlines(child.get_text()))
                self.newline(blank=True)
            elif name in ("ul", "ol"):
                self.newline()
                self._list(child, name)
                self.newline(blank=True)
            elif name in ("td", "th"):
                self.walk(child)
                self.parts.append(" | " if child.find_next_sibling(["td", "th"]) else "")
            elif name in _BLOCK:
                blank = name in ("p", "div", "section", "article", "blockquote", "table", "dl", "address", "h5", "h6",
                                 "header", "footer", "details", "figure")
                self.newline(blank)
                self.walk(child)
                self.newline(blank)
            else:
                self.walk(child)

    def _list(self, node, kind: str) -> None:
        number = int(node.get("start", 1)) if str(node.get("start", "1")).lstrip("-").isdigit() else 1
        for item in node.find_all("li", recursive=False):
            self.newline()
            text = item.get_text(" ", strip=True)
            if text and not _ITEM_MARKER.match(text):
                # Items the parser recognises: (1) starts a numbered clause, ・ a bullet in it.
                self.parts.append(f"({number}) " if kind == "ol" else "・ ")
            number += 1
            self.walk(item)
            self.newline()
        # Stray content directly inside the list (not in an <li>) is kept as lines too.
        for child in node.find_all(recursive=False):
            if child.name != "li" and not child.decomposed:
                self.newline()
                self.walk(child)


# ---------------------------------------------------------------- PDF


def _read_pdf(raw: bytes, path: Path, deadline: Deadline | None = None) -> Document:
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    if not raw.lstrip().startswith(b"%PDF-"):
        raise IngestError(f"{path} is not a PDF (no %PDF header); save the policy as a real PDF or as .txt")
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise IngestError(f"{path} is password-protected; remove the password (or print it to a new PDF) and add that")
        deadline = deadline or Deadline(path)
        pages = []
        for page in reader.pages:
            deadline.check()
            pages.append(page.extract_text() or "")
        title = ""
        try:
            title = " ".join(str((reader.metadata or {}).get("/Title") or "").split())
        except Exception:
            pass
    except IngestError:
        raise
    except Exception as e:  # pypdf raises many kinds on a damaged file
        raise IngestError(f"{path} is not a readable PDF ({type(e).__name__}); re-save it from the viewer, or save the text as .txt") from e
    text = clean_text("\n\n".join(pages))
    if not text.strip():
        raise IngestError(
            f"{path} has no text layer (a scanned image?); run OCR first (e.g. `ocrmypdf {path.name} out.pdf`) "
            "or paste the policy text into a .txt file"
        )
    return Document(path.name, "pdf", text, "", title, "", len(pages))


# ---------------------------------------------------------------- metadata

_GENERIC_NAME = re.compile(
    r"^(?:the\s+)?(?:privacy|policy|policies|privacy[\s_-]*policy|privacy[\s_-]*notice|personal[\s_-]*information"
    r"(?:[\s_-]*protection)?(?:[\s_-]*policy)?|handling[\s_-]*of[\s_-]*personal[\s_-]*information|index|home|page|"
    r"document|download|untitled|terms|notice|statement|data[\s_-]*protection|cookie[\s_-]*policy|"
    r"プライバシー[・･]?ポリシー|個人情報(?:保護方針|の取り?扱いについて|の取扱い|保護ポリシー|保護に関する基本方針)?|"
    r"プライバシーポリシー|プライバシー[・･]?ステートメント)\s*$",
    re.I,
)
_GENERIC_WORDS = {"privacy", "policy", "policies", "notice", "statement", "personal", "information", "data", "protection",
                  "index", "page", "en", "ja", "jp", "english", "japanese", "the", "of", "and", "our", "v", "final",
                  "copy", "download", "handling", "cookie", "cookies", "terms", "html", "web", "saved"}
_SUFFIX = r"(?:Co\.,?\s*Ltd\.?|Company,?\s+Limited|Inc\.|Incorporated|Corporation|Corp\.|K\.K\.|G\.K\.|Ltd\.|Limited|LLC|L\.L\.C\.|GmbH|S\.A\.|PLC|Pte\.?\s*Ltd\.?)"
_SUFFIX_RE = re.compile(rf",?\s+{_SUFFIX}(?![A-Za-z])")
_JP_ENTITY = re.compile(
    r"((?:株式会社|有限会社|合同会社|一般社団法人|公益社団法人|一般財団法人|公益財団法人|特定非営利活動法人|学校法人)"
    r"[^\s、。，．・（）()「」『』\"“”]{1,24}|[^\s、。，．・（）()「」『』\"“”は]{1,24}"
    r"(?:株式会社|有限会社|合同会社))"
)
_HEREINAFTER = re.compile(r"[(（]\s*(?:hereinafter|hereafter)(?:\s+(?:referred\s+to|called))?(?:\s+as)?\s*[“\"'‘「]([^”\"'’」]{2,40})[”\"'’」]", re.I)
_GENERIC_DEFINED = {"company", "we", "us", "our", "service", "services", "site", "website", "user", "users", "policy",
                    "privacy policy", "personal information", "user information", "the company", "the service",
                    "customer", "customers", "member", "members", "this site", "this service", "operator", "当社", "弊社"}
_CONNECTORS = {"of", "and", "for", "&", "de", "the"}
_STOP_BACK = {"by", "at", "to", "in", "is", "are", "was", "from", "with", "on", "as", "that", "which", "this", "these",
              "our", "your", "a", "an", "or", "if", "when", "we", "you", "use", "uses", "using", "operated", "provided",
              "means", "called"}


def _name_start(text: str, end: int, max_words: int = 8) -> int | None:
    """Where the run of name-like words (capitalised, or short lowercase ones such as "en") that ends
    at `end` starts; None if the word before `end` is not name-like."""
    base = max(0, end - 240)
    if suffix := re.search(rf",?\s*{_SUFFIX}\s*$", text[base:end]):
        end = base + suffix.start()  # "INNTEGRA, Co., Ltd. (hereinafter": the name ends before the suffix
    words = list(re.finditer(r"[A-Za-z0-9][\w&'’.\-]*", text[base:end]))
    start = None
    taken = 0
    for m in reversed(words):
        word = m.group(0)
        gap = text[base + m.end() : start if start is not None else end]
        if re.search(r"[;:!?()\"“”\n]", gap) or (start is not None and "," in gap) or gap.count(",") > 1:
            break  # "In providing services, Japan Association ..." stops at the comma
        if start is not None and gap.strip(" ,") == "" and word.endswith(".") and word[:-1].lower() not in ("co", "inc"):
            break  # "... the Service. Acme Inc." stops at the sentence end
        lower = word.lower().rstrip(".")
        if lower in _STOP_BACK or taken >= max_words:
            break
        if lower in _CONNECTORS:
            if start is None:
                break
        elif not (word[0].isupper() or word[0].isdigit() or (len(word) <= 3 and word.isalpha())):
            break
        start, taken = base + m.start(), taken + 1
    if start is None:
        return None
    # Never start with a connector ("of Acme" -> "Acme").
    while (m := re.match(r"(\S+)\s+", text[start:end])) and m.group(1).lower() in _CONNECTORS:
        start += m.end()
    return start


def _company_from_text(text: str) -> tuple[str, tuple[str, ...]]:
    """(company, aliases) named in the opening of a policy, or ("", ())."""
    head = text[:4000]
    aliases: list[str] = []
    company = ""
    for m in _HEREINAFTER.finditer(head):
        start = _name_start(head, m.start())
        if start is None:
            continue
        name = " ".join(head[start : m.start()].split()).strip(" ,")
        defined = m.group(1).strip()
        if name.lower() in _GENERIC_DEFINED or _GENERIC_NAME.match(name):
            continue
        company = name
        if defined.lower() not in _GENERIC_DEFINED and normalise_name(defined) != normalise_name(name):
            aliases.append(defined)
        break
    if not company:
        for m in re.finditer(rf"(?<![A-Za-z]){_SUFFIX}", head):
            start = _name_start(head, m.start())
            if start is None:
                continue
            name = head[start : m.start()].strip(" ,")
            if name and name.lower() not in _GENERIC_WORDS:
                company = " ".join(head[start : m.end()].split())
                break
    if not company and (m := _JP_ENTITY.search(head)):
        company = m.group(1)
    return company, tuple(aliases)


def _company_from_title(title: str) -> str:
    parts = [p.strip() for p in re.split(r"\s+[|｜\-–—:：»>/]\s+|[|｜»]|\s[-–—]\s|[【】\[\]]", title) if p and p.strip()]
    parts = [p for p in parts if not _GENERIC_NAME.match(p) and not re.fullmatch(r"[\W\d_]+", p)]
    # "Privacy Policy of Acme" / "Acme Privacy Policy" / "Acmeのプライバシーポリシー"
    cleaned = []
    for p in parts:
        p = re.sub(r"(?i)^(?:the\s+)?(?:privacy\s+(?:policy|notice|statement)|personal\s+information\s+protection\s+policy)\s+(?:of|for|at)\s+", "", p)
        p = re.sub(r"(?i)['’]s\s+privacy\s+(?:policy|notice|statement)$|\s+privacy\s+(?:policy|notice|statement)$", "", p)
        p = re.sub(r"の?(?:プライバシー[・･]?ポリシー|個人情報(?:保護方針|の取り?扱いについて|の取扱い)?)$", "", p)
        if p.strip() and not _GENERIC_NAME.match(p.strip()):
            cleaned.append(p.strip())
    return cleaned[-1] if cleaned else ""


def _name_from_file(source: str) -> str:
    stem = Path(source).stem
    words = [w for w in re.split(r"[\s_\-.]+", stem) if w]
    if not words or all(w.lower() in _GENERIC_WORDS or w.isdigit() for w in words):
        return ""
    return " ".join(w if any(c.isupper() for c in w) else w.capitalize() for w in words if w.lower() not in _GENERIC_WORDS)


_MONTHS = {m: i for i, m in enumerate(
    "january february march april may june july august september october november december".split(), start=1)}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9
_MONTH_RE = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_DATE_PATTERNS = [
    (re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)"), lambda m: (m[1], m[2], m[3])),
    (re.compile(r"(?<!\d)(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日"), lambda m: (m[1], m[2], m[3])),
    (re.compile(r"(令和|平成)\s*(\d{1,2}|元)\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日"),
     lambda m: ((2018 if m[1] == "令和" else 1988) + (1 if m[2] == "元" else int(m[2])), m[3], m[4])),
    (re.compile(rf"(?i)\b{_MONTH_RE}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b"), lambda m: (m[3], _MONTHS[m[1].lower()[:4].rstrip('t') if m[1].lower().startswith('sept') else m[1].lower()[:3]], m[2])),
    (re.compile(rf"(?i)\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH_RE},?\s+(\d{{4}})\b"), lambda m: (m[3], _MONTHS[m[2].lower()[:3]], m[1])),
]
_DATE_CONTEXT = re.compile(
    r"(?i)updated?|revised?|revision|amended|effective|enacted|established|published|issued|last\s+modified|dated?|"
    r"制定|改定|改訂|施行|更新|最終|発効|附則"
)


def infer_date(text: str) -> str | None:
    """The latest date the policy gives on a line that says it was enacted, revised, updated or
    effective (or on a line of its own), as YYYY-MM-DD; None if there is none."""
    lines = text.split("\n")
    candidates = lines[:40] + lines[-40:] if len(lines) > 80 else lines
    found: list[Date] = []
    for line in candidates:
        if len(line) > 300:
            continue
        dates = []
        for pattern, parts in _DATE_PATTERNS:
            for m in pattern.finditer(line):
                try:
                    y, mo, d = (int(x) for x in parts(m))
                    dates.append((m.start(), m.end(), Date(y, mo, d)))
                except (ValueError, KeyError, TypeError):
                    continue
        if not dates:
            continue
        rest = line
        for s, e, _ in dates:
            rest = rest[:s] + " " * (e - s) + rest[e:]
        alone = not re.search(r"[A-Za-z\u3040-\u30ff\u4e00-\u9fff]{3,}", rest)
        if _DATE_CONTEXT.search(line) or alone:
            found.extend(d for _, _, d in dates if 1990 <= d.year <= Date.today().year + 1)
    return max(found).isoformat() if found else None


def infer_metadata(doc: Document, policy_id: str | None = None, company: str | None = None,
                   aliases: tuple[str, ...] = (), date: str | None = None) -> Metadata:
    """Fill in what was not given: company from the page's site name or title, the text's opening
    (a "... Inc." / "株式会社..." / "X (hereinafter “Y”)" name) or the file name; id from the file name
    (or the company when the file name is generic); date from a "revised/updated/制定" line."""
    origin: dict[str, str] = {}
    text_company, text_aliases = _company_from_text(doc.text)
    if company:
        origin["company"] = "given"
    else:
        for value, where in (
            (doc.site_name, "page site name"),
            (_company_from_title(doc.title), "page title" if doc.kind == "html" else "PDF title"),
            (text_company, "policy text"),
            (_name_from_file(doc.source), "file name"),
        ):
            value = " ".join(visible(value or "").split())
            if value and not _GENERIC_NAME.match(value) and len(value) <= 100:
                company, origin["company"] = value, where
                break
        else:
            if Path(doc.source).stem:
                company, origin["company"] = Path(doc.source).stem, "file name"
            else:
                company, origin["company"] = UNKNOWN_COMPANY, "nothing (give the company's name)"
    if aliases:
        origin["aliases"] = "given"
    else:
        found = [a for a in (text_company, *text_aliases) if a and normalise_name(a) != normalise_name(company)]
        short = _SUFFIX_RE.sub("", company).strip(" ,")
        # A one-word short name is an alias only if it cannot be an ordinary word ("JapanWork", "INNTEGRA",
        # not "Indeed"): questions naming an alias are routed to that policy.
        distinctive = len(short.split()) > 1 or re.search(r"[a-z][A-Z]|^[A-Z0-9]{3,}$|[^\x00-\x7f]", short)
        if short and short != company and len(normalise_name(short)) >= 3 and distinctive:
            found.insert(0, short)
        aliases = tuple(dict.fromkeys(" ".join(visible(a).split()) for a in found))
        if aliases:
            origin["aliases"] = "policy text" if text_aliases else "company name"
    if policy_id:
        origin["id"] = "given"
    else:
        stem_words = [w for w in re.split(r"[^a-z0-9]+", slugify(Path(doc.source).stem)) if w]
        if stem_words and not all(w in _GENERIC_WORDS or w.isdigit() for w in stem_words):
            policy_id, origin["id"] = slugify(Path(doc.source).stem), "file name"
        else:
            base = slugify(_SUFFIX_RE.sub("", company))
            if base == "policy" or company == UNKNOWN_COMPANY:  # no ASCII in the name, or no name
                base = f"policy-{checksum(company if company != UNKNOWN_COMPANY else doc.text)[:8]}"
            policy_id = base
            origin["id"] = "company name" if company != UNKNOWN_COMPANY else "text checksum"
    if date:
        origin["date"] = "given"
    else:
        date = infer_date(doc.text)
        if date:
            origin["date"] = "policy text"
    return Metadata(policy_id, company, tuple(aliases), date, origin)


def visible(text: str) -> str:
    """`text` without control and format characters (zero-width spaces, soft hyphens, direction
    overrides, terminal escapes): "Japan\u200bWork" reads as JapanWork but would compare unlike it."""
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf") or ch in "\t\n\r")


# Cyrillic and Greek letters drawn like Latin ones: "JаpanWork" with a Cyrillic а reads as JapanWork, so names are
# compared with them read as the Latin letter (comparison only; a name is stored as given).
_LOOK_ALIKE = str.maketrans(
    "АВЕКМНОРСТХУаеорсухіјѕһԁԛԝΑΒΕΗΙΚΜΝΟΡΤΥΧαοικνρτυχ",
    "ABEKMHOPCTXYaeopcyxijshdqwABEHIKMNOPTYXaoikvptux",
)


def normalise_name(name: str) -> str:
    """Company names compared without case, width, spacing, punctuation, look-alike letters or a corporate suffix."""
    name = visible(unicodedata.normalize("NFKC", name)).translate(_LOOK_ALIKE).casefold()
    name = re.sub(r",?\s+(?:co\.,?\s*ltd\.?|company,?\s+limited|inc\.?|incorporated|corporation|corp\.?|k\.k\.|g\.k\.|ltd\.?|limited|llc)$", "", name)
    name = re.sub(r"株式会社|有限会社|合同会社", "", name)
    return re.sub(r"[\s\-_.,・'’\"“”()（）]+", "", name)


_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def check_id(policy_id: str) -> str:
    if not _ID.match(policy_id):
        problem = f"policy id {policy_id!r} is not usable; use lowercase letters, digits and '-' (at most 80)"
        raise IngestError(problem, hint=f"e.g. --id {slugify(policy_id)}", page=f"{problem}, e.g. {slugify(policy_id)}")
    return policy_id


def check_date(value: str) -> str:
    try:
        if not _DATE.match(value):
            raise ValueError
        Date.fromisoformat(value)
    except ValueError:
        raise IngestError(f"date {value!r} is not a date; give it as YYYY-MM-DD, e.g. --date 2024-04-01") from None
    return value
