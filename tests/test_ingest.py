"""Reading policy files people have at hand: saved web pages, PDFs, legacy Japanese encodings;
and inferring the id, company and date that were not given. No model needed."""
import io

import pytest

from index.corpus import CorpusError, DEFAULT_CORPUS, read_text
from index.ingest import IngestError, collect, infer_date, infer_metadata, read_document
from index.parse import parse_clauses

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Privacy Policy | Acme Jobs</title>
<style>body { color: red } .secret { content: "STYLE TEXT" }</style>
<script>var leaked = "SCRIPT TEXT"; document.write("WRITTEN TEXT");</script></head>
<body><header><nav><a href="/">Home</a> <a href="/jobs">Find jobs</a> <a href="/login">Log in</a></nav></header>
<div role="navigation">Breadcrumbs: Home &gt; Privacy</div>
<main><h1>Privacy Policy</h1>
<p>Acme Jobs K.K. (hereinafter “Acme”) handles the personal information of job seekers who use the Acme Jobs
service as follows. Last updated: April 1, 2024.</p>
<h2>Purpose of Use</h2><p>Acme uses personal information for the following purposes:</p>
<ol><li>To introduce job openings that match your résumé.</li><li>To contact you about <b>interviews</b>.</li></ol>
<h2>Provision to Third Parties</h2>
<p>Acme does not provide personal information to third parties without consent, except where the law requires it,
and except to employers you apply to.</p>
<h3>Employers</h3><ul><li>Employers receive your résumé.</li><li>Employers never receive your password.</li></ul>
<div style="display:none">HIDDEN TEXT</div><noscript>NOSCRIPT TEXT</noscript>
<h2>Retention</h2><p>We keep your résumé for three years after your last login.<br>Then we delete it.</p>
<script>alert("SCRIPT TEXT 2")</script><form><input value="FORM TEXT"><button>Send</button></form>
</main><footer>© Acme Jobs · <a href="/terms">Terms</a></footer></body></html>"""


def make_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with a real text layer, written by hand (Helvetica, one line per item)."""
    def esc(s):
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    content = "BT /F1 11 Tf 72 740 Td 14 TL " + " ".join(f"({esc(line)}) '" for line in lines) + " ET"
    objs = ["<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            f"<< /Length {len(content.encode('latin-1'))} >>\nstream\n{content}\nendstream"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{obj}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode() + "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def blank_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def test_html_keeps_content_and_headings_and_drops_everything_else(tmp_path):
    (tmp_path / "acme.html").write_text(PAGE, encoding="utf-8")
    doc = read_document(tmp_path / "acme.html")
    for dropped in ("SCRIPT TEXT", "WRITTEN TEXT", "STYLE TEXT", "HIDDEN TEXT", "NOSCRIPT TEXT", "FORM TEXT", "Find jobs",
                    "Breadcrumbs", "Terms", "Send", "leaked"):
        assert dropped not in doc.text, dropped
    lines = doc.text.split("\n")
    assert "# Purpose of Use" in lines and "# Employers" in lines and "# Retention" in lines
    assert "(1) To introduce job openings that match your résumé." in lines
    assert "(2) To contact you about interviews." in lines  # inline tags do not break the line
    assert "・ Employers never receive your password." in lines
    assert "We keep your résumé for three years after your last login.\nThen we delete it." in doc.text
    sections = {c.section for c in parse_clauses(doc.text, "acme")}
    assert ("Purpose of Use", "(1)") in sections and ("Retention",) in sections and ("Provision to Third Parties",) in sections
    meta = infer_metadata(doc)
    assert (meta.id, meta.company, meta.date) == ("acme", "Acme Jobs", "2024-04-01")
    assert meta.origin == {"company": "page title", "aliases": "policy text", "id": "file name", "date": "policy text"}
    assert "Acme" in meta.aliases


@pytest.mark.parametrize("encoding", ["shift_jis", "euc_jp", "cp932", "utf-16"])
def test_japanese_legacy_encodings_are_detected(tmp_path, encoding):
    text = ("個人情報保護方針\n\n株式会社さくらキャリア（以下「当社」）は、求職者の皆様の個人情報を次のとおり取り扱います。\n"
            "1. 利用目的\n当社は、求人情報の紹介、面接日程の調整およびサービス改善のために個人情報を利用します。\n"
            "2. 第三者提供\n当社は、法令に基づく場合を除き、ご本人の同意なく個人情報を第三者に提供しません。\n"
            "制定日：2019年4月1日\n改定日：2023年10月1日\n")
    (tmp_path / "sakura.txt").write_bytes(text.encode(encoding))
    doc = read_document(tmp_path / "sakura.txt")
    assert doc.text == text.strip("\n")
    meta = infer_metadata(doc)
    assert meta.company == "株式会社さくらキャリア" and meta.date == "2023-10-01" and meta.id == "sakura"
    # The same page as HTML with its charset declared in a meta tag (EUC-JP).
    page = f'<html><head><meta http-equiv="Content-Type" content="text/html; charset=EUC-JP"><title>プライバシーポリシー｜さくらキャリア</title></head><body><p>{text}</p></body></html>'
    (tmp_path / "page.htm").write_bytes(page.encode("euc_jp"))
    html = read_document(tmp_path / "page.htm")
    assert html.encoding.replace("-", "_").lower() in ("euc_jp", "eucjp") and "第三者に提供しません" in html.text
    meta = infer_metadata(html)
    assert meta.company == "さくらキャリア" and meta.id.startswith("policy-")  # generic file name, non-ASCII company
    # read_text keeps refusing non-UTF-8 by default (existing behaviour) and decodes it when asked.
    with pytest.raises(CorpusError, match="not UTF-8"):
        read_text(tmp_path / "sakura.txt") if encoding != "utf-16" else read_text(tmp_path / "page.htm")
    assert read_text(tmp_path / "sakura.txt", detect_encoding=True) == text


def test_utf8_with_a_few_damaged_bytes_is_read_as_utf8_and_western_text_as_windows_1252(tmp_path):
    # A UTF-8 policy with a stray byte from another encoding (or a cut character) is still UTF-8: the damaged
    # bytes read as U+FFFD and every other character as written. Before, English read as mac_iceland
    # ("don’t" -> "don‚Äôt") and Japanese was refused as binary. Undeclared Western text with no UTF-8 in
    # it reads as windows-1252 (was mac_iceland: "don’t" -> "donít"); Shift-JIS still reads as Shift-JIS.
    english = "Privacy Policy\n\nWe collect your name and e-mail address. We don’t sell your data — ever.\n" * 6
    raw = english.encode("utf-8")
    (tmp_path / "stray.txt").write_bytes(raw[:120] + b"\x92" + raw[120:])
    doc = read_document(tmp_path / "stray.txt")
    assert doc.encoding == "utf-8" and doc.text.count("\ufffd") == 1 and doc.text.count("don’t") == 6
    japanese = "個人情報保護方針\n\n当社は、求職者の個人情報を適切に管理し、第三者に提供しません。\n" * 8
    raw = japanese.encode("utf-8")
    (tmp_path / "stray-ja.txt").write_bytes(raw[:301] + b"\xff" + raw[301:])  # also cuts a character in two
    doc = read_document(tmp_path / "stray-ja.txt")
    assert doc.encoding == "utf-8" and 1 <= doc.text.count("\ufffd") <= 4 and doc.text.count("第三者に提供しません") >= 7
    page = f'<html><head><meta charset="utf-8"><title>Privacy</title></head><body><p>{english}</p></body></html>'.encode()
    (tmp_path / "stray.html").write_bytes(page[:200] + b"\xe9" + page[200:])  # declared UTF-8, one Latin-1 byte
    html = read_document(tmp_path / "stray.html")
    assert html.encoding == "utf-8" and html.text.count("don’t") == 6
    (tmp_path / "western.txt").write_bytes(english.replace("—", "-").encode("cp1252"))
    doc = read_document(tmp_path / "western.txt")
    assert doc.encoding == "cp1252" and doc.text.count("don’t") == 6
    (tmp_path / "many.txt").write_bytes(bytes(range(128, 256)) * 40)  # mostly damaged: still not text
    with pytest.raises(IngestError):
        read_document(tmp_path / "many.txt")


def test_pdf_text_layer_is_read(tmp_path):
    (tmp_path / "beta-careers.pdf").write_bytes(make_pdf([
        "Privacy Policy", "Beta Careers Inc. keeps the data of job seekers safe.", "1. Cookies",
        "We use cookies (small files) to remember your language.", "Revised: 2022-07-15",
    ]))
    doc = read_document(tmp_path / "beta-careers.pdf")
    assert doc.kind == "pdf" and doc.pages == 1 and "remember your language" in doc.text
    meta = infer_metadata(doc)
    assert (meta.id, meta.company, meta.date) == ("beta-careers", "Beta Careers Inc.", "2022-07-15")


@pytest.mark.parametrize("name,content,match", [
    ("empty.txt", b"", "is empty; save the policy text"),
    ("blank.md", b"  \n\n \t\n", "is empty"),
    ("binary.txt", bytes(range(256)) * 64, "is binary, not text; save the policy as"),
    ("nothing.html", b"<html><head><title>x</title><script>var a = 'only a script';</script></head>"
                     b"<body><nav><a href='/'>Home</a></nav><script>render()</script></body></html>",
     "has no policy text .*save the page after it has finished loading"),
    ("scan.pdf", None, "has no text layer .*run OCR"),
    ("fake.pdf", b"not a pdf at all, just words", "is not a PDF"),
    ("policy.docx", b"PK\x03\x04", "cannot read .docx files; save the policy as"),
    ("README", b"text", "cannot read without an extension files|cannot read"),
], ids=["empty", "blank", "binary", "html-without-text", "pdf-without-text", "not-a-pdf", "docx", "no-extension"])
def test_unreadable_files_get_one_line_advice(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(blank_pdf() if content is None else content)
    with pytest.raises(IngestError, match=match) as e:
        collect([path]) and read_document(path)
    assert "\n" not in str(e.value)


def test_files_over_20_mb_are_refused_without_reading_them(tmp_path):
    big = tmp_path / "huge.txt"
    with open(big, "wb") as f:
        f.truncate(21 * 2**20)  # sparse: the size is checked before anything is read
    with pytest.raises(IngestError, match=r"21\.0 MB, over the 20 MB limit; save only the privacy policy"):
        read_document(big)


def test_directories_expand_to_policy_files_and_skip_the_rest(tmp_path):
    (tmp_path / "a.txt").write_text("Alpha Inc. policy text.")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.html").write_text("<p>Beta</p>")
    (tmp_path / "notes.csv").write_text("x")
    (tmp_path / ".hidden.txt").write_text("x")
    files, skipped = collect([tmp_path])
    assert [f.name for f in files] == ["a.txt", "b.html"]
    assert len(skipped) == 1 and "notes.csv" in skipped[0]
    with pytest.raises(IngestError, match="does not exist"):
        collect([tmp_path / "missing.txt"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(IngestError, match="no policy files"):
        collect([tmp_path / "empty"])


def test_metadata_of_the_shipped_policies_is_inferred_from_their_text():
    expected = {
        "en-japan": ("en Japan Inc.", "2020-03-09"),
        "gaijin-poole": ("INNTEGRA, Co., Ltd.", None),
        "highly-skilled-japan": ("Highly Skilled Japan", "2020-09-01"),
        "jacces": ("Japan Association of Career Course and Employment Support", "2023-08-31"),
        "japanwork": ("JapanWork, Inc.", "2019-05-29"),
    }
    for pid, (company, date) in expected.items():
        meta = infer_metadata(read_document(DEFAULT_CORPUS / f"{pid}.txt"))
        assert (meta.id, meta.company, meta.date) == (pid, company, date)
    assert "JACCES" in infer_metadata(read_document(DEFAULT_CORPUS / "jacces.txt")).aliases


@pytest.mark.parametrize("text,date", [
    ("制定日：2019年4月1日\n改定日：2023年10月1日", "2023-10-01"),
    ("令和5年4月1日 改定", "2023-04-01"),
    ("Effective July 20, 2012 (last updated October 08, 2013)", "2013-10-08"),
    ("Last update 1st September 2020", "2020-09-01"),
    ("Enacted: 2019/05/29", "2019-05-29"),
    ("Please call us about order 2020-01-01 anytime you like", None),
])
def test_dates(text, date):
    assert infer_date(text) == date


def test_japanese_page_in_a_form_with_collapsed_sections_keeps_the_policy_and_drops_menus(tmp_path):
    """ASP.NET pages wrap the body in a <form>; policies often sit in collapsed accordion sections;
    menus and a table of contents are links, not policy text."""
    page = """<html><head><meta charset="shift_jis"><title>個人情報保護方針｜さくら求人</title></head><body>
<form id="form1"><div id="header"><ul class="menu"><li><a href="/">トップ</a></li><li><a href="/jobs">求人検索</a></li></ul></div>
<div id="content"><h2>個人情報保護方針</h2><ul class="toc"><li><a href="#a">利用目的</a></li><li><a href="#b">第三者提供</a></li></ul>
<p>株式会社さくら求人（以下「当社」）は、求職者の個人情報を適切に取り扱います。当社は個人情報の保護に関する法律を遵守し、取得した個人情報を利用目的の範囲内で利用します。</p>
<div class="accordion" style="display:none"><h3>第三者提供</h3><p>当社は、法令に基づく場合を除き、ご本人の同意を得ることなく個人情報を第三者に提供しません。ただし、応募先企業への応募書類の提供はご本人の応募操作をもって同意とみなします。</p></div>
<table><tr><th>項目</th><th>保存期間</th></tr><tr><td>履歴書</td><td>3年</td></tr></table></div>
<div style="display:none"><a href="/a">メニュー1</a><a href="/b">メニュー2</a></div><input type="hidden" name="__VIEWSTATE" value="abc"></form></body></html>"""
    (tmp_path / "sakura.html").write_bytes(page.encode("shift_jis"))
    doc = read_document(tmp_path / "sakura.html")
    assert "# 第三者提供" in doc.text.split("\n") and "同意を得ることなく個人情報を第三者に提供しません" in doc.text
    assert "履歴書 | 3年" in doc.text
    for dropped in ("トップ", "求人検索", "利用目的\n", "メニュー1", "abc"):
        assert dropped not in doc.text
    assert infer_metadata(doc).company == "さくら求人"
