#!/usr/bin/env bash
# Local stand-ins for the Azure services the tests talk to, all on 127.0.0.1:
#   azurite  Blob 10000, Queue 10001, Table 10002 (in memory)
#   cosmos   @vercel/cosmosdb-server, HTTPS 8081 (self-signed, expired certificate: tests skip verification)
#   cosmoshttp the same server over plain HTTP on 8082 (--no-ssl), a separate in-memory instance: the
#            handler's production Cosmos DB client verifies certificates, so the tests that run the
#            built handler against Cosmos DB use this one
#   ehfake   Event Hubs producer fake, AMQP 5672, HTTP introspection 5673 (see ehfake.js)
#
# usage: bash test/standins/standins.sh start|stop|restart|status|env
#   start    installs node_modules when missing or stale (npm ci), patches cosmosdb-server, starts the
#            stand-ins and waits until each answers. Does nothing if all of them already run and answer.
#            Stand-ins left over from an earlier run (even one whose run directory is gone) are stopped first.
#   stop     stops what start started.
#   status   says what runs; exits 0 only if all of them answer.
#   env      prints the `export` lines the tests read: eval "$(bash test/standins/standins.sh env)"
# Pids and logs live in ${STANDINS_RUN_DIR:-/tmp/contoso-standins}.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RUN=${STANDINS_RUN_DIR:-/tmp/contoso-standins}
[[ $RUN == /* ]] || RUN=$PWD/$RUN # start works from $HERE
SERVICES=(azurite cosmos cosmoshttp ehfake)
EVENT_HUBS=clickstream,feedback
PARTITIONS=4

# The well-known development credentials of the Azurite account and the Cosmos DB emulator.
AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
COSMOS_KEY='C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=='

ports() {
  case $1 in
    azurite) echo 10000 10001 10002 ;;
    cosmos) echo 8081 ;;
    cosmoshttp) echo 8082 ;;
    ehfake) echo 5672 5673 ;;
  esac
}

# urls answer with some HTTP status once the service is ready (Azurite says 403 to anonymous callers).
urls() {
  case $1 in
    azurite) echo http://127.0.0.1:10000/devstoreaccount1 http://127.0.0.1:10001/devstoreaccount1 \
                  http://127.0.0.1:10002/devstoreaccount1/Tables ;;
    cosmos) echo https://127.0.0.1:8081/ ;;
    cosmoshttp) echo http://127.0.0.1:8082/ ;;
    ehfake) echo http://127.0.0.1:5673/healthz ;;
  esac
}

# marker is part of the command line of each stand-in: a pid is only signalled if its command line has it,
# so a stale pid file can never make us kill an unrelated process that reused the pid.
marker() {
  case $1 in
    azurite) echo azurite/dist/src/azurite.js ;;
    cosmos) echo "cosmosdb-server/lib/cli.js --host 127.0.0.1 -p 8081" ;;
    cosmoshttp) echo "cosmosdb-server/lib/cli.js --host 127.0.0.1 -p 8082" ;;
    ehfake) echo ehfake.js ;;
  esac
}

# launch NAME starts a stand-in in the background and records its pid (node's own: the command runs
# directly, not inside a subshell, so the pid file names the process that holds the ports).
launch() {
  local name=$1 cmd
  case $name in
    azurite)
      cmd=(node node_modules/azurite/dist/src/azurite.js --inMemoryPersistence --extentMemoryLimit 256
        --skipApiVersionCheck --loose --disableTelemetry --silent
        --blobHost 127.0.0.1 --blobPort 10000 --queueHost 127.0.0.1 --queuePort 10001
        --tableHost 127.0.0.1 --tablePort 10002) ;;
    cosmos)
      cmd=(node node_modules/@vercel/cosmosdb-server/lib/cli.js --host 127.0.0.1 -p 8081) ;;
    cosmoshttp)
      cmd=(node node_modules/@vercel/cosmosdb-server/lib/cli.js --host 127.0.0.1 -p 8082 --no-ssl) ;;
    ehfake)
      cmd=(node ehfake.js --port 5672 --http-port 5673 --hubs "$EVENT_HUBS" --partitions "$PARTITIONS") ;;
  esac
  # 9>&-: the stand-in must not inherit the lock (see lock), or it would hold it for as long as it runs.
  "${cmd[@]}" </dev/null >"$RUN/$name.log" 2>&1 9>&- &
  echo $! >"$RUN/$name.pid"
}

# probe exits 0 when every URL gives an HTTP answer (any status). Node, not curl: node is needed anyway.
PROBE='
const urls = process.argv.slice(1);
Promise.all(urls.map((u) => new Promise((ok, fail) => {
  const req = require(u.startsWith("https:") ? "https" : "http")
    .get(u, { rejectUnauthorized: false, timeout: 2000 }, (res) => { res.resume(); ok(); });
  req.on("timeout", () => req.destroy(new Error("timeout")));
  req.on("error", fail);
}))).then(() => process.exit(0), () => process.exit(1));'
probe() { node -e "$PROBE" "$@" >/dev/null 2>&1; }

# ours PID NAME: the process lives (not a zombie) and runs that stand-in.
ours() {
  local pid=$1 name=$2 cmdline state
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != Z ] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$(marker "$name")"* ]]
}

pid_of() { cat "$RUN/$1.pid" 2>/dev/null || true; }
running() { ours "$(pid_of "$1")" "$1"; }
ready() { running "$1" && probe $(urls "$1"); }

# terminate PID NAME: SIGTERM, then SIGKILL after 10 s; returns once the process is gone, because a
# dying server still holds its ports for a moment and could answer the next start's probes.
terminate() {
  local pid=$1 name=$2 i
  ours "$pid" "$name" || return 0
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    ours "$pid" "$name" || return 0
    sleep 0.1
  done
  echo "$name (pid $pid) ignored SIGTERM; killing it" >&2
  kill -9 "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    ours "$pid" "$name" || return 0
    sleep 0.1
  done
  echo "$name (pid $pid) is still alive" >&2
  return 1
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_ports NAME: the stand-in's ports must be free before it starts. A listener that is one of our
# stand-ins (a run whose pid files are gone, or another checkout's) is stopped; anything else is an error.
free_ports() {
  local name=$1 port pid
  for port in $(ports "$name"); do
    port_busy "$port" || continue
    pid=$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2 || true)
    if [ -n "$pid" ] && ours "$pid" "$name"; then
      echo "port $port is held by a leftover $name (pid $pid); stopping it"
      terminate "$pid" "$name"
    fi
    if port_busy "$port"; then
      echo "port $port (for $name) is in use by another program${pid:+ (pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null))}" >&2
      return 1
    fi
  done
}

# wait_ready NAME TIMEOUT: poll the probe while checking that the process we started is still alive.
# LAUNCHED_NS is when the stand-ins were launched.
wait_ready() {
  local name=$1 timeout=$2 start=$SECONDS
  until probe $(urls "$name"); do
    if ! running "$name"; then
      echo "$name exited during start-up; its log ($RUN/$name.log):" >&2
      tail -n 40 "$RUN/$name.log" >&2 || true
      return 1
    fi
    if ((SECONDS - start > timeout)); then
      echo "$name not ready after ${timeout}s; its log ($RUN/$name.log):" >&2
      tail -n 40 "$RUN/$name.log" >&2 || true
      return 1
    fi
    sleep 0.2
  done
  echo "$name ready $((($(date +%s%N) - LAUNCHED_NS) / 1000000)) ms after launch (pid $(pid_of "$name"))"
}

need_node() {
  command -v node >/dev/null && command -v npm >/dev/null || {
    echo "node and npm are needed (Node.js 20 or later)" >&2
    exit 1
  }
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  ((major >= 20)) || { echo "Node.js 20 or later is needed, found $(node --version)" >&2; exit 1; }
}

# install runs npm ci when node_modules is missing or was installed from another package-lock.json,
# and then sets INSTALLED so that start replaces stand-ins still running the old code.
INSTALLED=false
install() {
  local stamp=node_modules/.standins-lock.sha256 want
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ] && [ -d node_modules/rhea ]; then
    return 0
  fi
  echo "installing stand-ins (npm ci)..."
  local t0=$SECONDS
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
  echo "$want" >"$stamp"
  INSTALLED=true
  echo "npm ci took $((SECONDS - t0))s"
}

stop() {
  local name
  for name in "${SERVICES[@]}"; do
    terminate "$(pid_of "$name")" "$name"
    rm -f "$RUN/$name.pid"
  done
}

start() {
  local name all_ready=true
  cd "$HERE"
  need_node
  install
  bash ./patch-cosmosdb-server.sh >/dev/null
  mkdir -p "$RUN"

  for name in "${SERVICES[@]}"; do ready "$name" || { all_ready=false; break; }; done
  if $all_ready && ! $INSTALLED; then
    echo "stand-ins already running (run dir $RUN)"
    return 0
  fi

  stop
  for name in "${SERVICES[@]}"; do free_ports "$name" || exit 1; done
  LAUNCHED_NS=$(date +%s%N)
  for name in "${SERVICES[@]}"; do launch "$name"; done
  # Generous timeouts: on a loaded 2-core machine Azurite has needed 30 s (2-5 s when idle).
  wait_ready azurite 120 && wait_ready cosmos 60 && wait_ready cosmoshttp 60 && wait_ready ehfake 60 || { stop; exit 1; }
  echo "stand-ins ready; logs in $RUN"
}

status() {
  local name ok=0
  for name in "${SERVICES[@]}"; do
    if ready "$name"; then
      echo "$name: ready (pid $(pid_of "$name"), ports $(ports "$name"))"
    elif running "$name"; then
      echo "$name: running (pid $(pid_of "$name")) but not answering"; ok=1
    else
      echo "$name: stopped"; ok=1
    fi
  done
  return $ok
}

env_lines() {
  cat <<EOF
export STANDINS_AZURITE_CONNECTION='DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;'
export STANDINS_COSMOS_ENDPOINT='https://127.0.0.1:8081/'
export STANDINS_COSMOS_KEY='${COSMOS_KEY}'
export STANDINS_COSMOS_HTTP_ENDPOINT='http://127.0.0.1:8082/'
export STANDINS_EVENTHUBS_CONNECTION='Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true'
export STANDINS_EVENTHUBS_ADMIN='http://127.0.0.1:5673'
EOF
}

# lock: one start or stop at a time on this machine, whatever the run directory: the ports are shared.
lock() {
  command -v flock >/dev/null || return 0
  exec 9>"${TMPDIR:-/tmp}/contoso-standins.lock"
  flock 9
}

case ${1:-} in
  start) lock && start ;;
  stop) lock && stop ;;
  restart) lock && stop && start ;;
  status) status ;;
  env) env_lines ;;
  *)
    echo "usage: $0 start|stop|restart|status|env" >&2
    exit 2
    ;;
esac
