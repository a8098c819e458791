"""Parse untrusted documents in a worker process with CPU, memory and wall-clock limits.

A parser stuck in C code (lxml, zlib) cannot be stopped from a thread, and a file that
needs gigabytes would take the whole app down with it; a separate process can be killed.

The worker is a fresh interpreter started with subprocess (fork+exec, like
multiprocessing's "spawn"): it inherits none of the app's threads, models or locks, and
imports only the parsers (~0.3 s, once). It is kept for the next file, and replaced after
it was killed, ran out of memory, or grew past ``_RECYCLE_MIB`` (so what one big file
left behind never counts against the next). At most ``PARSE_WORKERS`` parse at once.

For each file the worker sets its own soft ``RLIMIT_CPU`` (the CPU time it has used plus
``PARSE_CPU_SECONDS``: the kernel then ends it with SIGXCPU) and ``RLIMIT_AS``
(``PARSE_MEMORY_MIB``: allocations fail, a MemoryError), and the app waits at most
``PARSE_WALL_SECONDS`` for the answer before it kills the worker. Each way out is a
:class:`LoadError` naming the file and the limit; the caller never hangs or crashes.

The request (from the app, trusted) is pickled; the answer (from the process that read
hostile bytes) is JSON, so the app never unpickles anything the worker wrote.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ingest import limits
from ingest.loaders import LoadError
from rag.types import LoadedDocument, PageSpan

_STARTUP_SECONDS = 60  # importing the parsers takes ~0.3 s; a swapping machine can take far longer
_RECYCLE_MIB = 512  # a worker whose address space once passed this is replaced after its file
_ROOT = Path(__file__).resolve().parents[1]  # the folder holding the ingest package


class _TimedOut(Exception):
    pass


class _Worker:
    """One worker process and the socket to it."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ingest.sandbox", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        try:
            self.answer(_STARTUP_SECONDS)  # {"ready": true} once the parsers are imported
        except BaseException:
            self.stop()
            raise

    def answer(self, timeout: float) -> dict[str, Any]:
        if not self.conn.poll(timeout):
            raise _TimedOut
        reply: dict[str, Any] = json.loads(self.conn.recv_bytes(16 * limits.MAX_TEXT_CHARS + (1 << 20)))
        return reply

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 0.0) -> int | None:
        """Kill the process if it has not exited within ``grace`` seconds; return its exit status."""
        self.conn.close()
        try:
            return self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # not even SIGKILL ended it (a stuck disk read)
            return None


_lock = threading.Lock()
_idle: list[_Worker] = []
_slots = threading.BoundedSemaphore(limits.PARSE_WORKERS)


def _take(source: str) -> _Worker:
    with _lock:
        while _idle:
            worker = _idle.pop()
            if worker.alive():
                return worker
            worker.stop()  # died while idle (killed from outside): not this file's fault
    try:
        return _Worker()
    except (OSError, EOFError, ValueError, _TimedOut) as e:
        raise LoadError(
            f"{source}: the document parser process did not start ({type(e).__name__}: {e}); "
            "the file was not indexed. See the log, and check that `python -c 'import pypdf, docx'` works."
        ) from e


@atexit.register
def stop_workers() -> None:
    """Stop the idle workers (they also exit by themselves when this process ends)."""
    with _lock:
        while _idle:
            _idle.pop().stop()


def _death(source: str, status: int | None) -> LoadError:
    cpu, mib = limits.PARSE_CPU_SECONDS, limits.PARSE_MEMORY_MIB
    if status == -signal.SIGXCPU:
        what = f"needed more than {cpu} s of CPU time to parse"
    elif status == -signal.SIGKILL:
        what = f"was stopped while parsing (killed: more than {mib} MiB of memory?)"
    else:
        how = f"exit status {status}"
        if status is not None and -status in signal.valid_signals():
            how = signal.Signals(-status).name
        what = f"crashed the document parser ({how})"
    return LoadError(f"{source}: {what}; the file was not indexed. Split it into smaller files or convert it to text.")


