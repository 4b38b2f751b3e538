#!/usr/bin/env bash
# Image scan time: a large synthetic image against a large synthetic OSV database.
#   1. Builds an OSV zip of DEBIAN_RECORDS Debian and CRATE_RECORDS crates.io records
#      (synthetic ids; ranges over the same package names the image holds, so matching
#      does real work) and imports it with `stevedore scan-db import`.
#   2. Pushes over /v2/ an image of IMAGE_MIB MiB of random file data in LAYERS
#      uncompressed tar layers, the last also holding a dpkg status file with PACKAGES
#      packages and a Cargo.lock with PACKAGES/4 crates.
#   3. Times StartImageScan -> COMPLETE (polled every 20 ms), ROUNDS times on fresh
#      pushes of the same layers under new config blobs (each image may be scanned once a
#      day), and prints the median with the finding count.
#
#   bench/scan.sh                        # release build first
#   SKIP_BUILD=1 IMAGE_MIB=100 bench/scan.sh
# Target (issue 19): 500 MiB with 2,000 packages against the full Debian and crates.io
# OSV sets in <= 5 s. The real sets cannot be fetched on these machines: the synthetic
# database has their order of size (DEBIAN_RECORDS, CRATE_RECORDS).
# Needs: python3 with boto3 and requests.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/lib/common.sh"
IMAGE_MIB=${IMAGE_MIB:-500}
LAYERS=${LAYERS:-5}
PACKAGES=${PACKAGES:-2000}
DEBIAN_RECORDS=${DEBIAN_RECORDS:-40000}
CRATE_RECORDS=${CRATE_RECORDS:-2000}
ROUNDS=${ROUNDS:-3}
BENCH_SETTINGS="IMAGE_MIB LAYERS PACKAGES DEBIAN_RECORDS CRATE_RECORDS ROUNDS"
bench_header "$@"
bench_python
bench_build -p stevedore
bench_workdir scan-bench
start_server

"$PY" - "$WORK/osv.zip" "$DEBIAN_RECORDS" "$CRATE_RECORDS" "$PACKAGES" <<'PYEOF'
import json, sys, zipfile
path, deb, crates, packages = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
    for i in range(deb):
        # Several records per package name, as real advisories pile up per source package.
        name = f"benchpkg{i % (packages * 2)}"
        z.writestr(f"BENCH-DEB-{i}.json", json.dumps({
            "id": f"BENCH-DEB-{i}", "summary": "synthetic",
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
            "affected": [{"package": {"ecosystem": "Debian:12", "name": name},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": f"1.{i % 7}.0-1+deb12u1"}]}]}]}))
    for i in range(crates):
        z.writestr(f"BENCH-CRATE-{i}.json", json.dumps({
            "id": f"BENCH-CRATE-{i}", "database_specific": {"severity": "HIGH"},
            "affected": [{"package": {"ecosystem": "crates.io", "name": f"benchcrate{i % (packages // 2)}"},
                          "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": f"1.{i % 5}.0"}]}]}]}))
PYEOF
t0=$(date +%s.%N)
"$STEVEDORE" scan-db import "$WORK/osv.zip" --endpoint "$EP" >"$WORK/import.json"
t1=$(date +%s.%N)
echo "import of $((DEBIAN_RECORDS + CRATE_RECORDS)) records: $(python3 -c "print(f'{$t1-$t0:.1f}')") s ($(cat "$WORK/import.json"))"

PYTHONPATH="$ROOT/bench/lib" "$PY" - "$EP" "$WORK" "$IMAGE_MIB" "$LAYERS" "$PACKAGES" "$ROUNDS" <<'PYEOF'
import base64, hashlib, io, json, os, statistics, sys, tarfile, time
import boto3, requests
ep, work, mib, layers, packages, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
ecr = boto3.client("ecr")
auth = base64.b64decode(ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]).decode().split(":")
s = requests.Session(); s.auth = tuple(auth)
repo = "bench/scan"
ecr.create_repository(repositoryName=repo)

def sha(b): return "sha256:" + hashlib.sha256(b).hexdigest()
def push_blob(data):
    d = sha(data)
    r = s.post(f"{ep}/v2/{repo}/blobs/uploads/"); r.raise_for_status()
    loc = r.headers["Location"]; loc = loc if loc.startswith("http") else ep + loc
    r = s.put(loc, params={"digest": d}, data=data); r.raise_for_status()
    return d

status = "".join(
    f"Package: benchbin{i}\nStatus: install ok installed\nSource: benchpkg{i}\nVersion: 1.{i % 9}.0-1\nDescription: x\n\n"
    for i in range(packages)).encode()
lock = "version = 3\n" + "".join(
    f'\n[[package]]\nname = "benchcrate{i}"\nversion = "1.{i % 6}.0"\nsource = "registry+x"\n'
    for i in range(packages // 4))
descs = []
per_layer = mib * 1024 * 1024 // layers
for n in range(layers):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        files = [(f"data/{n}/blob{k}", os.urandom(per_layer // 8)) for k in range(8)]
        if n == layers - 1:
            files += [("var/lib/dpkg/status", status), ("app/Cargo.lock", lock.encode())]
        for path, body in files:
            info = tarfile.TarInfo(path); info.size = len(body)
            t.addfile(info, io.BytesIO(body))
    data = buf.getvalue()
    descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": push_blob(data), "size": len(data)})
    del data, buf

times, found = [], 0
for r in range(rounds):
    config = json.dumps({"architecture": "amd64", "os": "linux", "round": r}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": push_blob(config), "size": len(config)},
        "layers": descs}).encode()
    rr = s.put(f"{ep}/v2/{repo}/manifests/r{r}", data=manifest, headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}); rr.raise_for_status()
    t0 = time.monotonic()
    ecr.start_image_scan(repositoryName=repo, imageId={"imageTag": f"r{r}"})
    while True:
        out = ecr.describe_image_scan_findings(repositoryName=repo, imageId={"imageTag": f"r{r}"}, maxResults=1)
        if out["imageScanStatus"]["status"] != "IN_PROGRESS":
            break
        time.sleep(0.02)
    times.append(time.monotonic() - t0)
    assert out["imageScanStatus"]["status"] == "COMPLETE", out["imageScanStatus"]
    found = sum(out["imageScanFindings"].get("findingSeverityCounts", {}).values())
print(f"| scan of {mib} MiB, {layers} layers, {packages} dpkg + {packages // 4} crates | median {statistics.median(times):.2f} s (runs: {', '.join(f'{t:.2f}' for t in times)}) | {found} findings | target <= 5 s |")
PYEOF
bench_footer
