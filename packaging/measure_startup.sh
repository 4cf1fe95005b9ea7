#!/usr/bin/env bash
# Seconds from starting the window to its main window being viewable on a virtual X display (Xvfb).
#
#   bash packaging/measure_startup.sh HOME COMMAND [ARGS...]
#
# Starts COMMAND with a clean environment (env -i: no PYTHONPATH, no PYTHONHOME, no virtualenv, PATH without
# any Python) and FORENSICS_APP_HOME=HOME, polls the X server every 20 ms for a viewable top-level window
# titled "Forensics App...", prints the time, and while the window is up lists every shared library the
# process has mapped from outside the bundle that is a Python library or not in the system's library folders
# (a bundle that used the build machine's Python would show it here; exit 3). Then closes the window. Needs Xvfb and xwininfo (x11-utils).
set -euo pipefail
home=$1
shift
display=:$((90 + RANDOM % 100))
Xvfb "$display" -screen 0 1600x1000x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb 2>/dev/null || true' EXIT
for _ in $(seq 100); do xwininfo -display "$display" -root >/dev/null 2>&1 && break; sleep 0.05; done

start=$(date +%s.%N)
env -i HOME="$HOME" DISPLAY="$display" PATH=/usr/bin:/bin LANG=C.UTF-8 FORENSICS_APP_HOME="$home" \
  XDG_CONFIG_HOME="$home/config" "$@" >"$home/startup.log" 2>&1 &
app=$!
shown=""
for _ in $(seq 3000); do  # at most 60 s
  for id in $(xwininfo -display "$display" -root -children 2>/dev/null | sed -n 's/^ *\(0x[0-9a-f]*\) "Forensics App.*/\1/p'); do
    if xwininfo -display "$display" -id "$id" 2>/dev/null | grep -q "IsViewable"; then shown=$(date +%s.%N); break 2; fi
  done
  kill -0 $app 2>/dev/null || break
  sleep 0.02
done
if [ -z "$shown" ]; then
  echo "error: no window appeared (log: $home/startup.log)" >&2
  cat "$home/startup.log" >&2
  kill $app 2>/dev/null || true
  exit 1
fi
echo "window viewable after $(awk -v a="$start" -v b="$shown" 'BEGIN { printf "%.2f", b - a }') s"
bundle=$(dirname "$(readlink -f "$1")")
# a system library is expected (libc, X11, fonts); a Python one from anywhere but the bundle is not
outside=$(awk '{print $6}' "/proc/$app/maps" | grep '\.so' | sort -u | grep -v "^$bundle/" \
  | awk '/python|site-packages/ || !/^\/(usr\/)?lib(64)?\//' || true)
if [ -n "$outside" ]; then echo "libraries loaded from outside the bundle (Python's, or not the system's):"; echo "$outside"; fi
kill $app
wait $app 2>/dev/null || true
[ -z "$outside" ] || exit 3
