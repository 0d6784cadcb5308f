"""Every file in the vault folder is its owner's alone, written whole or not at all, and never through a link.

Real vaults through the real CLI and ``Vault``: the modes are read from the file system after each step, with
the common umask 022 in force (the one under which SQLite used to leave ``vault.db`` at 0644).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, PASSPHRASE, TEST_PROFILE
from vault import fsutil
from vault.errors import HeaderInvalid, StorageUnavailable, WrongPassphrase
from vault.header import read_header, write_header
from vault.store import FAILED_UNLOCKS_NAME, Vault

SYNTHEA = sorted((FIXTURES / "synthea").glob("*.json"))
NEW = "a brand new passphrase"


@pytest.fixture(autouse=True)
def common_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _modes(folder: Path) -> dict[str, int]:
    """Mode of the folder and of everything in it; a link anywhere fails the test."""
    found = {".": stat.S_IMODE(os.lstat(folder).st_mode)}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            info = os.lstat(path)
            assert not stat.S_ISLNK(info.st_mode), f"{path} is a link"
            found[str(path.relative_to(folder))] = stat.S_IMODE(info.st_mode)
    return found


def _assert_owner_only(folder: Path, must_include: set[str]) -> None:
    modes = _modes(folder)
    assert must_include <= set(modes), f"expected {must_include - set(modes)} in {sorted(modes)}"
    wrong = {name: oct(mode) for name, mode in modes.items()
             if mode != (0o700 if (folder / name).is_dir() else 0o600)}
    assert not wrong, wrong


def test_modes_after_init_import_unlock_and_passwd(cli, tmp_path):
    folder = tmp_path / "v"
    assert cli(["--vault", str(folder), "init", "--kdf-profile", TEST_PROFILE]).code == 0
    _assert_owner_only(folder, {".", "vault.header", "vault.db", ".lock"})

    result = cli(["--vault", str(folder), "import", str(SYNTHEA[0])])
    assert result.code == 0, result.err
    _assert_owner_only(folder, {"vault.header", "vault.db"})

    # while the vault is open SQLite keeps its -wal and -shm companions; they are checked then
    with pytest.raises(WrongPassphrase):
        Vault.unlock(folder, "not the passphrase at all")
    _assert_owner_only(folder, {FAILED_UNLOCKS_NAME})
    with Vault.unlock(folder, PASSPHRASE) as vault:
        vault.set_setting("theme", "dark")
        with vault.read_only() as conn:
            conn.execute("SELECT count(*) FROM audit").fetchone()
        _assert_owner_only(folder, {"vault.db", "vault.db-wal", "vault.db-shm", ".lock"})
    assert not (folder / FAILED_UNLOCKS_NAME).exists()

    result = cli(["--vault", str(folder), "passwd"], env={"MEDVAULT_PASSPHRASE": PASSPHRASE,
                                                          "MEDVAULT_NEW_PASSPHRASE": NEW})
    assert result.code == 0, result.err
    _assert_owner_only(folder, {"vault.header", "vault.db"})


def test_a_vault_left_world_readable_by_an_older_version_is_narrowed_at_unlock(vault_factory, tmp_path):
    vault = vault_factory("v")
    vault.close()
    folder = tmp_path / "v"
    for name in ("vault.header", "vault.db", ".lock"):
        os.chmod(folder / name, 0o644)
    (folder / FAILED_UNLOCKS_NAME).write_text("2024-01-02T03:04:05+00:00\n")
    os.chmod(folder / FAILED_UNLOCKS_NAME, 0o666)
    os.chmod(folder, 0o755)
    with Vault.unlock(folder, PASSPHRASE):
        _assert_owner_only(folder, {"vault.header", "vault.db", ".lock", "vault.db-wal"})


def test_a_linked_failed_unlock_note_is_neither_written_through_nor_believed(vault_factory, tmp_path):
    vault_factory("v").close()
    folder = tmp_path / "v"
    # a file the attacker wants appended to, and whose lines they want in the audit log
    target = tmp_path / "bashrc"
    target.write_text("1999-12-31T23:59:59+00:00\n")
    before = target.read_bytes()
    os.symlink(target, folder / FAILED_UNLOCKS_NAME)

    with pytest.raises(WrongPassphrase):
        Vault.unlock(folder, "not the passphrase at all")
    assert target.read_bytes() == before  # nothing appended through the link
    note = folder / FAILED_UNLOCKS_NAME
    assert not note.is_symlink() and stat.S_IMODE(note.stat().st_mode) == 0o600  # the failure is still noted

    os.unlink(note)
    os.symlink(target, note)  # and now a link left for the reading side
    with Vault.unlock(folder, PASSPHRASE) as vault:
        entries = vault.audit_entries()
    failed = [e for e in entries if e.event == "unlock_failed"]
    assert [e.at for e in failed] == []  # the linked file's timestamp was not taken
    assert [e.details for e in entries if e.event == "unlock_failed_rejected"] == [{"lines": 1}]
    assert target.read_bytes() == before and not note.exists() and not note.is_symlink()


def test_only_well_formed_timestamps_from_the_failed_unlock_note_reach_the_audit_log(vault_factory, tmp_path):
    vault_factory("v").close()
    folder = tmp_path / "v"
    (folder / FAILED_UNLOCKS_NAME).write_bytes(
        b"2024-05-01T10:00:00.123456+00:00\n"
        b"2024-05-01T10:00:01+02:00 and a forged remark\n"
        b"\x1b[32mpassed\x1b[0m\n"
        b"2024-13-45T99:99:99+00:00\n"
        b"2024-05-01T10:00:02\n"  # no offset: not what medvault writes
        + b"x" * 5000 + b"\n"
        b"2024-05-01T10:00:03Z\n")
    with Vault.unlock(folder, PASSPHRASE) as vault:
        entries = vault.audit_entries()
    assert sorted(e.at for e in entries if e.event == "unlock_failed") == ["2024-05-01T10:00:00.123456+00:00",
                                                                           "2024-05-01T10:00:03+00:00"]
    assert [e.details for e in entries if e.event == "unlock_failed_rejected"] == [{"lines": 5}]


def test_the_header_temp_file_is_created_exclusively(unlocked_vault, tmp_path, monkeypatch):
    folder = unlocked_vault.folder
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    monkeypatch.setattr(fsutil.secrets, "token_hex", lambda n: "predictable")
    os.symlink(victim, folder / ".vault.header.predictable.tmp")
    header_before = (folder / "vault.header").read_bytes()
    with pytest.raises(StorageUnavailable):
        write_header(folder, unlocked_vault.header)
    assert victim.read_bytes() == b"keep me"
    assert (folder / "vault.header").read_bytes() == header_before
    assert (folder / ".vault.header.predictable.tmp").is_symlink()  # left alone, not removed through


def test_a_linked_header_or_database_is_refused(vault_factory, tmp_path):
    vault_factory("v").close()
    folder = tmp_path / "v"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    os.replace(folder / "vault.header", elsewhere / "vault.header")
    os.symlink(elsewhere / "vault.header", folder / "vault.header")
    with pytest.raises(HeaderInvalid) as refused:
        Vault.unlock(folder, PASSPHRASE)
    assert "link" in refused.value.user_message
    os.unlink(folder / "vault.header")
    os.replace(elsewhere / "vault.header", folder / "vault.header")

    os.replace(folder / "vault.db", elsewhere / "vault.db")
    os.symlink(elsewhere / "vault.db", folder / "vault.db")
    with pytest.raises(StorageUnavailable) as refused:
        Vault.unlock(folder, PASSPHRASE)
    assert "vault.db" in refused.value.user_message and "link" in refused.value.user_message
    assert stat.S_IMODE((elsewhere / "vault.db").stat().st_mode) == 0o600  # created so, and left untouched
    os.unlink(folder / "vault.db")
    os.replace(elsewhere / "vault.db", folder / "vault.db")
    Vault.unlock(folder, PASSPHRASE).close()  # and the vault is as it was


def test_a_fifo_under_the_failed_unlock_name_does_not_hang_the_unlock(vault_factory, tmp_path):
    vault_factory("v").close()
    folder = tmp_path / "v"
    os.mkfifo(folder / FAILED_UNLOCKS_NAME)
    with Vault.unlock(folder, PASSPHRASE) as vault:
        assert [e.details for e in vault.audit_entries() if e.event == "unlock_failed_rejected"] == [{"lines": 1}]
    assert not (folder / FAILED_UNLOCKS_NAME).exists()


def test_write_atomically_refuses_to_replace_what_is_not_a_plain_file_when_asked(tmp_path):
    target = tmp_path / "victim"
    target.write_bytes(b"keep me")
    link = tmp_path / "kit.pdf"
    os.symlink(target, link)
    with pytest.raises(fsutil.NotARegularFile):
        fsutil.write_atomically(link, b"new", only_over_regular=True)
    assert target.read_bytes() == b"keep me" and link.is_symlink()
    plain = tmp_path / "plain"
    plain.write_bytes(b"old")
    os.chmod(plain, 0o644)
    fsutil.write_atomically(plain, b"new", only_over_regular=True)
    assert plain.read_bytes() == b"new" and stat.S_IMODE(plain.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kit.pdf", "plain", "victim"]  # no temp left


def test_header_round_trip_still_reads(unlocked_vault):
    assert read_header(unlocked_vault.folder) == unlocked_vault.header
