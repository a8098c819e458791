"""rag.serve_openai on the wire: raw HTTP (no openai client), so framing mistakes show."""

from __future__ import annotations

import http.client
import json
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rag.serve_openai import OpenAICompatibleServer, serve_in_background
from tests.fakes import EchoGenerator


@pytest.fixture
def server() -> Iterator[OpenAICompatibleServer]:
    srv = OpenAICompatibleServer(EchoGenerator(reply="One two three."), model_name="m", api_key="k")
    serve_in_background(srv)
    yield srv
    srv.shutdown()
    srv.server_close()


def _conn(srv: OpenAICompatibleServer) -> http.client.HTTPConnection:
    host, port = srv.server_address[:2]
    return http.client.HTTPConnection(str(host), int(port), timeout=10)


def _post(conn: http.client.HTTPConnection, body: Any, key: str = "k") -> http.client.HTTPResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request(
        "POST",
        "/v1/chat/completions",
        raw,
        {"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    return conn.getresponse()


CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_sse_stream_framing_and_keep_alive(server: OpenAICompatibleServer) -> None:
    conn = _conn(server)
    resp = _post(conn, {**CHAT, "stream": True})
    assert resp.status == 200 and resp.getheader("Content-Type", "").startswith("text/event-stream")
    assert resp.getheader("Transfer-Encoding") == "chunked"
    body = resp.read().decode()
    events = body.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    assert all(e.startswith("data: ") for e in events[:-1])
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": ""} and deltas[-1] == {}
    assert [d["content"] for d in deltas[1:-1]] == ["One ", "two ", "three."]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    # the same connection serves the next request (chunked body ended cleanly)
    again = _post(conn, CHAT)
    assert again.status == 200
    assert json.loads(again.read())["choices"][0]["message"] == {"role": "assistant", "content": "One two three."}
    conn.close()


def test_models_listing(server: OpenAICompatibleServer) -> None:
    conn = _conn(server)
    conn.request("GET", "/v1/models", headers={"Authorization": "Bearer k"})
    listing = json.loads(conn.getresponse().read())
    assert listing["object"] == "list" and [m["id"] for m in listing["data"]] == ["m"]
    conn.request("GET", "/v1/models/m", headers={"Authorization": "Bearer k"})
    assert json.loads(conn.getresponse().read())["id"] == "m"
    conn.close()


@pytest.mark.parametrize(
    ("body", "key", "status", "code"),
    [
        (CHAT, "wrong", 401, "invalid_api_key"),
        ({**CHAT, "model": "other"}, "k", 404, "model_not_found"),
        (b"{not json", "k", 400, None),
        ({"model": "m", "messages": []}, "k", 400, None),
        ({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "k", 400, None),
    ],
)
def test_bad_requests_get_openai_shaped_errors(
    server: OpenAICompatibleServer, body: Any, key: str, status: int, code: str | None
) -> None:
    conn = _conn(server)
    resp = _post(conn, body, key)
    err = json.loads(resp.read())["error"]
    assert resp.status == status and err["code"] == code and err["message"]
    assert _post(conn, CHAT).status == 200  # the connection is still usable
    conn.close()


def test_a_reset_keep_alive_connection_is_not_reported_as_a_crash(
    server: OpenAICompatibleServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A client closing its idle keep-alive socket with a reset (SO_LINGER 0) while the
    handler waits for the next request: normal client behaviour, so nothing on stderr."""
    conn = _conn(server)
    r = _post(conn, {"model": server.model_name, "messages": [{"role": "user", "content": "hi"}]})
    r.read()
    assert conn.sock is not None
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    time.sleep(0.3)  # the handler thread reads the reset
    assert "Exception occurred" not in capsys.readouterr().err
