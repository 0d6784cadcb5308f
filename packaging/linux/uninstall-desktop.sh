#!/bin/sh
# Undoes install-desktop.sh for the current user. The vault and its data are not touched.
set -eu
data=${XDG_DATA_HOME:-$HOME/.local/share}
id=org.medvault.Medvault
rm -f "$data/applications/$id.desktop" "$data/mime/packages/$id.xml" "$data/metainfo/$id.metainfo.xml"
find "$data/icons/hicolor" -name "$id.*" -type f -delete 2>/dev/null || true
command -v update-mime-database >/dev/null 2>&1 && update-mime-database "$data/mime" >/dev/null 2>&1 || true
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$data/applications" || true
echo "medvault's menu entry and link handlers are removed; your vault is where it was."
