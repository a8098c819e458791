"""Pure: a loaded document -> chunks with exact character spans and stable ids."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable

from langchain_text_splitters import RecursiveCharacterTextSplitter

from rag.types import Chunk, LoadedDocument

# Paragraphs, then lines, then sentences, then words: split at the coarsest boundary that fits.
SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


def doc_id_for(source: str) -> str:
    """The registry key of a document: derived from its source name, so a changed file keeps it.

    >>> doc_id_for("notes/a.md")
    'b33a8099b0121956'
    """
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def chunk_id_for(doc_id: str, text: str, occurrence: int) -> str:
    """Stable chunk id: same document + same text (+ which repeat of it) -> same id.

    Unchanged passages of an edited file keep their ids, so only new text is embedded.

    >>> chunk_id_for("d5d7a4e8bb9de1bd", "Hello.", 0) == chunk_id_for("d5d7a4e8bb9de1bd", "Hello.", 0)
    True
    """
    h = hashlib.sha256(f"{doc_id}\x00{occurrence}\x00{text}".encode())
    return h.hexdigest()[:32]


def locate_pieces(text: str, pieces: list[str]) -> list[tuple[int, int]]:
    """Character spans of ``pieces`` (substrings of ``text``, in order, possibly overlapping).

    Each piece starts after the previous piece's start, which is what a splitter with overlap yields.

    >>> locate_pieces("abc abc", ["abc", "abc"])
    [(0, 3), (4, 7)]
    """
    spans: list[tuple[int, int]] = []
    cursor = 0
    for piece in pieces:
        start = text.find(piece, cursor)
        if start < 0:  # defensive: splitters only return substrings, but never lose a chunk
            start = text.find(piece)
        if start < 0:
            raise ValueError(f"chunk not found in its text: {piece[:60]!r}")
        spans.append((start, start + len(piece)))
        cursor = start + 1
    return spans


def make_splitter(
    count_tokens: Callable[[str], int], chunk_tokens: int, overlap_tokens: int
) -> RecursiveCharacterTextSplitter:
    """A LangChain recursive splitter that measures length in embedder tokens."""
    return RecursiveCharacterTextSplitter(
        separators=SEPARATORS,
        chunk_size=chunk_tokens,
        chunk_overlap=overlap_tokens,
        length_function=count_tokens,
        keep_separator="end",
        strip_whitespace=True,
    )


def chunk_document(
    doc: LoadedDocument, splitter: RecursiveCharacterTextSplitter, doc_id: str | None = None
) -> list[Chunk]:
    """Split each page of ``doc`` on its own (so a chunk never straddles pages).

    Invariant, checked by tests: ``doc.text[c.start:c.end] == c.text`` for every chunk.
    """
    doc_id = doc_id or doc_id_for(doc.source)
    seen: Counter[str] = Counter()
    chunks: list[Chunk] = []
    for page in doc.pages:
        page_text = doc.text[page.start : page.end]
        if not page_text.strip():
            continue
        pieces = [p for p in splitter.split_text(page_text) if p.strip()]
        for (s, e), piece in zip(locate_pieces(page_text, pieces), pieces, strict=True):
            occurrence = seen[piece]
            seen[piece] += 1
            chunks.append(
                Chunk(
                    id=chunk_id_for(doc_id, piece, occurrence),
                    doc_id=doc_id,
                    source=doc.source,
                    page=page.page,
                    start=page.start + s,
                    end=page.start + e,
                    text=piece,
                )
            )
    return chunks
