"""Tiny reranker training runs on the real packaged MiniLM weights: both losses (pairs with
binary cross-entropy, ranked lists with LambdaLoss) from an examples file written by
``--export``'s writer, a shortened stack (``--layers``), and the result loading as a
cross-encoder that the app's reranker can use."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from rag.train import reranker
from rag.train.data import Pair, RankedList

pytestmark = pytest.mark.slow

FACTS = [
    ("when was the zorbel bridge opened", "The Zorbel bridge was opened in 1931 by the mayor."),
    ("who painted the quillan mural", "The Quillan mural was painted by Ada Fenwick in oils."),
    ("what colour is the marrow tram", "The Marrow tram is painted bright green every spring."),
]
FILLER = ["Bees make honey in hives.", "The river floods every spring.", "Chess has sixty-four squares."]


def _run(tmp_path: Path, examples: Sequence[reranker.Example], *extra: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "examples.json.gz"
    reranker.save_examples(data, examples, {"nfcorpus": {"queries": 0}, "squad": {"questions": len(FACTS)}})
    out = tmp_path / "model"
    args = ["--examples", str(data), "--out", str(out), "--max-steps", "2", "--device", "cpu", "--threads", "2"]
    assert reranker.main([*args, *extra]) == 0
    return out


def test_pairs_train_a_shortened_cross_encoder_that_the_app_loads(tmp_path: Path) -> None:
    from rag.config import Settings
    from rag.rerank import CrossEncoderReranker

    pairs = [Pair(q, p, 1.0) for q, p in FACTS] + [Pair(q, f, 0.0) for q, _ in FACTS for f in FILLER]
    out = _run(tmp_path, pairs, "--layers", "2", "--batch-size", "4")
    info = json.loads((out / "training.json").read_text())
    assert info["layers"] == 2 and info["steps"] == 2 and info["pairs"] == len(pairs)
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 2
    assert (out / "README.md").is_file()
    model = CrossEncoderReranker(Settings(reranker_model=str(out), device="cpu"))
    scores = model.score(FACTS[0][0], [FACTS[0][1], FILLER[0]])
    assert len(scores) == 2 and all(isinstance(s, float) for s in scores)


def test_ranked_lists_train_with_lambda_loss(tmp_path: Path) -> None:
    lists = [RankedList(q, (p, *FILLER), (1.0, 0.0, 0.0, 0.0)) for q, p in FACTS]
    out = _run(tmp_path, lists, "--list-batch-size", "2", "--batch-size", "8")
    info = json.loads((out / "training.json").read_text())
    assert info["loss"].startswith("LambdaLoss") and info["steps"] == 2 and info["pairs"] == 12
    assert info["layers"] == 6
    assert "LambdaLoss" in (out / "README.md").read_text()


def test_a_file_mixing_pairs_and_lists_is_refused(tmp_path: Path) -> None:
    mixed: list[reranker.Example] = [Pair("q", "p", 1.0), RankedList("q", ("p", "n"), (1.0, 0.0))]
    with pytest.raises(SystemExit, match="mixes pairs and ranked lists"):
        _run(tmp_path, mixed)


def test_a_student_distilled_from_a_teacher_moves_toward_its_logits(tmp_path: Path) -> None:
    """``--teacher``: a shortened student learns the teacher's logits (MSE), the recipe for a
    faster reranker that keeps the shipped one's judgments."""
    from rag.train.reranker import teacher_logits, truncate_layers

    pairs = [Pair(q, p, 1.0) for q, p in FACTS] + [Pair(q, f, 0.0) for q, _ in FACTS for f in FILLER]
    teacher = _run(tmp_path / "t", pairs, "--layers", "2", "--batch-size", "4", "--lr", "1e-3", "--max-steps", "6")
    texts = [(p.query, p.passage) for p in pairs]
    target = teacher_logits(teacher, texts, 160, "cpu", bf16=False)

    def distance(model_dir: Path, layers: int = 0) -> float:
        import torch
        from sentence_transformers.cross_encoder import CrossEncoder

        model = CrossEncoder(str(model_dir), device="cpu", model_kwargs={"dtype": torch.float32})
        truncate_layers(model, layers)
        got = model.predict(texts, activation_fn=torch.nn.Identity(), convert_to_numpy=True)
        return float(sum((g - t) ** 2 for g, t in zip(got.tolist(), target, strict=True)) / len(target))

    before = distance(teacher, layers=1)  # the student's start: the teacher's first layer
    student = _run(tmp_path / "s", pairs, "--base", str(teacher), "--layers", "1", "--teacher", str(teacher),
                   "--batch-size", "4", "--lr", "1e-3", "--head-lr", "1e-3", "--max-steps", "12")  # fmt: skip
    info = json.loads((student / "training.json").read_text())
    assert info["loss"].startswith("MSELoss") and info["teacher"]["model"] == str(teacher) and info["layers"] == 1
    assert distance(student) < before


def test_distillation_refuses_ranked_lists(tmp_path: Path) -> None:
    lists: list[reranker.Example] = [RankedList(q, (p, *FILLER), (1.0, 0.0, 0.0, 0.0)) for q, p in FACTS]
    with pytest.raises(SystemExit, match="--teacher distils on"):
        _run(tmp_path, lists, "--teacher", "some/teacher")
