"""Real components for the share CLI tests: a patient vault with an imported Synthea patient, empty clinician
vaults, and ``medvault serve`` as a real process on a free loopback port (stopped with Ctrl-C's signal)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

# `python -m pytest` puts the project root on sys.path; a bare `pytest` does not, and these tests import
# `tests.conftest` helpers and `tests.peers`.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.conftest import FIXTURES, PASSPHRASE, TEST_PROFILE, medvault_process, run_cli  # noqa: E402

SYNTHEA = FIXTURES / "synthea"
PATIENT_FILE = "Ned_Hintz_e4b9259d-0f54-48d1-a35d-b526729a4dfe.json"  # has several Conditions


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(vault_dir: Path | None) -> dict[str, str]:
    env = {"MEDVAULT_PASSPHRASE": PASSPHRASE}
    if vault_dir is not None:
        env["MEDVAULT_VAULT"] = str(vault_dir)
    return env


def new_vault(path: Path) -> Path:
    from vault.store import Vault
    vault, _ = Vault.create(path, PASSPHRASE, kdf_profile=TEST_PROFILE)
    vault.close()
    return path


@pytest.fixture(scope="module")
def patient_vault(tmp_path_factory) -> Path:
    """A patient vault holding one Synthea patient plus the hospital and practitioner bundles it refers to."""
    from vault.records.errors import RecordsError
    from vault.records.importer import ImportService
    from vault.store import Vault
    if not (SYNTHEA / PATIENT_FILE).exists():
        pytest.fail(f"the Synthea fixtures are missing at {SYNTHEA}", pytrace=False)
    path = tmp_path_factory.mktemp("patient") / "vault"
    vault, _ = Vault.create(path, PASSPHRASE, kdf_profile=TEST_PROFILE)
    with vault:
        files = sorted(SYNTHEA.glob("hospitalInformation*.json")) + sorted(SYNTHEA.glob("practitionerInformation*.json"))
        results = ImportService(vault).import_paths([*files, SYNTHEA / PATIENT_FILE])
        for _path, outcome in results:
            assert not isinstance(outcome, RecordsError), outcome.user_message
    return path


@pytest.fixture
def clinician_vault(tmp_path) -> Path:
    return new_vault(tmp_path / "clinician")


@pytest.fixture
def stranger_vault(tmp_path) -> Path:
    return new_vault(tmp_path / "stranger")


def cli_in(vault_dir: Path | None, *args: str):
    return run_cli(list(args), env=env_for(vault_dir))


def record_ids(vault_dir: Path, rtype: str) -> set[str]:
    res = cli_in(vault_dir, "list", "--type", rtype, "--limit", "10000", "--json")
    assert res.code == 0, res.err
    rows = json.loads(res.out)
    return {f"{r['rtype']}/{r['id']}" for r in rows}


def shared_ids(open_json: dict) -> set[str]:
    """The records a receiver got, the share's own Consent left out."""
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for b in open_json["bundles"]
            for e in b["entry"] if e["resource"]["resourceType"] != "Consent"}


def vault_fingerprint(vault_dir: Path) -> str:
    """SHA-256 over every file of a vault folder: proves a command did not touch it at all."""
    h = hashlib.sha256()
    for p in sorted(vault_dir.iterdir()):
        if p.is_file():
            h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


@contextlib.contextmanager
def serving(vault_dir: Path, port: int, timeout: float = 60.0) -> Iterator[None]:
    """``medvault serve --port PORT`` as a real process until the block ends; then Ctrl-C's signal, exit 0."""
    proc = medvault_process(["serve", "--port", str(port)], env_for(vault_dir))
    try:
        deadline = time.monotonic() + timeout
        line = b""
        while b"\n" not in line:
            left = deadline - time.monotonic()
            if left <= 0 or proc.poll() is not None:
                raise AssertionError(f"medvault serve did not start: {proc.stderr.read().decode()[-2000:]}")
            ready, _, _ = select.select([proc.stdout], [], [], left)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    continue
                line += chunk
        assert b"Serving this vault's shares on port" in line, line
        yield
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=15)
        except Exception:
            proc.kill()
            proc.communicate()
            raise
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"Stopped serving." in out
