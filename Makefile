# `make demo`: set up .venv and run the offline demo to its results. `make test`: set up and run every test;
# `make test-unit`: the unit tests alone (a few minutes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
# Test processes (pytest-xdist): one per core; each takes whole test modules, and the modules that share one
# workflow run go to the same process (tests/conftest.py).
TEST_WORKERS ?= auto
UV_VERSION := 0.13.10
# The demo's jobs are small: one thread per job lets two jobs share 2 cores instead of queueing (a job that asks for
# more takes both, and the other core's work waits for it: the MTR descriptors held back MLM pre-training by 50 s).
DEMO_MAX_THREADS := 1

.PHONY: install system-packages demo test test-unit lint clean-demo

# Debian packages the tests use (chromium: the report test opens the report in it; slurm-wlm and munge: the
# SLURM test runs a one-node cluster on localhost). Installed only when missing.
SYSTEM_PACKAGES := chromium slurm-wlm munge
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

install: $(STAMP)

# torch goes first, pinned, through pip: unpinned, pip would pull the newest CUDA build (several GB), and pip finds
# the CPU build this machine keeps on disk. The rest goes through uv (from PyPI), which installs the same pinned
# versions in parallel: 11 s against pip's 133 s with empty caches on 2 cores. uv compiles the bytecode only when
# asked: without it, and with PYTHONDONTWRITEBYTECODE set, every job would compile transformers' source again.
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0 uv==$(UV_VERSION)
	$(BIN)/python -m uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $(STAMP)

demo: install
	$(BIN)/snakemake --configfile config/demo.yaml --max-threads $(DEMO_MAX_THREADS) --cores $(CORES)
	@echo "Demo finished: open results/report/index.html (tables: results/summary.csv)"

system-packages:
	@missing="$$(for package in $(SYSTEM_PACKAGES); do dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q 'ok installed' || echo $$package; done)"; \
	if [ -n "$$missing" ]; then \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

test: install system-packages
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

# The tests that call package functions in this process; the integration tests (the workflow, SLURM, child
# processes) are left to `make test`.
test-unit: install
	$(BIN)/python -m pytest -m unit -n $(TEST_WORKERS)

lint: install
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile rules
