"""Sparse (BM25) side of the hybrid retriever: per-language tokenisers and a bm25s index.

Tokenisation depends on the language of each text, detected on its own (chunk or query):

- English (and any Latin-script text): lower-case words, Lucene's English stopwords dropped,
  Snowball-stemmed, so "running" matches "runs".
- Korean: Kiwi's morphological analysis keeps content morphemes and drops particles and
  endings, so "에펠탑은" ("the Eiffel Tower" + topic particle) matches "에펠탑이".

The index itself is bm25s (Lucene's BM25 variant). Tokens are computed once per chunk at
ingest and stored in the registry; :class:`BM25Index` is rebuilt from them in memory.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from rag.feedback import expansion_terms
from rag.heap import trim_heap
from rag.internals import use_csc_builder

log = logging.getLogger(__name__)
Language = Literal["en", "ko"]

_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LETTER = re.compile(r"[^\W\d_]")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
# Kiwi tags kept for retrieval: nouns, numerals, verb/adjective stems, roots, foreign words,
# numbers, hanja. Particles (J*), endings (E*), suffixes (XS*) and punctuation are dropped.
_KO_KEEP = ("NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "XR", "SL", "SN", "SH", "MAG")


def detect_language(text: str) -> Language:
    """'ko' when at least 30% of the letters are Hangul, else 'en'.

    >>> detect_language("The tower was completed in 1889.")
    'en'
    >>> detect_language("에펠탑은 1889년에 완공되었다.")
    'ko'
    """
    if _HANGUL.search(text) is None:  # the common case, one scan and no lists
        return "en"
    letters = len(_LETTER.findall(text))
    hangul = len(_HANGUL.findall(text))
    return "ko" if hangul / letters >= 0.3 else "en"


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


_kiwi_lock = threading.Lock()


@lru_cache(maxsize=1)
def _kiwi() -> Any:
    from kiwipiepy import Kiwi

    return Kiwi()


def tokenize_en(text: str) -> list[str]:
    """Lower-cased, stopwords removed, Snowball-stemmed words.

    >>> tokenize_en("The towers in Paris are running!")
    ['tower', 'pari', 'run']
    """
    stop = _stopwords()
    words = [w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in stop]
    return list(_stemmer().stemWords(words))


def tokenize_ko(text: str) -> list[str]:
    """Korean content morphemes (Kiwi); Latin words inside go through the English tokeniser.

    >>> tokenize_ko("에펠탑은 파리에 있다")
    ['에펠탑', '파리', '있']
    """
    with _kiwi_lock:  # Kiwi objects are not documented as thread-safe
        morphs = _kiwi().tokenize(text)
    out: list[str] = []
    for m in morphs:
        tag = str(m.tag).split("-")[0]  # Kiwi marks irregular conjugations as e.g. "VV-I"
        if tag not in _KO_KEEP:
            continue
        if tag == "SL":
            out.extend(tokenize_en(m.form))
        else:
            out.append(m.form.lower())
    return out


def tokenize(text: str, language: Language | None = None) -> list[str]:
    """Tokens for BM25, by the text's own language.

    >>> tokenize("Stemming matches plural nouns")
    ['stem', 'match', 'plural', 'noun']
    """
    lang = language or detect_language(text)
    return tokenize_ko(text) if lang == "ko" else tokenize_en(text)


def tokens_to_str(tokens: Sequence[str]) -> str:
    """Stored form of a token list (tokens never contain whitespace)."""
    return " ".join(tokens)


@dataclass(frozen=True)
class SparseHit:
    index: int  # position in the ids the index was built from
    score: float


def csc_by_column(
    data: npt.NDArray[Any], rows: npt.NDArray[Any], cols: npt.NDArray[Any], shape: tuple[int, int]
) -> tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[np.int64]]:
    """CSC arrays (data, row indices, indptr) from (row, col) entries whose ``rows`` never
    decrease, as bm25s writes them (one document after another): what bm25s' own builder returns,
    with fewer temporary copies.

    bm25s sorts by a packed int64 key ``col << 32 | row``, which takes four int64 arrays as long
    as the entries (~9M at 100k chunks: cols and rows widened, the key, the sort order); a
    *stable* sort by column alone needs only the order, and keeps each column's rows in the
    order they came, which is already ascending. A 100k-chunk rebuild peaked ~45 MiB lower.

    >>> d, r, p = csc_by_column(np.array([1., 2., 3.]), np.array([0, 0, 1]), np.array([2, 0, 2]), (2, 3))
    >>> d.tolist(), r.tolist(), p.tolist()
    ([2.0, 1.0, 3.0], [0, 0, 1], [0, 1, 1, 3])
    """
    indptr = np.zeros(shape[1] + 1, dtype=np.int64)
    np.cumsum(np.bincount(cols, minlength=shape[1]), out=indptr[1:])
    order = np.argsort(cols, kind="stable")
    return data[order], rows[order], indptr


class BM25Index:
    """bm25s over a fixed list of token lists. Immutable: rebuild it when the corpus changes
    (indexing 10k chunks from stored tokens takes well under a second).

    >>> idx = BM25Index(["a", "b"], [["eiffel", "tower"], ["louvr", "museum"]])
    >>> [(h.index, round(h.score, 3) > 0) for h in idx.search(["tower"], 5)]
    [(0, True)]
    """

    def __init__(
        self,
        ids: Sequence[str],
        tokens: Iterable[Sequence[str]],
        k1: float = 1.2,
        b: float = 0.75,
        doc_ids: Sequence[str] | None = None,
    ) -> None:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets itself to DEBUG on import
        from bm25s.tokenization import Tokenized

        self.ids = list(ids)
        self.doc_ids = list(doc_ids) if doc_ids is not None else []
        vocab: dict[str, int] = {}
        # ``tokens`` may be a generator: then only one chunk's token strings exist at a time
        # (each is a ~50-byte object: all of them at once took ~1.2 GiB at 104k chunks).
        token_ids = [[vocab.setdefault(t, len(vocab)) for t in toks] for toks in tokens]
        if len(self.ids) != len(token_ids):
            raise ValueError(f"{len(self.ids)} ids but {len(token_ids)} token lists")
        self.vocab = vocab
        self._bm25: Any = None
        if self.ids:
            self._bm25 = bm25s.BM25(k1=k1, b=b, method="lucene")
            use_csc_builder(self._bm25, csc_by_column)  # the same arrays in less memory
            self._bm25.index(Tokenized(ids=token_ids, vocab=vocab), show_progress=False)

    def __len__(self) -> int:
        return len(self.ids)

    def save(self, folder: Path) -> None:
        """bm25s' own files plus our ids (so a new process skips the rebuild)."""
        folder.mkdir(parents=True, exist_ok=True)
        if self._bm25 is not None:
            self._bm25.save(str(folder), show_progress=False)
        (folder / "ids.json").write_text(json.dumps({"ids": self.ids, "doc_ids": self.doc_ids, "vocab": self.vocab}))

    @classmethod
    def load(cls, folder: Path) -> tuple[BM25Index, npt.NDArray[np.str_]]:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)
        meta = json.loads((folder / "ids.json").read_text())
        index = cls.__new__(cls)
        index.ids, index.doc_ids, index.vocab = meta["ids"], meta["doc_ids"], meta["vocab"]
        index._bm25 = bm25s.BM25.load(str(folder), show_progress=False) if index.ids else None
        return index, np.asarray(index.doc_ids, dtype=np.str_)

    def scores(self, query_tokens: Sequence[str]) -> npt.NDArray[np.float32]:
        """BM25 score of every indexed text for the query (0 where no term matches)."""
        known = [self.vocab[t] for t in dict.fromkeys(query_tokens) if t in self.vocab]
        if not known or self._bm25 is None:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)

    def idf(self, terms: Sequence[str]) -> dict[str, float]:
        """log(N / document frequency) of each indexed term (unknown terms are left out).

        >>> idx = BM25Index(["a", "b", "c", "d"], [["tea"], ["tea", "milk"], ["tea"], ["milk"]])
        >>> {t: round(v, 3) for t, v in idx.idf(["tea", "milk", "sugar"]).items()}
        {'tea': 0.288, 'milk': 0.693}
        """
        if self._bm25 is None:
            return {}
        indptr = self._bm25.scores["indptr"]  # CSC by token id: column t holds the texts with t
        n = len(self.ids)
        out = {}
        for t in dict.fromkeys(terms):
            tid = self.vocab.get(t)
            if tid is not None and tid + 1 < len(indptr) and (df := int(indptr[tid + 1] - indptr[tid])) > 0:
                out[t] = float(np.log(n / df))
        return out

    def weighted_scores(
        self, query_tokens: Sequence[str], extra: Sequence[tuple[str, float]], extra_weight: float
    ) -> npt.NDArray[np.float32]:
        """BM25 of the query plus ``extra_weight`` x the weighted BM25 of each extra term
        (pseudo-relevance feedback: :func:`rag.feedback.expansion_terms`)."""
        s = self.scores(query_tokens)
        for term, w in extra:
            if term in self.vocab and w > 0:
                s = s + np.float32(extra_weight * w) * self.scores([term])
        return s

    def search(
        self,
        query_tokens: Sequence[str],
        k: int,
        mask: npt.NDArray[np.bool_] | None = None,
        extra: Sequence[tuple[str, float]] = (),
        extra_weight: float = 0.0,
    ) -> list[SparseHit]:
        """Top-``k`` texts with a positive score, best first; ``mask`` limits the candidates;
        ``extra`` (term, weight) pairs widen the query (see :meth:`weighted_scores`)."""
        s = self.weighted_scores(query_tokens, extra, extra_weight)
        if mask is not None:
            s = np.where(mask, s, 0.0)
        n = int(np.count_nonzero(s > 0))
        k = min(k, n)
        if k <= 0:
            return []
        top = np.argpartition(-s, k - 1)[:k]
        top = top[np.argsort(-s[top], kind="stable")]
        return [SparseHit(int(i), float(s[i])) for i in top]


