"""Plain data passed between the stages: load -> chunk -> embed -> store -> retrieve -> prompt -> generate -> cite."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PageSpan:
    """Where one page sits in a document's extracted text: ``text[start:end]``.

    ``page`` is 1-based for paginated formats (PDF) and ``None`` otherwise.
    """

    page: int | None
    start: int
    end: int


@dataclass(frozen=True)
class LoadedDocument:
    """A file turned into text. ``pages`` partition ``text`` in order."""

    source: str  # the path or file name as ingested, shown to the user
    text: str
    pages: tuple[PageSpan, ...]
    mime: str


@dataclass(frozen=True)
class Chunk:
    """A passage of a document, with its exact place: ``document.text[start:end] == text``."""

    id: str  # stable: derived from the document key, the text and its occurrence number
    doc_id: str
    source: str
    page: int | None
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class ScoredChunk:
    chunk: Chunk
    score: float  # higher is more relevant; the scale depends on the stage that set it


@dataclass
class RetrievalTrace:
    """Each retrieval stage's list for one question, best first, and each stage's time (ms).

    ``first`` is what the first stage returns (``hybrid``, or ``dense``/``bm25`` alone in those
    modes); ``reranked`` is ``first`` re-ordered by the cross-encoder (empty without one);
    ``sources`` are what the generator is given: the top ``top_k``, above the relevance floors.
    Filled in by :func:`rag.pipeline.retrieval_trace`; evaluation and benchmarks read it."""

    question: str
    dense: list[ScoredChunk] = field(default_factory=list)
    bm25: list[ScoredChunk] = field(default_factory=list)
    hybrid: list[ScoredChunk] = field(default_factory=list)
    first: list[ScoredChunk] = field(default_factory=list)
    reranked: list[ScoredChunk] = field(default_factory=list)
    rerank_scores: dict[str, float] = field(default_factory=dict)  # chunk id -> the cross-encoder's own score
    sources: list[ScoredChunk] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Citation:
    """One numbered source the answer actually cites."""

    n: int  # the marker number as it appears in the answer, [n]
    chunk: Chunk
    highlight: tuple[int, int]  # span inside chunk.text that best supports the citing sentence(s)

    def to_json(self) -> dict[str, object]:
        return {
            "n": self.n,
            "source": self.chunk.source,
            "page": self.chunk.page,
            "start": self.chunk.start,
            "end": self.chunk.end,
            "text": self.chunk.text,
            "highlight": list(self.highlight),
        }


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    abstained: bool
    citations: tuple[Citation, ...]
    sources: tuple[ScoredChunk, ...]  # everything shown to the generator, numbered from 1
    timings_ms: dict[str, float] = field(default_factory=dict)
    # generated sentences no source backs, removed from ``text`` (shown to the user as such)
    unsupported: tuple[str, ...] = ()
    extractive: bool = False  # ``text`` quotes a source because no generated claim was backed
    searched_for: str = ""  # the standalone question a follow-up was rewritten into ("" = as asked)

    def to_json(self) -> dict[str, object]:
        return {
            "answer": self.text,
            "abstained": self.abstained,
            "citations": [c.to_json() for c in self.citations],
            "unsupported": list(self.unsupported),
            "extractive": self.extractive,
            "searched_for": self.searched_for,
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }


@dataclass(frozen=True)
class IndexedDocument:
    """A row of the document registry."""

    doc_id: str
    source: str
    sha256: str
    mime: str
    pages: int
    chunks: int
    indexed_at: float  # unix time
    stored_path: str  # copy under RAG_HOME/files, read by re-index


@dataclass(frozen=True)
class FileResult:
    """What happened to one file during ingest."""

    source: str
    status: str  # "indexed" | "unchanged" | "failed"
    chunks: int = 0
    embedded: int = 0  # chunks that needed a new embedding (0 for unchanged text)
    reason: str = ""
    # Documents are keyed by name, so other content under a name already indexed replaces it:
    replaced: bool = False  # True: "new version of <source>"
    previous_sha256: str = ""  # the replaced version's SHA-256 ("" when nothing was replaced)


@dataclass(frozen=True)
class ReindexReport:
    """What a full re-index did (``failed``: documents whose stored copy could not be re-read)."""

    documents: int
    chunks: int
    failed: tuple[FileResult, ...]
    seconds: float
    collection: str


@dataclass(frozen=True)
class UploadReport:
    """One result per uploaded file (``replaced``: a new version of a document of that name)."""

    results: tuple[FileResult, ...]

    @staticmethod
    def is_new_version(result: FileResult) -> bool:
        return result.replaced
