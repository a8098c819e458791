"""Password checks and a brute-force brake. Pure Python: no Streamlit, no I/O.

The admin password protects uploads and destructive actions (delete, re-index); the reader
password, when sign-in is on, protects every page. A password is compared in constant time,
either against the plain secret an operator configured or against the scrypt hash that
``make run`` stores (:func:`hash_password`), and wrong guesses are throttled per key by a
:class:`Brake` (:class:`RateLimiter` in memory, :class:`rag.login_brake.LoginBrake` on disk).

Worked example (a fake clock stands in for time)::

    >>> now = [0.0]
    >>> limiter = RateLimiter(max_failures=2, window_s=60, clock=lambda: now[0])
    >>> attempt_login("guess", "s3cret", limiter, "admin")
    LoginResult(ok=False, refused=False, retry_after=0.0)
    >>> attempt_login("guess2", "s3cret", limiter, "admin")  # second failure: now locked
    LoginResult(ok=False, refused=False, retry_after=60.0)
    >>> attempt_login("s3cret", "s3cret", limiter, "admin")  # refused unchecked, even if right
    LoginResult(ok=False, refused=True, retry_after=60.0)
    >>> now[0] = 60.0
    >>> attempt_login("s3cret", "s3cret", limiter, "admin")
    LoginResult(ok=True, refused=False, retry_after=0.0)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

HASH_PREFIX = "scrypt$"
# scrypt cost: n=2**14, r=8 takes ~50 ms and 16 MiB per check here — negligible for a
# person signing in, and it makes an offline guess at a stolen hash as slow.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_password(password: str, salt: bytes | None = None) -> str:
    """A salted scrypt hash of ``password``, in the text form :func:`check_password` reads.

    >>> h = hash_password("s3cret", salt=bytes(16))
    >>> h.startswith("scrypt$16384$8$1$" + "00" * 16 + "$")
    True
    >>> check_password("s3cret", h), check_password("guess", h)
    (True, False)
    """
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    return f"{HASH_PREFIX}{_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def _check_hash(given: str, stored: str) -> bool:
    try:
        n, r, p, salt, digest = stored[len(HASH_PREFIX) :].split("$")
        expected = bytes.fromhex(digest)
        got = hashlib.scrypt(
            given.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:  # a damaged hash matches nothing
        return False
    return hmac.compare_digest(got, expected)


def check_password(given: str, expected: str) -> bool:
    """True when ``given`` equals ``expected``, compared in constant time on UTF-8 bytes.

    An empty ``expected`` never matches (an unset password must not mean "no password").
    An ``expected`` made by :func:`hash_password` is checked against its hash.

    >>> check_password("s3cret", "s3cret")
    True
    >>> check_password("S3CRET", "s3cret")
    False
    >>> check_password("비밀번호", "비밀번호")
    True
    >>> check_password("", "")
    False
    """
    if not expected:
        return False
    if expected.startswith(HASH_PREFIX):
        return _check_hash(given, expected)
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class Brake(Protocol):
    """Counts failed attempts per key and says how long a key must wait."""

    def retry_after(self, key: str) -> float: ...
    def record_failure(self, key: str) -> None: ...
    def reset(self, key: str) -> None: ...


def check_brake_limits(max_failures: int, window_s: float) -> None:
    """Refuse a brake that could never let anyone in or never forget a failure."""
    if max_failures < 1:
        raise ValueError("max_failures must be at least 1")
    if window_s <= 0:
        raise ValueError("window_s must be positive")


class RateLimiter:
    """At most ``max_failures`` failed attempts per ``window_s`` seconds for each key.

    Sliding window: a failure stops counting ``window_s`` seconds after it happened.
    Thread-safe, so one instance can serve every session of a Streamlit process.

    >>> now = [100.0]
    >>> rl = RateLimiter(max_failures=3, window_s=60, clock=lambda: now[0])
    >>> for _ in range(3):
    ...     rl.record_failure("admin")
    >>> rl.retry_after("admin")  # locked until the oldest failure leaves the window
    60.0
    >>> rl.retry_after("someone-else")
    0.0
    >>> now[0] = 130.0
    >>> rl.retry_after("admin")
    30.0
    >>> rl.reset("admin")
    >>> rl.retry_after("admin")
    0.0
    """

    def __init__(
        self,
        max_failures: int = 5,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_brake_limits(max_failures, window_s)
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        """Failures of ``key`` still inside the window (call with the lock held)."""
        q = self._failures.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            del self._failures[key]
        return q

    def retry_after(self, key: str) -> float:
        """Seconds to wait before ``key`` may try again; ``0.0`` when it may try now."""
        with self._lock:
            now = self._clock()
            q = self._recent(key, now)
            if len(q) < self.max_failures:
                return 0.0
            # the attempt that frees a slot: the one max_failures back from the newest
            return max(0.0, q[-self.max_failures] + self.window_s - now)

    def record_failure(self, key: str) -> None:
        with self._lock:
            now = self._clock()
            self._recent(key, now)
            q = self._failures.setdefault(key, deque())
            q.append(now)
            while len(q) > self.max_failures:  # older ones no longer matter
                q.popleft()

    def reset(self, key: str) -> None:
        """Forget the failures of ``key`` (after a successful login)."""
        with self._lock:
            self._failures.pop(key, None)


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    refused: bool  # True: too many failures, the password was not even checked
    retry_after: float  # seconds until the next attempt is allowed (0.0: allowed now)
    matched: int = field(default=-1, repr=False)  # which of the expected passwords matched (-1: none)


def attempt_login(given: str, expected: str | Sequence[str], limiter: Brake, key: str) -> LoginResult:
    """Check ``given`` against ``expected`` (one password, or several tried in order: one
    attempt either way) unless ``key`` is rate-limited; count failures.

    >>> rl = RateLimiter(max_failures=5, window_s=60, clock=lambda: 0.0)
    >>> attempt_login("right", "right", rl, "admin").ok
    True
    >>> attempt_login("wrong", "right", rl, "admin")
    LoginResult(ok=False, refused=False, retry_after=0.0)
    >>> attempt_login("reader-pw", ["admin-pw", "reader-pw"], rl, "signin").matched
    1
    """
    wait = limiter.retry_after(key)
    if wait > 0:
        return LoginResult(ok=False, refused=True, retry_after=wait)
    for i, password in enumerate([expected] if isinstance(expected, str) else expected):
        if check_password(given, password):
            limiter.reset(key)
            return LoginResult(ok=True, refused=False, retry_after=0.0, matched=i)
    limiter.record_failure(key)
    return LoginResult(ok=False, refused=False, retry_after=limiter.retry_after(key))
