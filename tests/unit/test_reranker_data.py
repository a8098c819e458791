"""Reranker training pairs from NFCorpus-style qrels (positives, mined and random negatives), its
model card, and the command line whose defaults are the shipped model's recorded recipe."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from rag.config import REPO_ROOT
from rag.train import reranker, reranker_recipe
from rag.train.data import nfcorpus_pairs
from rag.train.reranker_card import write_card

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
    assert "fused with the hybrid order by RRF (`Tuning.rerank_keep_first_stage=1.0`)" in card
    assert "**Status: on by default**" in card and "from 0.3524 to 0.3584" in card
    worse = {**metrics, "settings": {"rerank_top_n": 30, "rerank_keep_first_stage": 0.0}}
    worse["modes"] = {**metrics["modes"], "hybrid+rerank": {"metrics": {"ndcg@10": 0.3464}}}
    card = write_card(tmp_path, worse).read_text()
    assert "**Status: opt-in.**" in card and "the reranker's order alone" in card


def test_model_card_of_a_gpu_run(tmp_path: Path) -> None:
    info = {
        "base": "models/reranker", "nfcorpus": {"split": "train", "queries": 2590, "pairs": 20288},
        "squad": {"train_articles": 32, "questions": 1000, "pairs": 4000, "held_out_dev_articles": ["Oxygen"]},
        "hard_negatives": 2, "random_negatives": 1, "loss": "BCE", "pairs": 24288, "positives": 6072, "steps": 900,
        "batch_size": 16, "learning_rate": 5e-5, "max_length": 160, "seed": 14, "train_seconds": 80.2,
        "mining_cached": True, "device": "NVIDIA H100 80GB HBM3 (bf16 autocast)", "torch_threads": 4,
        "train_loss": 0.8,
    }  # fmt: skip
    (tmp_path / "training.json").write_text(json.dumps(info))
    card = write_card(tmp_path).read_text()
    assert card.startswith("# Grounded reranker (MiniLM cross-encoder, 6 layers)")
    assert "Trained on a GPU (`--device cuda`)" in card and "Trained here, on CPU" not in card


# --- the command line reproduces the shipped model ----------------------------------------------

SHIPPED = REPO_ROOT / "models" / "reranker"


def recorded(stage: dict[str, Any]) -> dict[str, Any]:
    """The values one stage of training.json records, under the command line's names. The first
    stage's record predates positives_per_query, mine_depth and ranked_positives_only (then 1, 30
    and off: the code had no such settings yet)."""
    return {
        "nf_queries": stage["nfcorpus"]["queries"],
        "ranked_positives": stage["nfcorpus"].get("ranked_positives_only", False),
        "squad_paragraphs": stage["squad"]["questions"],
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


def cli(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in recorded(json.loads((SHIPPED / "training.json").read_text()))}


def test_the_default_command_line_is_the_shipped_models_recorded_recipe() -> None:
    """`make train-reranker` (no flags) trains with exactly what models/reranker/training.json
    records: its last stage's settings, into models/reranker, with the loss it was trained with."""
    record = json.loads((SHIPPED / "training.json").read_text())
    args = reranker_recipe.parse_args([])
    assert cli(args) == recorded(record)
    assert record["loss"] == reranker_recipe.BCE
    assert (args.recipe, args.stage, Path(args.out)) == (SHIPPED / "training.json", 0, SHIPPED)


def test_every_recorded_stage_has_its_own_settings_and_starts_from_the_one_before() -> None:
    record = json.loads((SHIPPED / "training.json").read_text())
    stages = reranker_recipe.recorded_stages(record)
    assert len(stages) == 3 and stages[-1] is record
    assert "continued_from" not in stages[0] and stages[0]["base"].startswith("sentence-transformers/all-MiniLM")
    for n, stage in enumerate(stages, start=1):
        args = reranker_recipe.parse_args(["--stage", str(n)])
        assert cli(args) == recorded(stage), f"stage {n}"
        assert stage["loss"] == reranker_recipe.BCE
        assert args.base == ("" if n == 1 else str(reranker_recipe.stage_dir(n - 1)))
        assert Path(args.out) == (SHIPPED if n == len(stages) else reranker_recipe.stage_dir(n))


def test_a_run_without_stage_trains_every_stage_from_the_previous_ones_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[argparse.Namespace] = []

    def train(args: argparse.Namespace) -> dict[str, object]:
        runs.append(args)
        return {"steps": args.max_steps}

    monkeypatch.setattr(reranker, "train", train)
    monkeypatch.setattr(reranker, "write_card", lambda out, metrics=None: out / "README.md")
    assert reranker.main(["--out", str(tmp_path / "model"), "--threads", "2"]) == 0
    assert [r.stage for r in runs] == [1, 2, 3]
    assert [r.base for r in runs] == ["", str(reranker_recipe.stage_dir(1)), str(reranker_recipe.stage_dir(2))]
    assert [r.out for r in runs] == [
        str(reranker_recipe.stage_dir(1)),
        str(reranker_recipe.stage_dir(2)),
        str(tmp_path / "model"),
    ]
    assert [r.threads for r in runs] == [2, 2, 2]  # a flag given applies to every stage
    stages = reranker_recipe.recorded_stages(json.loads((SHIPPED / "training.json").read_text()))
    assert [(r.lr, r.seed) for r in runs] == [(s["learning_rate"], s["seed"]) for s in stages]
    with pytest.raises(SystemExit):
        reranker_recipe.parse_args(["--base", "somewhere"])  # --base only with --stage
