"""Data files come from the medvault_resources package through importlib.resources, never from paths built off
``__file__`` (an installed wheel or a frozen bundle has no checkout beside it); ``medvault --version``."""

from __future__ import annotations

import json
import re

import pytest

import medvault_resources
from app.version import __version__
from tests.conftest import ROOT


def test_the_contract_artifact_is_the_compiled_registry():
    artifact = json.loads(medvault_resources.consent_registry_artifact())
    assert artifact["contractName"] == "ConsentRegistry" and artifact["bytecode"].startswith("0x6")
    assert "contract ConsentRegistry" in medvault_resources.consent_registry_source()


def test_demo_files_are_real_files_while_in_use():
    from app.commands.demo import DEMO_FILES
    with medvault_resources.demo_files(DEMO_FILES) as paths:
        assert [p.name for p in paths] == list(DEMO_FILES)
        assert all(json.loads(p.read_text())["resourceType"] == "Bundle" for p in paths)


def test_the_icon_is_an_svg():
    svg = medvault_resources.app_icon_svg()
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg


def test_no_code_builds_data_paths_from_its_own_location():
    data_words = re.compile(r"resources|contracts|demo|icons|\.(json|sol|svg|png)\b")
    offenders = []
    for folder in ("app", "vault", "sync"):
        for path in (ROOT / folder).rglob("*.py"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                from_here = "__file__" in line and data_words.search(line)
                if from_here or re.search(r"[\"']resources[\"']\s*[/)]|[\"']resources/", line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_version_flag(cli, capsys):
    with pytest.raises(SystemExit) as done:
        from app.cli import main
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"medvault {__version__}"
    assert f'version = {{attr = "app.version.__version__"}}' in (ROOT / "pyproject.toml").read_text()
