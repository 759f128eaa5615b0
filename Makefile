# Every target sets itself up on a fresh machine: `make demo` and `make test` need nothing installed first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Prefer Python 3.13 (the Lambda runtime), else any python3 >= 3.11.
PYTHON ?= $(shell for p in python3.13 $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) python3; do \
	  $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; done)
# `sam build` needs the Lambda runtime's own Python, `python3.13`, on PATH: the first python3.13 that runs,
# pyenv's included (its directory is put first on PATH for SAM).
PYTHON313 ?= $(shell for p in python3.13 $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13); do \
	  $$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1 && { command -v $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
# SAM CLI pins its own boto3 and pydantic, so it lives in a venv of its own.
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
# checkov pins versions the project's own dependencies conflict with: a venv of its own too.
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov

.PHONY: help venv sam-venv checkov-venv test check lint typecheck template statemachine unit unit-fast demo local bench clean simulate build python313

help:
	@echo "make demo   - run the demo scenarios on the embedded local stack"
	@echo "make check  - the fast lane (about a minute): lint, types, unit tests"
	@echo "make test   - every check: lint, types, template, state machines, tests"
	@echo "make local  - serve the local stack until interrupted"
	@echo "make build  - sam build (Python 3.13, no Docker), before sam deploy: see docs/DEPLOY.md"

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

$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet 'checkov==3.3.30'
	touch $@

checkov-venv: $(CHECKOV_VENV)/.installed

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

template: venv
	@if [ -f template.yaml ]; then $(MAKE) --no-print-directory template-checks; else echo "no template.yaml yet"; fi

# SAM CLI offline: dummy credentials, a fixed region, no telemetry, no instance-metadata probing.
SAM_OFFLINE_ENV := env -u AWS_PROFILE AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
	AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true SAM_CLI_TELEMETRY=0
TRANSLATED_TEMPLATE := .aws-sam/template-checks/template.json

# 1. cfn-lint on the SAM template; 2. SAM's own lint; 3. cfn-lint on the CloudFormation SAM generates
# (roles, stage, usage plan, permissions). W3005 is ignored there only: SAM itself writes DependsOn
# entries that repeat a Ref (usage plan, usage plan key), which no change to template.yaml can remove.
# 4. checkov on both; a check that does not apply is skipped in template.yaml beside its resource, with
# the reason (Metadata checkov.skip). Offline: --skip-download (no guidelines, no platform).
template-checks: venv sam-venv checkov-venv
	$(BIN)/cfn-lint template.yaml
	$(SAM_OFFLINE_ENV) $(SAM) validate --lint --template-file template.yaml --region us-east-1
	$(SAM_OFFLINE_ENV) $(BIN)/python scripts/translate_template.py template.yaml $(TRANSLATED_TEMPLATE)
	$(BIN)/cfn-lint --ignore-checks W3005 -- $(TRANSLATED_TEMPLATE)
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation \
	  -f template.yaml -f $(TRANSLATED_TEMPLATE)

# Amazon States Language checks of every state machine (statelint 3.x: `statelint FILE...`, exit 1 on errors).
# It accepts the JSONPath features the workflows use (SecondsPath, TimeoutSecondsPath, *Path comparisons,
# JitterStrategy, MaxDelaySeconds); DefinitionSubstitutions placeholders are plain strings to it.
statemachine: sam-venv
	$(SAM_VENV)/bin/statelint statemachine/*.asl.json

# The deployable build in .aws-sam/build (then: $(SAM) deploy --guided). No Docker: the layer's
# dependencies are arm64 wheels pip downloads for the Lambda platform.
build: python313 sam-venv
	PATH="$(dir $(PYTHON313)):$$PATH" SAM_CLI_TELEMETRY=0 $(SAM) build

python313:
	@test -n "$(PYTHON313)" || { echo "make build: no Python 3.13 found (the Lambda runtime; SAM builds with it)." >&2; \
	  echo "  Install it (pyenv install 3.13, or your system's python3.13 package) and run make build again," >&2; \
	  echo "  or give its path: make build PYTHON313=/path/to/python3.13" >&2; exit 1; }

unit: venv
	$(BIN)/pytest

test: lint typecheck template statemachine unit

# The fast lane: no servers, no moto, no simulation (tests/unit refuses sockets). `make test` runs everything.
unit-fast: venv
	$(BIN)/pytest tests/unit -q -m "not slow" -p no:cacheprovider

check: lint typecheck unit-fast

demo: venv
	$(BIN)/python -m refunds_local.demo

local: venv
	$(BIN)/refunds-local

# Deterministic simulation of the money invariants under chaos (tests/simulation): SEEDS seeds from START.
# Replay one: .venv/bin/python -m tests.simulation SEED
SEEDS ?= 1000
START ?= 0
simulate: venv
	$(BIN)/python -m tests.simulation --seeds $(SEEDS) --start $(START)

bench: venv
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam .mypy_cache .pytest_cache .ruff_cache
