#!/bin/sh
# Add the unpacked bundle to the desktop's application menu (this user only): the entry starts the executable
# beside this script, so the bundle can live in any folder. Run it again after moving the folder.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
apps=${XDG_DATA_HOME:-$HOME/.local/share}/applications
icons=${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor
mkdir -p "$apps" "$icons/256x256/apps" "$icons/scalable/apps"
sed -e "s|^Exec=forensics-app |Exec=\"$here/forensics-app\" |" -e "s|^TryExec=.*|TryExec=$here/forensics-app|" \
  "$here/forensics-app.desktop" > "$apps/forensics-app.desktop"
cp "$here/forensics-app.png" "$icons/256x256/apps/forensics-app.png"
cp "$here/forensics-app.svg" "$icons/scalable/apps/forensics-app.svg"
update-desktop-database "$apps" 2>/dev/null || true
echo "installed $apps/forensics-app.desktop (starts $here/forensics-app)"
