"""Index writes off the Streamlit script thread: uploads and re-indexes run as background jobs.

Streamlit stops or reruns a script by raising inside its thread at the next ``st`` call, so a
write that runs there (and reports progress through ``st``) is cut short by any click, a page
switch or a closed tab, with the index lock held. A :class:`JobRunner` runs each write on its
own worker thread instead, one at a time in submission order (writes serialise on the index
lock anyway), and keeps what the pages show: progress, then the result or the error, and the
last finished job of each kind. Nothing here imports Streamlit.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, cast

from rag.interfaces import Progress
from rag.types import ReindexReport, UploadReport

if TYPE_CHECKING:
    from rag.services import Services

log = logging.getLogger(__name__)

T = TypeVar("T")
JobState = Literal["queued", "running", "done", "failed"]


@dataclass(frozen=True)
class JobKind(Generic[T]):
    """A kind of job, typed by its result. ``exclusive``: refuse one while another is queued or running."""

    name: str
    label: str  # for messages: "re-index", "upload"
    exclusive: bool = False


@dataclass(frozen=True)
class Job(Generic[T]):
    """A snapshot of one job (the runner replaces it on every change; never mutated)."""

    id: int
    kind: str
    label: str
    state: JobState
    submitted_at: float
    started_at: float | None = None
    finished_at: float | None = None
    done: int = 0
    total: int = 0
    message: str = ""
    result: T | None = None
    error: str = ""  # "ExceptionType: message" when state == "failed"

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    @property
    def fraction(self) -> float:
        """Progress in [0, 1] (1 once finished).

        >>> Job(1, "upload", "upload", "running", 0.0, done=1, total=4).fraction
        0.25
        """
        if self.finished:
            return 1.0
        return min(self.done / self.total, 1.0) if self.total else 0.0

    def progress_text(self) -> str:
        """``done/total · message`` while running.

        >>> Job(1, "reindex", "re-index", "running", 0.0, done=2, total=5, message="a.md").progress_text()
        '2/5 · a.md'
        """
        if self.state == "queued":
            return "waiting to start"
        if self.total == 0 and not self.finished:
            return "starting…"
        return f"{self.done}/{self.total} · {self.message}"


class JobBusy(RuntimeError):
    """A job of an exclusive kind was submitted while one of that kind is queued or running."""

    def __init__(self, job: Job[Any]) -> None:
        self.job = job
        state = "running" if job.state == "running" else "waiting to start"
        super().__init__(
            f"A {job.label} is already {state} ({job.progress_text()}), so this one was not started. "
            f"Wait for it to finish: its report appears here when it ends."
        )


class JobRunner:
    """Runs jobs one at a time on a worker thread that exists only while there is work.

    Keeps every queued and running job, the last ``history`` finished ones, and the last
    finished job of each kind. Thread-safe; a job's own failure is recorded, never raised.
    """

    def __init__(self, history: int = 32, thread_name: str = "rag-jobs") -> None:
        self.history = history
        self.thread_name = thread_name
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._jobs: dict[int, Job[Any]] = {}  # insertion order = submission order
        self._queue: deque[tuple[int, Callable[[Progress], Any]]] = deque()
        self._last: dict[str, Job[Any]] = {}
        self._worker: threading.Thread | None = None

    # --- submitting --------------------------------------------------------
    def submit(self, kind: JobKind[T], work: Callable[[Progress], T]) -> Job[T]:
        """Queue ``work(progress)``; returns its first snapshot. Raises :class:`JobBusy` for an
        exclusive kind that already has a job queued or running."""
        with self._cond:
            if kind.exclusive and (busy := self._active(kind.name)) is not None:
                raise JobBusy(busy)
            job: Job[T] = Job(next(self._ids), kind.name, kind.label, "queued", time.time())
            self._jobs[job.id] = job
            self._queue.append((job.id, work))
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name=self.thread_name, daemon=True)
                self._worker.start()
            return job

    # --- reading -----------------------------------------------------------
    def get(self, kind: JobKind[T], job_id: int) -> Job[T] | None:
        """The job ``job_id`` if it is of ``kind`` and still kept."""
        with self._cond:
            job = self._jobs.get(job_id)
        return cast("Job[T]", job) if job is not None and job.kind == kind.name else None

    def active(self, kind: JobKind[T]) -> Job[T] | None:
        """The queued or running job of ``kind`` submitted first, if any."""
        with self._cond:
            return cast("Job[T] | None", self._active(kind.name))

    def last(self, kind: JobKind[T]) -> Job[T] | None:
        """The last finished job of ``kind`` (kept even after ``history`` is exceeded)."""
        with self._cond:
            return cast("Job[T] | None", self._last.get(kind.name))

    def ahead(self, job_id: int) -> list[Job[Any]]:
        """The unfinished jobs submitted before ``job_id``: what it waits for."""
        with self._cond:
            return [j for j in self._jobs.values() if j.id < job_id and not j.finished]

    def status_text(self, job: Job[Any]) -> str:
        """One line for a progress bar: the job's progress, or what it waits for."""
        if job.state != "queued":
            return job.progress_text()
        waits = self.ahead(job.id)
        if not waits:
            return "starting…"
        first = waits[0]
        more = f" and {len(waits) - 1} more" if len(waits) > 1 else ""
        return f"waiting for the {first.label} ({first.progress_text()}){more} to finish"

    def busy(self) -> bool:
        with self._cond:
            return any(not j.finished for j in self._jobs.values())

    def wait(self, job_id: int, timeout: float | None = None) -> Job[Any] | None:
        """Block until ``job_id`` finishes (or ``timeout`` s pass); its snapshot then."""
        with self._cond:
            self._cond.wait_for(lambda: self._jobs.get(job_id, _GONE).finished, timeout)
            return self._jobs.get(job_id)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job is queued or running; False if ``timeout`` s passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: all(j.finished for j in self._jobs.values()), timeout)

    # --- the worker --------------------------------------------------------
    def _active(self, kind: str) -> Job[Any] | None:
        return next((j for j in self._jobs.values() if j.kind == kind and not j.finished), None)

    def _update(self, job_id: int, **changes: Any) -> None:
        with self._cond:
            job = replace(self._jobs[job_id], **changes)
            self._jobs[job_id] = job
            if job.finished:
                self._last[job.kind] = job
                finished = [i for i, j in self._jobs.items() if j.finished]
                for old in finished[: max(len(finished) - self.history, 0)]:
                    del self._jobs[old]
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                if not self._queue:
                    self._worker = None
                    return
                job_id, work = self._queue.popleft()
            self._update(job_id, state="running", started_at=time.time())

            def progress(done: int, total: int, message: str, job_id: int = job_id) -> None:
                self._update(job_id, done=done, total=total, message=message)

            try:
                result = work(progress)
            except BaseException as e:  # recorded for the page; the worker goes on with the queue
                log.exception("background job %d failed", job_id)
                self._update(job_id, state="failed", finished_at=time.time(), error=f"{type(e).__name__}: {e}")
            else:
                self._update(job_id, state="done", finished_at=time.time(), result=result)


