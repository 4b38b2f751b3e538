#!/usr/bin/env bash
# Registry throughput and memory against CNCF distribution (Debian's docker-registry),
# both on 127.0.0.1 with filesystem storage, both driven by `skopeo copy`.
#
#   bench/registry.sh                 # builds release stevedore, runs everything
#   SKIP_BUILD=1 bench/registry.sh    # reuse target/release/stevedore
#   BIG_MIB=256 LAYERS=10 bench/registry.sh   # smaller run
#
# Measures: push and pull MB/s of a BIG_MIB single-layer image and of a LAYERS x
# LAYER_MIB image (skopeo copy oci: <-> docker://); pulling one 256 MiB layer already
# on disk with curl vs sha256sum of the same file from page cache; and stevedore's RSS
# growth while the big layer is pushed. Requirements: skopeo, curl, python3,
# docker-registry (apt-get install docker-registry), the aws CLI (/tmp/venv/bin/aws).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/lib/common.sh"
BIG_MIB=${BIG_MIB:-1024}
LAYERS=${LAYERS:-50}
LAYER_MIB=${LAYER_MIB:-10}
RANGE_MIB=${RANGE_MIB:-256}
AWS=${AWS:-$(command -v aws || echo /tmp/venv/bin/aws)}
PEER=${PEER:-$(command -v docker-registry || echo /usr/bin/docker-registry)}
BENCH_SETTINGS="BIG_MIB LAYERS LAYER_MIB RANGE_MIB"
bench_header "$@"
WORK=$(mktemp -d /tmp/stevedore-bench-registry.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
mbps() { python3 -c "print(f'{$1/($3-$2)/1e6:.1f}')"; }

bench_build -p stevedore
BIN=$STEVEDORE

# --- test images as OCI layouts (random data, so compression cannot help either side) ----
make_image() { # dir layers mib
  python3 - "$@" <<'PY'
import hashlib, json, os, sys
out, n, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
blobs = os.path.join(out, "blobs", "sha256"); os.makedirs(blobs, exist_ok=True)
def put(data):
    d = hashlib.sha256(data).hexdigest(); open(os.path.join(blobs, d), "wb").write(data); return d, len(data)
layers = []
for i in range(n):
    h = hashlib.sha256(); tmp = os.path.join(out, "tmp")
    with open(tmp, "wb") as f:
        for _ in range(mib):
            chunk = os.urandom(1 << 20); h.update(chunk); f.write(chunk)
    d = h.hexdigest(); os.rename(tmp, os.path.join(blobs, d))
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + d, "size": mib << 20})
cd, cs = put(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]}}).encode())
md, ms = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + cd, "size": cs}, "layers": layers}).encode())
json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(out, "oci-layout"), "w"))
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + md, "size": ms,
    "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}, open(os.path.join(out, "index.json"), "w"))
print(layers[0]["digest"])
PY
}
echo "Generating images in $WORK ..."
BIG_LAYER=$(make_image "$WORK/big" 1 "$BIG_MIB")
make_image "$WORK/many" "$LAYERS" "$LAYER_MIB" >/dev/null
BIG_BYTES=$((BIG_MIB << 20)); MANY_BYTES=$((LAYERS * LAYER_MIB << 20))

# --- servers -------------------------------------------------------------------------
SPORT=$(free_port); DPORT=$(free_port)
"$BIN" server --listen 127.0.0.1:$SPORT --data-dir "$WORK/sdata" >"$WORK/stevedore.log" 2>&1 & SPID=$!; PIDS+=($SPID)
cat >"$WORK/distribution.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $WORK/ddata}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$DPORT}
YML
"$PEER" serve "$WORK/distribution.yml" >"$WORK/distribution.log" 2>&1 & DPID=$!; PIDS+=($DPID)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$SPORT/health" >/dev/null && curl -s "http://127.0.0.1:$DPORT/v2/" >/dev/null && break; sleep 0.1; done
export AWS_ENDPOINT_URL=http://127.0.0.1:$SPORT AWS_SHARED_CREDENTIALS_FILE=$WORK/sdata/credentials AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null
for r in big many; do "$AWS" ecr create-repository --repository-name bench/$r >/dev/null; done
PW=$("$AWS" ecr get-login-password)
rss() { awk '/VmRSS/ {print $2}' /proc/$1/status; }

