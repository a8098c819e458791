"""A tiny reranker training run on the real packaged MiniLM weights (the shipped recipe: binary
cross-entropy on pairs, here two steps on a handful of pairs instead of mined data), and the
result loading as a cross-encoder that the app's reranker can use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.train import reranker, reranker_card, reranker_recipe
from rag.train.data import Pair

pytestmark = pytest.mark.slow

FACTS = [
    ("when was the zorbel bridge opened", "The Zorbel bridge was opened in 1931 by the mayor."),
    ("who painted the quillan mural", "The Quillan mural was painted by Ada Fenwick in oils."),
    ("what colour is the marrow tram", "The Marrow tram is painted bright green every spring."),
]
FILLER = ["Bees make honey in hives.", "The river floods every spring.", "Chess has sixty-four squares."]


def test_pairs_train_a_cross_encoder_that_the_app_loads(tmp_path: Path) -> None:
    from rag.config import Settings
    from rag.rerank import CrossEncoderReranker

    pairs = [Pair(q, p, 1.0) for q, p in FACTS] + [Pair(q, f, 0.0) for q, _ in FACTS for f in FILLER]
    out = tmp_path / "model"
    args = reranker_recipe.parse_args(["--stage", "1", "--out", str(out), "--max-steps", "2", "--batch-size", "4",
                                       "--device", "cpu", "--threads", "2"])  # fmt: skip
    info = reranker.train(args, pairs)
    reranker_card.write_card(out)
    assert info["steps"] == 2 and info["pairs"] == len(pairs) and info["positives"] == len(FACTS)
    assert json.loads((out / "training.json").read_text())["loss"] == reranker_recipe.BCE
    assert (out / "README.md").is_file() and not (tmp_path / "model.training").exists()
    model = CrossEncoderReranker(Settings(reranker_model=str(out), device="cpu"))
    scores = model.score(FACTS[0][0], [FACTS[0][1], FILLER[0]])
    assert len(scores) == 2 and all(isinstance(s, float) for s in scores)
