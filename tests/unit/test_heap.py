"""rag.heap.trim_heap: memory freed inside the C heap goes back to the OS."""

from __future__ import annotations

import ctypes
import platform
from pathlib import Path

import pytest

from rag.heap import trim_heap

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc" or not Path("/proc/self/status").exists(), reason="glibc on Linux only"
)


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_trim_returns_freed_heap_pages_that_glibc_would_keep() -> None:
    """1,500 blocks of 100 kB come from the heap (under glibc's 128 kB mmap threshold), then one
    more that stays; freed, the 150 MB lie below a live block, so glibc keeps them (it only
    shrinks the heap at its top) until it is trimmed."""
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(100_000) for _ in range(1500)]
    for b in blocks:
        ctypes.memset(b, 1, 100_000)  # touch every page, so that it counts in RSS
    pin = libc.malloc(100_000)
    held = _rss_mib()
    for b in blocks:
        libc.free(b)
    freed = _rss_mib()
    trim_heap()
    trimmed = _rss_mib()
    libc.free(pin)
    assert held - freed < 30, (held, freed)  # glibc kept the freed 143 MiB
    assert freed - trimmed > 100, (held, freed, trimmed)
