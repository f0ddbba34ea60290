# Set-up is automatic: every target that runs code depends on the venv stamp, which (re)installs the
# package with the exact pins of requirements.lock whenever pyproject.toml or the lock file changes.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stg-installed
EXP ?= smoke
# The paper's ablations vary its main setting (frozen CLIP, 4 GPUs), as the sweeps compose them.
BASE ?= $(if $(filter ablations/%,$(EXP)),clip_frozen)
DATASET ?= gyt
SWEEP ?= table8_attention
ARGS ?=
DEMO_DIR ?= runs/demo
BENCH_DIR ?= bench_results

.PHONY: install system-deps test lint format train sweep bench demo reproduce readme data eval clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c requirements.lock -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The one system package a test needs: Chromium and its driver (Debian's), for the viewer's browser test.
# Installed when missing and this is root on Debian/Ubuntu; otherwise that test skips, saying why.
BROWSER_PACKAGES := chromium chromium-driver
system-deps:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "make: installing $(BROWSER_PACKAGES) (apt-get) for the viewer's browser test"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q $(BROWSER_PACKAGES) >/dev/null \
	  || { apt-get update -q >/dev/null && apt-get install -y -q $(BROWSER_PACKAGES) >/dev/null; }; \
	else echo "make: $(BROWSER_PACKAGES) missing (sudo apt-get install $(BROWSER_PACKAGES)); the browser test will skip"; fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint system-deps
	$(BIN)/pytest -q

train: $(STAMP)
	$(BIN)/stg fit --config configs/defaults.yaml $(if $(BASE),--config experiments/$(BASE).yaml) --config experiments/$(EXP).yaml $(ARGS)

# The README's result tables, rendered from the report files they name (reports/*/metrics.json).
readme: $(STAMP)
	$(BIN)/stg readme

sweep: $(STAMP)
	$(BIN)/stg sweep experiments/sweeps/$(SWEEP).yaml $(ARGS)

bench: $(STAMP)
	mkdir -p $(BENCH_DIR)
	# Paper shapes (U=80, T=16, N=49, K=20, d=512) for selection; the heads' B×B pairwise step is timed at
	# B=16 on a CPU (B=64 takes most of an hour there; pass BENCH_MODEL_ARGS="--batch 64 --device cuda" on a GPU).
	$(BIN)/python benchmarks/bench_model.py --out $(BENCH_DIR)/model.json $(or $(BENCH_MODEL_ARGS),--batch 16 --memory-batch 8)
	$(BIN)/python benchmarks/bench_data.py --out $(BENCH_DIR)/data.json
	$(BIN)/python benchmarks/bench_prepare.py --out $(BENCH_DIR)/prepare.json
	$(BIN)/python benchmarks/bench_eval.py --out $(BENCH_DIR)/eval.json
	$(BIN)/python benchmarks/bench_inference.py --out $(BENCH_DIR)/inference.json

data: $(STAMP)
	$(BIN)/stg prepare --config configs/data/prepare.yaml $(ARGS)

# make eval EXP=clip_frozen CKPT=runs/clip_frozen/latest/checkpoints/last.ckpt [DATASET=gyt|myt|yc_inter] ARGS="--videos DIR"
eval: $(STAMP)
	$(BIN)/stg eval --config configs/eval/$(DATASET).yaml --ckpt $(CKPT) --out runs/$(EXP)/eval_$(DATASET).json $(ARGS)

demo: $(STAMP)
	$(BIN)/stg demo --out $(DEMO_DIR) $(ARGS)

# Every ablation row of the demo over seeds 0, 1, 2 (each its own videos, backbone and heads): mean ± std.
reproduce: $(STAMP)
	$(BIN)/stg reproduce $(ARGS)

clean:
	rm -rf runs reports bench_results lightning_logs wandb .pytest_cache .ruff_cache
