#!/usr/bin/env bash
# Set everything up and run the main job: install the zoo (offline mirror when present, else the
# upstream URLs), make sample images, analyse them into findings (JSON + heat maps).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export FORENSICS_APP_HOME=${FORENSICS_APP_HOME:-$PWD/.work/home}
mirror=${FORENSICS_APP_MIRROR:-../shared/zoo-mirror}
if [ -d "$mirror" ]; then
  .venv/bin/forensics-app zoo install taef2 --mirror "$mirror"
else
  .venv/bin/forensics-app zoo install taef2
fi
.venv/bin/python scripts/make_samples.py .work/samples
set +e
.venv/bin/forensics-app analyze .work/samples --json .work/findings.json --maps .work/maps
status=$?
set -e
echo "findings: .work/findings.json, heat maps: .work/maps/"
# forensics-app is installed in .venv, not on PATH, and the demo's models are in its own home folder
echo "application folder used by the demo (models, calibrations): $FORENSICS_APP_HOME"
echo "to use it again, for example:"
echo "  FORENSICS_APP_HOME=$(printf %q "$FORENSICS_APP_HOME") .venv/bin/forensics-app zoo list"
echo "  FORENSICS_APP_HOME=$(printf %q "$FORENSICS_APP_HOME") .venv/bin/forensics-app analyze .work/samples --pdf .work/report.pdf"
# exit 3 means some inputs were refused (the samples include one bad file on purpose)
[ "$status" -eq 0 ] || [ "$status" -eq 3 ]
