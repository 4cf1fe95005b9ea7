#!/usr/bin/env bash
# Create .venv and install the application with its test tools (idempotent; no GPU needed).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
# The environment takes about 3 GB (torch, Qt, onnxruntime, Ray). Say so plainly instead of letting pip
# fail midway with "No space left on device".
need_mb=3500
[ -x .venv/bin/python ] && need_mb=500
free_mb=$(df -Pm . | awk 'NR == 2 {print $4}')
if [ "${free_mb:-0}" -lt "$need_mb" ]; then
  echo "error: setup needs about $need_mb MB free on $(df -P . | awk 'NR == 2 {print $6}'); $free_mb MB are free" >&2
  exit 1
fi
# pip unpacks wheels of several hundred MB in its temporary folder: keep that on the project's disk (a
# small /tmp would fill) and keep no wheel cache (it would hold a second copy of everything).
export TMPDIR=$PWD/.work/pip-tmp PIP_NO_CACHE_DIR=1
mkdir -p "$TMPDIR"
trap 'rm -rf "$TMPDIR"' EXIT
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build; 2.13.0 satisfies the
# project's range and, on the lab and CI machines, installs the local CPU build.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[test,batch]"  # batch: Ray, for `forensics-app batch`
echo "setup done: .venv"
