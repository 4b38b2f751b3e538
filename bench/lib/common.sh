# Shared by the bench scripts: where the binaries are, the header every published figure
# carries, a python with boto3, a release build, a temporary work dir cleaned on exit, and
# a `stevedore server` on a free 127.0.0.1 port.
#   ROOT=...; source "$ROOT/bench/lib/common.sh"
#   bench_header "$@"   # commit, machine, load, the command and its settings (stdout)
#   bench_python; bench_build -p stevedore; bench_workdir NAME
#   start_server        # sets SERVER_PID, DATA, EP and exports the AWS_* variables

# Release binaries live under CARGO_TARGET_DIR when it is set, as cargo puts them there.
RELEASE_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/release
STEVEDORE=${STEVEDORE:-$RELEASE_DIR/stevedore}
LOADGEN=${LOADGEN-$RELEASE_DIR/loadgen}  # set empty, tasks_e2e.sh uses boto3 instead

# The commit the figures were measured at: `git rev-parse --short HEAD`, with `-dirty`
# when tracked files differ from it.
bench_commit() {
  local c
  c=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then c="$c-dirty"; fi
  echo "$c"
}

# Prints the header every published figure carries (commit, machine, load, command), as
# Markdown-friendly lines on stdout. Arguments: the script's own arguments. The settings
# line lists the values of the variables named in BENCH_SETTINGS (the script's knobs,
# with their defaults applied), so the run can be repeated exactly.
bench_header() {
  local cpu mem_gib load settings="" v
  cpu=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null)
  mem_gib=$(awk '/^MemTotal:/ {printf "%.1f", $2 / 1048576}' /proc/meminfo 2>/dev/null)
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  for v in ${BENCH_SETTINGS:-} SKIP_BUILD; do
    [ -n "${!v:-}" ] && settings="$settings $v=${!v}"
  done
  echo "> commit \`$(bench_commit)\` · $(date -u '+%Y-%m-%d %H:%M UTC') · $(nproc) cores ($cpu), ${mem_gib} GiB · load average $load at start (1/5/15 min; the machine is shared) · $(uname -r)"
  echo "> command: \`${settings# }${settings:+ }bench/$(basename "$0")${*:+ $*}\`"
  echo
}

# The load average when the run ends (stdout), so a reader sees what ran beside it.
bench_footer() {
  echo
  echo "> load average $(cut -d' ' -f1-3 /proc/loadavg) at end"
}

bench_python() {
  PY=${PYTHON:-python3}
  if ! "$PY" -c 'import boto3' 2>/dev/null; then
    if [ -x /tmp/venv/bin/python ] && /tmp/venv/bin/python -c 'import boto3' 2>/dev/null; then
      PY=/tmp/venv/bin/python
    else
      echo "boto3 is needed: pip install boto3, or set PYTHON" >&2
      exit 1
    fi
  fi
}

bench_build() {
  if [ -z "${SKIP_BUILD:-}" ]; then
    echo "building release binaries (cargo build --release $*)" >&2
    (cd "$ROOT" && cargo build --release "$@" >&2)
  fi
}

PIDS=()
bench_cleanup() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && wait "$p" 2>/dev/null || true
  done
  if [ -n "${EXTRA_CLEANUP:-}" ]; then eval "$EXTRA_CLEANUP" || true; fi
  # Containers an agent left behind, found by the cluster label the agent puts on them.
  for c in "${AGENT_CLUSTERS[@]:-}"; do
    [ -n "$c" ] && docker ps -aq --filter "label=com.amazonaws.ecs.cluster=arn:aws:ecs:us-east-1:000000000000:cluster/$c" \
      | xargs -r docker rm -f >/dev/null 2>&1 || true
  done
  [ -n "${WORK:-}" ] && rm -rf "$WORK"
}

