"""The whole flow on the real packaged models and a real Chroma (loaded once per session)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from rag.prompting import abstain_message
from rag.services import Services
from tests.conftest import SAMPLES

pytestmark = pytest.mark.slow


@pytest.fixture
def indexed(real_services: Services) -> Services:
    results = real_services.indexer.ingest_paths([SAMPLES])
    assert {r.status for r in results} == {"indexed"}, results
    return real_services


def test_sample_question_gets_a_cited_answer_from_the_right_page(indexed: Services) -> None:
    answer = indexed.pipeline.ask("When was the Eiffel Tower completed?")
    assert not answer.abstained, answer
    assert "1889" in answer.text and re.search(r"\[\d\]", answer.text)
    cited = answer.citations[0]
    assert Path(cited.chunk.source).name == "eiffel_tower.pdf" and cited.chunk.page == 1
    s, e = cited.highlight
    assert "1889" in cited.chunk.text[s:e]


def test_each_format_is_retrievable(indexed: Services) -> None:
    for question, name in [
        ("Who set up the first printing press in England?", "printing_press.md"),
        ("Where does the Calvin cycle take place?", "photosynthesis.html"),
        ("When did the Great Barrier Reef become a World Heritage Site?", "great_barrier_reef.docx"),
        ("What was the lunar module called?", "apollo_11.txt"),
    ]:
        top = indexed.pipeline.sources(question)
        assert top and Path(top[0].chunk.source).name == name, (question, [s.chunk.source for s in top])


def test_off_topic_question_abstains(indexed: Services) -> None:
    answer = indexed.pipeline.ask("What is the boiling point of liquid nitrogen?")
    assert answer.abstained and answer.text == abstain_message() and not answer.citations


def test_reingest_unchanged_embeds_nothing(indexed: Services) -> None:
    again = indexed.indexer.ingest_paths([SAMPLES])
    assert {r.status for r in again} == {"unchanged"}
    assert sum(r.embedded for r in again) == 0


def test_changed_file_loses_its_old_chunks(real_services: Services, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLES, docs)
    idx = real_services.indexer
    idx.ingest_paths([docs])
    target = docs / "apollo_11.txt"
    doc_id = next(d.doc_id for d in idx.registry.documents() if d.source == str(target))
    old_ids = idx.registry.chunk_ids(doc_id)
    target.write_text("Apollo 11 carried a small golden olive branch to the Moon.\n", encoding="utf-8")
    result = idx.ingest_file(target)
    assert result.status == "indexed" and result.chunks == 1
    store = idx.active_store()
    assert not store.existing_ids(sorted(old_ids - idx.registry.chunk_ids(doc_id)))
    assert store.count() == len(idx.registry.chunk_ids())
    top = real_services.pipeline.sources("Who stayed in lunar orbit aboard Columbia?")
    assert all(Path(s.chunk.source).name != "apollo_11.txt" or "olive" in s.chunk.text for s in top)


def test_embedder_is_offline_minilm(real_embedder: Any) -> None:
    v = real_embedder.embed_documents(["a cat sat", "a kitten sat", "stock market crash"])
    assert v.shape == (3, 384)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2])
