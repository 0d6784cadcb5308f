"""The wheel installed like any package: into a fresh virtual environment outside the checkout, run from a folder
that is not the checkout, with none of the test run's environment. Its data files (contract artifact, demo
records, icon) must come from the installed package, so the demo's in-process chain, a real chain node, an
import of a Synthea file and the desktop window all work there."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from app.version import __version__
from tests.conftest import FIXTURES, PASSPHRASE, ROOT
from tests.packaging.conftest import assert_window_appears, outside_checkout, run_program, user_env
from tests.peers.ganache import Ganache
from tests.peers.xvfb import running_xvfb

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(900)]
SYNTHEA = FIXTURES / "synthea" / "Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json"


def _build_module():
    spec = importlib.util.spec_from_file_location("medvault_build", ROOT / "packaging" / "linux" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the venv's medvault program, a home folder to run it from)."""
    base = outside_checkout(tmp_path_factory.mktemp("wheel"))
    _build_module().stage_sources(base / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", base / "dist", base / "src"],
                   check=True, timeout=600, capture_output=True)
    wheel = next((base / "dist").glob("medvault-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", base / "venv"], check=True, timeout=120)
    subprocess.run([base / "venv" / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    wheel], check=True, timeout=900, capture_output=True)
    home = base / "home"
    home.mkdir()
    return base / "venv" / "bin" / "medvault", home


def test_the_package_is_the_installed_one_not_the_checkout(installed):
    program, home = installed
    where = run_program([program.parent / "python", "-c",
                         "import app, medvault_resources; print(app.__file__); print(medvault_resources.__file__)"],
                        user_env(home), home)
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():
        assert "site-packages" in line and outside_checkout(__import__("pathlib").Path(line))


def test_version_init_import_and_demo(installed):
    program, home = installed
    env = user_env(home, MEDVAULT_PASSPHRASE=PASSPHRASE, MEDVAULT_VAULT=str(home / "vault"))
    version = run_program([program, "--version"], env, home)
    assert version.returncode == 0 and version.stdout.strip() == f"medvault {__version__}"
    init = run_program([program, "init", "--kdf-profile", "test-insecure"], env, home)
    assert init.returncode == 0 and "did:key:" in init.stdout, init.stderr
    imported = run_program([program, "import", SYNTHEA], env, home)
    assert imported.returncode == 0 and "new record" in imported.stdout, imported.stderr
    demo = run_program([program, "demo", "--kdf-profile", "test-insecure"], env, home)
    assert demo.returncode == 0, demo.stderr
    assert "The patient has revoked this share" in demo.stdout and "Audit log intact" in demo.stdout


def test_chain_deploy_on_a_real_node(installed, tmp_path):
    program, home = installed
    env = user_env(home, MEDVAULT_PASSPHRASE=PASSPHRASE, MEDVAULT_VAULT=str(tmp_path / "vault"))
    assert run_program([program, "init", "--kdf-profile", "test-insecure"], env, home).returncode == 0
    with Ganache(tmp_path / "ganache") as node:
        deploy = run_program([program, "chain", "deploy", "--rpc", node.url, "--pay-with-node-account"], env, home)
        assert deploy.returncode == 0, deploy.stderr
        status = run_program([program, "chain", "status"], env, home)
    assert status.returncode == 0 and "0x" in status.stdout, status.stderr


def test_the_desktop_window_opens(installed, tmp_path):
    program, home = installed
    with running_xvfb() as display:
        env = user_env(home, DISPLAY=display, XDG_RUNTIME_DIR=str(tmp_path), MEDVAULT_VAULT=str(tmp_path / "v"))
        os.chmod(tmp_path, 0o700)
        assert_window_appears([program, "gui"], env, home, tmp_path / "screen.png")


def test_every_resource_file_and_reader_works_in_the_installed_package(installed):
    """Each file the checkout keeps in medvault_resources is in the installed package with the same bytes, and each
    reader of medvault_resources returns it there (the .sol source and the schema's constraints too, which no
    command above reads)."""
    import hashlib
    import json
    program, home = installed
    listed = subprocess.run(["git", "ls-files", "medvault_resources"], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout.split()
    expected = {name: hashlib.sha256((ROOT / name).read_bytes()).hexdigest() for name in listed}
    probe = ("import hashlib, json, pathlib, medvault_resources as r\n"
             "base = pathlib.Path(r.__file__).parent\n"
             "files = {'medvault_resources/' + str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()\n"
             "         for p in base.rglob('*') if p.is_file() and '__pycache__' not in p.parts}\n"
             "readers = [len(r.consent_registry_artifact()), len(r.consent_registry_source()), len(r.fhir_schema()),\n"
             "           len(r.r4b_constraints()), len(r.app_icon_svg())]\n"
             "print(json.dumps({'files': files, 'readers': readers}))\n")
    found = run_program([program.parent / "python", "-c", probe], user_env(home), home)
    assert found.returncode == 0, found.stderr
    report = json.loads(found.stdout)
    assert {k: v for k, v in report["files"].items() if k in expected} == expected
    assert all(size > 100 for size in report["readers"])
