"""Every way a vault folder can be wrong gives one clear sentence, exit status 1, and leaves the vault as it was."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE, ROOT, TEST_PROFILE, medvault_process, run_medvault

ENV = {"MEDVAULT_PASSPHRASE": PASSPHRASE}


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.name in ("vault.header", "vault.db")}


@pytest.fixture
def folder(tmp_path, vault_factory):
    vault = vault_factory("v")
    vault.audit("import", resources=12)
    vault.close()
    return tmp_path / "v"


def _one_sentence(result) -> str:
    assert result.code == 1, (result.code, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medvault: "), result.err
    assert "Traceback" not in result.err
    return lines[0]


def test_wrong_passphrase(cli, folder):
    before = _snapshot(folder)
    line = _one_sentence(cli(["--vault", str(folder), "audit"], env={"MEDVAULT_PASSPHRASE": "not my passphrase"}))
    assert "passphrase is wrong" in line
    assert _snapshot(folder) == before
    # the failed attempt is audited at the next successful unlock
    ok = cli(["--vault", str(folder), "audit", "--json"])
    events = [e["event"] for e in json.loads(ok.out)]
    assert events[:2] == ["unlock", "unlock_failed"]


def test_missing_vault(cli, tmp_path):
    line = _one_sentence(cli(["--vault", str(tmp_path / "nothing"), "audit"]))
    assert "no medvault vault" in line


def test_truncated_database(cli, folder):
    db = folder / "vault.db"
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2 + 100])
    result = cli(["--vault", str(folder), "audit", "--verify"])
    assert result.code == 1
    assert "damaged" in (result.err + result.out)
    assert "Traceback" not in result.err


@pytest.mark.parametrize("page", [1, 2, 4])
def test_bit_flipped_database(cli, folder, page):
    db = folder / "vault.db"
    data = bytearray(db.read_bytes())
    offset = 4096 * (page - 1) + 1000
    assert offset < len(data)
    data[offset] ^= 0x01
    db.write_bytes(bytes(data))
    tampered = _snapshot(folder)
    result = cli(["--vault", str(folder), "audit", "--verify"])
    assert result.code == 1
    assert "damaged" in result.out + result.err or "tampered" in result.out + result.err
    assert _snapshot(folder) == tampered  # medvault did not "repair" or overwrite the evidence


def test_database_swapped_for_another_vaults(cli, folder, vault_factory):
    other = vault_factory("other")
    other.close()
    shutil.copy(other.folder / "vault.db", folder / "vault.db")
    line = _one_sentence(cli(["--vault", str(folder), "audit"]))
    assert "damaged" in line or "does not belong" in line


def test_database_missing(cli, folder):
    (folder / "vault.db").unlink()
    line = _one_sentence(cli(["--vault", str(folder), "audit"]))
    assert "database file is missing" in line


def test_header_from_the_future(cli, folder):
    header = json.loads((folder / "vault.header").read_text())
    header["format"] = 99
    (folder / "vault.header").write_text(json.dumps(header))
    before = _snapshot(folder)
    line = _one_sentence(cli(["--vault", str(folder), "audit"]))
    assert "newer version of medvault" in line
    assert _snapshot(folder) == before


@pytest.mark.parametrize("field,value", [("opslimit", 2), ("memlimit", 16 * 1024 * 1024),
                                         ("memlimit", 1 << 40), ("salt", "AAAAAAAAAAAAAAAAAAAAAA==")])
def test_header_with_edited_kdf_parameters(cli, folder, field, value):
    header = json.loads((folder / "vault.header").read_text())
    header["kdf"][field] = value
    (folder / "vault.header").write_text(json.dumps(header))
    before = _snapshot(folder)
    line = _one_sentence(cli(["--vault", str(folder), "audit"]))
    assert "header" in line and ("damaged" in line or "edited" in line)
    assert _snapshot(folder) == before


def test_edited_header_with_recomputed_checksum_still_cannot_be_weakened(cli, folder):
    """Someone who edits the KDF cost down and fixes the checksum gets a refusal, not a weaker vault."""
    from vault.header import _canonical
    header = json.loads((folder / "vault.header").read_text())
    header.pop("checksum")
    header["kdf"]["opslimit"] = 1
    header["kdf"]["memlimit"] = 8 * 1024 * 1024 * 2
    header["checksum"] = hashlib.sha256(_canonical(header)).hexdigest()
    (folder / "vault.header").write_text(json.dumps(header))
    line = _one_sentence(cli(["--vault", str(folder), "audit"]))
    assert "passphrase is wrong" in line


def test_header_that_is_not_json(cli, folder):
    (folder / "vault.header").write_bytes(b"\x00\xff garbage")
    line = _one_sentence(cli(["--vault", str(folder), "audit"]))
    assert "header" in line


def test_second_process_opening_the_same_vault(folder):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from vault.store import Vault
            v = Vault.unlock({str(folder)!r}, {PASSPHRASE!r})
            print("open", flush=True)
            sys.stdin.readline()
            v.close()
        """)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"open"
        before = _snapshot(folder)
        result = run_medvault(["--vault", str(folder), "audit"], ENV)
        assert _one_sentence(result).endswith("Another medvault command is using this vault; wait for it to finish "
                                              "and try again.")
        assert _snapshot(folder) == before
    finally:
        holder.communicate(b"\n", timeout=30)
    assert run_medvault(["--vault", str(folder), "audit"], ENV).code == 0  # the lock dies with its holder


