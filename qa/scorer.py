"""The answer-sentence scorer: how likely each sentence of a cited passage is to hold the answer.

A logistic regression over features the engine already has for every sentence of a retrieved passage
(the trained encoder's question-sentence cosine, word overlap, length, position, the passage's fused
score and rank). Chosen over a small cross-encoder by measurement (issue 13): a 2-layer MiniLM
cross-encoder costs ~24 ms for 6 pairs on these CPUs, over the whole ~8 ms budget, while this costs
~0.1 ms a passage and its output is a calibrated probability, which the engine uses as an abstention
signal (reranking the top passages and choosing the highlight by it are measured settings, off).

The weights are a few numbers in a JSON file under index/trained/<name>/ (written by
`policyqa train --scorer`, qa.scorer_train), with model.json recording its sha256, checked at load.
numpy only.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from index.errors import PolicyQAError
from index.lexical import bm25_idf
from index.store import StoredIndex
from index.trained import file_sha256
from qa.highlight import SHORT_SENTENCE, sentence_rows, token_set

FORMAT = "policyqa-sentence-scorer"
DEFAULT_SCORER = "policyqa/sentence-scorer-v4"
SCORER_DIR = Path(__file__).resolve().parents[1] / "index" / "trained"
WEIGHTS = "weights.json"
MODEL_JSON = "model.json"

# One row per sentence; the order is the weights' order (weights.json names them, and load checks).
FEATURES = (
    "cosine",  # question vs sentence, the index's encoder
    "cosine_gap",  # cosine minus the passage's best sentence cosine (0 for the best)
    "neighbour_cosine",  # the better cosine of the sentence before / after (0 at an end)
    "overlap",  # shared key words / sqrt(question key words)
    "coverage",  # share of the question's key words in the sentence
    "idf_coverage",  # the same weighted by each word's inverse document frequency in the index
    "colon",  # ends with a colon: introduces the list that answers ("we collect the following:")
    "short",  # under 40 characters: a title line or list label
    "log_chars",
    "first",  # the passage's first sentence
    "position",  # 0 .. 1 through the passage
    "log_sentences",  # sentences in the passage
    "passage_score",  # the fused retrieval score of the passage
    "passage_gap",  # its score minus the top passage's
    "passage_rank",  # 0 for the top passage, capped at 4
)


class ScorerError(PolicyQAError):
    """The shipped sentence scorer is missing, damaged (checksum) or of another format."""


def inverse_document_frequencies(index: StoredIndex) -> dict[str, float]:
    """BM25's idf of every term of the index (its passages are the documents)."""
    idf = bm25_idf(index.bm25.shape[0], np.diff(index.bm25.tocsc().indptr))
    return {term: float(idf[col]) for term, col in index.vocab.items()}


