# `make demo`: set up .venv and run the offline demo to its results. `make test`: set up and run every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all

.PHONY: install demo test lint clean-demo

install: $(STAMP)

# torch goes first and pinned: unpinned, pip would pull the newest CUDA build (several GB).
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $(STAMP)

demo: install
	$(BIN)/snakemake --configfile config/demo.yaml --cores $(CORES)
	@echo "Demo finished: see results/summary.csv"

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile rules
