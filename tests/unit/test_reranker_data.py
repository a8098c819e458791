"""Reranker training pairs from NFCorpus-style qrels: positives, mined and random negatives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag.train.data import nfcorpus_pairs
from rag.train.reranker import write_card

DOCS = ["d0", "d1", "d2", "d3", "d4", "d5"]
TEXTS = [f"text of {d}" for d in DOCS]
QUERIES = {"q": "a question"}
QRELS = {"q": {"d1": 1, "d4": 1, "d5": 1}}
RANKED = {"q": [4, 0, 1, 2]}  # our retriever's order: d4, d0, d1, d2 (d5 judged but not ranked)


def test_judged_documents_are_positives_and_unjudged_ranked_ones_hard_negatives() -> None:
    pairs = nfcorpus_pairs(QUERIES, QRELS, DOCS, TEXTS, RANKED, positives_per_query=3, hard_negatives=1,
                           random_negatives=0)  # fmt: skip
    positives = {p.passage for p in pairs if p.label == 1.0}
    negatives = [p.passage for p in pairs if p.label == 0.0]
    assert positives == {"text of d1", "text of d4", "text of d5"}
    assert negatives == ["text of d0"] * 3  # the best-ranked unjudged document, once per positive


def test_ranked_positives_only_keeps_judged_documents_the_retriever_found_in_rank_order() -> None:
    pairs = nfcorpus_pairs(QUERIES, QRELS, DOCS, TEXTS, RANKED, positives_per_query=3, hard_negatives=1,
                           random_negatives=1, seed=3, ranked_positives_only=True)  # fmt: skip
    positives = [p.passage for p in pairs if p.label == 1.0]
    assert positives == ["text of d4", "text of d1"]  # d5 was judged but never ranked
    judged = {"text of d1", "text of d4", "text of d5"}
    assert all(p.passage not in judged for p in pairs if p.label == 0.0)
    assert len(pairs) == 2 * 3  # each positive: one mined and one random negative


def test_model_card_says_what_training_continued_from_and_how_positives_were_chosen(tmp_path: Path) -> None:
    first = {"base": "MiniLM", "steps": 325, "batch_size": 16, "pairs": 5200, "train_seconds": 686.7,
             "nfcorpus": {"queries": 300}, "squad": {"questions": 1000}}  # fmt: skip
    info = {
        **first,
        "base": "models/reranker",
        "continued_from": first,
        "nfcorpus": {"split": "train", "queries": 2590, "pairs": 20288, "ranked_positives_only": True},
        "squad": {"train_articles": 32, "questions": 1000, "pairs": 4000, "held_out_dev_articles": ["Oxygen"]},
        "positives_per_query": 3, "mine_depth": 30, "hard_negatives": 2, "random_negatives": 1,
        "loss": "BCE", "pairs": 24288, "positives": 6072, "steps": 900, "learning_rate": 1e-4,
        "head_learning_rate": 1e-4, "max_length": 160, "seed": 13, "train_seconds": 1644.9,
        "mining_seconds": 0.7, "mining_cached": True, "device": "cpu", "torch_threads": 2, "train_loss": 0.9,
    }  # fmt: skip
    (tmp_path / "training.json").write_text(json.dumps(info))
    card = write_card(tmp_path).read_text()
    assert "Start: models/reranker, the previous version of this model: 325 steps of 16 on 5200 pairs" in card
    assert "the judged documents our own hybrid retriever ranks highest, within its top 30" in card
    assert "900 steps of 16 (0.59 epoch)" in card
    assert "mining read from .cache/mined" in card


def test_model_card_lists_every_stage_and_states_the_fusion_setting_it_was_measured_with(tmp_path: Path) -> None:
    v1 = {"base": "MiniLM", "steps": 325, "batch_size": 16, "pairs": 5200, "train_seconds": 686.7}
    v2 = {"base": "models/reranker", "steps": 900, "batch_size": 16, "pairs": 24288, "train_seconds": 1644.9,
          "continued_from": v1}  # fmt: skip
    info = {
        "base": "models/reranker", "continued_from": v2, "loss": "BCE", "pairs": 24288, "positives": 6072,
        "steps": 900, "batch_size": 16, "learning_rate": 5e-5, "max_length": 160, "seed": 14,
        "train_seconds": 1637.3, "mining_seconds": 134.8, "device": "cpu", "torch_threads": 2, "train_loss": 0.83,
    }  # fmt: skip
    (tmp_path / "training.json").write_text(json.dumps(info))
    metrics: dict[str, Any] = {
        "dataset": "nfcorpus (test)", "queries": 323, "corpus": {"chunks": 11871},
        "settings": {"rerank_top_n": 30, "rerank_keep_first_stage": 1.0},
        "modes": {"hybrid": {"metrics": {"ndcg@10": 0.3524}}, "hybrid+rerank": {"metrics": {"ndcg@10": 0.3584}}},
    }  # fmt: skip
    card = write_card(tmp_path, metrics).read_text()
    assert "trained in 2 stages: (1) 325 steps of 16 on 5200 pairs" in card
    assert "(2) 900 steps of 16 on 24288 pairs" in card
    assert "134.8 s mining" in card
    assert "fused with the hybrid order by RRF (`RAG_RERANK_KEEP_FIRST_STAGE=1.0`)" in card
    assert "**Status: on by default**" in card and "from 0.3524 to 0.3584" in card
    worse = {**metrics, "settings": {"rerank_top_n": 30, "rerank_keep_first_stage": 0.0}}
    worse["modes"] = {**metrics["modes"], "hybrid+rerank": {"metrics": {"ndcg@10": 0.3464}}}
    card = write_card(tmp_path, worse).read_text()
    assert "**Status: opt-in.**" in card and "the reranker's order alone" in card


def test_model_card_of_a_listwise_gpu_run_on_a_shortened_stack(tmp_path: Path) -> None:
    info = {
        "base": "models/reranker", "continued_from": {"base": "MiniLM", "steps": 325, "batch_size": 16,
                                                      "pairs": 5200, "train_seconds": 686.7},
        "nfcorpus": {"split": "train", "queries": 2590, "pairs": 2111, "ranked_positives_only": True},
        "squad": {"train_articles": 32, "questions": 1379, "pairs": 1379, "held_out_dev_articles": ["Oxygen"]},
        "mine_depth": 30, "random_negatives": 2, "list_size": 16, "layers": 3,
        "loss": "LambdaLoss (NDCG-Loss2++) over lists of 16 passages, 16 lists a step", "pairs": 55840,
        "positives": 10696, "steps": 657, "batch_size": 256, "learning_rate": 5e-5, "max_length": 160,
        "seed": 31, "train_seconds": 158.6, "mining_cached": True, "device": "NVIDIA H100 80GB HBM3 (bf16 autocast)",
        "torch_threads": 4, "train_loss": 0.37,
    }  # fmt: skip
    (tmp_path / "training.json").write_text(json.dumps(info))
    card = write_card(tmp_path).read_text()
    assert card.startswith("# Grounded reranker (MiniLM cross-encoder, 3 layers)")
    assert "trained on a lent GPU" in card and "Trained here, on CPU" not in card
    assert "Only the first 3 of MiniLM's 6 transformer layers are kept" in card
    assert "2111 ranked lists" in card and "up to 16 passages" in card and "1379 lists" in card
    assert "657 steps of 256 (3.01 epoch)" in card
