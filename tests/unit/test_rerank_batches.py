"""rag.rerank.length_batches: how the cross-encoder's pairs are split into forward passes."""

from __future__ import annotations

import random

import pytest

from rag.rerank import length_batches


def _cost(batches: list[list[int]], lengths: list[int], overhead: float) -> float:
    return sum(overhead + len(b) * max(lengths[i] for i in b) for b in batches)


@pytest.mark.parametrize("seed", range(20))
def test_batches_cover_every_item_once_and_cost_no_more_than_one_pass(seed: int) -> None:
    rng = random.Random(seed)
    lengths = [rng.choice([16, 32, 48, 96, 128, 160]) for _ in range(rng.randint(1, 40))]
    overhead, cap = rng.choice([0.0, 64.0, 256.0]), rng.choice([4, 8, 32])
    batches = length_batches(lengths, cap, overhead)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(1 <= len(b) <= cap for b in batches)
    # never worse than fixed-size passes of the sorted items (what sentence-transformers would do)
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    fixed = [order[i : i + cap] for i in range(0, len(order), cap)]
    assert _cost(batches, lengths, overhead) <= _cost(fixed, lengths, overhead)


def test_short_pairs_are_not_padded_to_the_longest() -> None:
    lengths = [160] * 10 + [32] * 20  # NFCorpus-like: long passages and a tail of short ones
    batches = length_batches(lengths, 32, overhead=256)
    assert [sorted(b) for b in batches] == [list(range(10)), list(range(10, 30))]
    assert length_batches(lengths, 32, overhead=1e12) == [list(range(30))]  # passes dear: one
    # overhead=inf: passes as full as the cap allows
    assert [len(b) for b in length_batches(lengths, 8, overhead=float("inf"))] == [6, 8, 8, 8]


def test_nothing_to_batch() -> None:
    assert length_batches([], 32) == []
