"""BM25 beside Chroma: tokenisers, fusion, the sparse index kept in step with every write,
and the rerank stage in the pipeline (fake engines, real Chroma and bm25s)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.fusion import reciprocal_rank_fusion
from rag.services import Services
from rag.sparse import BM25Index, csc_by_column
from rag.sparse_search import SparseSearcher
from rag.sparse_tokens import detect_language, tokenize
from tests.conftest import make_settings
from tests.fakes import EchoGenerator, HashEmbedder, KeywordReranker


def _write(p: Path, text: str) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def _bm25_sources(services: Services, query: str) -> list[str]:
    return [Path(h.chunk.source).name for h in services.retriever.bm25(query, 10)]


def _in_sync(services: Services) -> None:
    """Every chunk Chroma holds is searchable by BM25 and nothing else is."""
    index, _docs = services.sparse.index()
    assert set(index.ids) == services.indexer.active_store().all_ids() == services.registry.chunk_ids()


# --- tokenisers -----------------------------------------------------------------------------


def test_english_tokens_are_stemmed_and_stopworded() -> None:
    assert tokenize("The Statins are reducing cancers") == ["statin", "reduc", "cancer"]
    assert tokenize("statin reduces cancer") == ["statin", "reduc", "cancer"]


@pytest.mark.parametrize(
    "query, passage",
    [
        ("에펠탑은 언제 완공되었나요?", "파리의 에펠탑이 1889년에 완공되었다."),  # topic vs subject particle
        ("서울에서 가장 큰 공원", "그 공원은 서울의 중심에 있다."),  # locative vs genitive particle
        ("김치를 만드는 방법", "김치는 배추로 만든다."),  # object vs topic particle, verb ending
    ],
)
def test_korean_particle_attached_nouns_match(query: str, passage: str) -> None:
    assert detect_language(query) == detect_language(passage) == "ko"
    q, p = set(tokenize(query)), set(tokenize(passage))
    assert q & p, (q, p)
    # whitespace tokens share nothing here: the particle is glued to the noun
    assert not ({query.split()[0]} & set(passage.split()))


def test_korean_document_is_found_by_particle_attached_query(fake_services: Services, tmp_path: Path) -> None:
    _write(tmp_path / "ko.txt", "에펠탑이 파리에 세워진 것은 1889년이다. 귀스타브 에펠의 회사가 설계했다.")
    _write(tmp_path / "en.txt", "The Louvre is a museum in Paris with the Mona Lisa.")
    fake_services.indexer.ingest_paths([tmp_path])
    assert _bm25_sources(fake_services, "에펠탑은 누가 설계했나요?") == ["ko.txt"]
    assert _bm25_sources(fake_services, "Where is the Mona Lisa?") == ["en.txt"]


def test_mixed_korean_text_keeps_latin_words_stemmed() -> None:
    assert {"rag", "system"} <= set(tokenize("이 RAG systems는 한국어 문서를 검색한다"))


# --- fusion ---------------------------------------------------------------------------------


def test_rrf_on_a_hand_made_example() -> None:
    dense = ["d1", "d2", "d3"]
    bm25 = ["d3", "d4", "d1"]
    fused = dict(reciprocal_rank_fusion([dense, bm25], k=60))
    # d1: 1/61 + 1/63; d3: 1/63 + 1/61 (tie: d1 seen first); d2: 1/62; d4: 1/62
    assert fused["d1"] == pytest.approx(1 / 61 + 1 / 63)
    assert fused["d3"] == pytest.approx(fused["d1"])
    assert fused["d2"] == pytest.approx(1 / 62) == fused["d4"]
    assert [x for x, _ in reciprocal_rank_fusion([dense, bm25], k=60)] == ["d1", "d3", "d2", "d4"]
    # weights: BM25 counts double
    assert [x for x, _ in reciprocal_rank_fusion([dense, bm25], weights=[1, 2], k=60)][:2] == ["d3", "d1"]


def test_bm25_index_ranks_by_term_rarity_and_masks() -> None:
    import numpy as np

    idx = BM25Index(["a", "b", "c"], [["cat", "dog"], ["cat", "zebra"], ["cat"]])
    hits = idx.search(["zebra", "cat"], 3)
    assert idx.ids[hits[0].index] == "b"
    masked = idx.search(["zebra", "cat"], 3, mask=np.array([True, False, True]))
    assert "b" not in {idx.ids[h.index] for h in masked}
    assert idx.search(["unknown"], 3) == []


def test_bm25_index_takes_token_lists_one_at_a_time() -> None:
    """SparseSearcher passes a generator (one chunk's token strings at a time, for memory): the
    index must be the one built from lists."""
    tokens = [["cat", "dog"], ["cat", "zebra"], ["cat"]]
    from_lists = BM25Index(["a", "b", "c"], tokens)
    from_generator = BM25Index(["a", "b", "c"], (list(t) for t in tokens))
    assert from_generator.vocab == from_lists.vocab
    assert from_generator.scores(["zebra", "cat"]).tolist() == from_lists.scores(["zebra", "cat"]).tolist()
    with pytest.raises(ValueError, match="3 ids but 2 token lists"):
        BM25Index(["a", "b", "c"], iter(tokens[:2]))


def test_our_csc_builder_returns_what_bm25s_own_builder_returns() -> None:
    """``csc_by_column`` replaces bm25s' CSC builder for memory; the arrays must be the same, on
    entries written as bm25s writes them (rows ascending, each (row, col) once, cols in any order)."""
    from bm25s.scoring import _np_csc_python

    rng = np.random.default_rng(0)
    rows, cols = [], []
    for doc in range(300):
        vocab_ids = rng.choice(500, size=int(rng.integers(1, 40)), replace=False)
        rows += [doc] * len(vocab_ids)
        cols += vocab_ids.tolist()
    r, c = np.asarray(rows, dtype=np.int32), np.asarray(cols, dtype=np.int32)
    data = rng.random(len(r)).astype(np.float32)
    ours, theirs = csc_by_column(data, r, c, (300, 500)), _np_csc_python(data, r, c, (300, 500))
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_bm25_rebuild_scores_as_bm25s_builds_them() -> None:
    """The searcher's rebuild (our CSC builder, stored strings released as read) scores every
    chunk as a plain bm25s index over the same tokens does."""
    import bm25s

    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(200)]
    token_lists = [list(rng.choice(words, size=int(rng.integers(1, 30)))) for _ in range(120)]
    rows = [(f"c{i}", f"d{i // 3}", " ".join(t)) for i, t in enumerate(token_lists)]
    index, docs = SparseSearcher(lambda: rows, lambda: "v1", lambda ids: {}).index()
    plain = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    plain.index(token_lists, show_progress=False)
    assert docs.tolist() == [d for _c, d, _t in rows]
    for q in (["w1"], ["w3", "w50", "w199"], words[:20]):
        known = [plain.vocab_dict[w] for w in dict.fromkeys(q) if w in plain.vocab_dict]
        np.testing.assert_allclose(index.scores(q), plain.get_scores(known), rtol=1e-6)


def test_bm25_build_skips_chunks_chroma_lacks_and_keeps_ids_and_documents_aligned() -> None:
    rows = [("c1", "d1", "zebra stripe"), ("c2", "d2", None), ("c3", "d3", None), ("c4", "d4", "lion mane")]
    # c2 predates stored tokens (tokenised from Chroma's text); c3 is listed but not in Chroma
    sparse = SparseSearcher(lambda: rows, lambda: "v1", lambda ids: {"c2": "Zebras graze."} if "c2" in ids else {})
    index, docs = sparse.index()
    assert index.ids == ["c1", "c2", "c4"] and docs.tolist() == ["d1", "d2", "d4"]
    assert {cid for cid, _ in sparse.search("zebras", 5)} == {"c1", "c2"}
    assert [cid for cid, _ in sparse.search("mane", 5, doc_ids=["d4"])] == ["c4"]


def test_bm25_rebuild_frees_the_old_index_first_and_a_failed_one_serves_nothing_stale() -> None:
    """Queries wait on the searcher's lock while it rebuilds, so the old index is dropped before
    the new one is built (memory); if the build fails, the next query tries again rather than
    answering from the old version."""
    version, rows = ["v1"], [("c1", "d1", "zebra stripe")]
    seen_while_building: list[object] = []

    def listed() -> list[tuple[str, str, str | None]]:
        seen_while_building.append(sparse._built)
        if version[0] == "v3":
            raise OSError("disk gone")
        return list(rows)

    sparse = SparseSearcher(listed, lambda: version[0], lambda ids: {})
    assert [cid for cid, _ in sparse.search("zebra", 5)] == ["c1"]
    version[0], rows[:] = "v2", [("c2", "d2", "lion mane")]
    assert [cid for cid, _ in sparse.search("lion", 5)] == ["c2"]
    assert seen_while_building == [None, None]  # v1's index was gone when v2's rows were read
    version[0] = "v3"
    with pytest.raises(OSError, match="disk gone"):
        sparse.search("lion", 5)
    with pytest.raises(OSError, match="disk gone"):  # tried again, v2 not served as if current
        sparse.search("lion", 5)


# --- kept in step with Chroma ---------------------------------------------------------------


def test_bm25_follows_add_change_delete_and_reindex(fake_services: Services, tmp_path: Path) -> None:
    a = _write(tmp_path / "a.txt", "The zeppelin hangar stored airships.")
    _write(tmp_path / "b.txt", "Bananas grow in tropical plantations.")
    fake_services.indexer.ingest_paths([tmp_path])
    assert _bm25_sources(fake_services, "zeppelin") == ["a.txt"]
    _in_sync(fake_services)

    _write(a, "The observatory tracked comets.")  # change: the old word must disappear
    fake_services.indexer.ingest_file(a)
    assert _bm25_sources(fake_services, "zeppelin") == []
    assert _bm25_sources(fake_services, "comets") == ["a.txt"]
    _in_sync(fake_services)

    doc_b = next(d for d in fake_services.registry.documents() if d.source.endswith("b.txt"))
    fake_services.indexer.delete(doc_b.doc_id)
    assert _bm25_sources(fake_services, "bananas") == []
    _in_sync(fake_services)

    fake_services.indexer.reindex()
    assert _bm25_sources(fake_services, "comets") == ["a.txt"]
    _in_sync(fake_services)


def test_another_process_view_loads_the_snapshot(fake_services: Services, tmp_path: Path) -> None:
    _write(tmp_path / "docs" / "a.txt", "Quasars emit enormous energy.")
    fake_services.indexer.ingest_paths([tmp_path / "docs"])
    assert _bm25_sources(fake_services, "quasar") == ["a.txt"]
    snaps = list(fake_services.settings.bm25_dir.iterdir())
    assert [p.name for p in snaps] == [fake_services.registry.version()]
    other = Services(fake_services.settings, embedder=HashEmbedder(), generator=EchoGenerator())
    other.sparse._rows = lambda: pytest.fail("rebuilt instead of loading the snapshot")
    assert _bm25_sources(other, "quasars") == ["a.txt"]


def test_bm25_is_rebuilt_in_the_background_after_each_change(fake_services: Services, tmp_path: Path) -> None:
    """The first question after an ingest, a delete or a re-index finds BM25 already built for
    the new index version (and its snapshot saved), instead of building it itself."""
    sparse = fake_services.sparse

    def built_version() -> str | None:
        sparse.wait_refreshed(timeout=30)
        return sparse._built[0] if sparse._built else None

    a = _write(tmp_path / "a.txt", "Glaciers carve fjords.")
    fake_services.indexer.ingest_paths([tmp_path])
    assert built_version() == fake_services.registry.version()
    assert [p.name for p in fake_services.settings.bm25_dir.iterdir()] == [fake_services.registry.version()]
    before = fake_services.registry.version()
    _write(a, "Volcanoes build islands.")
    fake_services.indexer.ingest_file(a)
    assert built_version() == fake_services.registry.version() != before
    doc = next(iter(fake_services.registry.documents()))
    fake_services.indexer.delete(doc.doc_id)
    assert built_version() == fake_services.registry.version()
    assert _bm25_sources(fake_services, "volcano") == []


def test_refresh_requests_during_a_rebuild_are_merged(fake_services: Services) -> None:
    sparse = fake_services.sparse
    release = threading.Event()
    calls: list[int] = []

    def slow_index() -> Any:
        calls.append(1)
        release.wait(10)

    sparse.index = slow_index  # type: ignore[method-assign]
    sparse.refresh_soon()
    for _ in range(5):  # while the first rebuild runs: one more, not five
        sparse.refresh_soon()
    release.set()
    sparse.wait_refreshed(timeout=10)  # the same thread runs the merged second rebuild
    assert len(calls) == 2
    assert sparse._refresher is None


def test_registry_from_before_bm25_is_migrated_and_backfilled(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    s1 = Services(settings, embedder=HashEmbedder(), generator=EchoGenerator())
    _write(tmp_path / "docs" / "a.txt", "Narwhals live in Arctic waters.")
    s1.indexer.ingest_paths([tmp_path / "docs"])
    # simulate a registry written by the previous release: no tokens column
    db = sqlite3.connect(settings.registry_path)
    db.executescript(
        "CREATE TABLE c2 AS SELECT chunk_id, doc_id FROM chunks; DROP TABLE chunks; ALTER TABLE c2 RENAME TO chunks;"
        "UPDATE meta SET value='old' WHERE key='index_version';"
    )
    db.close()
    s2 = Services(settings, embedder=HashEmbedder(), generator=EchoGenerator())
    assert all(toks is None for _c, _d, toks in s2.registry.sparse_rows())
    assert _bm25_sources(s2, "narwhal") == ["a.txt"]  # tokenised from Chroma's text on the fly


def test_doc_filter_applies_to_bm25(fake_services: Services, tmp_path: Path) -> None:
    _write(tmp_path / "a.txt", "Glaciers carve valleys.")
    _write(tmp_path / "b.txt", "Glaciers melt in summer.")
    fake_services.indexer.ingest_paths([tmp_path])
    doc_b = next(d for d in fake_services.registry.documents() if d.source.endswith("b.txt"))
    hits = fake_services.retriever.bm25("glaciers", 10, doc_ids=[doc_b.doc_id])
    assert [Path(h.chunk.source).name for h in hits] == ["b.txt"]


# --- hybrid + rerank in the pipeline --------------------------------------------------------


def test_hybrid_finds_what_only_bm25_matches(tmp_path: Path) -> None:
    s = Services(make_settings(tmp_path / "home", min_relevance=-1.0), HashEmbedder(dim=4), EchoGenerator())
    for i in range(12):
        _write(tmp_path / "d" / f"f{i}.txt", f"Filler document number {i} about ordinary things.")
    _write(tmp_path / "d" / "code.txt", "Part XK-4471 fits the pump housing.")
    s.indexer.ingest_paths([tmp_path / "d"])
    hybrid = [Path(h.chunk.source).name for h in s.retriever.retrieve("XK-4471", 5)]
    assert "code.txt" in hybrid


def test_reranker_reorders_sources_in_the_pipeline(tmp_path: Path) -> None:
    reranker = KeywordReranker()
    s = Services(make_settings(tmp_path / "home", top_k=1), HashEmbedder(), EchoGenerator(), reranker=reranker)
    _write(tmp_path / "d" / "a.txt", "Tower tower tower tower. Paris has many things.")
    _write(tmp_path / "d" / "b.txt", "The Eiffel tower in Paris was completed in 1889.")
    s.indexer.ingest_paths([tmp_path / "d"])
    answer = s.pipeline.ask("When was the Eiffel tower in Paris completed?")
    assert reranker.calls and answer.sources[0].chunk.source.endswith("b.txt")
    assert "rerank" in answer.timings_ms


def test_nothing_semantically_close_abstains_even_if_bm25_matches(tmp_path: Path) -> None:
    s = Services(make_settings(tmp_path / "home", min_relevance=0.99), HashEmbedder(), EchoGenerator())
    _write(tmp_path / "d" / "a.txt", "Apples are red. Bananas are yellow.")
    s.indexer.ingest_paths([tmp_path / "d"])
    assert s.retriever.bm25("apples cars planes", 5)
    answer = s.pipeline.ask("apples cars planes")
    assert answer.abstained and not answer.sources


# --- pseudo-relevance feedback --------------------------------------------------------------


def _feedback_corpus(folder: Path) -> None:
    """a.txt answers "statins" and names LDL cholesterol; b.txt is about LDL cholesterol but never
    says "statins"; s.txt says "statins" off-topic; ten fillers share no word with any of them.
    Without feedback b.txt ties with the fillers (no shared word, no BM25 match)."""
    _write(folder / "a.txt", "Statins lower LDL cholesterol.")
    _write(folder / "b.txt", "LDL cholesterol fell sharply during the trial.")
    _write(folder / "s.txt", "Statins appear in leaflet number one with other medicines for sale.")
    for i, word in enumerate(
        ["harbour", "ferry", "garden", "violin", "glacier", "lantern", "meadow", "comet", "orchard", "canyon"]
    ):
        _write(folder / f"f{i}.txt", f"The {word} was quiet on that {word} morning.")


def _names(hits: Any) -> list[str]:
    return [Path(h.chunk.source).name for h in hits]


def test_feedback_finds_a_document_that_shares_no_word_with_the_question(tmp_path: Path) -> None:
    """Feeding back the two best hits (a.txt, s.txt) lifts b.txt above the fillers, while the
    first-pass lists (kept at half weight) hold the two "statins" chunks on top."""
    _feedback_corpus(tmp_path / "d")
    off = Services(
        make_settings(tmp_path / "off", feedback_chunks=0, min_relevance=-1.0), HashEmbedder(), EchoGenerator()
    )
    on = Services(
        make_settings(tmp_path / "on", feedback_chunks=2, min_relevance=-1.0), HashEmbedder(), EchoGenerator()
    )
    for s in (off, on):
        s.indexer.ingest_paths([tmp_path / "d"])
    assert _names(off.retriever.retrieve("statins", 4))[:2] == ["a.txt", "s.txt"]
    # Without feedback nothing favours b.txt over the fillers: no BM25 match and the same (zero)
    # dense similarity, so its place among them is Chroma's order of ties (it may land 3rd by chance).
    bm25_ids = [cid for cid, _score in off.sparse.search("statins", 13)]
    assert sorted(Path(c.source).name for c in off._active_store().get(bm25_ids)) == ["a.txt", "s.txt"]
    q = HashEmbedder().embed_query("statins")[0]
    for text in ("LDL cholesterol fell sharply during the trial.", "The comet was quiet on that comet morning."):
        assert float(q @ HashEmbedder().embed_query(text)[0]) == 0.0
    timings: dict[str, float] = {}
    hits = on.retriever.retrieve("statins", 4, timings=timings)
    assert _names(hits)[:3] == ["a.txt", "s.txt", "b.txt"]
    assert "feedback" in timings


def test_feedback_pass_keeps_the_document_filter(tmp_path: Path) -> None:
    _feedback_corpus(tmp_path / "d")
    s = Services(
        make_settings(tmp_path / "home", feedback_chunks=2, min_relevance=-1.0), HashEmbedder(), EchoGenerator()
    )
    s.indexer.ingest_paths([tmp_path / "d"])
    assert "b.txt" in _names(s.retriever.retrieve("statins", 4))
    allowed = [d.doc_id for d in s.registry.documents() if not d.source.endswith("b.txt")]
    hits = s.retriever.retrieve("statins", 4, doc_ids=allowed)
    assert _names(hits)[:2] == ["a.txt", "s.txt"] and "b.txt" not in _names(hits)


def test_feedback_parts_on_real_chroma_and_bm25(tmp_path: Path) -> None:
    """The two halves of the feedback pass: stored vectors come back in the order asked, and the
    BM25 pass with feedback text matches words only the feedback text had."""
    _feedback_corpus(tmp_path / "d")
    s = Services(make_settings(tmp_path / "home"), HashEmbedder(), EchoGenerator())
    s.indexer.ingest_paths([tmp_path / "d"])
    store = s.indexer.active_store()
    chunks = {Path(h.chunk.source).name: h.chunk for h in s.retriever.bm25("LDL statins leaflet", 12)}
    a, b = chunks["a.txt"], chunks["b.txt"]
    got = store.vectors([b.id, "no-such-id", a.id])
    want = HashEmbedder().embed_documents([b.text, a.text])
    assert got.shape == want.shape and float(abs(got - want).max()) < 1e-6
    assert "b.txt" not in {Path(src).name for src in _sources(s, s.sparse.search("statins", 12))}
    widened = s.sparse.search("statins", 12, feedback=[a.text], n_terms=5, weight=0.5)
    assert "b.txt" in {Path(src).name for src in _sources(s, widened)}


def _sources(s: Services, hits: list[tuple[str, float]]) -> list[str]:
    return [c.source for c in s.indexer.active_store().get([cid for cid, _ in hits])]
