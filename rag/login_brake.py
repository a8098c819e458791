"""The sign-in brake kept on disk: wrong passwords are counted per client in SQLite.

Keyed per client, so a stranger's wrong guesses lock out only the stranger, never the admin
on another machine; on disk, so a restart does not reset it and every app process that
shares ``RAG_HOME`` shares one count. Same interface as :class:`rag.auth.RateLimiter`, so
:func:`rag.auth.attempt_login` takes either.

Worked example (a fake clock stands in for time)::

    >>> import tempfile, pathlib
    >>> now = [1000.0]
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "brake.sqlite3"
    >>> brake = LoginBrake(path, max_failures=2, window_s=60, clock=lambda: now[0])
    >>> brake.record_failure("admin|203.0.113.9"); brake.record_failure("admin|203.0.113.9")
    >>> brake.retry_after("admin|203.0.113.9")
    60.0
    >>> brake.retry_after("admin|198.51.100.4")  # another client may still try
    0.0
    >>> LoginBrake(path, max_failures=2, window_s=60, clock=lambda: now[0]).retry_after("admin|203.0.113.9")
    60.0
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from rag.auth import check_brake_limits


class LoginBrake:
    """At most ``max_failures`` failed sign-ins per ``window_s`` seconds for each key, on disk."""

    def __init__(
        self,
        path: Path,
        max_failures: int = 5,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.time,  # wall clock: the count outlives the process
    ) -> None:
        check_brake_limits(max_failures, window_s)
        self.path = path
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS failures (key TEXT NOT NULL, at REAL NOT NULL)")
            db.execute("CREATE INDEX IF NOT EXISTS failures_key ON failures (key, at)")
        path.chmod(0o600)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=10.0)) as db, db:
            yield db

    def _recent(self, db: sqlite3.Connection, key: str, now: float) -> list[float]:
        db.execute("DELETE FROM failures WHERE at <= ?", (now - self.window_s,))
        rows = db.execute(
            "SELECT at FROM failures WHERE key = ? ORDER BY at DESC LIMIT ?", (key, self.max_failures)
        ).fetchall()
        return sorted(at for (at,) in rows)

    def retry_after(self, key: str) -> float:
        """Seconds to wait before ``key`` may try again; ``0.0`` when it may try now."""
        now = self._clock()
        with self._tx() as db:
            recent = self._recent(db, key, now)
        if len(recent) < self.max_failures:
            return 0.0
        return max(0.0, recent[0] + self.window_s - now)

    def record_failure(self, key: str) -> None:
        now = self._clock()
        with self._tx() as db:
            db.execute("INSERT INTO failures (key, at) VALUES (?, ?)", (key, now))

    def reset(self, key: str) -> None:
        """Forget the failures of ``key`` (after a successful sign-in)."""
        with self._tx() as db:
            db.execute("DELETE FROM failures WHERE key = ?", (key,))