# Removes the Docker networks NAMES that did not exist when this was first called for
# them (Swarm's docker_gwbridge, the server's awsvpc bridge): call once before creating
# state, and `leave_networks` in EXTRA_CLEANUP.
NEW_NETWORKS=()
note_networks() {
  local n
  for n in "$@"; do
    docker network inspect "$n" >/dev/null 2>&1 || NEW_NETWORKS+=("$n")
  done
}
leave_networks() {
  local n
  for n in "${NEW_NETWORKS[@]:-}"; do
    [ -n "$n" ] && docker network rm "$n" >/dev/null 2>&1 || true
  done
}

bench_workdir() {
  WORK=$(mktemp -d "/tmp/stevedore-$1.XXXXXX")
  trap bench_cleanup EXIT
}

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start_server() {
  local port
  port=$(free_port)
  DATA="$WORK/data"
  EP="http://127.0.0.1:$port"
  env -u STEVEDORE_ADMIN_ACCESS_KEY_ID -u STEVEDORE_ADMIN_SECRET_ACCESS_KEY \
    STEVEDORE_LOG=${STEVEDORE_LOG:-warn} \
    "$STEVEDORE" server --listen "127.0.0.1:$port" --data-dir "$DATA" "$@" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq 1 300); do
    [ -s "$DATA/credentials" ] && "$PY" -c "import urllib.request,urllib.error,sys
try: urllib.request.urlopen('$EP/', timeout=1)
except urllib.error.HTTPError: pass" 2>/dev/null && break
    sleep 0.1
  done
  export AWS_SHARED_CREDENTIALS_FILE="$DATA/credentials" AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL="$EP"
  unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE
}

# Starts `stevedore sim` with INSTANCES hollow instances in CLUSTER; waits until connected.
start_sim() {
  STEVEDORE_LOG=${STEVEDORE_LOG:-warn} "$STEVEDORE" sim --cluster "$1" --endpoint "$EP" \
    --instances "$2" >"$WORK/sim.out" 2>"$WORK/sim.log" &
  SIM_PID=$!
  PIDS+=("$SIM_PID")
  until grep -q "registered and connected" "$WORK/sim.out" 2>/dev/null; do
    if ! kill -0 "$SIM_PID" 2>/dev/null; then
      echo "stevedore sim exited early:" >&2
      tail -20 "$WORK/sim.log" >&2
      exit 1
    fi
    sleep 0.1
  done
}

# Builds TAG FROM scratch with /bin/busybox and CMD (a JSON exec array).
build_busybox_image() {
  mkdir -p "$WORK/img" && cp /bin/busybox "$WORK/img/busybox"
  printf '%s\n' 'FROM scratch' 'COPY busybox /bin/busybox' "CMD $2" > "$WORK/img/Dockerfile"
  docker build -q -t "$1" "$WORK/img" >/dev/null
}

# Creates the ECS cluster NAME on the server.
create_cluster() {
  "$PY" -c "import boto3; boto3.client('ecs').create_cluster(clusterName='$1')"
}

# Starts `stevedore agent` for CLUSTER against the local dockerd (state under $WORK); its
# containers are removed at exit.
AGENT_CLUSTERS=()
start_agent() {
  AGENT_CLUSTERS+=("$1")
  STEVEDORE_LOG=warn "$STEVEDORE" agent --cluster "$1" --endpoint "$EP" --state-dir "$WORK/agent" \
    --config /dev/null >"$WORK/agent.log" 2>&1 &
  PIDS+=($!)
  wait_agent_connected "$1"
}

# Waits (60 s at most) until CLUSTER's first container instance shows agentConnected.
wait_agent_connected() {
  "$PY" - "$1" <<'PYEOF' || { tail -n 20 "$WORK/agent.log" >&2; exit 1; }
import sys, time
import boto3
cluster = sys.argv[1]
ecs = boto3.client("ecs")
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
    if arns and ecs.describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"][0]["agentConnected"]:
        break
    time.sleep(0.1)
else:
    sys.exit("the agent did not connect")
PYEOF
}