def _in_private_mount_namespace(script: str) -> subprocess.CompletedProcess:
    """Runs a shell script as root in its own mount namespace, so it can mount a read-only view or a tiny disk
    without touching the machine's mounts."""
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-euc", script],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


needs_mounts = pytest.mark.skipif(shutil.which("unshare") is None or __import__("os").geteuid() != 0,
                                  reason="needs root and unshare to mount a read-only or full filesystem")


@needs_mounts
def test_read_only_vault_folder(folder):
    before = _snapshot(folder)
    medvault = f"MEDVAULT_PASSPHRASE='{PASSPHRASE}' {sys.executable} -m app --vault {folder}"
    result = _in_private_mount_namespace(f"""
        mount --bind {folder} {folder}
        mount -o remount,bind,ro {folder}
        set +e
        {medvault} audit; echo "exit=$?"
        MEDVAULT_NEW_PASSPHRASE='another passphrase' {medvault} passwd; echo "exit=$?"
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("exit=1") == 2, result.stdout
    errors = [l for l in result.stderr.splitlines() if l.startswith("medvault:")]
    assert len(errors) == 2 and all("read-only" in l for l in errors), result.stderr
    assert "Traceback" not in result.stderr
    assert _snapshot(folder) == before


@needs_mounts
def test_full_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    vault_dir = disk / "v"
    medvault = f"MEDVAULT_PASSPHRASE='{PASSPHRASE}' {sys.executable} -m app --vault {vault_dir}"
    result = _in_private_mount_namespace(f"""
        mount -t tmpfs -o size=4m tmpfs {disk}
        {medvault} init --kdf-profile {TEST_PROFILE} >/dev/null 2>&1
        sha256sum {vault_dir}/vault.header {vault_dir}/vault.db > {tmp_path}/before.txt
        dd if=/dev/zero of={disk}/filler bs=4k >/dev/null 2>&1 || true
        set +e
        MEDVAULT_NEW_PASSPHRASE='another passphrase' {medvault} passwd; echo "exit=$?"
        {medvault} audit; echo "exit=$?"
        sha256sum {vault_dir}/vault.header {vault_dir}/vault.db > {tmp_path}/after.txt
        rm {disk}/filler
        {medvault} audit --verify; echo "exit=$?"
    """)
    assert result.returncode == 0, result.stderr
    exits = [l for l in result.stdout.splitlines() if l.startswith("exit=")]
    assert exits == ["exit=1", "exit=1", "exit=0"], (result.stdout, result.stderr)
    errors = [l for l in result.stderr.splitlines() if l.startswith("medvault:")]
    assert len(errors) == 2 and all("full" in l for l in errors), result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "before.txt").read_text() == (tmp_path / "after.txt").read_text()
    assert "intact" in result.stdout
