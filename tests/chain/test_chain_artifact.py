"""The committed ABI and bytecode are exactly what the pinned compiler makes of the committed source."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "medvault_resources" / "contracts" / "ConsentRegistry.json"


@pytest.fixture(scope="module")
def fresh_compile(tmp_path_factory) -> bytes:
    if shutil.which("node") is None or not (ROOT / "node_modules" / "solc").exists():
        pytest.fail("node and the pinned npm solc are needed: run npm install in the project root", pytrace=False)
    out = tmp_path_factory.mktemp("solc") / "ConsentRegistry.json"
    subprocess.run(["node", str(ROOT / "scripts" / "compile_contract.js"), str(out)], check=True, timeout=120,
                   capture_output=True)
    return out.read_bytes()


def test_committed_artifact_matches_a_fresh_compile_byte_for_byte(fresh_compile):
    assert fresh_compile == ARTIFACT.read_bytes()


def test_artifact_records_the_pinned_compiler_and_settings():
    artifact = json.loads(ARTIFACT.read_text())
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]["solc"]
    assert artifact["compiler"]["version"].startswith(pinned + "+commit.")
    assert artifact["settings"]["optimizer"] == {"enabled": True, "runs": 10000}
    assert artifact["settings"]["evmVersion"] == "london"
    names = {item.get("name") for item in artifact["abi"]}
    assert {"grant", "revoke", "isActive", "logAccess", "anchorBatch", "BatchAnchored", "AccessLogged"} <= names


def test_source_pins_the_same_compiler_version():
    source = (ROOT / "medvault_resources" / "contracts" / "ConsentRegistry.sol").read_text()
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]["solc"]
    assert f"pragma solidity {pinned};" in source
