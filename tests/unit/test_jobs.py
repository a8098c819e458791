"""The background job runner (rag.jobs), without Streamlit."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from rag.interfaces import Progress
from rag.jobs import (
    UPLOAD,
    JobBusy,
    JobKind,
    JobRunner,
    runner_for,
)
from rag.services import Services

SLOW: JobKind[str] = JobKind("slow", "slow job", exclusive=True)
PLAIN: JobKind[int] = JobKind("plain", "plain job")
WAIT_S = 10.0


def held(gate: threading.Event, started: threading.Event | None = None) -> Callable[[Progress], str]:
    def work(progress: Progress) -> str:
        progress(0, 2, "first")
        if started is not None:
            started.set()
        assert gate.wait(WAIT_S)
        progress(1, 2, "second")
        return "finished"

    return work


def returns(value: int) -> Callable[[Progress], int]:
    return lambda progress: value


def test_job_runs_on_the_worker_and_keeps_progress_and_result() -> None:
    runner = JobRunner(thread_name="jobs-test-result")
    threads: list[str] = []
    gate, started = threading.Event(), threading.Event()

    def work(progress: Progress) -> str:
        threads.append(threading.current_thread().name)
        return held(gate, started)(progress)

    job = runner.submit(SLOW, work)
    assert job.state == "queued"
    assert started.wait(WAIT_S)
    running = runner.get(SLOW, job.id)
    assert running is not None
    assert (running.state, running.done, running.total, running.message) == ("running", 0, 2, "first")
    assert runner.status_text(running) == "0/2 · first"
    assert runner.last(SLOW) is None  # nothing finished yet
    gate.set()
    done = runner.wait(job.id, WAIT_S)
    assert done is not None
    assert (done.state, done.result, done.error, done.fraction) == ("done", "finished", "", 1.0)
    assert threads == ["jobs-test-result"]  # not the caller's thread
    assert runner.last(SLOW) == done
    assert runner.get(PLAIN, job.id) is None  # typed lookups: the id is of another kind


def test_a_failing_job_is_recorded_and_the_next_one_still_runs() -> None:
    runner = JobRunner()

    def fail(progress: Progress) -> int:
        raise ValueError("the stored copy is gone")

    def leave(progress: Progress) -> int:
        raise SystemExit(3)  # not an Exception: still recorded, and the worker goes on

    first, second = runner.submit(PLAIN, fail), runner.submit(PLAIN, leave)
    third = runner.submit(PLAIN, lambda progress: 7)
    assert runner.wait_idle(WAIT_S)
    a, b, c = (runner.get(PLAIN, j.id) for j in (first, second, third))
    assert a is not None and (a.state, a.error) == ("failed", "ValueError: the stored copy is gone")
    assert b is not None and (b.state, b.error) == ("failed", "SystemExit: 3")
    assert c is not None and (c.state, c.result) == ("done", 7)


def test_an_exclusive_kind_is_refused_while_one_is_queued_or_running() -> None:
    runner = JobRunner()
    gate, started = threading.Event(), threading.Event()
    blocker = runner.submit(PLAIN, lambda progress: int(gate.wait(WAIT_S)))
    queued = runner.submit(SLOW, held(gate, started))
    with pytest.raises(JobBusy, match="already waiting to start") as refused:
        runner.submit(SLOW, held(gate))
    assert refused.value.job.id == queued.id
    runner.submit(PLAIN, lambda progress: 1)  # other kinds still queue
    gate.set()
    assert started.wait(WAIT_S)
    assert runner.wait_idle(WAIT_S)
    assert runner.submit(SLOW, lambda progress: "again").id > blocker.id  # accepted once it ended
    assert runner.wait_idle(WAIT_S)


def test_refusal_says_what_runs_and_what_to_do() -> None:
    runner = JobRunner()
    gate, started = threading.Event(), threading.Event()
    runner.submit(SLOW, held(gate, started))
    assert started.wait(WAIT_S)
    with pytest.raises(JobBusy) as refused:
        runner.submit(SLOW, held(gate))
    assert str(refused.value) == (
        "A slow job is already running (0/2 · first), so this one was not started. "
        "Wait for it to finish: its report appears here when it ends."
    )
    gate.set()
    assert runner.wait_idle(WAIT_S)


def test_jobs_run_one_at_a_time_in_submission_order() -> None:
    runner = JobRunner()
    order: list[int] = []
    running = 0
    overlap = False
    lock = threading.Lock()

    def work(i: int) -> Callable[[Progress], int]:
        def run(progress: Progress) -> int:
            nonlocal running, overlap
            with lock:
                running += 1
                overlap |= running > 1
            order.append(i)
            threading.Event().wait(0.01)
            with lock:
                running -= 1
            return i

        return run

    jobs = [runner.submit(PLAIN, work(i)) for i in range(5)]
    waiting = runner.get(PLAIN, jobs[-1].id)
    assert waiting is not None
    if waiting.state == "queued":
        assert runner.status_text(waiting).startswith("waiting for the plain job")
    assert runner.wait_idle(WAIT_S)
    assert order == [0, 1, 2, 3, 4]
    assert not overlap


def test_the_worker_thread_exists_only_while_there_is_work() -> None:
    runner = JobRunner(thread_name="jobs-test-idle")
    for _ in range(2):
        runner.submit(PLAIN, lambda progress: 1)
        assert runner.wait_idle(WAIT_S)
        for t in [t for t in threading.enumerate() if t.name == "jobs-test-idle"]:
            t.join(WAIT_S)
        assert not [t for t in threading.enumerate() if t.name == "jobs-test-idle"]
        assert not runner.busy()


def test_history_is_bounded_but_the_last_job_of_each_kind_is_kept() -> None:
    runner = JobRunner(history=2)
    jobs = [runner.submit(PLAIN, returns(i)) for i in range(4)]
    assert runner.wait_idle(WAIT_S)
    assert runner.get(PLAIN, jobs[0].id) is None
    assert runner.get(PLAIN, jobs[3].id) is not None
    last = runner.last(PLAIN)
    assert last is not None and last.result == 3
    assert runner.wait(jobs[0].id, 0) is None  # no longer kept: wait returns at once


def test_one_runner_per_owner() -> None:
    class Owner:
        pass

    a, b = Owner(), Owner()
    assert runner_for(a) is runner_for(a)
    assert runner_for(a) is not runner_for(b)


def test_same_name_upload_is_a_new_version(fake_services: Services) -> None:
    first = fake_services.upload([("notes.md", b"The tower opened in 1889.")])
    assert [r.status for r in first.results] == ["indexed"] and not first.results[0].replaced
    again = fake_services.upload([("notes.md", b"The tower opened in 1889.")])
    assert [r.status for r in again.results] == ["unchanged"] and not again.results[0].replaced
    changed = fake_services.upload(
        [("dir/notes.md", b"The tower opened in May 1889."), ("other.md", b"Another file here.")]
    )
    assert [(r.source, r.status) for r in changed.results] == [("notes.md", "indexed"), ("other.md", "indexed")]
    assert [r.source for r in changed.results if r.replaced] == ["notes.md"]
    assert [changed.is_new_version(r) for r in changed.results] == [True, False]
    assert UPLOAD.name == "upload"
