#!/usr/bin/env bash
# Create .venv and install the application with its test tools (idempotent; no GPU needed).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build; 2.13.0 satisfies the
# project's range and, on the lab and CI machines, installs the local CPU build.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[test,batch]"  # batch: Ray, for `forensics-app batch`
echo "setup done: .venv"
