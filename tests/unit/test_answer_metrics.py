"""Answer metrics (SQuAD's normalisation, F1, EM) and the answer evaluation's bookkeeping,
including the abstention path through the real pipeline with fake engines."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from rag.eval.answer_metrics import contains_answer, em_score, f1_score, normalize_answer, token_f1
from rag.eval.answer_plan import EvalQuestion, plan, write_articles
from rag.eval.answer_scoring import Record, score, summarise, target_checks
from rag.eval.answers import register
from rag.eval.datasets import SquadArticle, SquadParagraph, SquadQuestion
from rag.pipeline import RagPipeline
from rag.prompting import abstain_message
from rag.services import Services
from tests.fakes import EchoGenerator


@pytest.mark.parametrize(
    ("text", "norm"),
    [
        ("The Eiffel Tower", "eiffel tower"),
        ("  an   apple, a pear!  ", "apple pear"),
        ("Denver Broncos [2].", "denver broncos"),
        ("It opened in 1889 [1, 3].", "it opened in 1889"),
        ("Theatre", "theatre"),  # only whole-word articles go
    ],
)
def test_squad_normalisation(text: str, norm: str) -> None:
    assert normalize_answer(text) == norm


def test_f1_and_em_match_the_official_script_on_known_cases() -> None:
    # Values worked out by hand with SQuAD v1.1's evaluate-v1.1.py definitions.
    assert token_f1("the cat sat", "a cat sat down") == pytest.approx(2 * (2 / 2) * (2 / 3) / (2 / 2 + 2 / 3))
    assert token_f1("", "cat") == 0.0
    assert f1_score("Santa Clara [1].", ["Levi's Stadium", "Santa Clara, California"]) == pytest.approx(0.8)
    assert em_score("the Broncos.", ["Broncos", "Denver"]) == 1.0
    assert em_score("Broncos team", ["Broncos"]) == 0.0


def test_contains_answer_needs_whole_words() -> None:
    assert contains_answer("the 1889 World's Fair", ["1889"])
    assert not contains_answer("in 18890 or so", ["1889"])
    assert contains_answer("THE DENVER BRONCOS won", ["Denver Broncos"])


def _articles(n: int) -> list[SquadArticle]:
    out = []
    for a in range(n):
        paras = tuple(
            SquadParagraph(f"{a}-{p}", f"Art{a}", f"Article {a} paragraph {p} says {1000 + a * 10 + p}.",
                           tuple(SquadQuestion(f"q{a}-{p}-{k}", f"What does {a}/{p} say?", (str(1000 + a * 10 + p),))
                                 for k in range(3)))
            for p in range(4)
        )  # fmt: skip
        out.append(SquadArticle(f"Art{a}", paras))
    return out


def test_plan_holds_articles_back_and_samples_questions() -> None:
    arts = _articles(8)
    p = plan(arts, 2, 10, 5, seed=1)
    assert len(p.indexed) == 6 and len(p.held_back) == 2
    held_titles = {a.title for a in p.held_back}
    indexed_q = [q for q in p.questions if q.indexed]
    held_q = [q for q in p.questions if not q.indexed]
    assert len(indexed_q) == 10 and len(held_q) == 5
    assert all(q.title in held_titles for q in held_q) and not any(q.title in held_titles for q in indexed_q)
    assert plan(arts, 2, 10, 5, seed=1) == p  # reproducible
    with pytest.raises(ValueError, match="--held-back"):
        plan(arts, 8, 0, 0)


def test_write_articles_names_files_like_the_training_data(tmp_path: Path) -> None:
    assert write_articles(_articles(2), tmp_path) == 8
    assert (tmp_path / "Art1__3.txt").read_text(encoding="utf-8").startswith("Article 1 paragraph 3")


def _ingested(fake_services: Services, tmp_path: Path) -> Services:
    write_articles(_articles(1), tmp_path / "docs")
    fake_services.indexer.ingest_paths([tmp_path / "docs"])
    return fake_services


def _ask(s: Services, reply: str | None, q: EvalQuestion) -> Record:
    pipeline = RagPipeline(s.settings, s.retriever, EchoGenerator(reply))
    stream = pipeline.stream(q.question)
    raw = "".join(stream).strip()
    assert stream.answer is not None
    return score("v", q, raw, stream.answer, abstain_message(), len(raw.split()))


def test_abstention_path_is_scored_as_correct_abstention(fake_services: Services, tmp_path: Path) -> None:
    s = _ingested(fake_services, tmp_path)
    held = EvalQuestion("h1", "Elsewhere", "What does article 0 paragraph 2 say?", ("999",), indexed=False)
    silent = _ask(s, abstain_message(), held)
    assert silent.abstained and silent.raw_abstained and not silent.cited
    talker = _ask(s, "It says 1002 [1].", held)  # answers a question it should refuse
    assert not talker.abstained and not talker.raw_abstained
    m = summarise([silent, talker])
    assert m["correct_abstention"] == 0.5 and m["hallucination"] == 0.5 and m["hallucination_raw"] == 0.5
    assert m["questions_indexed"] == 0 and m["f1"] is None


def test_answered_question_gets_f1_and_citation_precision(fake_services: Services, tmp_path: Path) -> None:
    s = _ingested(fake_services, tmp_path)
    q = EvalQuestion("q", "Art0", "What does article 0 paragraph 2 say?", ("1002",), indexed=True)
    r = _ask(s, "1002 [1].", q)
    assert not r.abstained and r.cited and r.cited[0]["source"].startswith("Art0__")
    m = summarise([r])
    assert m["f1"] == 1.0 and m["em"] == 1.0 and m["citation_rate"] == 1.0
    # The app re-attaches a claim to the passage that backs it, so the cited passage holds "1002".
    assert m["citation_precision"] == 1.0
    refused = _ask(s, abstain_message(), q)
    assert refused.f1 == 0.0 and summarise([refused])["answered"] == 0.0


def test_targets_are_checked_against_the_base_model() -> None:
    v = {"base": {"f1": 0.10}, "adapter": {"f1": 0.15, "citation_precision": 0.9, "correct_abstention": 0.85}}
    assert [ok for _, ok in target_checks(v)] == [True, True, False]
    assert target_checks({"base": {"f1": 0.1}}) == []


def test_cli_registers_the_answers_command() -> None:
    p = argparse.ArgumentParser()
    register(p.add_subparsers(dest="command"))
    args = p.parse_args(["answers", "--squad", "x.json", "--limit", "5", "--no-adapter", "--json"])
    assert args.limit == 5 and args.no_adapter and args.json and callable(args.func)
    assert args.held_back == 2 and args.articles == "dev"
