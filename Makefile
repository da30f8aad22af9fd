# agenthost's one task runner. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS := local,postgres,redis,otel,dev
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-z0-9-]*:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  make %-12s %s\n", $$1, $$2}'

# llama.cpp (the embedded model) is compiled once per version and flags into a wheel
# kept outside the checkout, so a fresh clone does not compile it again. pip's own
# wheel cache ignores CMAKE_ARGS, so it is bypassed for this one package.
LLAMA_CPP_VERSION := $(shell sed -n 's/.*"llama-cpp-python==\([0-9.]*\)".*/\1/p' pyproject.toml)
ifeq ($(shell uname -m),x86_64)
# AVX2, not -march=native: on CPUs with AMX (Intel Xeon since Sapphire Rapids) a native
# build takes ggml's AMX path, which crashes on these Q4_K_M weights (llama.cpp #20824).
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_OPENMP=OFF -DLLAVA_BUILD=OFF
else
LLAMA_CMAKE_ARGS ?= -DGGML_OPENMP=OFF -DLLAVA_BUILD=OFF
endif
LLAMA_KEY := $(shell printf '%s' '$(LLAMA_CPP_VERSION) $(LLAMA_CMAKE_ARGS)' | cksum | cut -d' ' -f1)
LLAMA_WHEELS := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/agenthost/wheels/llama-cpp-$(LLAMA_KEY)
LLAMA_STAMP := $(VENV)/.llama-cpp-$(LLAMA_KEY)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "agenthost needs Python >= 3.11 (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(LLAMA_STAMP): | $(BIN)/python
	@if ! ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1; then \
		echo "Building llama.cpp $(LLAMA_CPP_VERSION) (a few minutes, once per version and flags)..."; \
		rm -rf $(LLAMA_WHEELS).part && \
		CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
			$(BIN)/python -m pip wheel --quiet --no-deps --no-cache-dir \
			--wheel-dir $(LLAMA_WHEELS).part 'llama-cpp-python==$(LLAMA_CPP_VERSION)' && \
		mv $(LLAMA_WHEELS).part $(LLAMA_WHEELS); \
	fi
	$(BIN)/python -m pip install --quiet --force-reinstall --no-deps $(LLAMA_WHEELS)/llama_cpp_python-*.whl
	@rm -f $(VENV)/.llama-cpp-* && touch $@

$(STAMP): pyproject.toml $(LLAMA_STAMP)
	@echo "Installing agenthost and its dependencies into $(VENV)..."
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $@

.PHONY: install
install: $(STAMP) ## create .venv and install agenthost with every extra

.PHONY: test
test: $(STAMP) chromium ## run the whole test suite (installs chromium for the browser tests if missing)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

.PHONY: e2e
e2e: $(STAMP) chromium ## run the browser tests of the chat page (headless chromium)
	$(BIN)/python -m pytest tests/e2e/browser $(PYTEST_ARGS)

.PHONY: test-deploy
test-deploy: ## build the container image (podman) and check it serves /health and a chat reply (root)
	$(PYTHON) deploy/smoke.py

# The browser tests drive Debian's chromium: Playwright's own browser download does not work here.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: chromium
chromium: ## install chromium and chromium-driver if missing (apt-get), for the browser tests
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
		echo "Installing chromium and chromium-driver for the browser tests (apt-get)..."; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else \
		echo "warning: no chromium and no apt-get: the browser tests skip (and fail under CI=true)"; \
	fi

.PHONY: lint
lint: $(STAMP) ## ruff (lint and format check) and mypy --strict
	$(BIN)/ruff check src tests bench eval
	$(BIN)/ruff format --check src tests bench eval
	$(BIN)/mypy

.PHONY: format
format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests bench eval
	$(BIN)/ruff format src tests bench eval

.PHONY: run
run: $(STAMP) ## serve the API and chat page on http://127.0.0.1:8000 with the embedded model
	$(BIN)/agenthost serve --model local

.PHONY: bench
bench: $(STAMP) ## serving benchmark: agenthost vs bare relays, 4 scenarios x 3 rounds (~11 min)
	$(BIN)/python -m bench.run

.PHONY: bench-instructions
bench-instructions: $(STAMP) ## instructions per request and per token (callgrind): agenthost vs the aiohttp relay (~3 min)
	@command -v valgrind >/dev/null || { echo "Installing valgrind (apt-get)..."; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }
	$(BIN)/python -m bench.instructions

.PHONY: bench-profile
bench-profile: $(STAMP) ## where agenthost's CPU goes under scenario (a) (installs py-spy)
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	$(BIN)/python -m bench.profiling --scenario a

.PHONY: bench-store
bench-store: $(STAMP) ## time the session stores: append, window read, listing, per backend
	$(BIN)/python -m bench.store_bench

.PHONY: eval
eval: $(STAMP) ## knowledge eval: retrieval hit@1/hit@5, refusals, answers on the embedded model, latency
	$(BIN)/python eval/knowledge.py

.PHONY: chat
chat: $(STAMP) ## chat in the terminal with the embedded offline model
	$(BIN)/agenthost chat --model local

.PHONY: clean
clean: ## remove caches (keeps .venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache htmlcov .coverage
