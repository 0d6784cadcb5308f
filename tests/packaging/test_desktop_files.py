"""The files that introduce medvault to a Linux desktop, checked with the desktop's own tools (desktop-file-validate,
appstreamcli, update-mime-database), the icon rendered from its SVG, and install-desktop.sh run for a user with a
temporary XDG_DATA_HOME, including from a folder whose path needs quoting."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import medvault_resources
from app.version import __version__
from tests.conftest import ROOT
from tests.packaging.conftest import drawn_pixels, user_env

LINUX = ROOT / "packaging" / "linux"
APP_ID = medvault_resources.APP_ID


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: scripts/bootstrap.sh installs it", pytrace=False)
    return path


def _entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(LINUX / f"{APP_ID}.desktop")
    return parser["Desktop Entry"]


def test_desktop_entry_is_valid_and_claims_the_links_and_the_card_type():
    checked = subprocess.run([_tool("desktop-file-validate"), LINUX / f"{APP_ID}.desktop"], capture_output=True,
                             text=True)
    assert checked.returncode == 0 and "error" not in checked.stdout, checked.stdout
    entry = _entry()
    assert set(filter(None, entry["MimeType"].split(";"))) == {
        "x-scheme-handler/shlink", "x-scheme-handler/medvault", "application/smart-health-card"}
    assert entry["Exec"] == "medvault gui %u" and entry["Icon"] == APP_ID


def test_metainfo_is_valid_and_names_this_release():
    checked = subprocess.run([_tool("appstreamcli"), "validate", "--no-net", LINUX / f"{APP_ID}.metainfo.xml"],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    root = ET.parse(LINUX / f"{APP_ID}.metainfo.xml").getroot()
    assert root.findtext("id") == APP_ID
    assert root.find("launchable").text == f"{APP_ID}.desktop"
    assert root.find("releases/release").get("version") == __version__  # the newest release comes first


def test_the_card_file_type_is_known_after_update_mime_database(tmp_path):
    packages = tmp_path / "mime" / "packages"
    packages.mkdir(parents=True)
    shutil.copy(LINUX / f"{APP_ID}.mime.xml", packages / f"{APP_ID}.xml")
    subprocess.run([_tool("update-mime-database"), tmp_path / "mime"], check=True, capture_output=True)
    assert "application/smart-health-card:*.smart-health-card" in (tmp_path / "mime" / "globs2").read_text()


def test_icons_rendered_from_the_svg(tmp_path):
    from PIL import Image
    subprocess.run([sys.executable, LINUX / "render_icons.py", tmp_path], check=True, cwd=ROOT, timeout=120,
                   capture_output=True, env={**user_env(tmp_path), "PYTHONPATH": str(ROOT),
                                             "QT_QPA_PLATFORM": "offscreen"})
    assert (tmp_path / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg").read_bytes() == \
        medvault_resources.app_icon_svg()
    for size in (16, 48, 256, 512):
        png = tmp_path / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        image = Image.open(png)
        assert image.size == (size, size) and image.mode == "RGBA"
        assert image.getpixel((0, 0))[3] == 0 and image.getpixel((size // 2, size // 2))[3] == 255  # a shape
    assert drawn_pixels(tmp_path / "hicolor" / "256x256" / "apps" / f"{APP_ID}.png") > 10000


def _fake_bundle(folder: Path) -> Path:
    """The bundle's desktop files around a stand-in program: what install-desktop.sh reads, and nothing else."""
    share = folder / "share"
    for source, target in ((f"{APP_ID}.desktop", f"applications/{APP_ID}.desktop"),
                           (f"{APP_ID}.metainfo.xml", f"metainfo/{APP_ID}.metainfo.xml"),
                           (f"{APP_ID}.mime.xml", f"mime/packages/{APP_ID}.xml")):
        (share / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(LINUX / source, share / target)
    (share / "icons" / "hicolor" / "scalable" / "apps").mkdir(parents=True)
    (share / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg").write_bytes(medvault_resources.app_icon_svg())
    for script in ("install-desktop.sh", "uninstall-desktop.sh"):
        shutil.copy(LINUX / script, folder / script)
    program = folder / "medvault"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    return program


@pytest.mark.parametrize("folder_name, quoted", [("medvault-1", False), ("My Apps/medvault (1)", True)])
def test_install_and_uninstall_for_one_user(tmp_path, folder_name, quoted):
    program = _fake_bundle(tmp_path / folder_name)
    env = user_env(tmp_path, XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    done = subprocess.run(["sh", program.parent / "install-desktop.sh"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    entry = tmp_path / "data" / "applications" / f"{APP_ID}.desktop"
    exec_line = next(line for line in entry.read_text().splitlines() if line.startswith("Exec="))
    assert exec_line == (f'Exec="{program}" gui %u' if quoted else f"Exec={program} gui %u")
    assert subprocess.run([_tool("desktop-file-validate"), entry], capture_output=True).returncode == 0
    assert (tmp_path / "data" / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg").is_file()
    assert "smart-health-card" in (tmp_path / "data" / "mime" / "globs2").read_text()
    defaults = (tmp_path / "config" / "mimeapps.list").read_text()
    assert f"x-scheme-handler/shlink={APP_ID}.desktop" in defaults
    undone = subprocess.run(["sh", program.parent / "uninstall-desktop.sh"], env=env, capture_output=True, text=True)
    assert undone.returncode == 0 and not entry.exists()
    assert not list((tmp_path / "data" / "icons").rglob(f"{APP_ID}.*"))


def test_install_refuses_a_folder_a_desktop_entry_cannot_name(tmp_path):
    program = _fake_bundle(tmp_path / "odd$folder")
    env = user_env(tmp_path, XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    done = subprocess.run(["sh", program.parent / "install-desktop.sh"], env=env, capture_output=True, text=True)
    assert done.returncode == 1 and "move this folder" in done.stderr
    assert not (tmp_path / "data" / "applications" / f"{APP_ID}.desktop").exists()
