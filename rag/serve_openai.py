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
``Authorization: Bearer KEY``, checked before any body is read; hostile clients meet the caps
of :mod:`rag.http_limits` (connections, time to send a request, body and prompt sizes). The JSON
it reads and writes is in :mod:`rag.openai_wire`. Sampling parameters in a request
(``max_tokens``, ``temperature``, ...) are accepted and ignored: the serving process's own settings
(RAG_MAX_NEW_TOKENS, RAG_TEMPERATURE, ...) decide, because a Generator takes only messages.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
import uuid
from http import HTTPStatus
from typing import Any, cast

from rag.http_limits import CLIENT_GONE, LimitedHandler, LimitedServer, RequestError, error_body
from rag.interfaces import Generator
from rag.openai_wire import completion_payload, completion_stream, parse_messages, sse_event

log = logging.getLogger(__name__)


class OpenAICompatibleServer(LimitedServer):
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
        self.created = int(time.time())
        super().__init__((host, port), _Handler, api_key)

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


class _Handler(LimitedHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; streamed bodies use chunked transfer encoding
    server_version = "GroundedOpenAI/1.0"

    @property
    def app(self) -> OpenAICompatibleServer:
        return cast(OpenAICompatibleServer, self.server)

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

    def send_request_error(self, e: RequestError) -> None:
        type_ = {
            HTTPStatus.UNAUTHORIZED: "authentication_error",
            HTTPStatus.NOT_FOUND: "invalid_request_error",
            HTTPStatus.INTERNAL_SERVER_ERROR: "server_error",
        }.get(e.status, "invalid_request_error")
        self._send_json(e.status, error_body(e.message, type_, e.code, e.param))

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    # --- routing ----------------------------------------------------------
    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def do_GET(self) -> None:
        try:
            self.authorize()
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
            self.send_request_error(e)

    def do_POST(self) -> None:
        try:
            body = self._read_json(self.check_headers())  # read whole, so the connection stays usable
            path = self._path()
            if path != "/v1/chat/completions":
                raise RequestError(HTTPStatus.NOT_FOUND, f"No route for POST {path}.", code="not_found")
            self._chat(body)
        except RequestError as e:
            self.send_request_error(e)

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
        self._send_json(HTTPStatus.OK, completion_payload(completion_id, created, model, text))

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
            except CLIENT_GONE:
                raise
            except Exception as e:  # headers are sent: report it in-band, as OpenAI does
                log.exception("generation failed mid-stream")
                self._write_chunk(sse_event(error_body(f"Generation failed: {e}", "server_error")))
            self._write_chunk(b"")  # the zero-length chunk ends the body
        except CLIENT_GONE:
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