def _consumed(stored: list[str | None]) -> Iterator[list[str]]:
    """Each stored token string split into tokens, dropped from ``stored`` once read, so the
    strings (~0.1 GiB at 100k chunks) are freed while the index is built, not after."""
    for i, toks in enumerate(stored):
        stored[i] = None
        yield (toks or "").split()


Row = tuple[str, str, "str | None"]  # (chunk id, doc id, stored tokens or None)


class SparseSearcher:
    """BM25 over everything the registry lists, rebuilt when the index version changes.

    ``rows()`` lists (chunk id, doc id, tokens) from the registry (the source of truth, so BM25
    and Chroma change in the same transaction); ``version()`` is the registry's write stamp;
    ``texts(ids)`` fetches chunk texts for rows stored before tokens were (tokenised here, in
    memory). A snapshot of the built index is kept under ``snapshot_dir/<version>`` so a new
    process loads it instead of rebuilding.
    """

    def __init__(
        self,
        rows: Callable[[], Sequence[Row]],
        version: Callable[[], str],
        texts: Callable[[Sequence[str]], dict[str, str]],
        snapshot_dir: Path | None = None,
    ) -> None:
        self._rows = rows
        self._version = version
        self._texts = texts
        self.snapshot_dir = snapshot_dir
        self._lock = threading.Lock()
        self._built: tuple[str, BM25Index, npt.NDArray[np.str_]] | None = None
        self._refresh_lock = threading.Lock()
        self._refresher: threading.Thread | None = None
        self._refresh_again = False

    def refresh_soon(self) -> None:
        """Rebuild (or load) the index for the current version in a background thread, so the
        first question after an ingest does not pay for it (1.3 s at 14k chunks, 14 s at 104k,
        measured). Calls while a rebuild runs are merged into one more rebuild after it. A query
        arriving mid-rebuild waits for it, as it would have without this."""
        with self._refresh_lock:
            if self._refresher is not None:
                self._refresh_again = True
                return
            self._refresher = threading.Thread(target=self._refresh_loop, name="bm25-refresh", daemon=True)
            self._refresher.start()

    def _refresh_loop(self) -> None:
        while True:
            try:
                self.index()
            except Exception:  # only a warm-up: the next query rebuilds and reports any error
                log.warning("background BM25 refresh failed", exc_info=True)
            with self._refresh_lock:
                if not self._refresh_again:
                    self._refresher = None
                    return
                self._refresh_again = False

    def wait_refreshed(self, timeout: float | None = None) -> None:
        """Block until no background refresh is running (tests, and the CLI before it exits)."""
        t = self._refresher
        if t is not None:
            t.join(timeout)

    def index(self) -> tuple[BM25Index, npt.NDArray[np.str_]]:
        """-> (index, doc id of each indexed chunk) for the current version."""
        v = self._version()
        with self._lock:
            if self._built is None or self._built[0] != v:
                # Queries wait on this lock during the build, so the old index serves no one
                # meanwhile: free it first (~0.1 GiB at 100k chunks off the rebuild's peak), and
                # hand the heap's free pages back, since this thread's allocations may come from
                # an arena of its own and not reuse them (trim_heap).
                self._built = None
                trim_heap()
                self._built = (v, *self._load_or_build(v))
            return self._built[1], self._built[2]

    def _load_or_build(self, version: str) -> tuple[BM25Index, npt.NDArray[np.str_]]:
        snap = self.snapshot_dir / version if self.snapshot_dir and version else None
        if snap is not None and (snap / "ids.json").is_file():
            try:
                return BM25Index.load(snap)
            except Exception:  # a damaged snapshot is only a cache: rebuild
                log.warning("BM25 snapshot %s unreadable; rebuilding", snap, exc_info=True)
        rows = list(self._rows())
        missing = [cid for cid, _d, toks in rows if toks is None]
        texts = self._texts(missing) if missing else {}
        ids: list[str] = []
        docs: list[str] = []
        stored: list[str | None] = []  # token strings, split one at a time by _consumed
        for cid, doc_id, toks in rows:
            if toks is None:
                if cid not in texts:
                    continue  # listed but not in Chroma: reconcile will repair it
                toks = tokens_to_str(tokenize(texts[cid]))
            ids.append(cid)
            docs.append(doc_id)
            stored.append(toks)
        del rows, texts  # ``stored`` now holds the only reference to each token string
        # One chunk's token list at a time (a generator), not all of them: at 104k chunks the
        # lists peaked at 1.34 GiB against 0.56 (docs/performance.md).
        index = BM25Index(ids, _consumed(stored), doc_ids=docs)
        trim_heap()
        if snap is not None:
            self._save_snapshot(index, snap)
        return index, np.asarray(docs, dtype=np.str_)

    def _save_snapshot(self, index: BM25Index, snap: Path) -> None:
        """Write the snapshot under a temporary name, then rename it. Only once it is in place are
        older snapshots removed: a failed save (a full disk) leaves them, and no temporary files."""
        tmp = snap.with_name(f".{snap.name}.tmp{os.getpid()}")
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            index.save(tmp)
            os.replace(tmp, snap)
        except Exception as e:  # only a cache: another process wrote it first, or the disk is full or read-only
            if not (snap / "ids.json").is_file():
                log.warning(
                    "could not save the BM25 snapshot to %s (%s). Questions are still answered (the index "
                    "is in memory), but the next process rebuilds it. Free some space on that disk.",
                    snap,
                    e,
                )
            return
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for old in snap.parent.iterdir():  # keep only the current snapshot
            if old.name != snap.name and not old.name.startswith("."):
                shutil.rmtree(old, ignore_errors=True)

    def search(
        self,
        query: str,
        k: int,
        doc_ids: Sequence[str] | None = None,
        feedback: Sequence[str] = (),
        n_terms: int = 10,
        weight: float = 0.5,
    ) -> list[tuple[str, float]]:
        """-> [(chunk id, BM25 score)], best first; ``doc_ids`` restricts to those documents.
        ``feedback`` texts (the first pass's best hits) widen the query by their ``n_terms``
        heaviest terms, each at up to ``weight`` of a query term's say (:mod:`rag.feedback`)."""
        index, docs = self.index()
        if len(index) == 0:
            return []
        q = tokenize(query)
        fb = [tokenize(t) for t in feedback]
        extra = expansion_terms(q, fb, index.idf([t for toks in fb for t in toks]), n_terms) if fb else []
        mask = np.isin(docs, list(doc_ids)) if doc_ids else None
        return [(index.ids[h.index], h.score) for h in index.search(q, k, mask, extra, weight)]
