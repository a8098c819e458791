"""The running app refuses what a hostile network sends it: a Host name it was not given
(DNS rebinding: a page elsewhere points its own name at this address and drives the app)."""

from __future__ import annotations

import base64
import os
import socket
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import RunningApp

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def websocket_status(app: RunningApp, host: str) -> str:
    """The status line the app answers a websocket upgrade for ``Host: host`` with."""
    url = urlsplit(app.base_url)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /_stcore/stream HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: http://{host}\r\n\r\n"
    )
    with socket.create_connection((url.hostname, url.port), timeout=10) as s:
        s.sendall(request.encode())
        return s.recv(4096).decode("latin-1").split("\r\n", 1)[0]


def test_a_host_name_from_elsewhere_cannot_open_a_session(app_server: RunningApp) -> None:
    port = urlsplit(app_server.base_url).port
    assert " 101 " in websocket_status(app_server, f"localhost:{port}")  # the app's own name works
    refused = websocket_status(app_server, f"attacker.example:{port}")
    assert " 101 " not in refused, refused
