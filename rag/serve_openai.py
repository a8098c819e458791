"""A minimal OpenAI-compatible HTTP server in front of any in-process Generator.

``python -m rag.serve_openai --port 8080`` loads the configured local model (the packaged
one by default, see RAG_LLM_MODEL) once and serves it at ``http://127.0.0.1:8080/v1``:

- ``GET  /v1/models`` and ``GET /v1/models/{id}``;
- ``POST /v1/chat/completions`` with ``"stream": true`` (Server-Sent Events, one
  ``chat.completion.chunk`` per generated piece, then ``data: [DONE]``) or ``false``.

Point app replicas at it with ``RAG_LLM_BACKEND=openai RAG_OPENAI_BASE_URL=http://HOST:8080/v1``.
Tests use it, backed by a fake generator, as a real server for the real ``openai`` client.

Deliberately small: standard library only (``http.server``). It binds 127.0.0.1 unless told
otherwise; when ``--api-key`` (or RAG_OPENAI_API_KEY) is set, requests must carry
``Authorization: Bearer KEY``, checked before any body is read; hostile clients meet the
caps below (connections, time to send a request, body and prompt sizes). Sampling parameters
in a request (``max_tokens``, ``temperature``, ...) are accepted and ignored: the serving process's own settings
(RAG_MAX_NEW_TOKENS, RAG_TEMPERATURE, ...) decide, because a Generator takes only messages.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import io
import json
import logging
import math
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from rag.interfaces import Generator
from rag.pipeline import MAX_QUESTION_CHARS

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 32  # one thread each, and generation runs one at a time: more would only queue
REQUEST_TIMEOUT_S = 15.0  # a request's line, headers and body (or the idle wait for it) in all: slowloris
SEND_TIMEOUT_S = 60.0  # a client that stops reading its response frees its thread after this
LINGER_S = 2.0  # after refusing an unread body, discard its bytes this long, so the client sees the answer
MAX_MESSAGES = 64  # the app sends 2 messages; a long chat history fits, a flood of tiny ones does not
MAX_USER_MESSAGE_CHARS = MAX_QUESTION_CHARS + 60_000  # the app's prompt: question + ≤ 20 sources (~28k chars), 2x room
MAX_PROMPT_CHARS = 96_000  # all messages: ~24k tokens, within Qwen2.5's context; more is minutes of CPU prefill
MAX_BODY_BYTES = 2 * 1024 * 1024  # MAX_PROMPT_CHARS as JSON even when \u-escaped (≤ 12 bytes a character)
DONE = b"data: [DONE]\n\n"
_GONE = (BrokenPipeError, ConnectionResetError, TimeoutError)  # the client went away or stalled


def sse_event(payload: dict[str, Any]) -> bytes:
    """One Server-Sent Event carrying ``payload`` as JSON.

    >>> sse_event({"object": "chat.completion.chunk", "text": "hé"})
    b'data: {"object":"chat.completion.chunk","text":"h\\\\u00e9"}\\n\\n'
    """
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def chunk_payload(
    completion_id: str, created: int, model: str, delta: dict[str, str], finish: str | None
) -> dict[str, Any]:
    """A ``chat.completion.chunk`` object with one choice.

    >>> chunk_payload("chatcmpl-1", 7, "m", {"content": "Hi"}, None)["choices"]
    [{'index': 0, 'delta': {'content': 'Hi'}, 'logprobs': None, 'finish_reason': None}]
    """
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def completion_stream(completion_id: str, created: int, model: str, pieces: Iterator[str]) -> Iterator[bytes]:
    """The SSE body of a streamed completion: role, one chunk per non-empty piece, stop, [DONE].

    >>> events = list(completion_stream("c", 1, "m", iter(["Hel", "", "lo"])))
    >>> [json.loads(e[6:])["choices"][0]["delta"] for e in events[:-1]]
    [{'role': 'assistant', 'content': ''}, {'content': 'Hel'}, {'content': 'lo'}, {}]
    >>> events[-1]
    b'data: [DONE]\\n\\n'
    """
    yield sse_event(chunk_payload(completion_id, created, model, {"role": "assistant", "content": ""}, None))
    for piece in pieces:
        if piece:
            yield sse_event(chunk_payload(completion_id, created, model, {"content": piece}, None))
    yield sse_event(chunk_payload(completion_id, created, model, {}, "stop"))
    yield DONE


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class RequestError(Exception):
    def __init__(self, status: HTTPStatus, message: str, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param


def parse_messages(raw: object) -> list[dict[str, str]]:
    """Validate chat ``messages`` within the caps, before any model sees them; text content parts
    (``[{"type": "text", "text": ...}]``) are joined.

    >>> parse_messages([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}])
    [{'role': 'user', 'content': 'ab'}]
    """
    if not isinstance(raw, list) or not raw:
        raise RequestError(HTTPStatus.BAD_REQUEST, "'messages' must be a non-empty list.", param="messages")
    if len(raw) > MAX_MESSAGES:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"At most {MAX_MESSAGES} messages are accepted.", param="messages")
    out: list[dict[str, str]] = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise RequestError(HTTPStatus.BAD_REQUEST, f"messages[{i}] needs a string 'role'.", param="messages")
        content = m.get("content")
        if content is None:
            content = ""
        elif isinstance(content, list):
            texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
            if len(texts) != len(content) or not all(isinstance(t, str) for t in texts):
                raise RequestError(
                    HTTPStatus.BAD_REQUEST, f"messages[{i}]: only text content is supported.", param="messages"
                )
            content = "".join(cast(list[str], texts))
        elif not isinstance(content, str):
            raise RequestError(HTTPStatus.BAD_REQUEST, f"messages[{i}].content must be a string.", param="messages")
        out.append({"role": m["role"], "content": content})
    last = next((len(m["content"]) for m in reversed(out) if m["role"] == "user"), 0)
    total = sum(len(m["content"]) for m in out)
    if last > MAX_USER_MESSAGE_CHARS or total > MAX_PROMPT_CHARS:
        message = (
            f"Prompt too long: {last:,} characters in the last user message (at most "
            f"{MAX_USER_MESSAGE_CHARS:,}), {total:,} in all messages (at most {MAX_PROMPT_CHARS:,})."
        )
        raise RequestError(HTTPStatus.BAD_REQUEST, message, code="prompt_too_long", param="messages")
    return out


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


class OpenAICompatibleServer(ThreadingHTTPServer):
    """Serves one Generator under one model id. Port 0 picks a free port (see :attr:`base_url`)."""

    daemon_threads = True

    def __init__(
        self,
        generator: Generator,
        host: str = "127.0.0.1",
        port: int = 0,
        model_name: str | None = None,
        api_key: str | None = None,
    ) -> None:
        self.generator = generator
        self.model_name = model_name or generator.name
        self.api_key = api_key or None
        self.created = int(time.time())
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__((host, port), _Handler)

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
        if isinstance(sys.exc_info()[1], _GONE):
            return
        super().handle_error(request, client_address)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}/v1"

    def model_card(self) -> dict[str, Any]:
        return {"id": self.model_name, "object": "model", "created": self.created, "owned_by": "grounded"}


def serve_in_background(server: OpenAICompatibleServer) -> threading.Thread:
    """Run ``server`` in a daemon thread; stop it with ``server.shutdown(); server.server_close()``."""
    t = threading.Thread(target=server.serve_forever, args=(0.1,), name="openai-compatible-server", daemon=True)
    t.start()
    return t


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; streamed bodies use chunked transfer encoding
    server_version = "GroundedOpenAI/1.0"
    timeout = None  # set in setup(): REQUEST_TIMEOUT_S per request, SEND_TIMEOUT_S per write

    @property
    def app(self) -> OpenAICompatibleServer:
        return cast(OpenAICompatibleServer, self.server)

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

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - " + format, self.address_string(), *args)

    # --- responses --------------------------------------------------------
    def _send_json(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _send_error(self, e: RequestError) -> None:
        type_ = {
            HTTPStatus.UNAUTHORIZED: "authentication_error",
            HTTPStatus.NOT_FOUND: "invalid_request_error",
            HTTPStatus.INTERNAL_SERVER_ERROR: "server_error",
        }.get(e.status, "invalid_request_error")
        self._send_json(e.status, error_body(e.message, type_, e.code, e.param))

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    # --- routing ----------------------------------------------------------
    def _authorize(self) -> None:
        key = self.app.api_key
        if key is None:
            return
        given = self.headers.get("Authorization", "")
        token = given[7:] if given.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(token.encode(), key.encode()):
            raise RequestError(HTTPStatus.UNAUTHORIZED, "Incorrect API key provided.", code="invalid_api_key")

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def do_GET(self) -> None:
        try:
            self._authorize()
            path = self._path()
            if path == "/v1/models":
                self._send_json(HTTPStatus.OK, {"object": "list", "data": [self.app.model_card()]})
            elif path.startswith("/v1/models/"):
                if path[len("/v1/models/") :] != self.app.model_name:
                    raise self._unknown_model(path[len("/v1/models/") :])
                self._send_json(HTTPStatus.OK, self.app.model_card())
            else:
                raise RequestError(HTTPStatus.NOT_FOUND, f"No route for GET {path}.", code="not_found")
        except RequestError as e:
            self._send_error(e)

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue``: the client sends its body only if the headers pass."""
        if self.command == "POST":
            try:
                self._check_headers()
            except RequestError as e:
                self._send_error(e)
                return False
        return super().handle_expect_100()

    def do_POST(self) -> None:
        try:
            body = self._read_json(self._check_headers())  # read whole, so the connection stays usable
            path = self._path()
            if path != "/v1/chat/completions":
                raise RequestError(HTTPStatus.NOT_FOUND, f"No route for POST {path}.", code="not_found")
            self._chat(body)
        except RequestError as e:
            self._send_error(e)

    def _check_headers(self) -> int:
        """The key, then the body's length, from the headers alone: a refused body is never read
        (its connection is closed instead)."""
        try:
            self._authorize()
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

    def _read_json(self, length: int) -> dict[str, Any]:
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError as e:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"Request body is not valid JSON: {e}") from e
        if not isinstance(body, dict):
            raise RequestError(HTTPStatus.BAD_REQUEST, "Request body must be a JSON object.")
        return body

    def _unknown_model(self, model: object) -> RequestError:
        return RequestError(
            HTTPStatus.NOT_FOUND,
            f"The model '{model}' does not exist. Available models: {self.app.model_name}.",
            code="model_not_found",
            param="model",
        )

    def _chat(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise RequestError(HTTPStatus.BAD_REQUEST, "'model' is required.", param="model")
        if model != self.app.model_name:
            raise self._unknown_model(model)
        if body.get("n", 1) not in (1, None):
            raise RequestError(HTTPStatus.BAD_REQUEST, "Only n=1 is supported.", param="n")
        messages = parse_messages(body.get("messages"))
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if body.get("stream"):
            self._stream(completion_id, created, model, messages)
            return
        try:
            text = "".join(self.app.generator.stream(messages))
        except Exception as e:
            log.exception("generation failed")
            raise RequestError(HTTPStatus.INTERNAL_SERVER_ERROR, f"Generation failed: {e}") from e
        self._send_json(
            HTTPStatus.OK,
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "system_fingerprint": None,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": None,  # a Generator does not report token counts
            },
        )

    def _stream(self, completion_id: str, created: int, model: str, messages: list[dict[str, str]]) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        pieces = self.app.generator.stream(messages)
        events = completion_stream(completion_id, created, model, pieces)
        try:
            try:
                for event in events:
                    self._write_chunk(event)
            except _GONE:
                raise
            except Exception as e:  # headers are sent: report it in-band, as OpenAI does
                log.exception("generation failed mid-stream")
                self._write_chunk(sse_event(error_body(f"Generation failed: {e}", "server_error")))
            self._write_chunk(b"")  # the zero-length chunk ends the body
        except _GONE:
            log.info("client went away during a streamed completion")
            self.close_connection = True
        finally:  # stop the generator too when the client went away
            close = getattr(pieces, "close", None)
            if close is not None:
                close()