copy() { # src dst creds
  local creds=()
  [ -n "$3" ] && creds=(--dest-creds "$3" --src-creds "$3")
  skopeo copy -q --dest-tls-verify=false --src-tls-verify=false "${creds[@]}" "$1" "$2" >/dev/null
}

declare -A R
for target in stevedore distribution; do
  if [ $target = stevedore ]; then HOST=127.0.0.1:$SPORT; C="AWS:$PW"; else HOST=127.0.0.1:$DPORT; C=""; fi
  for img in big many; do
    bytes=$([ $img = big ] && echo $BIG_BYTES || echo $MANY_BYTES)
    rss0=$(rss $SPID); peak=$rss0
    if [ $target = stevedore ] && [ $img = big ]; then
      ( while kill -0 $SPID 2>/dev/null; do rss $SPID >>"$WORK/rss"; sleep 0.05; done ) & PIDS+=($!); RSSW=$!
    fi
    t0=$(now); copy "oci:$WORK/$img:bench" "docker://$HOST/bench/$img:v1" "$C"; t1=$(now)
    R[$target.$img.push]=$(mbps $bytes $t0 $t1)
    if [ $target = stevedore ] && [ $img = big ]; then
      kill $RSSW 2>/dev/null || true; peak=$(sort -n "$WORK/rss" | tail -1)
      R[rss_growth_mib]=$(( (peak - rss0) / 1024 ))
    fi
    rm -rf "$WORK/pull-$img"
    t0=$(now); copy "docker://$HOST/bench/$img:v1" "oci:$WORK/pull-$img:bench" "$C"; t1=$(now)
    R[$target.$img.pull]=$(mbps $bytes $t0 $t1)
    rm -rf "$WORK/pull-$img"
  done
done

# --- one layer already on disk vs sha256sum from page cache ---------------------------
python3 -c "import os; open('$WORK/range.bin','wb').write(os.urandom($RANGE_MIB << 20))"
RD=sha256:$(sha256sum "$WORK/range.bin" | cut -d' ' -f1)
curl -sf -u "AWS:$PW" -X POST -D "$WORK/h" "http://127.0.0.1:$SPORT/v2/bench/big/blobs/uploads/" >/dev/null
LOC=$(awk -F': ' 'tolower($1)=="location" {print $2}' "$WORK/h" | tr -d '\r')
curl -sf -u "AWS:$PW" -X PUT --data-binary @"$WORK/range.bin" -H 'Content-Type: application/octet-stream' "http://127.0.0.1:$SPORT$LOC?digest=$RD" >/dev/null
t0=$(now); sha256sum "$WORK/range.bin" >/dev/null; t1=$(now); R[sha256sum]=$(mbps $((RANGE_MIB << 20)) $t0 $t1)
curl -sf -u "AWS:$PW" -o /dev/null "http://127.0.0.1:$SPORT/v2/bench/big/blobs/$RD"
t0=$(now); curl -sf -u "AWS:$PW" -o /dev/null "http://127.0.0.1:$SPORT/v2/bench/big/blobs/$RD"; t1=$(now)
R[layer_pull]=$(mbps $((RANGE_MIB << 20)) $t0 $t1)

ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
echo
echo "| measure | stevedore | distribution | ratio | target |"
echo "| --- | --- | --- | --- | --- |"
for img in big many; do for dir in push pull; do
  s=${R[stevedore.$img.$dir]}; d=${R[distribution.$img.$dir]}
  label=$([ $img = big ] && echo "${BIG_MIB} MiB x1" || echo "${LAYER_MIB} MiB x${LAYERS}")
  echo "| $dir $label (MB/s) | $s | $d | $(ratio $s $d) | >= 1.0 (aim 1.2) |"
done; done
echo "| pull ${RANGE_MIB} MiB layer on disk, to /dev/null (MB/s) | ${R[layer_pull]} | sha256sum from cache: ${R[sha256sum]} | $(ratio ${R[layer_pull]} ${R[sha256sum]}) | >= 0.70 |"
echo "| stevedore RSS growth during the ${BIG_MIB} MiB push (MiB) | ${R[rss_growth_mib]} | | | <= 32 |"
bench_footer
