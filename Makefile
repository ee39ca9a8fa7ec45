# One entry point for people and CI. Every target bootstraps its own virtual environment.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.vigie-installed
PROTO_STAMP := gateway/_proto/.generated
PROTOS := $(wildcard proto/vigie/v1/*.proto)
PYTEST_ARGS ?=

.PHONY: help install proto test demo lint typecheck bench serve clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install Vigie with its development tools

$(PROTO_STAMP): $(STAMP) $(PROTOS) scripts/gen_proto.py
	$(BIN)/python scripts/gen_proto.py
	@touch $(PROTO_STAMP)

proto: $(PROTO_STAMP)  ## generate the gRPC stubs from proto/

test: $(PROTO_STAMP)  ## run the whole test suite (SQLite and PostgreSQL)
	@sh scripts/ensure_chromium.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: $(PROTO_STAMP)  ## run the end-to-end demo on the embedded default (SQLite, dev PKI)
	$(BIN)/vigie demo

serve: $(PROTO_STAMP)  ## run the gateway with the demo's files (after `make demo`)
	$(BIN)/vigie serve --env-file .vigie-demo/vigie.env

lint: $(PROTO_STAMP)  ## ruff and buf lint
	$(BIN)/ruff check gateway policy tests bench scripts
	bash scripts/lint_proto.sh

typecheck: $(PROTO_STAMP)  ## mypy --strict on gateway/ and policy/
	$(BIN)/mypy

bench: $(PROTO_STAMP)  ## run the benchmarks (print figures; never fail on timing)
	$(BIN)/python -m bench

clean:  ## remove the virtual environment, generated code and local state
	rm -rf $(VENV) gateway/_proto var .vigie-demo build
