"""The caps that keep a hostile or broken client from tying up the OpenAI-compatible server.

- Connections: at most MAX_CONNECTIONS at once, one thread each; one more is answered 503 at
  once, from the accepting thread (:class:`LimitedServer`).
- Time: a request's line, headers and body together must arrive within REQUEST_TIMEOUT_S,
  however slowly a client trickles them (slowloris); a client that stops reading its response
  frees its thread after SEND_TIMEOUT_S (:class:`LimitedHandler`).
- Body: judged from the headers alone, before any of it is read: the API key first, then one
  Content-Length of at most MAX_BODY_BYTES (no chunked bodies). A refused body is discarded
  for up to LINGER_S, so that the client reads the answer rather than a connection reset.
- Prompt: at most MAX_MESSAGES messages, MAX_USER_MESSAGE_CHARS in the last user message and
  MAX_PROMPT_CHARS in all (:func:`check_message_count`, :func:`check_prompt_size`).

A refusal is a :class:`RequestError`, answered in OpenAI's error shape (:func:`error_body`).
Standard library only.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import json
import math
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import BaseRequestHandler
from typing import Any, cast

from rag.pipeline import MAX_QUESTION_CHARS

MAX_CONNECTIONS = 32  # one thread each, and generation runs one at a time: more would only queue
REQUEST_TIMEOUT_S = 15.0  # a request's line, headers and body (or the idle wait for it) in all: slowloris
SEND_TIMEOUT_S = 60.0  # a client that stops reading its response frees its thread after this
LINGER_S = 2.0  # after refusing an unread body, discard its bytes this long, so the client sees the answer
MAX_MESSAGES = 64  # the app sends 2 messages; a long chat history fits, a flood of tiny ones does not
MAX_USER_MESSAGE_CHARS = MAX_QUESTION_CHARS + 60_000  # the app's prompt: question + ≤ 20 sources (~28k chars), 2x room
MAX_PROMPT_CHARS = 96_000  # all messages: ~24k tokens, within Qwen2.5's context; more is minutes of CPU prefill
MAX_BODY_BYTES = 2 * 1024 * 1024  # MAX_PROMPT_CHARS as JSON even when \u-escaped (≤ 12 bytes a character)
CLIENT_GONE = (BrokenPipeError, ConnectionResetError, TimeoutError)  # the client went away or stalled


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class RequestError(Exception):
    def __init__(self, status: HTTPStatus, message: str, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param


def check_message_count(n: int) -> None:
    """Refuse more than MAX_MESSAGES chat messages (before any of them is looked at)."""
    if n > MAX_MESSAGES:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"At most {MAX_MESSAGES} messages are accepted.", param="messages")


def check_prompt_size(messages: list[dict[str, str]]) -> None:
    """Refuse a prompt over MAX_USER_MESSAGE_CHARS in its last user message or MAX_PROMPT_CHARS in all.

    >>> check_prompt_size([{"role": "user", "content": "hi"}])
    >>> try:
    ...     check_prompt_size([{"role": "user", "content": "q" * (MAX_USER_MESSAGE_CHARS + 1)}])
    ... except RequestError as e:
    ...     print(int(e.status), e.code)
    400 prompt_too_long
    """
    last = next((len(m["content"]) for m in reversed(messages) if m["role"] == "user"), 0)
    total = sum(len(m["content"]) for m in messages)
    if last > MAX_USER_MESSAGE_CHARS or total > MAX_PROMPT_CHARS:
        message = (
            f"Prompt too long: {last:,} characters in the last user message (at most "
            f"{MAX_USER_MESSAGE_CHARS:,}), {total:,} in all messages (at most {MAX_PROMPT_CHARS:,})."
        )
        raise RequestError(HTTPStatus.BAD_REQUEST, message, code="prompt_too_long", param="messages")


def _linger(sock: socket.socket, seconds: float) -> None:
    """Half-close ``sock``, then discard what the client still sends (at most MAX_BODY_BYTES, for at
    most ``seconds``; 0: what has arrived), so that it reads the answer rather than a reset."""
    deadline, left = time.monotonic() + seconds, MAX_BODY_BYTES
    try:
        sock.shutdown(socket.SHUT_WR)
        while left > 0:
            sock.settimeout(max(deadline - time.monotonic(), 0.0))  # 0: non-blocking
            got = len(sock.recv(min(left, 65536)))
            if not got:
                break
            left -= got
    except OSError:  # nothing more in time (TimeoutError, BlockingIOError), or the client is gone
        pass


def _refuse_busy(sock: socket.socket) -> None:
    """Answer 503 from the accepting thread, never waiting on the client."""
    body = json.dumps(error_body("Too many connections; retry shortly.", "server_error", "server_busy")).encode()
    head = f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    with contextlib.suppress(OSError):
        sock.setblocking(False)
        sock.sendall(head.encode() + b"Retry-After: 1\r\nConnection: close\r\n\r\n" + body)
        _linger(sock, 0)


class _DeadlineReader(io.RawIOBase):
    """A socket's input whose reads wait only until ``deadline``: a request's line, headers and body
    together must arrive in time, however slowly a client trickles them (slowloris)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.deadline = sock, math.inf

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive in time")
        self.sock.settimeout(left)
        try:
            return self.sock.recv_into(buffer)
        finally:
            self.sock.settimeout(SEND_TIMEOUT_S)  # responses are written under their own limit


