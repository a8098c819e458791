"""The model card of the reranker (models/reranker/README.md): what training.json records
(data, starting point and every earlier stage, steps, time) and, when given, the retrieval
evaluation's figures with the status they imply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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
            f"the reranker's order fused with the hybrid order by RRF (`Tuning.rerank_keep_first_stage={keep}`)"
            if keep
            else "the reranker's order alone (`Tuning.rerank_keep_first_stage=0`)"
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
                          f"`Tuning.rerank_keep_first_stage={keep}`): reranking raises {first} from {base:.4f} to "
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
