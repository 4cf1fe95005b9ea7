#!/usr/bin/env bash
# Smoke test of the desktop bundle, as a desk without Python would use it:
#   1. build it (bash packaging/build.sh; SKIP_BUILD=1 reuses dist/forensics-app),
#   2. install its TAEF2 pack into a fresh application folder with the bundle, under env -i (no PYTHONPATH,
#      no virtualenv, no Python on PATH),
#   3. analyse two images with the bundle (a photo and a TAEF2 output) into findings JSON and a PDF report,
#   4. analyse the same two files with the development install (.venv) and the same installed pack, and
#      compare the findings (packaging/compare_findings.py: verdicts and every number equal),
#   5. time the window's start on a virtual display: first start (installs the shipped pack) and a second
#      start, and fail on any Python library loaded from outside the bundle (packaging/measure_startup.sh;
#      skipped, saying so, where Xvfb or xwininfo is not installed).
# Exit 0 when everything held. Images: IMAGES="a.png b.png" to choose; by default scripts/make_samples.py
# makes them with the development install. Work files stay in $WORK (default: a new folder under /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bundle=$root/dist/forensics-app
work=${WORK:-$(mktemp -d /tmp/forensics-app-smoke.XXXXXX)}
mkdir -p "$work"
clean() { env -i HOME="$work/user" PATH=/usr/bin:/bin LANG=C.UTF-8 "$@"; }

[ "${SKIP_BUILD:-0}" = 1 ] || bash packaging/build.sh
[ -x "$bundle/forensics-app" ] || { echo "error: no bundle at $bundle" >&2; exit 1; }
echo "== bundle: $(du -sm "$bundle" | cut -f1) MB, $(find "$bundle" -type f | wc -l) files"

echo "== install the pack into a fresh home with the bundle"
home=$work/home
rm -rf "$home" "$work/user"
mkdir -p "$work/user"
clean "$bundle/forensics-app" --home "$home" zoo install "$bundle/packs/taef2.fapack"
clean "$bundle/forensics-app" --home "$home" zoo verify

echo "== two images"
if [ -n "${IMAGES:-}" ]; then
  read -r -a images <<<"$IMAGES"
else
  FORENSICS_APP_HOME=$home .venv/bin/python scripts/make_samples.py "$work/samples" >/dev/null
  images=("$work/samples/real_astronaut.png" "$work/samples/taef2_decoded_astronaut.png")
fi
for image in "${images[@]}"; do [ -f "$image" ] || { echo "error: no image $image" >&2; exit 1; }; done
echo "${images[@]}"

echo "== analyse with the bundle (clean environment)"
clean "$bundle/forensics-app" --home "$home" analyze "${images[@]}" --json "$work/bundle.json" --pdf "$work/bundle.pdf"
clean "$bundle/forensics-app" --home "$home" report verify "$work/bundle.json"

echo "== analyse with the development install, compare"
.venv/bin/python -m forensics_app --home "$home" analyze "${images[@]}" --json "$work/development.json" >/dev/null
.venv/bin/python packaging/compare_findings.py "$work/development.json" "$work/bundle.json"

echo "== window start (Xvfb)"
if command -v Xvfb >/dev/null && command -v xwininfo >/dev/null; then
  mkdir -p "$work/first-start"
  bash packaging/measure_startup.sh "$work/first-start" "$bundle/forensics-app"
  grep "installed from taef2.fapack" "$work/first-start/startup.log"
  bash packaging/measure_startup.sh "$work/first-start" "$bundle/forensics-app"
else
  echo "SKIPPED: the window's start was not timed: this machine lacks Xvfb or xwininfo (packages xvfb, x11-utils)"
fi
echo "smoke test passed; files in $work"
