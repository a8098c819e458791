"""OpenAI's chat-completions wire format, as :mod:`rag.serve_openai` speaks it: the request's
``messages`` checked and read (within the prompt caps of :mod:`rag.http_limits`), and the answer
as one ``chat.completion`` object or as Server-Sent Events (``chat.completion.chunk`` objects,
then ``data: [DONE]``). Plain data only: no sockets here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any, cast

from rag.http_limits import RequestError, check_message_count, check_prompt_size

DONE = b"data: [DONE]\n\n"


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


def completion_payload(completion_id: str, created: int, model: str, text: str) -> dict[str, Any]:
    """A whole (not streamed) ``chat.completion`` object answering ``text``.

    >>> completion_payload("chatcmpl-1", 7, "m", "Hi")["choices"][0]["message"]
    {'role': 'assistant', 'content': 'Hi'}
    """
    return {
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


def parse_messages(raw: object) -> list[dict[str, str]]:
    """Validate chat ``messages`` within the caps, before any model sees them; text content parts
    (``[{"type": "text", "text": ...}]``) are joined.

    >>> parse_messages([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}])
    [{'role': 'user', 'content': 'ab'}]
    """
    if not isinstance(raw, list) or not raw:
        raise RequestError(HTTPStatus.BAD_REQUEST, "'messages' must be a non-empty list.", param="messages")
    check_message_count(len(raw))
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
    check_prompt_size(out)
    return out
