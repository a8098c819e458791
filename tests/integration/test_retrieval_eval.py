"""The evaluation harness end to end on small slices of the real datasets, and the shipped
reranker on held-out SQuAD articles (real models, real Chroma)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rag.config import REPO_ROOT
from rag.eval.datasets import datasets_dir, read_squad, split_articles

pytestmark = pytest.mark.slow

DATA = datasets_dir()
needs_data = pytest.mark.skipif(not (DATA / "nfcorpus").is_dir(), reason=f"datasets not found at {DATA}")


def _eval(*args: str, home: Path) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "rag.eval", "retrieval", *args, "--json", "--home", str(home)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return dict(json.loads(out.stdout))


@needs_data
def test_nfcorpus_slice_all_modes(tmp_path: Path) -> None:
    r = _eval("--beir", str(DATA / "nfcorpus"), "--split", "test", "--limit-queries", "8", "--limit-docs", "120",
              home=tmp_path / "home")  # fmt: skip
    assert set(r["modes"]) == {"bm25", "dense", "hybrid", "hybrid+rerank"}
    assert r["queries"] == 8 and r["corpus"]["documents"] >= 8
    for mode, m in r["modes"].items():
        assert set(m["metrics"]) == {"ndcg@10", "recall@10", "recall@100", "mrr@10"}, mode
        assert all(0.0 <= v <= 1.0 for v in m["metrics"].values())
        assert m["latency_ms"]["total"]["p50"] > 0
    assert r["modes"]["hybrid"]["metrics"]["ndcg@10"] > 0.1  # a small corpus where the relevant docs are kept
    assert "rerank" in r["modes"]["hybrid+rerank"]["latency_ms"]


@needs_data
def test_squad_recall_of_the_gold_paragraph(tmp_path: Path) -> None:
    r = _eval("--squad", str(DATA / "squad-v1.1" / "dev-v1.1-first40.json"), "--modes", "bm25,hybrid",
              "--limit-queries", "30", "--limit-docs", "150", home=tmp_path / "home")  # fmt: skip
    hybrid = r["modes"]["hybrid"]["metrics"]
    assert set(hybrid) == {"recall@1", "recall@5", "recall@20", "mrr@10"}
    assert hybrid["recall@20"] >= hybrid["recall@5"] >= hybrid["recall@1"] > 0.3


@needs_data
def test_shipped_reranker_puts_the_answering_paragraph_first(real_reranker: Any) -> None:
    """On SQuAD dev articles (never seen in training): the question's own paragraph against
    the other paragraphs of the same article, which share its topic and vocabulary."""
    _train, dev = split_articles(read_squad(DATA / "squad-v1.1" / "dev-v1.1-first40.json"))
    hits = total = 0
    for art in dev[:4]:
        paras = [p.context for p in art.paragraphs[:8]]
        for i, p in enumerate(art.paragraphs[:8]):
            q = p.questions[0].question
            scores = real_reranker.score(q, paras)
            hits += int(max(range(len(paras)), key=lambda j: scores[j]) == i)
            total += 1
    assert hits / total >= 0.6, f"{hits}/{total}"  # chance is 1/8


@needs_data
def test_prepacked_reranker_scores_like_plain_torch(real_reranker: Any) -> None:
    """The app's reranker runs on pre-packed oneDNN linears where the CPU has bf16
    (rag/prepack.py); its logits must be the plain model's, within bf16 rounding."""
    from rag.rerank import CrossEncoderReranker
    from tests.conftest import make_settings

    if not real_reranker.prepacked:
        pytest.skip("no bf16 oneDNN on this machine: nothing is packed")
    plain = CrossEncoderReranker(
        make_settings(REPO_ROOT / ".cache" / "unused", reranker_model="packaged", cpu_prepack="off")
    )
    _train, dev = split_articles(read_squad(DATA / "squad-v1.1" / "dev-v1.1-first40.json"))
    paras = [p.context for p in dev[0].paragraphs[:8]]
    q = dev[0].paragraphs[0].questions[0].question
    packed_scores, plain_scores = real_reranker.score(q, paras), plain.score(q, paras)
    gap = max(abs(a - b) for a, b in zip(packed_scores, plain_scores, strict=True))
    assert gap < 0.1, (packed_scores, plain_scores)


@needs_data
def test_reranker_scores_the_same_in_passes_of_similar_length(real_reranker: Any) -> None:
    """On CPU the pairs go through in passes grouped by length (rag.rerank.length_batches), so a
    short pair is not padded to the longest one's length; the scores must be one pass's."""
    from rag.rerank import length_batches

    _train, dev = split_articles(read_squad(DATA / "squad-v1.1" / "dev-v1.1-first40.json"))
    paras = [p.context for p in dev[0].paragraphs[:6]]
    passages = paras + [s.split(". ")[0] for s in paras]  # long paragraphs and their first sentences
    q = dev[0].paragraphs[0].questions[0].question
    pairs = [(q, p) for p in passages]
    saved = real_reranker.pass_overhead_tokens
    try:
        real_reranker.pass_overhead_tokens = 64.0
        assert len(length_batches(real_reranker._lengths(pairs), real_reranker.batch_size, 64.0)) >= 2
        split = real_reranker.score(q, passages)
        real_reranker.pass_overhead_tokens = float("inf")
        one_pass = real_reranker.score(q, passages)
    finally:
        real_reranker.pass_overhead_tokens = saved
    # fp32: equal to ~1e-7; bf16 batches of other sizes may round differently in the last bits
    assert max(abs(a - b) for a, b in zip(split, one_pass, strict=True)) < 0.01, (split, one_pass)
