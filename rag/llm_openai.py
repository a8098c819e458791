"""The answer writer for ``RAG_LLM_BACKEND=openai``: any OpenAI-compatible server (OpenAI,
vLLM, llama.cpp's server, Ollama, ``python -m rag.serve_openai``), streamed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

from rag.config import Settings

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types.chat import ChatCompletionMessageParam


class GeneratorUnavailable(RuntimeError):
    """The configured generation backend cannot answer; the message says why and how to fix it."""


class OpenAICompatibleGenerator:
    """Implements :class:`rag.interfaces.Generator` against an OpenAI-compatible server
    (OpenAI, vLLM, llama.cpp's server, Ollama, ``python -m rag.serve_openai``, ...).

    With ``openai_model`` empty, the first model the server lists under /v1/models is used
    (one request at construction). Errors from the server are re-raised as
    :class:`GeneratorUnavailable` with what went wrong and what to change.
    """

    def __init__(self, settings: Settings, client: OpenAI | None = None) -> None:
        from openai import OpenAI, Timeout

        self.settings = settings
        self.base_url = settings.openai_base_url.rstrip("/")
        self._key_set = settings.openai_api_key is not None
        if client is None:
            # Only RAG_OPENAI_API_KEY is used (never the OPENAI_API_KEY the openai package would
            # read by itself), so a real OpenAI key is not sent to whatever server is configured.
            # Self-hosted servers usually want no key; the client insists on some value.
            key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "no-key"
            timeout = settings.openai_timeout_s
            client = OpenAI(base_url=self.base_url, api_key=key, timeout=Timeout(timeout, connect=min(timeout, 10.0)))
        self.client = client
        self.model = settings.openai_model or self._first_model()
        self.name = f"openai:{self.model}"

    def list_models(self) -> list[str]:
        """Model ids the server offers (GET /models)."""
        from openai import OpenAIError

        try:
            return [m.id for m in self.client.models.list().data]
        except OpenAIError as e:
            raise self._explain(e, "listing the models") from e

    def _first_model(self) -> str:
        models = self.list_models()
        if not models:
            raise GeneratorUnavailable(
                f"The OpenAI-compatible server at {self.base_url} lists no models under /models. "
                "Set RAG_OPENAI_MODEL to the model it serves."
            )
        return models[0]

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        from openai import OpenAIError

        s = self.settings
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=cast("list[ChatCompletionMessageParam]", messages),
                stream=True,
                max_tokens=s.max_new_tokens,
                temperature=s.temperature,
            )
            with response:  # closes the HTTP response even when the caller stops early
                for chunk in response:
                    if not chunk.choices:  # e.g. a trailing usage-only chunk
                        continue
                    piece = chunk.choices[0].delta.content
                    if piece:
                        yield piece
        except OpenAIError as e:
            raise self._explain(e, "generating an answer") from e

    def _explain(self, e: Exception, doing: str) -> GeneratorUnavailable:
        """Turn an ``openai`` error into one that names the problem and the fix."""
        from openai import (
            APIConnectionError,
            APIError,
            APIStatusError,
            APITimeoutError,
            AuthenticationError,
            BadRequestError,
            NotFoundError,
            PermissionDeniedError,
        )

        url = self.base_url
        where = f"the OpenAI-compatible server at {url}"
        subject = where[0].upper() + where[1:]  # at the start of a sentence
        detail = _server_message(e)
        if isinstance(e, APITimeoutError):
            return GeneratorUnavailable(
                f"No answer from {where} within {self.settings.openai_timeout_s:g} s while {doing}. "
                "Check that the server is up and not overloaded, raise RAG_OPENAI_TIMEOUT_S, or set "
                "RAG_LLM_BACKEND=local to use the in-process model."
            )
        if isinstance(e, APIConnectionError):
            cause = e.__cause__ or e.__context__
            because = f" ({type(cause).__name__}: {cause})" if cause else ""
            return GeneratorUnavailable(
                f"Cannot reach {where}{because}. Start the server (for example "
                "`python -m rag.serve_openai --port 8080` serves the packaged model at "
                "http://127.0.0.1:8080/v1), correct RAG_OPENAI_BASE_URL, or set RAG_LLM_BACKEND=local "
                "to use the in-process model."
            )
        if isinstance(e, AuthenticationError | PermissionDeniedError):
            fix = (
                "Set RAG_OPENAI_API_KEY to a key the server accepts."
                if not self._key_set
                else "Check RAG_OPENAI_API_KEY: the server does not accept the key it holds."
            )
            return GeneratorUnavailable(f"{subject} refused the request (HTTP {e.status_code}): {detail}. {fix}")
        if isinstance(e, NotFoundError | BadRequestError) and doing != "listing the models":
            try:
                available = [m.id for m in self.client.models.list().data]
            except Exception:
                available = None
            if available is not None and self.model not in available:
                listed = ", ".join(repr(m) for m in available) or "(none)"
                return GeneratorUnavailable(
                    f"{subject} has no model {self.model!r} (HTTP {e.status_code}). "
                    f"Available models: {listed}. Set RAG_OPENAI_MODEL to one of them, or leave it "
                    "empty to use the first."
                )
        if isinstance(e, NotFoundError):
            return GeneratorUnavailable(
                f"{subject} answered 404 for {e.request.url} while {doing}: {detail}. Check "
                "RAG_OPENAI_BASE_URL: it must be the API root, usually ending in /v1."
            )
        if isinstance(e, APIStatusError):
            return GeneratorUnavailable(f"{subject} failed while {doing} (HTTP {e.status_code}): {detail}")
        if isinstance(e, APIError):
            return GeneratorUnavailable(f"{subject} failed while {doing}: {detail}")
        return GeneratorUnavailable(f"Calling {where} failed while {doing}: {type(e).__name__}: {e}")


def _server_message(e: Exception) -> str:
    """The server's own error text (OpenAI's ``{"error": {"message": ...}}``), else the exception's."""
    body = getattr(e, "body", None)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"]).rstrip(".")
    if isinstance(body, str) and body.strip():
        return body.strip()[:300]
    return str(getattr(e, "message", e)).rstrip(".")
