# The two commands: `make run` serves, `make test` tests. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
TEST_HOME := $(CURDIR)/.cache/test-home
# The real servers the second test pass uses when they are there (CI has them).
SERVICES_REDIS_URL ?= redis://127.0.0.1:6379/0
SERVICES_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: install agents run test test-fast test-embedded test-services compose-test lint format bench install-cuda

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@echo "Installing Herd into $(VENV). The first time, pip compiles llama-cpp-python from source"
	@echo "(it has no wheels on PyPI): 3 to 8 minutes with no output. pip caches the wheel after."
	$(BIN)/pip install --quiet -e '.[demo,dev]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/herd migrate --verbosity 0
	$(BIN)/herd install_demo
	$(BIN)/herd serve

test: install lint agents test-embedded test-services

# The coding agents tests/test_agents.py drives, installed once with npm where npm exists
# (without it, those tests skip and say why).
AGENTS := .cache/agents
# The releases the tests were written against (a newer agent may send new shapes: try it first).
AGENT_PACKAGES := @openai/codex@0.171.0 @anthropic-ai/claude-code@2.1.197
# aider pins its own versions of the libraries Herd uses: it gets a virtualenv of its own.
AIDER_PACKAGE := aider-chat==0.86.2
agents:
	@if [ -x $(AGENTS)/node_modules/.bin/codex ] && [ -x $(AGENTS)/node_modules/.bin/claude ]; then \
		true; \
	elif command -v npm >/dev/null; then \
		npm install --silent --prefix $(AGENTS) $(AGENT_PACKAGES) \
			|| echo "agents: npm install failed; the real-agent tests skip"; \
	else \
		echo "agents: no npm here; the real-agent tests skip"; \
	fi
	@[ -x $(AGENTS)/aider/bin/aider ] || ( \
		$(PYTHON) -m venv $(AGENTS)/aider && $(AGENTS)/aider/bin/pip install --quiet $(AIDER_PACKAGE) \
	) || echo "agents: aider could not be installed; its tests skip"

# The tests that start no server, worker or broker (everything not marked live): a quick loop.
test-fast: install
	rm -rf $(TEST_HOME) && mkdir -p $(TEST_HOME)
	env -u REDIS_URL -u DATABASE_URL HERD_HOME=$(TEST_HOME) $(BIN)/pytest -m "not live"

# Embedded defaults: SQLite and the embedded Valkey.
test-embedded: install
	rm -rf $(TEST_HOME) && mkdir -p $(TEST_HOME)
	env -u REDIS_URL -u DATABASE_URL HERD_HOME=$(TEST_HOME) $(BIN)/pytest

# The same suite against the local Redis and PostgreSQL, when they answer.
test-services: install
	@if (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then \
		rm -rf $(TEST_HOME) && mkdir -p $(TEST_HOME) && \
		HERD_HOME=$(TEST_HOME) REDIS_URL=$(SERVICES_REDIS_URL) DATABASE_URL=$(SERVICES_DATABASE_URL) $(BIN)/pytest; \
	else \
		echo "test-services: no Redis on :6379 or PostgreSQL on :5432 here; skipped"; \
	fi

# docker-compose.yml run for real (tests/compose/): the images built (where no registry answers,
# Debian's base made with debootstrap and the Valkey and PostgreSQL images as stand-ins), the
# stack brought up, a worker killed, the whole stack restarted. It starts its own dockerd when
# none runs (root) and skips, saying why, where Docker cannot run. About 20 minutes the first
# time on 2 cores; what it builds is kept in .cache/compose/ and the daemon's storage.
compose-test: install
	rm -rf $(TEST_HOME) && mkdir -p $(TEST_HOME)
	env -u REDIS_URL -u DATABASE_URL HERD_HOME=$(TEST_HOME) $(BIN)/pytest -s tests/compose --compose

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# One run of the whole suite; each script rewrites its own section of bench/RESULTS.md, and
# must_show.py checks the issue's targets on this run's figures alone (cleared first).
# `make bench BENCH_FLAGS=--quick` is a smoke test that leaves RESULTS.md alone.
BENCH_FLAGS ?=
bench: install
	$(BIN)/pip install --quiet -e '.[demo,dev,bench]'
	$(BIN)/python bench/peers.py
	rm -f .cache/bench/figures.json .cache/bench-quick/figures.json
	$(BIN)/python bench/streaming.py $(BENCH_FLAGS)
	$(BIN)/python bench/concurrency.py $(BENCH_FLAGS)
	$(BIN)/python bench/batch.py $(BENCH_FLAGS)
	$(BIN)/python bench/cold_load.py $(BENCH_FLAGS)
	$(BIN)/python bench/first_answer.py $(BENCH_FLAGS)
	$(BIN)/python bench/interactive_under_batch.py $(BENCH_FLAGS)
	$(BIN)/python bench/kv_cache_types.py $(BENCH_FLAGS)
	$(BIN)/python bench/rerank.py $(BENCH_FLAGS)
	$(BIN)/python bench/must_show.py $(BENCH_FLAGS)

# llama-cpp-python built with CUDA, for GPU workers (needs the CUDA toolkit).
install-cuda: install
	CMAKE_ARGS="-DGGML_CUDA=on" $(BIN)/pip install --force-reinstall --no-cache-dir --no-deps \
		"llama-cpp-python==$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')"
