#!/usr/bin/env bash
# `make run cluster` / `make stop`: the seed's multi-server setup on one machine.
#
#   scripts/cluster.sh start   redis-server, three deployd instances sharing one app folder and its
#                              SQLite database, HAProxy in front; stays in the foreground until
#                              Ctrl-C (or `scripts/cluster.sh stop` from another terminal)
#   scripts/cluster.sh stop    stops every process a start recorded, and nothing else
#
# Ports (environment): CLUSTER_PORT=2400 (HAProxy), INSTANCE_PORTS="2403 2404 2405",
# REDIS_PORT=6379. APP=examples/todos. Pid files and logs go to CLUSTER_DIR (default .cluster/).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CLUSTER_PORT=${CLUSTER_PORT:-2400}
INSTANCE_PORTS=${INSTANCE_PORTS:-2403 2404 2405}
REDIS_PORT=${REDIS_PORT:-6379}
APP=$(cd "${APP:-examples/todos}" && pwd)
DIR=${CLUSTER_DIR:-$ROOT/.cluster}
BIND_HOST=${BIND_HOST:-0.0.0.0}

say() { echo "cluster: $*" >&2; }

# Stops what the pid files name, HAProxy first (no new requests), then the instances (they finish
# what is in flight), then Redis. TERM, then KILL after 10 s.
stop_all() {
  local name pid waited stopped=0
  for name in haproxy $(for p in $INSTANCE_PORTS; do echo "deployd-$p"; done) redis; do
    [ -f "$DIR/$name.pid" ] || continue
    pid=$(cat "$DIR/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      waited=0
      while kill -0 "$pid" 2>/dev/null && [ $waited -lt 100 ]; do sleep 0.1; waited=$((waited + 1)); done
      if kill -0 "$pid" 2>/dev/null; then say "$name ($pid) did not stop in 10 s: killing it"; kill -KILL "$pid" 2>/dev/null || true; fi
      say "stopped $name (pid $pid)"
      stopped=$((stopped + 1))
    else
      say "$name (pid $pid) was not running any more"
    fi
    rm -f "$DIR/$name.pid"
  done
  [ $stopped -gt 0 ] || say "nothing was running (no live process in $DIR/*.pid)"
}

# redis-server and haproxy come from the OS packages.
need_packages() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v haproxy >/dev/null || missing+=(haproxy)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing ${missing[*]} (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    say "needs ${missing[*]}: install them with: sudo apt-get install ${missing[*]}   (macOS: brew install redis haproxy)"
    exit 1
  fi
}

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_http() { # url, seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

start() {
  need_packages
  [ -f "$ROOT/dist/src/cli/main.js" ] || { say "not built: run 'make build' first"; exit 1; }
  mkdir -p "$DIR"
  for name in haproxy redis $(for p in $INSTANCE_PORTS; do echo "deployd-$p"; done); do
    if [ -f "$DIR/$name.pid" ] && kill -0 "$(cat "$DIR/$name.pid")" 2>/dev/null; then
      say "already running ($name, pid $(cat "$DIR/$name.pid")): run 'make stop' first"; exit 1
    fi
  done
  for port in "$REDIS_PORT" $INSTANCE_PORTS "$CLUSTER_PORT"; do
    port_free "$port" || { say "port $port is in use (set REDIS_PORT, INSTANCE_PORTS or CLUSTER_PORT to use others)"; exit 1; }
  done
  trap 'trap - INT TERM EXIT; say "stopping"; stop_all; exit 0' INT TERM
  trap 'stop_all' EXIT

  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DIR" --save 60 1000 --appendonly no --daemonize no \
    >"$DIR/redis.log" 2>&1 &
  echo $! >"$DIR/redis.pid"
  for ((i = 0; i < 100; i++)); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || { say "redis-server did not start: see $DIR/redis.log"; exit 1; }

  # One after another: the first creates the database (and the master key, if the app has none).
  local servers=""
  for port in $INSTANCE_PORTS; do
    # INSTANCE_ID: the name HAProxy gives the server, also shown by the dashboard for each connection.
    INSTANCE_ID="i$port" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" "$ROOT/bin/deployd" --port "$port" --host "$BIND_HOST" --app "$APP" \
      >"$DIR/deployd-$port.log" 2>&1 &
    echo $! >"$DIR/deployd-$port.pid"
    wait_http "http://127.0.0.1:$port/health" 30 || { say "instance on $port did not start: see $DIR/deployd-$port.log"; cat "$DIR/deployd-$port.log" >&2; exit 1; }
    servers+="    server i$port 127.0.0.1:$port"$'\n'
  done

  sed -e "s|@BIND@|$BIND_HOST:$CLUSTER_PORT|" -e "s|@ERRORS@|$ROOT/scripts/haproxy-errors|" -e "/^@SERVERS@$/{
r /dev/stdin
d
}" "$ROOT/scripts/haproxy.cfg" <<<"$servers" >"$DIR/haproxy.cfg"
  haproxy -db -f "$DIR/haproxy.cfg" >"$DIR/haproxy.log" 2>&1 &
  echo $! >"$DIR/haproxy.pid"
  wait_http "http://127.0.0.1:$CLUSTER_PORT/health" 10 || { say "HAProxy did not start: see $DIR/haproxy.log"; cat "$DIR/haproxy.log" >&2; exit 1; }

  local key_at
  if [ -n "${MASTER_KEY:-}" ]; then key_at="from MASTER_KEY (the same for every instance)"
  else key_at="$APP/.deployd/security.json — print it with: bin/deployd showkey --app $APP"; fi
  cat >&2 <<EOF
cluster: up — app $APP
  master key: $key_at
  http://localhost:$CLUSTER_PORT   HAProxy: REST and WebSocket (/ws), least-connections over the instances
  http://localhost:$CLUSTER_PORT/dashboard   the dashboard (master key: bin/deployd showkey --app $APP)
$(for p in $INSTANCE_PORTS; do echo "  http://localhost:$p   deployd instance (REDIS_URL=redis://127.0.0.1:$REDIS_PORT), log $DIR/deployd-$p.log"; done)
  redis://127.0.0.1:$REDIS_PORT   Redis: the shared real-time stream
Ctrl-C (or 'make stop' elsewhere) stops all of it.
EOF
  # In the foreground until stopped; `make stop` from elsewhere ends every process, and this loop with them.
  while :; do
    local alive=0
    for name in haproxy redis $(for p in $INSTANCE_PORTS; do echo "deployd-$p"; done); do
      [ -f "$DIR/$name.pid" ] && kill -0 "$(cat "$DIR/$name.pid")" 2>/dev/null && alive=1
    done
    [ $alive -eq 1 ] || { say "stopped"; trap - EXIT; exit 0; }
    sleep 0.5
  done
}

case "${1:-start}" in
  start) start ;;
  stop) stop_all ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
