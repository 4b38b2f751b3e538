#!/usr/bin/env bash
# ECR replication: how soon a push starts replicating and how fast the copy goes, against
# the local push it follows (the issue's numbers: starts within 1 s, copies at >= 80 % of
# local push speed).
#
#   bench/replication.sh                    # release build, 1 GiB image, 3 rounds
#   SKIP_BUILD=1 IMAGE_MIB=256 bench/replication.sh
#
# Two destinations, each measured on its own push:
#   region   — eu-west-1 of the same server and account (the issue's "second region");
#   external — another stevedore server (account 444455556666) named in
#              STEVEDORE_REPLICATION_DESTINATIONS_DIR, copied over HTTP on 127.0.0.1.
# Each round pushes a fresh IMAGE_MIB single-layer image of random data with `skopeo copy`
# (timed: the local push speed), then polls DescribeImageReplicationStatus every 10 ms:
# "start" is the time from the end of the push to the first status seen (IN_PROGRESS or
# already COMPLETE; an upper bound, it includes skopeo's exit), "copy" the time from the
# end of the push to COMPLETE, and the copy speed IMAGE_MIB / copy (so it includes the
# start). Requirements: skopeo, python3 with boto3.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/lib/common.sh"
IMAGE_MIB=${IMAGE_MIB:-1024}
ROUNDS=${ROUNDS:-3}
BENCH_SETTINGS="IMAGE_MIB ROUNDS"
bench_header "$@"
bench_python
bench_build -p stevedore
bench_workdir replication

# The external destination: a second server with its own account.
B_DATA="$WORK/b"
B_PORT=$(free_port)
env -u STEVEDORE_ADMIN_ACCESS_KEY_ID -u STEVEDORE_ADMIN_SECRET_ACCESS_KEY STEVEDORE_LOG=warn \
  "$STEVEDORE" server --listen "127.0.0.1:$B_PORT" --data-dir "$B_DATA" --account-id 444455556666 \
  >"$WORK/b.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 300); do [ -s "$B_DATA/credentials" ] && break; sleep 0.1; done
mkdir -p "$WORK/destinations"
"$PY" - "$B_DATA/credentials" "http://127.0.0.1:$B_PORT" "$WORK/destinations/444455556666.json" <<'PY'
import configparser, json, os, sys
c = configparser.ConfigParser(); c.read(sys.argv[1]); d = c["default"]
path = sys.argv[3]
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, json.dumps({"endpoint": sys.argv[2], "accessKeyId": d["aws_access_key_id"],
                         "secretAccessKey": d["aws_secret_access_key"]}).encode())
os.close(fd)
PY
STEVEDORE_REPLICATION_DESTINATIONS_DIR="$WORK/destinations" start_server

"$PY" - "$WORK" "$IMAGE_MIB" "$ROUNDS" "$EP" <<'PY'
import base64, hashlib, json, os, statistics, subprocess, sys, time
import boto3

work, mib, rounds, ep = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ecr = boto3.client("ecr")
host = ep.removeprefix("http://")
token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
creds = base64.b64decode(token).decode()

def make_image(out):
    blobs = os.path.join(out, "blobs", "sha256"); os.makedirs(blobs, exist_ok=True)
    def put(data):
        d = hashlib.sha256(data).hexdigest(); open(os.path.join(blobs, d), "wb").write(data); return d, len(data)
    h = hashlib.sha256(); tmp = os.path.join(out, "tmp")
    with open(tmp, "wb") as f:
        for _ in range(mib):
            chunk = os.urandom(1 << 20); h.update(chunk); f.write(chunk)
    ld = h.hexdigest(); os.rename(tmp, os.path.join(blobs, ld))
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + ld, "size": mib << 20}
    cd, cs = put(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
    md, ms = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + cd, "size": cs}, "layers": [layer]}).encode())
    json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(out, "oci-layout"), "w"))
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + md, "size": ms,
        "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}, open(os.path.join(out, "index.json"), "w"))

destinations = {"region": ("eu-west-1", "000000000000"), "external": ("us-east-1", "444455556666")}
ecr.put_replication_configuration(replicationConfiguration={"rules": [
    {"destinations": [{"region": r, "registryId": i}],
     "repositoryFilters": [{"filter": f"bench/{name}", "filterType": "PREFIX_MATCH"}]}
    for name, (r, i) in destinations.items()]})
rows = {}
for name, key in destinations.items():
    repo = f"bench/{name}"
    ecr.create_repository(repositoryName=repo)
    runs = []
    for n in range(rounds):
        img = os.path.join(work, f"img-{name}-{n}")
        make_image(img)
        tag = f"r{n}"
        t0 = time.monotonic()
        subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", "--dest-creds", creds,
                        f"oci:{img}:bench", f"docker://{host}/{repo}:{tag}"], check=True, stdout=subprocess.DEVNULL)
        t1 = time.monotonic()
        start = None
        deadline = t1 + 600
        while time.monotonic() < deadline:
            got = ecr.describe_image_replication_status(repositoryName=repo, imageId={"imageTag": tag})["replicationStatuses"]
            st = {(s["region"], s["registryId"]): s for s in got}.get(key)
            now = time.monotonic()
            if st and start is None:
                start = now
            if st and st["status"] != "IN_PROGRESS":
                if st["status"] != "COMPLETE":
                    sys.exit(f"replication to {name} ended {st}")
                break
            time.sleep(0.01)
        else:
            sys.exit(f"replication to {name} did not complete within 600 s")
        push_s, copy_s = t1 - t0, now - t1
        runs.append((push_s, start - t1, copy_s))
        subprocess.run(["rm", "-rf", img], check=True)
    push = statistics.median(r[0] for r in runs)
    start = statistics.median(r[1] for r in runs)
    copy = statistics.median(r[2] for r in runs)
    rows[name] = (push, start, copy, runs)

size = mib * 1048576 / 1e6
print("| destination | local push (MB/s) | replication start after push (s) | copy incl. start (MB/s) | copy / push | targets |")
print("| --- | --- | --- | --- | --- | --- |")
for name, (push, start, copy, runs) in rows.items():
    print(f"| {name} | {size / push:.1f} | {start:.3f} | {size / copy:.1f} | {push / copy:.2f} | start <= 1 s, ratio >= 0.80 |")
print()
for name, (_, _, _, runs) in rows.items():
    print(f"{name} rounds (push s, start s, copy s): " + ", ".join(f"({p:.2f}, {s:.3f}, {c:.2f})" for p, s, c in runs))
PY
bench_footer
