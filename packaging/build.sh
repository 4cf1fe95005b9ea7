#!/usr/bin/env bash
# Build the desktop bundle: dist/forensics-app/forensics-app (window without arguments, every command otherwise),
# with the TAEF2 model pack in dist/forensics-app/packs/, and the Linux tarball dist/forensics-app-VERSION-linux-ARCH.tar.gz.
#
#   bash packaging/build.sh
#
# Environment (all optional):
#   PYTHON        interpreter for the build venv (default python3.11; it needs a shared libpython, as
#                 Debian's python3.11 and pyenv builds with --enable-shared have)
#   TAEF2_HOME    an application folder where taef2 is installed: packed as it is (no torch needed)
#   ZOO_MIRROR    otherwise taef2 is installed from this mirror (default ../shared/zoo-mirror) with the
#                 development install (.venv, made by scripts/setup.sh when missing: installing exports to ONNX
#                 with torch), then packed
#   MAX_BUNDLE_MB size limit checked at the end (default 600)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python=${PYTHON:-python3.11}
build=build/bundle
venv=$build/venv
dist=dist/forensics-app
max_mb=${MAX_BUNDLE_MB:-600}
version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' forensics_app/__init__.py)
started=$SECONDS

echo "== build venv ($venv): the bundle's dependencies (packaging/requirements-bundle.txt), no torch"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -r packaging/requirements-bundle.txt
if "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "error: torch is importable in $venv; the bundle must not carry it" >&2
  exit 1
fi

echo "== TAEF2 model pack"
mkdir -p "$build/packs"
pack=$build/packs/taef2.fapack
if [ -n "${TAEF2_HOME:-}" ]; then
  source_home=$TAEF2_HOME
else
  mirror=${ZOO_MIRROR:-../shared/zoo-mirror}
  [ -d "$mirror" ] || { echo "error: no TAEF2_HOME and no mirror folder $mirror" >&2; exit 1; }
  [ -x .venv/bin/python ] || bash scripts/setup.sh
  source_home=$build/taef2-home
  rm -rf "$source_home"
  .venv/bin/python -m forensics_app --home "$source_home" zoo install taef2 --mirror "$mirror" --offline
fi
# packing reads the installed files only: the build venv (no torch) does it from the source tree
PYTHONPATH=$root "$venv/bin/python" -m forensics_app --home "$source_home" zoo pack taef2 --out "$pack"

echo "== PyInstaller"
rm -rf "$dist"
"$venv/bin/pyinstaller" --noconfirm --clean --log-level WARN --distpath dist --workpath "$build/work" \
  packaging/forensics-app.spec

echo "== packs, desktop entry, icon"
mkdir -p "$dist/packs"
cp "$pack" "$dist/packs/"
cp packaging/forensics-app.desktop resources/forensics-app.png resources/forensics-app.svg "$dist/"
install -m 755 packaging/install-desktop-entry.sh "$dist/install-desktop-entry.sh"

echo "== checks"
leaked=$(find "$dist" \( -iname '*torch*' -o -iname 'diffusers' -o -iname 'libonnxruntime_providers_cuda*' \) | head -5)
if [ -n "$leaked" ]; then
  echo "error: the bundle carries what it must not: $leaked" >&2
  exit 1
fi
size_mb=$(du -sm "$dist" | cut -f1)
echo "bundle size: ${size_mb} MB (limit ${max_mb} MB)"
[ "$size_mb" -le "$max_mb" ] || { echo "error: the bundle is larger than ${max_mb} MB" >&2; exit 1; }
env -i "$dist/forensics-app" --version
# the methods are found at run time (pkgutil): analyse one image with the shipped pack to prove they are there
check_home=$(mktemp -d)
env -i HOME="$check_home" "$dist/forensics-app" --home "$check_home" zoo install "$dist/packs/taef2.fapack" >/dev/null
env -i HOME="$check_home" "$dist/forensics-app" --home "$check_home" analyze resources/forensics-app.png
rm -rf "$check_home"

echo "== Linux tarball"
tarball=dist/forensics-app-$version-linux-$(uname -m).tar.gz
tar -C dist -czf "$tarball" forensics-app
echo "built $dist/forensics-app ($size_mb MB) and $tarball ($(du -m "$tarball" | cut -f1) MB) in $((SECONDS - started)) s"
