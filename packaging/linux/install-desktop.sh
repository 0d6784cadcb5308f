#!/bin/sh
# Registers this medvault folder with the desktop, for the current user only: the menu entry, the icon, and the
# links (shlink:, medvault:) and files (.smart-health-card) medvault opens. Writes under $XDG_DATA_HOME (default
# ~/.local/share) and, through xdg-mime, $XDG_CONFIG_HOME/mimeapps.list. Run it again after moving the folder;
# uninstall-desktop.sh undoes it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
id=org.medvault.Medvault
program=$here/medvault

# The desktop entry spec allows a bare path only without reserved characters; some launchers (xdg-open without a
# desktop session) do not understand quotes at all, so quote only when the path needs it.
case $program in
  *[\"\`\$\\]*) echo "medvault: move this folder to a path without \" \` \$ or \\ in it, then run this again." >&2
               exit 1 ;;
  *[[:space:]\'\>\<\~\|\&\;\*\?\#\(\)]*) exec_path="\"$program\"" ;;
  *) exec_path=$program ;;
esac

mkdir -p "$data/applications" "$data/mime/packages" "$data/metainfo" "$data/icons"
tmp=$(mktemp "$data/applications/.$id.XXXXXX")
sed -e "s|^Exec=medvault |Exec=$exec_path |" -e "s|^TryExec=medvault\$|TryExec=$program|" \
    "$here/share/applications/$id.desktop" > "$tmp"
chmod 0644 "$tmp"
mv "$tmp" "$data/applications/$id.desktop"
cp -R "$here/share/icons/hicolor" "$data/icons/"
cp "$here/share/mime/packages/$id.xml" "$data/mime/packages/$id.xml"
cp "$here/share/metainfo/$id.metainfo.xml" "$data/metainfo/$id.metainfo.xml"

# Each cache is optional: a desktop without the tool reads the files directly.
command -v update-mime-database >/dev/null 2>&1 && update-mime-database "$data/mime" >/dev/null 2>&1 || true
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$data/applications" || true
command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
if command -v xdg-mime >/dev/null 2>&1; then
  xdg-mime default "$id.desktop" x-scheme-handler/shlink x-scheme-handler/medvault application/smart-health-card
fi
echo "medvault is in your applications menu; shlink: and medvault: links and .smart-health-card files open with it."
