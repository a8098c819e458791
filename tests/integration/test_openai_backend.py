"""RAG_LLM_BACKEND=openai end to end: ``rag.serve_openai`` runs in a thread on a free loopback
port, the real ``openai`` client talks to it over HTTP, and the whole app answers through it.

The server is backed by EchoGenerator (fast) and by the real packaged model (slow).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from rag.config import Settings
from rag.llm_openai import GeneratorUnavailable, OpenAICompatibleGenerator
from rag.prompting import build_messages, load_template
from rag.serve_openai import OpenAICompatibleServer, serve_in_background
from rag.services import Services
from rag.types import Chunk
from tests.conftest import make_settings
from tests.fakes import EchoGenerator, HashEmbedder
from tests.procs import free_port

DOC = (
    "The lighthouse of Alexandria was completed around 280 BC on the island of Pharos. "
    "It was one of the Seven Wonders of the Ancient World.\n\n"
    "Earthquakes damaged the lighthouse between 956 and 1323, and it was left in ruins.\n"
)
QUESTION = "When was the lighthouse of Alexandria completed?"
_SOURCE = "The lighthouse of Alexandria was completed around 280 BC. It stood on the island of Pharos."
# The app's own prompt: the real model answers it briefly (a free-form prompt runs to max_new_tokens).
MESSAGES = build_messages(
    QUESTION, [Chunk("c1", "d1", "lighthouse.txt", None, 0, len(_SOURCE), _SOURCE)], load_template()
)
_MESSAGES: Any = MESSAGES  # the client's TypedDicts accept these plain dicts


def _start(generator: Any, **kwargs: Any) -> OpenAICompatibleServer:
    server = OpenAICompatibleServer(generator, **kwargs)  # port 0: a free port
    serve_in_background(server)
    return server


def _stop(server: OpenAICompatibleServer) -> None:
    server.shutdown()
    server.server_close()


@pytest.fixture(params=["echo", pytest.param("real", marks=pytest.mark.slow)])
def server(request: pytest.FixtureRequest) -> Iterator[OpenAICompatibleServer]:
    generator = EchoGenerator() if request.param == "echo" else request.getfixturevalue("real_generator")
    srv = _start(generator)
    yield srv
    _stop(srv)


@pytest.fixture
def echo_server() -> Iterator[OpenAICompatibleServer]:
    srv = _start(EchoGenerator())
    yield srv
    _stop(srv)


def _settings(tmp_path: Path, base_url: str, **overrides: Any) -> Settings:
    return make_settings(tmp_path / "home", llm_backend="openai", openai_base_url=base_url, **overrides)


def _client(server: OpenAICompatibleServer) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="no-key", max_retries=0)


def test_stream_pieces_arrive_in_order_through_the_openai_client(server: OpenAICompatibleServer) -> None:
    expected = list(server.generator.stream(MESSAGES))
    pieces: list[str] = []
    with _client(server).chat.completions.create(
        model=server.model_name,
        messages=_MESSAGES,
        stream=True,
        max_tokens=160,
        temperature=0,
    ) as stream:
        roles = []
        finish = []
        for chunk in stream:
            assert chunk.object == "chat.completion.chunk" and chunk.model == server.model_name
            choice = chunk.choices[0]
            roles.append(choice.delta.role)
            finish.append(choice.finish_reason)
            if choice.delta.content:
                pieces.append(choice.delta.content)
    assert len(pieces) > 1 and pieces == [p for p in expected if p]
    assert roles[0] == "assistant" and finish[-1] == "stop" and set(finish[:-1]) == {None}


def test_non_streamed_completion(echo_server: OpenAICompatibleServer) -> None:
    # Echo only: this path does not depend on the generator, and each real generation costs ~30 s.
    expected = "".join(echo_server.generator.stream(MESSAGES))
    done = _client(echo_server).chat.completions.create(
        model=echo_server.model_name,
        messages=_MESSAGES,
    )
    assert done.choices[0].message.content == expected and done.choices[0].finish_reason == "stop"


def test_whole_app_answers_through_the_openai_backend(server: OpenAICompatibleServer, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lighthouse.txt").write_text(DOC, encoding="utf-8")
    services = Services(_settings(tmp_path, server.base_url), embedder=HashEmbedder())  # generator not injected
    assert [r.status for r in services.indexer.ingest_paths([docs])] == ["indexed"]

    stream = services.pipeline.stream(QUESTION)
    pieces = list(stream)
    assert len(pieces) > 1, pieces  # streamed piece by piece, not in one go
    answer = stream.answer
    assert answer is not None and not answer.abstained, answer
    assert isinstance(services.generator, OpenAICompatibleGenerator)
    assert services.generator.name == f"openai:{server.model_name}"  # openai_model="" asked /v1/models
    assert answer.citations and Path(answer.citations[0].chunk.source).name == "lighthouse.txt"
    if isinstance(server.generator, EchoGenerator):  # the prompt really went through the server
        assert QUESTION in server.generator.prompts[-1][-1]["content"]
        assert "280 BC" in answer.text
    assert services.stats().generator == f"openai:{server.model_name} at {server.base_url}"


def test_empty_model_setting_uses_the_servers_first_model(tmp_path: Path) -> None:
    srv = _start(EchoGenerator(), model_name="served-model")
    try:
        gen = OpenAICompatibleGenerator(_settings(tmp_path, srv.base_url))
        assert gen.model == "served-model" and gen.name == "openai:served-model"
        assert "".join(gen.stream(MESSAGES)) == "The lighthouse of Alexandria was completed around 280 BC [1]."
    finally:
        _stop(srv)


def test_unreachable_server_says_where_and_how_to_fix_it(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(GeneratorUnavailable) as err:  # openai_model="" asks the server at once
        OpenAICompatibleGenerator(_settings(tmp_path, url))
    msg = str(err.value)
    assert url in msg and "Cannot reach" in msg
    assert "python -m rag.serve_openai" in msg and "RAG_LLM_BACKEND=local" in msg


def test_unreachable_server_with_a_named_model_fails_on_first_question(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    services = Services(_settings(tmp_path, url, openai_model="m"), embedder=HashEmbedder(), generator=None)
    gen = services.generator  # no request yet
    with pytest.raises(GeneratorUnavailable, match=r"Cannot reach the OpenAI-compatible server at http://127"):
        list(gen.stream(MESSAGES))


def test_unknown_model_lists_the_available_ones(echo_server: OpenAICompatibleServer, tmp_path: Path) -> None:
    gen = OpenAICompatibleGenerator(_settings(tmp_path, echo_server.base_url, openai_model="gpt-nope"))
    assert gen.name == "openai:gpt-nope"
    with pytest.raises(GeneratorUnavailable) as err:
        list(gen.stream(MESSAGES))
    msg = str(err.value)
    assert "'gpt-nope'" in msg and f"Available models: '{echo_server.model_name}'" in msg
    assert "RAG_OPENAI_MODEL" in msg


def test_api_key_is_required_and_sent(tmp_path: Path) -> None:
    srv = _start(EchoGenerator(), api_key="s3cret")
    try:
        with pytest.raises(GeneratorUnavailable, match=r"HTTP 401.*Set RAG_OPENAI_API_KEY"):
            OpenAICompatibleGenerator(_settings(tmp_path, srv.base_url))
        with pytest.raises(GeneratorUnavailable, match=r"HTTP 401.*Check RAG_OPENAI_API_KEY"):
            OpenAICompatibleGenerator(_settings(tmp_path, srv.base_url, openai_api_key="wrong"))
        gen = OpenAICompatibleGenerator(_settings(tmp_path, srv.base_url, openai_api_key="s3cret"))
        assert "[1]" in "".join(gen.stream(MESSAGES))
    finally:
        _stop(srv)


def test_base_url_without_v1_is_explained(echo_server: OpenAICompatibleServer, tmp_path: Path) -> None:
    root = echo_server.base_url.removesuffix("/v1")
    gen = OpenAICompatibleGenerator(_settings(tmp_path, root, openai_model=echo_server.model_name))
    with pytest.raises(GeneratorUnavailable, match=r"answered 404 .*RAG_OPENAI_BASE_URL.*/v1"):
        list(gen.stream(MESSAGES))


class _FailsMidway(EchoGenerator):
    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        yield "The lighthouse "
        raise RuntimeError("CUDA out of memory")


def test_failure_mid_stream_reaches_the_client(tmp_path: Path) -> None:
    srv = _start(_FailsMidway())
    try:
        gen = OpenAICompatibleGenerator(_settings(tmp_path, srv.base_url))
        got: list[str] = []
        with pytest.raises(GeneratorUnavailable, match=r"failed while generating an answer.*CUDA out of memory"):
            for piece in gen.stream(MESSAGES):
                got.append(piece)
        assert got == ["The lighthouse "]
    finally:
        _stop(srv)


def test_stopping_early_closes_the_stream(echo_server: OpenAICompatibleServer, tmp_path: Path) -> None:
    gen = OpenAICompatibleGenerator(_settings(tmp_path, echo_server.base_url))
    pieces = gen.stream(MESSAGES)
    assert next(pieces) == "The "
    pieces.close()  # type: ignore[attr-defined]
    assert "".join(gen.stream(MESSAGES)).endswith("[1].")  # the server is still fine
