"""Wiring: build each engine once from the settings and hand out the services that use them.

The CLI, the Streamlit app and the tests all go through :class:`Services`; tests pass
fakes for the engines (see tests/fakes.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ingest.pipeline import EMBEDDER_KEY, Indexer
from ingest.registry import Registry
from rag.config import Settings
from rag.interfaces import Embedder, Generator, VectorStore
from rag.pipeline import RagPipeline
from rag.retrieve import DenseRetriever
from rag.store import ChromaCatalog


@dataclass(frozen=True)
class IndexStats:
    documents: int
    chunks: int
    collection: str
    indexed_with: str  # embedding model the index was built with
    embedder: str  # embedding model configured now
    generator: str


class Services:
    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
    ) -> None:
        self.settings = settings
        settings.home_dir.mkdir(parents=True, exist_ok=True)
        self.registry = Registry(settings.registry_path)
        self.catalog = ChromaCatalog(settings)
        if embedder is None:
            from rag.embed import SentenceTransformerEmbedder

            embedder = SentenceTransformerEmbedder(settings)
        self.embedder = embedder
        self.indexer = Indexer(settings, embedder, self.catalog, self.registry)
        self._generator = generator
        self._gen_lock = threading.Lock()
        self._pipeline: RagPipeline | None = None
        self.retriever = DenseRetriever(embedder, self._active_store, settings.min_relevance)

    def _active_store(self) -> VectorStore:
        return self.indexer.reader_store()

    @property
    def generator(self) -> Generator:
        """Loaded on first use (the slowest engine); one per process. With RAG_LLM_BACKEND=openai
        it is a client of an OpenAI-compatible server instead of an in-process model."""
        with self._gen_lock:
            if self._generator is None:
                if self.settings.llm_backend == "openai":
                    from rag.generate import OpenAICompatibleGenerator

                    self._generator = OpenAICompatibleGenerator(self.settings)
                else:
                    from rag.generate import TransformersGenerator

                    self._generator = TransformersGenerator(self.settings)
            return self._generator

    @property
    def generator_loaded(self) -> bool:
        return self._generator is not None

    @property
    def pipeline(self) -> RagPipeline:
        """The question flow; built on first use (it needs the generator)."""
        if self._pipeline is None:
            self._pipeline = RagPipeline(self.settings, self.retriever, self.generator)
        return self._pipeline

    def document_count(self) -> int:
        return self.registry.stats()["documents"]

    def stats(self) -> IndexStats:
        s = self.registry.stats()
        return IndexStats(
            documents=s["documents"],
            chunks=s["chunks"],
            collection=self.indexer.active_store().name,
            indexed_with=self.registry.get_meta(EMBEDDER_KEY) or "?",
            embedder=self.embedder.name,
            generator=self._generator_label(),
        )

    def _generator_label(self) -> str:
        s = self.settings
        if s.llm_backend != "openai":
            return s.llm_model
        model = self._generator.name if self._generator is not None else f"openai:{s.openai_model or '(first listed)'}"
        return f"{model} at {s.openai_base_url}"
