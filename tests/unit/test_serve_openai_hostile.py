"""rag.serve_openai against hostile clients: each test is the attack, written on raw sockets.

Bounds are generous (seconds where the server needs milliseconds), so a slow machine passes.
"""

from __future__ import annotations

import http.client
import json
import selectors
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rag import http_limits
from rag.pipeline import MAX_QUESTION_CHARS
from rag.prompting import build_messages, load_template
from rag.serve_openai import OpenAICompatibleServer, serve_in_background
from rag.types import Chunk
from tests.fakes import EchoGenerator

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def _readable(s: socket.socket, timeout: float) -> bool:
    """poll-based (select() fails on descriptors above 1023 late in a long test run)."""
    with selectors.DefaultSelector() as sel:
        sel.register(s, selectors.EVENT_READ)
        return bool(sel.select(timeout))


@pytest.fixture
def gen() -> EchoGenerator:
    return EchoGenerator(reply="One two three.")


@pytest.fixture
def start(gen: EchoGenerator) -> Iterator[Any]:
    """Starts the server on demand, so a test can monkeypatch the caps first."""
    servers: list[OpenAICompatibleServer] = []

    def _start() -> OpenAICompatibleServer:
        srv = OpenAICompatibleServer(gen, model_name="m", api_key="k")
        serve_in_background(srv)
        servers.append(srv)
        return srv

    yield _start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def _addr(srv: OpenAICompatibleServer) -> tuple[str, int]:
    host, port = srv.server_address[:2]
    return str(host), int(port)


def _sock(srv: OpenAICompatibleServer, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(_addr(srv), timeout=timeout)


def _read_all(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a timeout fails the test)."""
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def _status_and_error(reply: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)["error"]


def _chat(srv: OpenAICompatibleServer, body: dict[str, Any], key: str = "k") -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection(*_addr(srv), timeout=10)
    try:
        conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Authorization": f"Bearer {key}"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


# --- authentication before the body -----------------------------------------------------


@pytest.mark.parametrize("length", [2 * 1024 * 1024, 10**12], ids=["at-the-body-cap", "far-above-it"])
def test_a_wrong_key_is_refused_from_the_headers_without_reading_the_body(start: Any, length: int) -> None:
    """The attack: announce a big body with a wrong key and never send it. Reading the body first
    would hold the thread until the client gives up; the 401 must come from the headers alone."""
    srv = start()
    s = _sock(srv)
    s.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer wrong\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % length
    )
    t0 = time.monotonic()
    reply = _read_all(s)  # ends: the server closed the connection, the announced body unread
    s.close()
    status, err = _status_and_error(reply)
    assert status == 401 and err["code"] == "invalid_api_key"
    assert time.monotonic() - t0 < 5


def test_a_wrong_key_with_a_real_body_still_gets_its_401(start: Any) -> None:
    """The body left unread on refusal must not turn the 401 into a connection reset for an
    ordinary client that sends its (large) body straight after the headers."""
    srv = start()
    status, payload = _chat(srv, {**CHAT, "messages": [{"role": "user", "content": "x" * 1_500_000}]}, key="wrong")
    assert status == 401 and payload["error"]["code"] == "invalid_api_key"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (b"", 411),
        (b"Content-Length: ten\r\n", 411),
        (b"Content-Length: -1\r\n", 411),
        (b"Content-Length: 2\r\nContent-Length: 2\r\n", 411),
        (b"Transfer-Encoding: chunked\r\n", 411),
        (b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 411),
        (b"Content-Length: %d\r\n" % (2 * 1024 * 1024 + 1), 413),
    ],
    ids=["missing", "not-a-number", "negative", "twice", "chunked", "chunked-and-length", "over-the-cap"],
)
def test_an_unbounded_or_oversized_body_is_refused_unread(start: Any, headers: bytes, status: int) -> None:
    srv = start()
    s = _sock(srv)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer k\r\n" + headers + b"\r\n")
    got, _ = _status_and_error(_read_all(s))
    s.close()
    assert got == status


# --- slow clients ---------------------------------------------------------------------


def _dropped_within(s: socket.socket, seconds: float, trickle: bytes) -> bool:
    """Sends ``trickle`` a byte at a time, every 0.1 s, until the server closes the connection."""
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        try:
            if _readable(s, 0.1) and not s.recv(65536):
                return True  # EOF: the server hung up
            s.send(trickle[i % len(trickle) : i % len(trickle) + 1])
        except OSError:  # reset or broken pipe: hung up too
            return True
        i += 1
    return False


def test_a_slow_client_that_never_finishes_its_headers_is_dropped(start: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Slowloris: a byte of header every 0.1 s, each well within any per-read timeout; the whole
    request has a deadline, so the connection is closed soon after it."""
    monkeypatch.setattr(http_limits, "REQUEST_TIMEOUT_S", 0.5)
    srv = start()
    s = _sock(srv)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n")
    assert _dropped_within(s, 10, b"X-Slow: aaaa\r\n")
    s.close()
    assert _chat(srv, CHAT)[0] == 200


def test_a_slow_body_is_dropped_too(start: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_limits, "REQUEST_TIMEOUT_S", 0.5)
    srv = start()
    s = _sock(srv)
    s.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer k\r\nContent-Length: 1000\r\n\r\n"
    )
    assert _dropped_within(s, 10, b"{")
    s.close()