_GONE: Job[Any] = Job(0, "", "", "done", 0.0)  # wait() on a job that is not kept returns at once
_runners: weakref.WeakKeyDictionary[object, JobRunner] = weakref.WeakKeyDictionary()
_runners_lock = threading.Lock()


def runner_for(owner: object) -> JobRunner:
    """The job runner of ``owner`` (the app's Services: one index, one queue of writes),
    made on first use and kept as long as ``owner`` lives."""
    with _runners_lock:
        runner = _runners.get(owner)
        if runner is None:
            runner = _runners[owner] = JobRunner()
        return runner


# --- the app's write jobs: Services methods run on the worker ---------------------------------
REINDEX: JobKind[ReindexReport] = JobKind("reindex", "re-index", exclusive=True)
UPLOAD: JobKind[UploadReport] = JobKind("upload", "upload")


def start_upload(runner: JobRunner, services: Services, files: Sequence[tuple[str, bytes]]) -> Job[UploadReport]:
    """Queue the indexing of uploaded ``(file name, bytes)`` pairs (:meth:`Services.upload`); it
    runs after any write already queued."""
    batch = list(files)
    return runner.submit(UPLOAD, lambda progress: services.upload(batch, progress))


def start_reindex(runner: JobRunner, services: Services) -> Job[ReindexReport]:
    """Queue a re-index (:meth:`Services.reindex`); raises :class:`JobBusy` while another one is
    queued or running."""
    return runner.submit(REINDEX, lambda progress: services.reindex(progress))
