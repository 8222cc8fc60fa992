# The whole set-up on a fresh machine: `make repro` (run the pipeline) and `make test`.
# Both create or refresh .venv idempotently: a second call installs nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
BIN := $(abspath $(VENV)/bin)

# Offline by default: the embedded pipeline needs no hub. Opt in with VALUEHARM_ALLOW_HUB=1.
ifneq ($(VALUEHARM_ALLOW_HUB),1)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
endif
export DVC_NO_ANALYTICS := 1
export TOKENIZERS_PARALLELISM := false
export HF_HUB_DISABLE_PROGRESS_BARS := 1
export PATH := $(BIN):$(PATH)

.PHONY: venv repro test lint data doctor clean-venv

venv: $(STAMP)

# Re-installs only when the project's dependency files change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

data: $(STAMP)
	@if [ ! -d data ]; then valueharm data init; fi
	valueharm data check
	dvc commit --force --quiet data.dvc

repro: data
	dvc repro

# Style first (seconds): ruff lint and format check over the whole project, then the suite.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

doctor: $(STAMP)
	valueharm doctor

clean-venv:
	rm -rf $(VENV)
