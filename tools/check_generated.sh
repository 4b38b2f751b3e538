#!/usr/bin/env bash
# Fails when regenerating from the pinned botocore (tools/botocore.version) changes any
# generated file: the committed files must be exactly what the generators make. Needs
# python3 with pip (PYTHON names the interpreter) and rustfmt; downloads one botocore
# wheel from PyPI into a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
version=$(tr -d '[:space:]' < tools/botocore.version)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "botocore==$version"
"$py" - "$tmp" <<'PY'
import glob, sys, zipfile
tmp = sys.argv[1]
with zipfile.ZipFile(glob.glob(f"{tmp}/botocore-*.whl")[0]) as z:
    z.extractall(tmp, [n for n in z.namelist() if n.startswith("botocore/data/")])
PY
mapfile -t files < <(PYTHON="$py" tools/regenerate.sh "$tmp/botocore/data" "$version")
if ! git diff --exit-code -- "${files[@]}"; then
  echo "Generated files differ from what botocore $version makes (diff above): run tools/check_generated.sh and commit the result." >&2
  exit 1
fi
untracked=$(git ls-files --others --exclude-standard -- "${files[@]}")
if [ -n "$untracked" ]; then
  echo "Generated files not committed: $untracked" >&2
  exit 1
fi
echo "Generated files match botocore $version."