class LimitedServer(ThreadingHTTPServer):
    """A threading HTTP server that serves at most MAX_CONNECTIONS connections at once.
    ``api_key``: what :meth:`LimitedHandler.authorize` requires (None: no key)."""

    def __init__(self, address: tuple[str, int], handler: type[BaseRequestHandler], api_key: str | None = None) -> None:
        self.api_key = api_key or None
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            _refuse_busy(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: it will not release the slot
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that closes its idle keep-alive connection (the openai client does, on close
        or exit) resets the socket the handler is reading: normal, so not printed as a crash."""
        if isinstance(sys.exc_info()[1], CLIENT_GONE):
            return
        super().handle_error(request, client_address)


class LimitedHandler(BaseHTTPRequestHandler):
    """Reads each request against a deadline and checks a POST's headers before its body.
    Subclasses answer a refusal in :meth:`send_request_error`."""

    timeout = None  # set in setup(): REQUEST_TIMEOUT_S per request, SEND_TIMEOUT_S per write

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(SEND_TIMEOUT_S)
        self.rfile.close()  # replaced by one with a deadline per request
        self._reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)
        self._unread_body = False

    def handle_one_request(self) -> None:
        self._reader.deadline = time.monotonic() + REQUEST_TIMEOUT_S
        super().handle_one_request()

    def finish(self) -> None:
        super().finish()
        if self._unread_body:
            _linger(self.connection, LINGER_S)

    def send_request_error(self, e: RequestError) -> None:
        raise NotImplementedError

    def authorize(self) -> None:
        key = cast(LimitedServer, self.server).api_key
        if key is None:
            return
        given = self.headers.get("Authorization", "")
        token = given[7:] if given.lower().startswith("bearer ") else ""
        # compare_digest takes time set by the given token's length, never by where it first
        # differs from the key, so the key's bytes cannot be guessed one at a time; a wrong
        # length only tells an attacker the length, which a long random key does not need to hide.
        if not hmac.compare_digest(token.encode(), key.encode()):
            raise RequestError(HTTPStatus.UNAUTHORIZED, "Incorrect API key provided.", code="invalid_api_key")

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue``: the client sends its body only if the headers pass."""
        if self.command == "POST":
            try:
                self.check_headers()
            except RequestError as e:
                self.send_request_error(e)
                return False
        return super().handle_expect_100()

    def check_headers(self) -> int:
        """The key, then the body's length, from the headers alone: a refused body is never read
        (its connection is closed instead)."""
        try:
            self.authorize()
            lengths = self.headers.get_all("Content-Length") or []
            valid = len(lengths) == 1 and lengths[0].isascii() and lengths[0].isdigit()
            if "Transfer-Encoding" in self.headers or not valid:
                message = "Send the body with one Content-Length header (chunked bodies are not supported)."
                raise RequestError(HTTPStatus.LENGTH_REQUIRED, message)
            if int(lengths[0]) > MAX_BODY_BYTES:
                message = f"Request body over {MAX_BODY_BYTES:,} bytes."
                raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, message)
            return int(lengths[0])
        except RequestError:
            self.close_connection = self._unread_body = True
            raise