class _SlowEcho(EchoGenerator):
    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        for piece in super().stream(messages):
            time.sleep(0.4)
            yield piece


def test_a_stream_may_outlast_the_request_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deadline bounds receiving a request, not generating its answer."""
    monkeypatch.setattr(http_limits, "REQUEST_TIMEOUT_S", 0.5)
    srv = OpenAICompatibleServer(_SlowEcho(reply="One two three."), model_name="m", api_key="k")
    serve_in_background(srv)
    try:
        conn = http.client.HTTPConnection(*_addr(srv), timeout=10)
        conn.request(
            "POST", "/v1/chat/completions", json.dumps({**CHAT, "stream": True}), {"Authorization": "Bearer k"}
        )
        resp = conn.getresponse()
        body = resp.read().decode()
        assert resp.status == 200 and body.endswith("data: [DONE]\n\n") and "three." in body
        conn.close()
    finally:
        srv.shutdown()
        srv.server_close()


# --- too many connections ---------------------------------------------------------------


def test_connections_over_the_cap_get_503_and_the_server_recovers(start: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The attack: open connections and keep them idle, one thread each. Over the cap a new
    connection is answered 503 at once; when the holders leave, requests are served again."""
    monkeypatch.setattr(http_limits, "MAX_CONNECTIONS", 2)
    srv = start()
    holders = [http.client.HTTPConnection(*_addr(srv), timeout=10) for _ in range(2)]
    for conn in holders:  # a served request proves each connection holds its handler thread
        conn.request("GET", "/v1/models", headers={"Authorization": "Bearer k"})
        assert conn.getresponse().read()
    for _ in range(3):
        s = _sock(srv)
        t0 = time.monotonic()
        s.sendall(b"GET /v1/models HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer k\r\n\r\n")
        status, err = _status_and_error(_read_all(s))
        s.close()
        assert status == 503 and err["type"] == "server_error" and time.monotonic() - t0 < 5
    for conn in holders:
        conn.close()
    deadline = time.monotonic() + 10  # the handler threads notice the close and free their slots
    while (status := _chat(srv, CHAT)[0]) == 503 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status == 200


# --- prompt caps ------------------------------------------------------------------------


def test_a_1mb_question_is_refused_before_the_model_runs(start: Any, gen: EchoGenerator) -> None:
    srv = start()
    status, payload = _chat(srv, {"model": "m", "messages": [{"role": "user", "content": "q" * 1_000_000}]})
    assert status == 400 and payload["error"]["param"] == "messages" and "characters" in payload["error"]["message"]
    assert gen.prompts == []


def test_too_many_or_too_long_messages_are_refused_before_the_model_runs(start: Any, gen: EchoGenerator) -> None:
    srv = start()
    many = [{"role": "user", "content": "hi"}] * (http_limits.MAX_MESSAGES + 1)
    long_history = [{"role": "assistant", "content": "a" * http_limits.MAX_USER_MESSAGE_CHARS}] * (
        http_limits.MAX_PROMPT_CHARS // http_limits.MAX_USER_MESSAGE_CHARS + 1
    )
    for messages in (many, [*long_history, {"role": "user", "content": "hi"}]):
        status, payload = _chat(srv, {"model": "m", "messages": messages})
        assert status == 400 and payload["error"]["param"] == "messages"
    assert gen.prompts == []


def test_the_apps_largest_prompt_is_within_the_caps(start: Any, gen: EchoGenerator) -> None:
    """The last user message is the app's whole prompt: a question of MAX_QUESTION_CHARS and
    top_k's maximum of 20 sources at the default max_source_chars must still be served."""
    srv = start()
    text = "word " * 400
    chunks = [Chunk(f"c{i}", "d", "a-long-file-name.pdf", 3, 0, len(text), text) for i in range(20)]
    messages = build_messages("q" * MAX_QUESTION_CHARS, chunks, load_template(), 1200)
    assert _chat(srv, {"model": "m", "messages": messages})[0] == 200
    assert len(gen.prompts) == 1
