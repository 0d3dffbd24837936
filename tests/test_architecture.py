"""The shapes other changes build on, without loading a model: the typed Answer's JSON round trip, the
error root's two wordings, the manifest's model record and its refusal of a mismatch, validated
settings, loud ablations, and one definition of the options shared by `policyqa`, `python app.py`
and `python -m eval`."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from index.errors import IndexLoadError, PolicyQAError, UsageError
from index.models import TextEncoder, check_models, manifest_models
from index.types import Answer, Citation


def _answer(error: str | None = None) -> Answer:
    cite = Citation(n=1, policy_id="japanwork", company="JapanWork", section="Sharing › Partners", text="We may share…",
                    start=10, end=23, highlight="We may share", highlight_start=10, highlight_end=22, score=0.8123)
    return Answer("can they share?", "JapanWork says: “We may share” [1]", False, ["japanwork"], [cite],
                  {"encode": 1.23456, "total": 2.5}, error=error)


def test_answer_round_trips_through_json():
    import json

    answer = _answer()
    d = json.loads(json.dumps(answer.to_dict()))
    again = Answer.from_dict(d)
    assert again.citations == answer.citations and isinstance(again.citations[0], Citation)
    assert again.to_dict() == answer.to_dict() and "error" not in d  # the JSON contract is unchanged
    assert again.timings_ms == {"encode": 1.235, "total": 2.5}  # to_dict rounds to microseconds


def test_a_refused_question_is_an_answer_with_its_reason_and_timings():
    refused = Answer.refused("", "the question is empty", {"total": 0.5})
    d = refused.to_dict()
    assert d["error"] == "the question is empty" and d["citations"] == [] and d["timings_ms"] == {"total": 0.5}
    assert Answer.from_dict(d) == refused


def test_every_library_error_is_under_the_root_with_its_exit_code():
    from index.corpus import CorpusError
    from index.embed import ModelError
    from index.ingest import IngestError
    from index.library import IndexBusyError, LibraryError
    from index.onnx_encoder import QueryEncoderError
    from index.onnx_export import ExportError
    from qa.engine import QuestionError
    from qa.retrieve import SettingsError

    for cls in (CorpusError, ModelError, IngestError, IndexBusyError, LibraryError, QueryEncoderError, ExportError,
                IndexLoadError, QuestionError, SettingsError):
        assert issubclass(cls, PolicyQAError), cls
    assert QuestionError("x").exit_code == 2 and issubclass(QuestionError, (UsageError, ValueError))
    assert CorpusError("x").exit_code == 1 and IndexLoadError("x").exit_code == 1  # as before: a state to repair
    assert not issubclass(IndexBusyError, CorpusError)  # a busy index is not a bad corpus


def test_one_error_two_wordings():
    e = PolicyQAError("policy id 'x' is taken", hint="add it with --id x-2", page="policy id 'x' is taken; use the Id x-2")
    assert str(e) == "policy id 'x' is taken; add it with --id x-2" and e.for_page() == "policy id 'x' is taken; use the Id x-2"
    plain = PolicyQAError("no index at /srv/idx")
    assert str(plain) == plain.for_page() == "no index at /srv/idx"


def test_busy_index_tells_the_shell_and_the_page_apart(tmp_path):
    from index.library import IndexBusyError, index_lock

    with index_lock(tmp_path):
        with pytest.raises(IndexBusyError) as caught:
            with index_lock(tmp_path, wait=0):
                pass
    assert "--wait" in str(caught.value) and str(tmp_path) in str(caught.value)
    assert "--wait" not in caught.value.for_page() and str(tmp_path) not in caught.value.for_page()


@dataclass
class Named:
    """Only a name and a dimension: the manifest check reads nothing else (no vectors are made)."""

    name: str
    dim: int
    loaded: bool = field(default=False)

    @property
    def dimension(self) -> int:
        return self.dim

    def load(self) -> None:
        self.loaded = True

    def encode(self, texts, kind="passage", batch_size=32, progress=False) -> np.ndarray:
        raise AssertionError("not called")


def test_manifest_models_reads_old_and_new_manifests():
    old = {"model": {"name": "m", "dimension": 384}}
    new = {"model": {"name": "m", "dimension": 384}, "models": [{"role": "dense", "name": "m", "dimension": 384},
                                                                  {"role": "multilingual", "name": "e5", "dimension": 384}]}
    assert manifest_models(old) == [{"role": "dense", "name": "m", "dimension": 384}]
    assert [m["role"] for m in manifest_models(new)] == ["dense", "multilingual"]
    assert isinstance(Named("m", 384), TextEncoder)


@pytest.mark.parametrize("encoders, match", [
    ({"dense": Named("other", 384)}, "built with model 'm' as its dense model but 'other' was asked for"),
    ({"dense": Named("m", 768)}, "768-dimensional"),
    ({"multilingual": Named("e5", 384)}, "has no multilingual model"),
])
def test_a_model_mismatch_is_refused(encoders, match):
    manifest = {"models": [{"role": "dense", "name": "m", "dimension": 384}]}
    right = Named("m", 384)
    check_models(manifest, {"dense": right})  # the models that built it: fine, and loaded
    assert right.loaded
    with pytest.raises(IndexLoadError, match=match):
        check_models(manifest, encoders)
    assert not any(e.loaded for e in encoders.values() if e.name == "other")  # a wrong name is refused unloaded


def test_unknown_fusion_is_refused():
    from qa.retrieve import RetrievalSettings, SettingsError

    assert RetrievalSettings(fusion="rrf").fusion == "rrf"
    with pytest.raises(SettingsError, match="unknown fusion 'rff'"):
        RetrievalSettings(fusion="rff")


def test_an_ablation_of_a_vanished_setting_fails_loudly():
    from eval.baselines import ablations
    from qa.retrieve import RetrievalSettings

    @dataclass(frozen=True)
    class SettingsWithoutDiversify:  # as if `diversify` had been removed from qa.engine.Settings
        retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
        resolve_names: bool = True
        off_topic_check: bool = True
        expand_lexical: bool = True

    class Engine:
        settings = SettingsWithoutDiversify()

        def with_settings(self, settings):
            raise AssertionError("no variant is built when one is stale")

    with pytest.raises(AssertionError, match=r"abl:no-diversify \(diversify\)"):
        ablations(Engine())


def _options(parser, *path: str) -> dict:
    for name in path:
        parser = next(a for a in parser._actions if a.dest in ("command", "index_command")).choices[name]
    return {a.dest: (a.default, a.choices) for a in parser._actions if a.dest != "help"}


def test_second_entry_points_parse_the_subcommands_options():
    from qa.cli import parser
    from qa.options import eval_parser, serve_parser

    assert _options(eval_parser()) == _options(parser(), "eval") and "record" in _options(eval_parser())
    assert _options(serve_parser()) == _options(parser(), "serve")
    args = parser().parse_args(["eval", "--record", "--split", "all"])
    assert args.record and args.split == "all"
