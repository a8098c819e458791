"""`python -m rag ask "QUESTION" [--json] [--history FILE]`: answer from the index at RAG_HOME.

With ``--history FILE`` the question continues a conversation: FILE (JSON lines, one
``{"question", "answer"}`` per exchange; created when missing) gives the earlier turns, a
follow-up such as "How often is it repainted?" is searched for as the standalone question it
is rewritten into (rag/followup.py), and the new exchange is appended to FILE.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rag.followup import Turn


def read_history(path: Path | None) -> list[Turn]:
    """The earlier exchanges kept in ``path`` (none when it is missing or not given)."""
    if path is None or not path.exists():
        return []
    turns = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                d = json.loads(line)
                turns.append(Turn(str(d["question"]), str(d["answer"])))
            except (ValueError, KeyError, TypeError) as e:
                what = 'a {"question": ..., "answer": ...} JSON line'
                raise SystemExit(f"{path}:{n} is not {what} ({e}); fix or remove it.") from None
    return turns


def _ask(question: str, as_json: bool, history_file: Path | None = None) -> int:
    from rag.config import get_settings
    from rag.services import Services

    history = read_history(history_file)

    services = Services(get_settings())
    if services.document_count() == 0:
        print(
            f"The index at {services.settings.home_dir} is empty. Add documents first: python -m ingest PATH",
            file=sys.stderr,
        )
        return 1
    if as_json:
        result = services.ask(question, history=history)
        print(json.dumps(result.to_json(), ensure_ascii=False))
        _remember(history_file, question, result.text)
        return 0
    stream = services.ask_stream(question, history=history)
    for piece in stream:  # raw text as it is generated
        print(piece, end="", flush=True)
    print()
    answer = stream.answer
    assert answer is not None
    _remember(history_file, question, answer.text)
    if answer.searched_for:
        print(f"\nSearched for: {answer.searched_for}")
    print("\nAnswer (checked against the sources):\n" + answer.text)
    for c in answer.citations:
        page = f", page {c.chunk.page}" if c.chunk.page is not None else ""
        s, e = c.highlight
        print(f"  [{c.n}] {Path(c.chunk.source).name}{page}: \u201c{' '.join(c.chunk.text[s:e].split())}\u201d")
    for sentence in answer.unsupported:
        print(f"  removed, no source supports it: {sentence}")
    t = answer.timings_ms
    print(f"({t.get('retrieve', 0):.0f} ms retrieve, {t.get('generate', 0):.0f} ms generate)")
    return 0


def _remember(path: Path | None, question: str, answer: str) -> None:
    if path is not None:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"question": question, "answer": answer}, ensure_ascii=False) + "\n")


def _warmup() -> int:
    """Load every default model once (converting the GGUF generator into the model cache)."""
    import logging
    import time

    # The first run joins the packaged generator's parts and converts it (minutes): show the
    # app's own progress lines (rag.llm_packages, rag.llm_load), not third-party INFO chatter.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("rag").setLevel(logging.INFO)

    from rag.config import get_settings
    from rag.services import Services

    t0 = time.perf_counter()
    services = Services(get_settings())
    t1 = time.perf_counter()
    generator = services.generator
    t2 = time.perf_counter()
    where = getattr(generator, "loaded_from", generator.name)
    print(f"embedder ready in {t1 - t0:.1f} s; generator ready in {t2 - t1:.1f} s (from {where})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag", description="Grounded: cited answers from your documents.")
    sub = parser.add_subparsers(dest="command", required=True)
    ask = sub.add_parser("ask", help="answer a question from the indexed documents")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    ask.add_argument(
        "--history",
        type=Path,
        metavar="FILE",
        help="continue the conversation kept in FILE (JSON lines; the new exchange is appended)",
    )
    sub.add_parser("warmup", help="load the models once (converts the packaged generator to the cache)")
    args = parser.parse_args(argv)
    from rag.llm_openai import GeneratorUnavailable
    from rag.models import ModelNotFound
    from rag.store import StoreUnavailable

    try:
        if args.command == "warmup":
            return _warmup()
        if args.command == "ask":
            return _ask(args.question, args.json, args.history)
    except (ModelNotFound, GeneratorUnavailable, StoreUnavailable) as e:  # messages name the fix
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