def main(argv: list[str] | None = None) -> int:
    from rag.config import get_settings

    parser = argparse.ArgumentParser(
        prog="python -m rag.serve_openai",
        description="Serve the local generator (RAG_LLM_MODEL, the packaged one by default) "
        "through an OpenAI-compatible API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument(
        "--port", type=int, default=8080, help="port (default 8080, like llama.cpp's server; 0 picks a free one)"
    )
    parser.add_argument("--model-name", help="model id to serve under (default: the RAG_LLM_MODEL value)")
    parser.add_argument(
        "--api-key", help="require 'Authorization: Bearer KEY' (default: RAG_OPENAI_API_KEY if set, else no key)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    api_key = args.api_key
    if api_key is None and settings.openai_api_key is not None:
        api_key = settings.openai_api_key.get_secret_value()

    from rag.generate import TransformersGenerator
    from rag.models import in_passing_thread

    t0 = time.perf_counter()
    # Loaded off the main thread, which then only accepts connections: torch runs only in the
    # request threads (see in_passing_thread for why that matters on a small CPU).
    generator = in_passing_thread(lambda: TransformersGenerator(settings))
    log.info("loaded %s in %.1f s (from %s)", generator.name, time.perf_counter() - t0, generator.loaded_from)
    server = OpenAICompatibleServer(generator, args.host, args.port, args.model_name, api_key)
    if not api_key and args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s without an API key: anyone who can reach it can use the model", args.host)
    print(f"serving model '{server.model_name}' at {server.base_url} (Ctrl+C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
