"""Fixtures every test directory may use: the shared third-party fixtures, cheap vaults, and the CLI."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures"
PASSPHRASE = "correct horse battery staple"
TEST_PROFILE = "test-insecure"  # tests only: the app's default is Argon2id with 256 MiB and 3 passes


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not (FIXTURES / "README.md").exists():
        pytest.fail(f"the shared third-party fixtures are missing: expected them at {FIXTURES} "
                    "(../shared/fixtures beside the checkout)", pytrace=False)
    return FIXTURES


@pytest.fixture(autouse=True)
def _private_state_folder(tmp_path_factory, monkeypatch):
    """medvault writes its log and crash reports into the user's state folder: a test's go into a fresh one."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


@pytest.fixture
def vault_factory(tmp_path):
    """Creates unlocked vaults with the cheap test KDF profile; closes them at teardown."""
    from vault.store import Vault
    opened = []

    def make(name: str = "vault", passphrase: str = PASSPHRASE, **kwargs):
        vault, recovery_key = Vault.create(tmp_path / name, passphrase, kdf_profile=TEST_PROFILE, **kwargs)
        vault.recovery_key = recovery_key  # test convenience only
        opened.append(vault)
        return vault

    yield make
    for vault in opened:
        if vault.is_open:
            vault.close()


@pytest.fixture
def unlocked_vault(vault_factory):
    return vault_factory()


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(args: list[str], env: dict[str, str] | None = None) -> CliResult:
    """Runs ``medvault`` in this process with injected streams and environment (fast; no terminal)."""
    from app.cli import main
    out, err = io.StringIO(), io.StringIO()
    environ = {"MEDVAULT_PASSPHRASE": PASSPHRASE} if env is None else env
    try:
        code = main(args, stdout=out, stderr=err, stdin=io.StringIO(), environ=environ)
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli():
    return run_cli


def medvault_process(args: list[str], env: dict[str, str], **popen) -> subprocess.Popen:
    """Starts the real ``medvault`` command as its own process (for kill tests and real exit codes)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MEDVAULT_")}
    full_env.update(env)
    return subprocess.Popen([sys.executable, "-m", "app", *args], cwd=ROOT, env=full_env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def run_medvault(args: list[str], env: dict[str, str], timeout: float = 120) -> CliResult:
    proc = medvault_process(args, env)
    out, err = proc.communicate(timeout=timeout)
    return CliResult(proc.returncode, out.decode(), err.decode())
