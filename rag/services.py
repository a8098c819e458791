"""Wiring: build each engine once from the settings and hand out the services that use them.

The one door: the CLIs (``python -m rag``, ``python -m ingest``), the Streamlit pages and the
background jobs (rag.jobs) upload, delete, re-index, list, count and ask through the methods of
:class:`Services`; tests pass fakes for the engines (see tests/fakes.py). This is the only
module of rag/ that imports ingest/: the write side gets the concrete store and BM25 index from
here, through the Protocols of rag.interfaces.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ingest.loaders import SUPPORTED_SUFFIXES, load_bytes
from ingest.names import safe_filename
from ingest.pipeline import EMBEDDER_KEY, Indexer
from ingest.registry import Registry
from rag.config import Settings
from rag.followup import Turn
from rag.interfaces import Embedder, Generator, Progress, Reranker, VectorStore
from rag.pipeline import AnswerStream, RagPipeline
from rag.retrieve import DenseRetriever, Feedback, HybridRetriever
from rag.source_view import SourceView
from rag.sparse_search import SparseSearcher
from rag.sparse_tokens import tokenize, tokens_to_str
from rag.store import ChromaCatalog
from rag.store import StoreUnavailable as StoreUnavailable  # for the CLIs: Services() raises it
from rag.types import Answer, Citation, FileResult, IndexedDocument, ReindexReport, UploadReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexStats:
    documents: int
    chunks: int
    collection: str
    indexed_with: str  # embedding model the index was built with
    embedder: str  # embedding model configured now
    reranker: str  # cross-encoder configured now ("none" = off)
    generator: str
    # LoRA adapter of the local generator: the one merged once it is loaded, else the one the
    # settings will load; "" for the openai backend (the server decides)
    adapter: str = ""
    # how the local generator decodes (RAG_LLM_COMPILE): "" until it is loaded or for the openai backend
    decoding: str = ""


def bm25_tokens(text: str) -> str:
    """A text's BM25 tokens as the registry stores them (the write side's tokenizer).

    >>> bm25_tokens("Stemming matches plural nouns")
    'stem match plural noun'
    """
    return tokens_to_str(tokenize(text))


def decoding_label(generator: object) -> str:
    """How a loaded generator runs its decode steps, for the admin page ("" when it has none).

    >>> decoding_label(object())
    ''
    """
    if not hasattr(generator, "compiled"):
        return ""
    compiled = getattr(generator, "compiled", None)
    int8 = ", int8 weights" if getattr(generator, "int8_decode", False) else ""
    if compiled is None:
        return f"eager{int8}"
    if compiled.ready.is_set():
        return f"compiled with torch.compile in {compiled.seconds:.0f} s{int8}"
    if compiled.error:
        return f"eager{int8} (compiling failed: {compiled.error[:200]})"
    return f"eager{int8}, compiling in the background"


class Services:
    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        self.settings = settings
        settings.home_dir.mkdir(parents=True, exist_ok=True)
        self.registry = Registry(settings.registry_path)
        self.catalog = ChromaCatalog(settings)
        if embedder is None:
            from rag.embed import SentenceTransformerEmbedder

            embedder = SentenceTransformerEmbedder(settings)
        self.embedder = embedder
        # BM25 reads chunk texts through the indexer (``_texts``) only when it builds, never here
        self.sparse = SparseSearcher(
            self.registry.sparse_rows, self.registry.version, self._texts, snapshot_dir=settings.bm25_dir
        )
        self.indexer = Indexer(settings, embedder, self.catalog, self.registry, bm25_tokens, self.sparse)
        self._reconcile_at_start()
        self._generator = generator
        self._gen_lock = threading.Lock()
        self._pipeline: RagPipeline | None = None
        self.retriever = HybridRetriever(
            DenseRetriever(
                embedder, self._active_store, settings.tuning.min_relevance, listed=self.registry.listed_ids
            ),
            self.sparse,
            mode=settings.retrieval_mode,
            rrf_k=settings.tuning.rrf_k,
            weights=(settings.tuning.rrf_dense_weight, settings.tuning.rrf_bm25_weight),
            feedback=Feedback(
                settings.tuning.feedback_chunks,
                settings.tuning.feedback_terms,
                settings.tuning.feedback_bm25_weight,
                settings.tuning.feedback_dense_weight,
                settings.tuning.feedback_keep_first_pass,
            ),
        )
        if reranker is None and settings.reranker_model != "none":
            from rag.rerank import CrossEncoderReranker

            reranker = CrossEncoderReranker(settings)
        self.reranker = reranker

    def _reconcile_at_start(self) -> None:
        """Sweep what a crashed or failed write left in Chroma or RAG_HOME/files: a cheap check
        when all is well; skipped while another process is writing (its work is not a leftover).
        Retrieval never serves unlisted chunks anyway, so a failure here is only logged."""
        try:
            removed = self.indexer.reconcile_if_needed(blocking=False)
        except Exception:
            log.warning("start-up clean-up of the index failed; the next write retries it", exc_info=True)
            return
        if removed and any(removed.values()):
            log.warning("start-up clean-up removed leftovers of an interrupted write: %s", removed)

    def _texts(self, ids: Sequence[str]) -> dict[str, str]:
        return {c.id: c.text for c in self._active_store().get(ids)}

    def _active_store(self) -> VectorStore:
        return self.indexer.reader_store()

    @property
    def generator(self) -> Generator:
        """Loaded on first use (the slowest engine); one per process. With RAG_LLM_BACKEND=openai
        it is a client of an OpenAI-compatible server instead of an in-process model."""
        with self._gen_lock:
            if self._generator is None:
                if self.settings.llm_backend == "openai":
                    from rag.llm_openai import OpenAICompatibleGenerator

                    self._generator = OpenAICompatibleGenerator(self.settings)
                else:
                    from rag.generate import TransformersGenerator
                    from rag.heap import trim_heap

                    self._generator = TransformersGenerator(self.settings)
                    # Loading (adapter merge, int8 copies, loader threads) frees up to ~0.3 GiB
                    # that glibc would otherwise keep: RSS with every model loaded 1.36 GiB
                    # trimmed, 1.37-1.69 untrimmed (docs/performance.md).
                    trim_heap()
            return self._generator

    @property
    def generator_loaded(self) -> bool:
        return self._generator is not None

    @property
    def pipeline(self) -> RagPipeline:
        """The question flow; built on first use (it needs the generator), and warmed up then, so
        that the first question does not prefill the system prompt in its time to first token."""
        if self._pipeline is None:
            pipeline = RagPipeline(self.settings, self.retriever, self.generator, reranker=self.reranker)
            pipeline.warm_up()
            self._pipeline = pipeline
        return self._pipeline

    # --- the one door: what the pages, the jobs and the CLIs do --------------------------------
    @property
    def file_types(self) -> tuple[str, ...]:
        """The suffixes the loaders read (".pdf", ".txt", ...), from the loader table."""
        return SUPPORTED_SUFFIXES

    def documents(self) -> list[IndexedDocument]:
        return self.registry.documents()

    def document_count(self) -> int:
        return self.registry.stats()["documents"]

    def ingest(
        self, paths: Sequence[Path], progress: Progress | None = None, skipped: list[Path] | None = None
    ) -> list[FileResult]:
        """Index files and folders (the ingest CLI); unsupported files in folders go to ``skipped``."""
        return self.indexer.ingest_paths(paths, progress, skipped)

    def upload(self, files: Sequence[tuple[str, bytes]], progress: Progress | None = None) -> UploadReport:
        """Index uploaded ``(file name, bytes)`` pairs under sanitised names, one result per file."""
        results: list[FileResult] = []
        for i, (name, data) in enumerate(files):
            safe = safe_filename(name)
            if progress:
                progress(i, len(files), safe)
            results.append(self.indexer.ingest_bytes(data, safe))
        if progress:
            progress(len(files), len(files), "done")
        return UploadReport(tuple(results))

    def delete(self, doc_id: str) -> bool:
        """Remove a document; False when it was not indexed (already deleted)."""
        return self.indexer.delete(doc_id)

    def reindex(self, progress: Progress | None = None) -> ReindexReport:
        """Rebuild every document into a new collection, then switch over (ingest.reindex)."""
        return self.indexer.reindex(progress=progress)

    def wait_refreshed(self, timeout: float | None = None) -> None:
        """Block until the background BM25 rebuild after a write is done (and its snapshot saved)."""
        self.sparse.wait_refreshed(timeout)

    def ask(self, question: str, doc_ids: Sequence[str] | None = None, history: Sequence[Turn] = ()) -> Answer:
        """``history``: the conversation so far, for follow-up questions (rag/followup.py)."""
        return self.pipeline.ask(question, doc_ids, history)

    def ask_stream(
        self, question: str, doc_ids: Sequence[str] | None = None, history: Sequence[Turn] = ()
    ) -> AnswerStream:
        """The answer as it is generated; ``.answer`` holds the checked one once it is consumed."""
        return self.pipeline.stream(question, doc_ids, history)

    def source_view(self, citation: Citation) -> SourceView:
        """The cited page or passage in its original (rag/source_view.py); raises SourceGone
        when the document has been deleted since."""
        from rag.source_view import build_view

        doc = self.registry.get(citation.chunk.doc_id)
        return build_view(doc, citation, lambda data, name: load_bytes(data, name).text)

    def stats(self) -> IndexStats:
        s = self.registry.stats()
        return IndexStats(
            documents=s["documents"],
            chunks=s["chunks"],
            collection=self.indexer.active_store().name,
            indexed_with=self.registry.get_meta(EMBEDDER_KEY) or "?",
            embedder=self.embedder.name,
            reranker=self.reranker.name if self.reranker is not None else "none",
            generator=self._generator_label(),
            adapter=self._adapter_label(),
            decoding=decoding_label(self._generator) if self._generator is not None else "",
        )

    def _adapter_label(self) -> str:
        from rag.models import ModelNotFound, describe_adapter, resolve_lora_adapter

        s = self.settings
        if s.llm_backend == "openai":
            return ""
        if self._generator is not None and hasattr(self._generator, "adapter"):
            return describe_adapter(getattr(self._generator, "adapter", None), s.lora_adapter)
        try:
            active = resolve_lora_adapter(s.lora_adapter, s.llm_model, warn=False)
        except ModelNotFound as e:
            return f"invalid: {e}"
        return describe_adapter(active, s.lora_adapter)

    def _generator_label(self) -> str:
        s = self.settings
        if s.llm_backend != "openai":
            return s.llm_model
        model = self._generator.name if self._generator is not None else f"openai:{s.openai_model or '(first listed)'}"
        return f"{model} at {s.openai_base_url}"
