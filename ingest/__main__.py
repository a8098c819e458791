"""`python -m ingest PATH [PATH ...]`: index files and folders (recursively).

Exit status: 0 when every file was indexed or unchanged, 1 when some failed (the rest
are still indexed), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from ingest.loaders import SUPPORTED_SUFFIXES


def printable(text: str) -> str:
    """Names as the terminal should show them: control characters escaped, never executed.

    >>> printable("evil\x1b[2Jname.md")
    'evil\\x1b[2Jname.md'
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        description=f"Index documents ({', '.join(SUPPORTED_SUFFIXES)}) into the Grounded index at RAG_HOME.",
    )
    parser.add_argument("paths", nargs="+", type=Path, help="files or folders (folders are read recursively)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    missing = [p for p in args.paths if not p.exists()]
    if missing:
        parser.print_usage(sys.stderr)
        print(f"error: no such file or folder: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from tqdm import tqdm

    from rag.config import get_settings
    from rag.models import ModelNotFound
    from rag.services import Services, StoreUnavailable

    t_start = time.perf_counter()
    try:
        services = Services(get_settings())
    except (ModelNotFound, StoreUnavailable) as e:  # messages name the fix
        print(f"error: {e}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()  # the rate below counts indexing only, not model loading
    bar = tqdm(total=0, unit="file", disable=args.quiet, file=sys.stderr)

    def progress(done: int, total: int, message: str) -> None:
        bar.total = total
        bar.n = done
        bar.set_postfix_str(Path(message).name[-40:], refresh=False)
        bar.refresh()

    skipped: list[Path] = []
    results = services.ingest(args.paths, progress, skipped)
    bar.close()
    services.wait_refreshed()  # the BM25 snapshot is saved before we exit: the app loads it
    seconds = time.perf_counter() - t0
    for r in results:
        if r.status == "indexed":
            new_version = "new version, replaces the earlier one; " if r.replaced else ""
            print(f"indexed    {printable(r.source)}  ({new_version}{r.chunks} chunks, {r.embedded} embedded)")
        elif r.status == "unchanged":
            print(f"unchanged  {printable(r.source)}")
        else:
            reason = r.reason.removeprefix(f"{r.source}: ")
            print(f"FAILED     {printable(r.source)}: {printable(reason)}")
    if skipped:
        shown = ", ".join(printable(p.name) for p in skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        print(f"skipped    {len(skipped)} file(s) of unsupported type in folders: {shown}")
    counts = {s: sum(r.status == s for r in results) for s in ("indexed", "unchanged", "failed")}
    embedded = sum(r.embedded for r in results)
    rate = f", {embedded / seconds:.1f} chunks/s" if embedded else ""
    print(
        f"{len(results)} files: {counts['indexed']} indexed, {counts['unchanged']} unchanged, "
        f"{counts['failed']} failed; {embedded} chunks embedded in {seconds:.1f} s{rate} "
        f"(+{t0 - t_start:.1f} s start-up). Index: {services.settings.home_dir}"
    )
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
