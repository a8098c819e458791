"""Disk space and files on the write side: the folders walked for files to index, the
free-space check before a re-index, atomic writes that leave no temporary file behind, and
plain messages for a full disk."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

from ingest.loaders import SUPPORTED_SUFFIXES

# Head-room a re-index needs beyond the vectors themselves: the registry's write-ahead log for
# the switch-over transaction, the new BM25 snapshot and the HNSW files growing in steps. A few
# tens of MiB at 100k chunks; 128 MiB keeps the check on the safe side for small indexes too.
REINDEX_MARGIN_BYTES = 128 * 1024 * 1024
# A re-index writes a whole new generation beside the live one (1x), and Chroma's SQLite keeps
# the new rows in its write-ahead log until a checkpoint (up to 1x more) before the old
# generation is dropped: twice the index's current size, measured on its folder.
REINDEX_SPACE_FACTOR = 2


class NotEnoughSpace(OSError):
    """Too little free disk space to start a write that would fill the disk; the message says how much."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return str(self.strerror)


def human(n: float) -> str:
    """
    >>> human(3 * 1024**3), human(512), human(1536 * 1024)
    ('3.0 GiB', '512 B', '1.5 MiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def folder_size(path: Path) -> int:
    """Bytes of every file under ``path`` (0 if it does not exist)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f), follow_symlinks=False).st_size
            except OSError:  # removed while we walked
                continue
    return total


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def check_reindex_space(index_dir: Path, home: Path) -> None:
    """Raise :class:`NotEnoughSpace` unless the disk holding ``index_dir`` has room for a re-index."""
    size = folder_size(index_dir)
    needed = REINDEX_SPACE_FACTOR * size + REINDEX_MARGIN_BYTES
    free = free_bytes(index_dir if index_dir.exists() else home)
    if free < needed:
        raise NotEnoughSpace(
            f"Not enough free disk space to re-index: {human(free)} free on the disk holding {index_dir}, "
            f"about {human(needed)} needed (twice the index's {human(size)}, plus {human(REINDEX_MARGIN_BYTES)}). "
            f"Nothing was changed and the index answers as before. Free at least {human(needed - free)} "
            "on that disk, or move RAG_HOME to a larger one, then re-index again."
        )


def is_disk_full(e: BaseException) -> bool:
    """ENOSPC (or SQLite's SQLITE_FULL) anywhere in the exception's chain."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(cur, sqlite3.OperationalError) and "full" in str(cur):
            return True
        if "No space left on device" in str(cur):  # Chroma's Rust layer reports it as text
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def disk_full_reason(name: str, step: str, home: Path) -> str:
    try:
        free = f" ({human(free_bytes(home))} free now)"
    except OSError:
        free = ""
    return (
        f"{name}: not indexed, the disk is full (while {step}). The index answers as before. "
        f"Free some space on the disk holding {home}{free}, then add the file again."
    )


def write_atomic(dest: Path, data: bytes) -> None:
    """Write ``dest`` under a temporary name, then rename it: readers never see half a file, and
    the temporary file is removed whatever happens (a full disk included)."""
    tmp = dest.with_name(f"{dest.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def iter_files(paths: Iterable[Path], skipped: list[Path] | None = None) -> Iterator[tuple[Path, bool]]:
    """Expand files and folders (recursively, sorted, hidden entries skipped).

    Yields ``(path, explicit)``: explicit files are reported even when unsupported;
    unsupported files found inside folders are passed over (and appended to ``skipped``).
    """
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p)
                if not f.is_file() or any(part.startswith(".") for part in rel.parts):
                    continue
                if f.suffix.lower() in SUPPORTED_SUFFIXES:
                    yield f, False
                elif skipped is not None:
                    skipped.append(f)
        else:
            yield p, True