def passage_features(index: StoredIndex, passage_row: int, query_vector: np.ndarray, question_tokens: set[str],
                     passage_score: float, top_score: float, rank: int,
                     idf: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sentence spans (n, 2), cosines (n,), features (n, len(FEATURES))) of one passage's sentences;
    `idf` = inverse_document_frequencies(index), computed once per index."""
    lo, hi = sentence_rows(index, passage_row)
    spans = index.sentence_spans[lo:hi]
    n = hi - lo
    X = np.zeros((n, len(FEATURES)), dtype=np.float64)
    if n == 0:
        return spans, np.zeros(0, np.float32), X
    text = index.policies[index.passages[passage_row].policy_id].text
    cosine = index.sentence_embeddings[lo:hi] @ query_vector
    padded = np.concatenate([[-1.0], cosine, [-1.0]])
    neighbour = np.maximum(padded[:-2], padded[2:])
    q = len(question_tokens)
    sets = [question_tokens & token_set(text[s:e]) for s, e in spans]
    shared = np.array([len(x) for x in sets], dtype=np.float64)
    idf = idf or {}
    weight = sum(idf.get(t, 0.0) for t in question_tokens)
    chars = (spans[:, 1] - spans[:, 0]).astype(np.float64)
    X[:, 0] = cosine
    X[:, 1] = cosine - cosine.max()
    X[:, 2] = np.maximum(neighbour, 0.0)
    X[:, 3] = shared / math.sqrt(q) if q else 0.0
    X[:, 4] = shared / q if q else 0.0
    X[:, 5] = [sum(idf.get(t, 0.0) for t in x) / weight for x in sets] if weight > 0 else 0.0
    X[:, 6] = [text[e - 1] == ":" for s, e in spans]
    X[:, 7] = chars < SHORT_SENTENCE
    X[:, 8] = np.log1p(chars)
    X[0, 9] = 1.0
    X[:, 10] = np.arange(n) / max(1, n - 1)
    X[:, 11] = math.log(n)
    X[:, 12] = passage_score
    X[:, 13] = passage_score - top_score
    X[:, 14] = min(rank, 4)
    return spans, cosine, X


@dataclass(frozen=True)
class SentenceScorer:
    """Standardise, then a logistic regression: P(the sentence holds the answer)."""

    name: str
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    # The encoder whose cosines it was fitted on (model.json's "encoder"; None: not recorded). Its features
    # read that encoder's cosines, so the engine turns the scorer off over an index built by another model.
    encoder: str | None = None

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        z = ((X - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))

    def to_dict(self) -> dict:
        # Rounded: the last bits vary with BLAS summation order, and the same seed must write the same bytes.
        def rounded(values) -> list[float]:
            return [round(float(v), 9) for v in values]

        return {"format": FORMAT, "name": self.name, "features": list(FEATURES), "mean": rounded(self.mean),
                "scale": rounded(self.scale), "coef": rounded(self.coef), "intercept": round(float(self.intercept), 9)}

    @classmethod
    def from_dict(cls, d: dict) -> "SentenceScorer":
        if d.get("format") != FORMAT:
            raise ScorerError("not a PolicyQA sentence scorer")
        if list(d["features"]) != list(FEATURES):
            raise ScorerError(f"scorer {d.get('name')!r} was trained on other features than this PolicyQA computes; "
                              "retrain it with `policyqa train --scorer`")
        return cls(d["name"], np.asarray(d["mean"], float), np.asarray(d["scale"], float),
                   np.asarray(d["coef"], float), float(d["intercept"]))


def fit(X: np.ndarray, y: np.ndarray, name: str, l2: float = 1.0, iterations: int = 50,
        weights: np.ndarray | None = None) -> SentenceScorer:
    """L2-regularised logistic regression by Newton's method (deterministic; a few milliseconds);
    `weights` weighs each row's loss (default 1)."""
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    r = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    mean = X.mean(0)
    scale = X.std(0)
    scale[scale < 1e-9] = 1.0
    Z = np.hstack([(X - mean) / scale, np.ones((len(X), 1))])
    w = np.zeros(Z.shape[1])
    penalty = np.full(Z.shape[1], l2)
    penalty[-1] = 0.0  # the intercept is not shrunk
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(Z @ w, -30, 30)))
        grad = Z.T @ (r * (p - y)) + penalty * w
        hess = (Z * (r * p * (1 - p))[:, None]).T @ Z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return SentenceScorer(name, mean, scale, w[:-1], float(w[-1]))


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of 0/1 labels `y` under probabilities `p`."""
    p = np.clip(np.asarray(p, float), 1e-12, 1 - 1e-12)
    y = np.asarray(y, float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))) if len(y) else float("nan")


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Share-weighted mean |mean probability - share positive| over equal-width probability bins."""
    p = np.asarray(p, float)
    y = np.asarray(y, float)
    if not len(p):
        return float("nan")
    which = np.minimum((p * bins).astype(int), bins - 1)
    return float(sum(abs(p[which == b].mean() - y[which == b].mean()) * (which == b).sum()
                     for b in range(bins) if (which == b).any()) / len(p))


def scorer_directory(name: str) -> Path:
    """index/trained/<last part of the name>, or `name` itself when it is a directory holding model.json."""
    if (Path(name) / MODEL_JSON).is_file():
        return Path(name)
    return SCORER_DIR / name.rsplit("/", 1)[-1]


@lru_cache(maxsize=8)
def load_scorer(name: str = DEFAULT_SCORER) -> SentenceScorer:
    """The scorer `name` (shipped, or a directory), its weights checked against model.json's sha256."""
    directory = scorer_directory(name)
    try:
        spec = json.loads((directory / MODEL_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ScorerError(f"no sentence scorer {name!r} ({directory / MODEL_JSON}: {e}); "
                          "reinstall PolicyQA or run `policyqa train --scorer`") from e
    if spec.get("format") != FORMAT:
        raise ScorerError(f"{directory / MODEL_JSON} is not a PolicyQA sentence scorer")
    for file, digest in spec.get("files", {}).items():
        path = directory / file
        if not path.is_file() or file_sha256(path) != digest:
            raise ScorerError(f"{path} is missing or does not match its sha256 in {MODEL_JSON}; "
                              "reinstall PolicyQA or retrain with `policyqa train --scorer`")
    if WEIGHTS not in spec.get("files", {}):
        raise ScorerError(f"{directory / MODEL_JSON} lists no {WEIGHTS}")
    scorer = SentenceScorer.from_dict(json.loads((directory / WEIGHTS).read_text(encoding="utf-8")))
    return replace(scorer, encoder=spec.get("data", {}).get("encoder"))


def scorer_for(name: str | None, encoder_name: str) -> SentenceScorer | None:
    """The scorer `name` when it may read `encoder_name`'s cosines, else None (no scorer asked for, or
    one fitted on another encoder: its probabilities would not mean what they were trained to)."""
    scorer = load_scorer(name) if name else None
    return scorer if scorer is not None and scorer.encoder in (None, encoder_name) else None
