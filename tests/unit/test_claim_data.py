"""The claim checker's training pairs: each kind labelled as the app needs it, and nothing from
the evaluation side trained on."""

from __future__ import annotations

import pytest

from rag.eval.datasets import DatasetMissing, SquadArticle, SquadParagraph, SquadQuestion
from rag.train.claim_data import squad_pairs

PARA = SquadParagraph(
    "0-0",
    "Eiffel Tower",
    "Work began in 1887. The tower was completed in 1889 by Gustave Eiffel's company. It is 330 metres tall.",
    (
        SquadQuestion("q1", "When was the tower completed?", ("1889",)),
        SquadQuestion("q2", "Whose company built the tower?", ("Gustave Eiffel's company",)),
        SquadQuestion("q3", "How tall is it?", ("330 metres",)),
    ),
)
OTHER = SquadParagraph("0-1", "Eiffel Tower", "The tower is repainted every seven years.", ())


def test_each_kind_of_pair_is_labelled_as_the_app_needs_it() -> None:
    pairs = squad_pairs([SquadArticle("Eiffel Tower", (PARA, OTHER))], seed=0, sentence_share=1.0)
    kinds = {(p.kind, p.label) for p in pairs}
    assert kinds >= {
        ("answer", 1),
        ("other_span", 0),
        ("lookalike", 0),
        ("sentence", 1),
        ("negated", 0),
        ("swapped", 0),
    }
    gold = {q.question: q.answers[0] for q in PARA.questions}
    for p in pairs:
        if p.kind == "answer":
            assert p.claim.startswith(p.question) and p.passage == PARA.context
        if p.kind == "other_span":  # another answer of the same paragraph: its words are there, it answers nothing
            assert p.sentence in PARA.context and p.sentence != gold[p.question]
        if p.kind == "negated":
            assert " not " in p.sentence
        if p.kind == "lookalike":
            assert p.passage == OTHER.context


def test_training_never_reads_the_evaluation_side() -> None:
    from rag.eval.claims import dev_sets
    from rag.train.claim_checker import build_pairs

    try:
        train, _ = build_pairs(max_pairs=0)
        held = dev_sets()
    except DatasetMissing as e:
        pytest.skip(str(e))
    seen = {(p.claim, p.passage) for p in train}
    for name, pairs in held.items():
        overlap = sum((p.claim, p.passage) in seen for p in pairs)
        assert overlap <= len(pairs) * 0.01, (name, overlap)  # public sets repeat a few pairs verbatim
