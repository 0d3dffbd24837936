"""Issue #11's siblings: the same kinds of input as its cases, through doors the first round did not
try. An index whose files parse but whose values are out of range (rows, offsets, vocabulary columns)
is refused on load, not answered wrongly or with a crash; an index directory whose name is not UTF-8
is written and read like any other."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from index.store import CURRENT, IndexLoadError, live_version, read_index
from qa.cli import main
from test_harden_index import QUESTION, one_line_error
from test_ingest_library import _one_model, idx  # noqa: F401  (the session's model for in-process CLI calls; a copy of the index)


def _rewrite_passages(version, change) -> None:
    lines = [json.loads(line) for line in (version / "passages.jsonl").read_text(encoding="utf-8").split("\n") if line]
    change(lines)
    (version / "passages.jsonl").write_text("".join(json.dumps(d) + "\n" for d in lines), encoding="utf-8")


def _rewrite_npz(path, key, change) -> None:
    with np.load(path) as f:
        arrays = dict(f)
    arrays[key] = change(arrays[key])
    with open(path, "wb") as f:
        np.savez(f, **arrays)


DAMAGE = {
    "vocabulary that is a list": lambda v: (v / "lexical_vocab.json").write_text("[]"),
    "vocabulary columns that are text": lambda v: (v / "lexical_vocab.json").write_text(json.dumps(
        {w: "x" for w in json.loads((v / "lexical_vocab.json").read_text())})),
    "vocabulary columns past the matrix": lambda v: (v / "lexical_vocab.json").write_text(json.dumps(
        {w: 10**9 for w in json.loads((v / "lexical_vocab.json").read_text())})),
    "passage offsets past the text": lambda v: _rewrite_passages(v, lambda rows: [r.update(start=10**9, end=10**9 + 5) for r in rows]),
    "passage policy id that is a list": lambda v: _rewrite_passages(v, lambda rows: rows[0].update(policy_id=["japanwork"])),
    "sentence rows past the passages": lambda v: _rewrite_npz(v / "sentences.npz", "passage", lambda a: a * 0 + 999),
    "sentence spans past their passages": lambda v: _rewrite_npz(v / "sentences.npz", "spans", lambda a: a * 0 + 10**8),
    "heading rows below -1": lambda v: _rewrite_npz(v / "headings.npz", "passage", lambda a: a * 0 - 5),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_index_values_out_of_range_are_refused_on_load(idx, capsys, damage):
    DAMAGE[damage](live_version(idx))
    with pytest.raises(IndexLoadError, match="inconsistent"):
        read_index(idx)
    err = one_line_error(capsys, main(["ask", QUESTION, "--index", str(idx)]), 1)
    assert "inconsistent" in err and "unexpected" not in err


def test_index_directory_named_with_bytes_that_are_not_utf8(idx, tmp_path, capsys):
    """faiss, tokenizers and onnxruntime take only UTF-8 paths; the index reads and writes through bytes."""
    odd = tmp_path / os.fsdecode(b"index-\xff")
    idx.rename(odd)
    policy = tmp_path / "acme.txt"
    policy.write_text("Acme Inc. privacy policy\n\n1. Acme keeps your email address to send you newsletters.\n")
    assert main(["add", str(policy), "--index", str(odd), "--quiet"]) == 0
    assert main(["ask", "does Acme keep my email address?", "--index", str(odd), "--json"]) == 0
    out, err = capsys.readouterr()
    answer = json.loads(out.splitlines()[-1])
    assert answer["citations"] and answer["citations"][0]["company"].startswith("Acme"), answer
    assert "unusable" not in err  # the ONNX query encoder loaded too (no fallback)
    assert (odd / CURRENT).exists()
