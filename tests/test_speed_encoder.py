"""The fast ask path: the ONNX query encoder exported at index time agrees with sentence-transformers,
gives the same answers, is what Engine.open picks, and keeps torch off the ask path.
(Timings live in eval/scale_bench.py, not in tests.)"""
from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from eval.gold import load_questions

import onnx  # noqa: F401  both are dependencies: a missing one must fail here, not skip
import onnxruntime  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "sentence_transformers")


@pytest.fixture(scope="module")
def stored(default_index):
    from index.store import read_index

    return read_index(default_index)


@pytest.fixture(scope="module")
def onnx_encoder(stored):
    from index.onnx_encoder import OnnxQueryEncoder

    assert stored.query_encoder_dir is not None, "build_index did not ship an ONNX query encoder"
    return OnnxQueryEncoder(stored.query_encoder_dir)


def test_index_ships_the_query_encoder(stored, onnx_encoder):
    assert stored.manifest["query_encoder"]["format"] == "onnx"
    assert onnx_encoder.name == stored.model
    assert onnx_encoder.dimension == stored.manifest["model"]["dimension"]


def test_onnx_vectors_agree_with_sentence_transformers(encoder, onnx_encoder):
    questions = [row["question"] for row in load_questions()]
    reference = encoder.encode(questions)
    one_by_one = np.stack([onnx_encoder.encode([q])[0] for q in questions])  # as `ask` encodes
    batched = onnx_encoder.encode(questions)  # padded batches, as an index build would
    for got in (one_by_one, batched):
        assert got.dtype == np.float32 and got.shape == reference.shape
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        cosine = np.sum(reference * got, axis=1)
        worst = int(np.argmin(cosine))
        assert cosine[worst] >= 0.999, f"cosine {cosine[worst]:.6f} on {questions[worst]!r}"


def test_engine_answers_identically_with_either_encoder(engine, onnx_encoder):
    from qa.engine import Engine

    fast = Engine(engine.index, onnx_encoder, engine.settings)
    for row in load_questions():
        history = row.get("history") or None
        want = engine.ask(row["question"], history=history)
        got = fast.ask(row["question"], history=history)
        cited = lambda a: [(c.policy_id, c.section, c.highlight_start, c.highlight_end) for c in a.citations]
        assert cited(got) == cited(want), row["id"]
        assert got.abstained == want.abstained, row["id"]
        assert got.answer == want.answer, row["id"]


def test_engine_open_picks_onnx_and_falls_back(default_index, tmp_path):
    from index.embed import Encoder
    from qa.engine import Engine
    from index.onnx_encoder import OnnxQueryEncoder

    assert isinstance(Engine.open(default_index).encoder, OnnxQueryEncoder)
    # A damaged export: the engine still answers, through sentence-transformers.
    copy = tmp_path / "index"
    shutil.copytree(default_index, copy)
    version = next(copy.glob("v-*"))
    (version / "query_encoder" / "model.onnx").unlink()
    (version / "query_encoder" / "model.onnx").write_bytes(b"not a model")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine = Engine.open(copy)
    assert isinstance(engine.encoder, Encoder)
    assert any("ONNX query encoder unusable" in str(w.message) for w in caught)
    assert engine.ask("can JapanWork share my data with partners?").citations


def test_export_is_shared_not_copied(default_index, tmp_path):
    """Every index built with the model links the one cached export: a rebuild costs no 90 MB write."""
    from index.onnx_export import MODEL_FILE, cache_root

    model = next(default_index.glob("v-*")) / "query_encoder" / MODEL_FILE
    if model.stat().st_nlink < 2:
        pytest.skip("index and encoder cache are on different file systems (copied, not linked)")
    cached = [p for p in cache_root().glob(f"*/{MODEL_FILE}") if p.stat().st_ino == model.stat().st_ino]
    assert cached, "the index's model.onnx is not a link to the cached export"


def _imports_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint('LOADED:' + ' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("LOADED:")][-1]
    return set(line[len("LOADED:"):].split())


def test_help_and_ask_do_not_import_torch(default_index):
    assert _imports_after(
        "from qa.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    ) == set()
    assert _imports_after(
        "from qa.cli import main\ntry:\n    main(['ask', '--help'])\nexcept SystemExit:\n    pass"
    ) == set()
    ask = f"from qa.cli import main\nassert main(['ask', 'can JapanWork share my data?', '--index', {str(default_index)!r}]) == 0"
    assert _imports_after(ask) == set()
