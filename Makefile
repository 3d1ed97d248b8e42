# bulktag's two sacred commands: `make demo` and `make test`.
# Every target creates the environment it needs; nothing needs installing by hand
# but Python 3.11. uv is installed with pip (into .tools/) when missing, and never
# downloads a Python: it uses the machine's.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The interpreter itself, not a pyenv shim, so uv sees the one the venv was made from.
PYTHON ?= $(shell for p in python3.11 python3; do $$p -c 'import sys; print(sys.executable)' 2>/dev/null && break; done)
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)
export UV_PROJECT_ENVIRONMENT := .venv
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
RUN := $(UV) run --frozen --no-sync

.PHONY: help demo test lint stateful bench bench-quick clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet 'uv>=0.9,<1'

$(VENV)/.synced-dev: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --group dev
	@rm -f $(VENV)/.synced-*
	@touch $@

$(VENV)/.synced-bench: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --group dev --group bench
	@rm -f $(VENV)/.synced-*
	@touch $@ $(VENV)/.synced-dev

demo: $(VENV)/.synced-dev  ## start the emulator and run bulktag end to end on sample_data/
	$(RUN) bulktag demo

lint: $(VENV)/.synced-dev  ## ruff, mypy --strict, and the stages' import layers
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) lint-imports

test: lint  ## lint, then the whole test suite
	$(RUN) pytest

stateful: $(VENV)/.synced-dev  ## the model of the whole command at 2,000 sequences (about an hour)
	BULKTAG_STATEFUL_EXAMPLES=$${BULKTAG_STATEFUL_EXAMPLES:-2000} $(RUN) pytest -q -p no:cacheprovider tests/run/test_stateful.py

bench: $(VENV)/.synced-bench  ## every benchmark; writes docs/benchmarks.md and bench/results.json
	$(RUN) python -m bench

bench-quick: $(VENV)/.synced-bench  ## the benchmarks at small sizes (2-3 minutes)
	$(RUN) python -m bench --quick

clean:  ## remove environments, caches and run outputs
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache .hypothesis runs build dist
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