def parse_in_worker(suffix: str, data: bytes, source: str) -> LoadedDocument:
    """Parse one HTML/DOCX/PDF file in a worker (see the module doc), or raise LoadError."""
    request = (suffix, data, source, limits.current_caps(), limits.PARSE_CPU_SECONDS, limits.PARSE_MEMORY_MIB)
    wall = limits.PARSE_WALL_SECONDS
    with _slots:
        worker = _take(source)
        reusable = False
        try:
            worker.conn.send(request)
            reply = worker.answer(wall)
            reusable = not reply.get("retire")
        except _TimedOut:
            raise LoadError(
                f"{source}: took longer than {wall} s to parse; the file was not indexed. "
                "Split it into smaller files or convert it to text."
            ) from None
        except (EOFError, OSError):  # it died: its exit status says why
            raise _death(source, worker.stop(grace=5)) from None
        finally:
            if reusable:
                with _lock:
                    _idle.append(worker)
            else:
                worker.stop()
    if "error" in reply:
        raise LoadError(reply["error"])
    if "memory" in reply:
        raise LoadError(
            f"{source}: needed more than {limits.PARSE_MEMORY_MIB} MiB of memory to parse; the file was not "
            "indexed. Split it into smaller files or convert it to text."
        )
    doc = reply["doc"]
    pages = tuple(PageSpan(p, s, e) for p, s, e in doc["pages"])
    return LoadedDocument(source=source, text=doc["text"], pages=pages, mime=doc["mime"])


# --- the worker ------------------------------------------------------------------------------
def _set_soft(which: int, value: int) -> None:
    hard = resource.getrlimit(which)[1]
    resource.setrlimit(which, (value if hard == resource.RLIM_INFINITY else min(value, hard), hard))


def _vm_peak_mib() -> float:
    """The most address space this process has held (Linux), in MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) / 1024
    return 0.0


def parse(suffix: str, data: bytes, source: str, caps: limits.Caps) -> LoadedDocument:
    """Run the parser for ``suffix`` here; every failure but MemoryError becomes a LoadError."""
    from ingest.docx_text import load_docx
    from ingest.html_text import load_html
    from ingest.loaders import unreadable
    from ingest.pdf_text import load_pdf

    parsers = {".pdf": load_pdf, ".docx": load_docx, ".html": load_html, ".htm": load_html}
    try:
        return parsers[suffix](data, source, caps)
    except limits.CapExceeded as e:
        raise LoadError(e.message(source)) from e
    except (LoadError, MemoryError):
        raise
    except Exception as e:  # a parser bug or a hostile file must fail this file, not the batch
        raise unreadable(source, suffix, e) from e


def _parse_limited(request: tuple[Any, ...]) -> dict[str, Any]:
    suffix, data, source, caps, cpu_seconds, memory_mib = request
    peak_before = _vm_peak_mib()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _set_soft(resource.RLIMIT_CPU, math.ceil(usage.ru_utime + usage.ru_stime) + cpu_seconds)
    _set_soft(resource.RLIMIT_AS, memory_mib << 20)
    try:
        doc = parse(suffix, data, source, caps)
        pages = [[p.page, p.start, p.end] for p in doc.pages]
        reply: dict[str, Any] = {"doc": {"text": doc.text, "pages": pages, "mime": doc.mime}}
    except LoadError as e:
        # C code out of memory often reports something else (lxml: "unknown error")
        peak = _vm_peak_mib()
        reply = {"memory": True} if peak > max(peak_before, 0.9 * memory_mib) else {"error": str(e)}
    except MemoryError:
        reply = {"memory": True}
    finally:
        _set_soft(resource.RLIMIT_AS, resource.RLIM_INFINITY)
        _set_soft(resource.RLIMIT_CPU, resource.RLIM_INFINITY)
    reply["retire"] = "memory" in reply or _vm_peak_mib() > _RECYCLE_MIB
    return reply


def main(fd: int) -> None:
    """The worker: answer requests from the socket ``fd`` until it closes."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a killed worker leaves no core file
    import ingest.docx_text
    import ingest.html_text
    import ingest.pdf_text  # noqa: F401  (import the parsers before the first file, not during it)

    conn = Connection(fd)
    conn.send_bytes(b'{"ready": true}')
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        reply = _parse_limited(request)
        try:
            conn.send_bytes(json.dumps(reply, ensure_ascii=False).encode())
        except OSError:  # the app has gone
            return
        if reply["retire"]:
            return


if __name__ == "__main__":
    main(int(sys.argv[1]))
