"""rag.auth: constant-time password check, rate limiter, login attempts."""

from __future__ import annotations

import doctest
import threading

import pytest

import rag.auth
from rag.auth import RateLimiter, attempt_login, check_password


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_doctests() -> None:
    assert doctest.testmod(rag.auth).failed == 0


@pytest.mark.parametrize(
    ("given", "expected", "ok"),
    [
        ("s3cret", "s3cret", True),
        ("s3cret ", "s3cret", False),
        ("S3CRET", "s3cret", False),
        ("", "s3cret", False),
        ("", "", False),  # an empty configured password never matches
        ("비밀번호", "비밀번호", True),
        ("비밀번호", "비밀번호x", False),
        ("café", "cafe\u0301", False),  # compared as bytes, no normalisation
    ],
)
def test_check_password(given: str, expected: str, ok: bool) -> None:
    assert check_password(given, expected) is ok


def test_limiter_allows_until_max_failures() -> None:
    clock = Clock()
    rl = RateLimiter(max_failures=5, window_s=60, clock=clock)
    for i in range(4):
        rl.record_failure("admin")
        clock.now += 1
        assert rl.retry_after("admin") == 0.0, i
    rl.record_failure("admin")  # 5th failure at t=1004; the oldest was at t=1000
    assert rl.retry_after("admin") == pytest.approx(56.0)


def test_limiter_window_slides() -> None:
    clock = Clock()
    rl = RateLimiter(max_failures=2, window_s=10, clock=clock)
    rl.record_failure("k")
    clock.now += 5
    rl.record_failure("k")
    assert rl.retry_after("k") == pytest.approx(5.0)
    clock.now += 5  # the first failure leaves the window
    assert rl.retry_after("k") == 0.0
    rl.record_failure("k")
    assert rl.retry_after("k") == pytest.approx(5.0)  # the second one is still inside


def test_limiter_keys_are_independent_and_reset() -> None:
    rl = RateLimiter(max_failures=1, window_s=60, clock=Clock())
    rl.record_failure("a")
    assert rl.retry_after("a") > 0
    assert rl.retry_after("b") == 0.0
    rl.reset("a")
    assert rl.retry_after("a") == 0.0
    rl.reset("never-seen")  # no error


def test_limiter_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="max_failures"):
        RateLimiter(max_failures=0)
    with pytest.raises(ValueError, match="window_s"):
        RateLimiter(window_s=0)


def test_limiter_is_thread_safe() -> None:
    rl = RateLimiter(max_failures=1000, window_s=60, clock=Clock())

    def fail_100() -> None:
        for _ in range(100):
            rl.record_failure("k")

    threads = [threading.Thread(target=fail_100) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(rl._failures["k"]) == 800


def test_attempt_login_refuses_while_limited_then_recovers() -> None:
    clock = Clock()
    rl = RateLimiter(max_failures=3, window_s=60, clock=clock)
    for _ in range(2):
        r = attempt_login("nope", "pw", rl, "admin")
        assert (r.ok, r.refused, r.retry_after) == (False, False, 0.0)
    r = attempt_login("nope", "pw", rl, "admin")
    assert (r.ok, r.refused) == (False, False)
    assert r.retry_after == pytest.approx(60.0)
    r = attempt_login("pw", "pw", rl, "admin")  # right, but not checked while limited
    assert (r.ok, r.refused) == (False, True)
    clock.now += 60
    assert attempt_login("pw", "pw", rl, "admin").ok
    assert rl.retry_after("admin") == 0.0


def test_success_clears_earlier_failures() -> None:
    rl = RateLimiter(max_failures=2, window_s=60, clock=Clock())
    attempt_login("nope", "pw", rl, "admin")
    assert attempt_login("pw", "pw", rl, "admin").ok
    r = attempt_login("nope", "pw", rl, "admin")
    assert r.retry_after == 0.0  # only one failure counted since the success
