# Every target sets itself up on a fresh machine: `make demo` and `make test` need nothing installed first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Prefer Python 3.13 (the Lambda runtime), else any python3 >= 3.11.
PYTHON ?= $(shell for p in python3.13 $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) python3; do \
	  $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
# SAM CLI pins its own boto3 and pydantic, so it lives in a venv of its own.
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam

.PHONY: help venv sam-venv test lint typecheck template statemachine unit demo local bench clean

help:
	@echo "make demo   - run the demo scenarios on the embedded local stack"
	@echo "make test   - every check: lint, types, template, state machines, tests"
	@echo "make local  - serve the local stack until interrupted"

$(BIN)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "need python3.13 or python3 >= 3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet 'aws-sam-cli==1.170.0' 'statelint==3.1.0'
	touch $@

sam-venv: $(SAM_VENV)/.installed

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

template: venv
	@if [ -f template.yaml ]; then $(MAKE) --no-print-directory template-checks; else echo "no template.yaml yet"; fi

template-checks: venv sam-venv
	$(BIN)/cfn-lint template.yaml
	AWS_DEFAULT_REGION=us-east-1 $(SAM) validate --lint --template-file template.yaml

unit: venv
	$(BIN)/pytest

test: lint typecheck template unit

demo: venv
	$(BIN)/python -m refunds_local.demo

local: venv
	$(BIN)/refunds-local

bench: venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .mypy_cache .pytest_cache .ruff_cache
