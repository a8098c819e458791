"""Nothing at run time touches the network; the guard proving it is itself checked here."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from rag.config import REPO_ROOT


def test_guard_blocks_outside_hosts_in_process() -> None:
    with pytest.raises(OSError, match="blocked"):
        socket.create_connection(("198.51.100.7", 443), timeout=1)
    with pytest.raises(OSError, match="blocked"):
        socket.getaddrinfo("huggingface.co", 443)


def test_guard_allows_loopback() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    with socket.create_connection(server.getsockname(), timeout=1):
        pass
    server.close()


def test_guard_is_active_in_subprocesses() -> None:
    code = "import socket\ntry:\n    socket.getaddrinfo('pypi.org', 443)\nexcept OSError as e:\n    print(e)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, cwd=REPO_ROOT)
    assert "blocked" in out.stdout


def test_models_default_to_offline() -> None:
    from rag.models import offline_by_default

    offline_by_default()
    assert os.environ["HF_HUB_OFFLINE"] == "1"
