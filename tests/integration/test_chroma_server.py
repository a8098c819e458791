"""Server mode: the app against a real Chroma server started from the installed package.

One ``chroma run`` serves the whole module; each test gets its own Chroma database on it
(RAG_CHROMA_DATABASE), as separate deployments sharing one server would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from rag.config import Settings
from rag.services import Services
from rag.store import StoreUnavailable
from tests.conftest import SAMPLES, make_settings
from tests.fakes import EchoGenerator, HashEmbedder
from tests.procs import free_port, stop

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 60.0
HOST = "127.0.0.1"


@dataclass(frozen=True)
class ChromaServer:
    port: int
    log: Path


def _output(log: Path) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)[-4000:]  # without the banner's colours


@contextmanager
def running_server(root: Path) -> Iterator[ChromaServer]:
    """``chroma run`` on a free loopback port, up once its heartbeat answers; stopped on exit."""
    exe = Path(sys.executable).parent / "chroma"
    assert exe.exists(), f"{exe} missing: chromadb's CLI is not installed in this environment"
    root.mkdir(parents=True, exist_ok=True)
    port = free_port(HOST)
    log = root / "server.log"
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "CHROMA_ANONYMIZED_TELEMETRY": "False"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(exe), "run", "--path", str(root / "db"), "--host", HOST, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"chroma run exited with {proc.returncode}:\n{_output(log)}")
            try:
                if httpx.get(f"http://{HOST}:{port}/api/v2/heartbeat", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"chroma run gave no heartbeat within {START_TIMEOUT_S:.0f} s:\n{_output(log)}")
            time.sleep(0.2)
        yield ChromaServer(port, log)
    finally:
        stop(proc, timeout=10)


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    with running_server(tmp_path_factory.mktemp("chroma-server")) as server:
        yield server


def _new_database(server: ChromaServer) -> str:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = chromadb.AdminClient(
        ChromaSettings(
            chroma_api_impl="chromadb.api.fastapi.FastAPI",
            chroma_server_host=HOST,
            chroma_server_http_port=server.port,
            anonymized_telemetry=False,
        )
    )
    admin.create_database(name)
    return name


@pytest.fixture
def server_settings(chroma_server: ChromaServer, tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path / "home",
        chroma_mode="server",
        chroma_host=HOST,
        chroma_port=chroma_server.port,
        chroma_database=_new_database(chroma_server),
        chunk_tokens=40,
        chunk_overlap_tokens=5,
    )


def _doc(i: int) -> str:
    return "\n\n".join(" ".join([f"topic{i}", *(f"w{i}_{j}_{k}" for k in range(25))]) + "." for j in range(3))


def _write_docs(folder: Path, n: int, start: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        (folder / f"doc{i}.md").write_text(_doc(i))


def _probe(i: int) -> str:
    """A question made of part of one passage of document ``i``."""
    return " ".join(_doc(i).split("\n\n")[1].split()[:12])


def test_ingest_ask_reingest_and_reindex_against_a_server(server_settings: Settings, tmp_path: Path) -> None:
    embedder = HashEmbedder()
    services = Services(server_settings, embedder=embedder, generator=EchoGenerator())
    docs = tmp_path / "docs"
    _write_docs(docs, 3)

    results = services.indexer.ingest_paths([docs])
    assert {r.status for r in results} == {"indexed"}, results
    assert not server_settings.chroma_dir.exists()  # the vectors live on the server, not under RAG_HOME
    answer = services.pipeline.ask(_probe(1))
    assert not answer.abstained and re.search(r"\[1\]", answer.text), answer
    assert Path(answer.citations[0].chunk.source).name == "doc1.md"

    embedded_before = sum(embedder.calls)
    again = services.indexer.ingest_paths([docs])
    assert {r.status for r in again} == {"unchanged"} and sum(r.embedded for r in again) == 0
    assert sum(embedder.calls) == embedded_before

    old = services.indexer.active_store().name
    report = services.indexer.reindex()
    assert report.collection != old and not report.failed
    assert services.catalog.names() == [report.collection]  # the old generation is dropped on the server
    assert services.indexer.missing_chunks() == 0
    for i in range(3):
        answer = services.pipeline.ask(_probe(i))
        assert not answer.abstained and Path(answer.citations[0].chunk.source).name == f"doc{i}.md"


def test_two_replicas_share_one_server(server_settings: Settings, tmp_path: Path) -> None:
    """What one app replica indexes, another answers at once: no reload, no restart."""
    a = Services(server_settings, embedder=HashEmbedder(), generator=EchoGenerator())
    b = Services(server_settings, embedder=HashEmbedder(), generator=EchoGenerator())
    docs = tmp_path / "docs"
    _write_docs(docs, 1)
    a.indexer.ingest_paths([docs])
    assert b.pipeline.sources(_probe(0))  # b's client is open and has answered
    client = b.catalog.client

    _write_docs(docs, 1, start=1)
    assert [r.status for r in a.indexer.ingest_paths([docs])] == ["unchanged", "indexed"]
    answer = b.pipeline.ask(_probe(1))
    assert not answer.abstained and Path(answer.citations[0].chunk.source).name == "doc1.md"

    a.indexer.reindex()
    answer = b.pipeline.ask(_probe(0))
    assert not answer.abstained and Path(answer.citations[0].chunk.source).name == "doc0.md"
    assert b.catalog.client is client  # never reopened: the server is shared


def test_an_embedded_index_moves_to_a_server_with_one_reindex(server_settings: Settings, tmp_path: Path) -> None:
    """docs/deploy.md: switch RAG_CHROMA_MODE on an existing RAG_HOME, then re-index once."""
    embedded = server_settings.model_copy(update={"chroma_mode": "embedded"})
    docs = tmp_path / "docs"
    _write_docs(docs, 2)
    Services(embedded, embedder=HashEmbedder(), generator=EchoGenerator()).indexer.ingest_paths([docs])

    services = Services(server_settings, embedder=HashEmbedder(), generator=EchoGenerator())
    report = services.indexer.reindex()  # rebuilt on the server from the stored copies under RAG_HOME
    assert report.documents == 2 and not report.failed
    assert services.catalog.names() == [report.collection]
    answer = services.pipeline.ask(_probe(1))
    assert not answer.abstained and Path(answer.citations[0].chunk.source).name == "doc1.md"


def test_token_is_sent_as_a_bearer_header(server_settings: Settings) -> None:
    settings = server_settings.model_copy(update={"chroma_token": SecretStr("s3cret")})
    services = Services(settings, embedder=HashEmbedder(), generator=EchoGenerator())
    session = services.catalog.client._server._session  # chromadb's httpx client
    assert session.headers["authorization"] == "Bearer s3cret"
    assert set(services.catalog.names()) <= {"chunks_g1"}  # a server without auth ignores the header

    settings = settings.model_copy(update={"chroma_token_header": "X-Chroma-Token"})
    session = Services(settings, embedder=HashEmbedder(), generator=EchoGenerator()).catalog.client._server._session
    assert session.headers["x-chroma-token"] == "s3cret" and "authorization" not in session.headers


def test_real_models_answer_from_a_server(server_settings: Settings, real_embedder: Any, real_generator: Any) -> None:
    settings = server_settings.model_copy(update={"chunk_tokens": 200, "chunk_overlap_tokens": 40})
    services = Services(settings, embedder=real_embedder, generator=real_generator)
    [result] = services.indexer.ingest_paths([SAMPLES / "eiffel_tower.pdf"])
    assert result.status == "indexed", result
    answer = services.pipeline.ask("When was the Eiffel Tower completed?")
    assert not answer.abstained, answer
    cited = answer.citations[0].chunk
    assert Path(cited.source).name == "eiffel_tower.pdf" and cited.page == 1


def test_unreachable_server_is_a_clear_error_and_quick(tmp_path: Path) -> None:
    port = free_port(HOST)  # nothing listens there
    settings = make_settings(tmp_path / "home", chroma_mode="server", chroma_host=HOST, chroma_port=port)
    t0 = time.perf_counter()
    with pytest.raises(StoreUnavailable) as info:
        Services(settings, embedder=HashEmbedder(), generator=EchoGenerator())
    assert time.perf_counter() - t0 < 10
    message = str(info.value)
    assert f"{HOST}:{port}" in message and "unreachable" in message
    assert "chroma run --path" in message and "RAG_CHROMA_MODE=embedded" in message


def test_server_stopped_after_start_is_a_store_unavailable(tmp_path: Path) -> None:
    """A replica whose server goes away mid-run gets the same clear error, not 'collection gone'."""
    with running_server(tmp_path / "server") as server:
        settings = make_settings(tmp_path / "home", chroma_mode="server", chroma_host=HOST, chroma_port=server.port)
        services = Services(settings, embedder=HashEmbedder(), generator=EchoGenerator())
        services.indexer.ingest_paths([SAMPLES / "apollo_11.txt"])
        assert services.pipeline.sources("What was the lunar module called?")
    with pytest.raises(StoreUnavailable, match=f"{HOST}:{server.port} is unreachable"):
        services.indexer.reader_store()
    with pytest.raises(StoreUnavailable):
        services.pipeline.sources("What was the lunar module called?")
