"""An older copy of the database put back in the vault folder is refused, not silently believed.

The attack these reproduce: copy ``vault.db`` aside, let the patient revoke a share, put the copy back. Before the
state file existed the old database passed ``audit --verify`` and the revoked share was served again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, PASSPHRASE
from vault.errors import VaultRolledBack
from vault.store import STATE_NAME, Vault

DATA = Path(__file__).resolve().parents[1] / "data"
SUPPORT = sorted((FIXTURES / "synthea").glob("*Information*.json"))


def _copy_db(folder: Path, to: Path) -> None:
    to.mkdir(parents=True, exist_ok=True)
    shutil.copy2(folder / "vault.db", to / "vault.db")   # the vault is closed: everything is in vault.db


def _put_back(saved: Path, folder: Path) -> None:
    for leftover in ("vault.db-wal", "vault.db-shm"):
        (folder / leftover).unlink(missing_ok=True)
    shutil.copy2(saved / "vault.db", folder / "vault.db")


def test_an_older_database_is_refused_and_the_revoked_share_is_not_served_again(unlocked_vault, tmp_path):
    from app.services import Session, sharing
    from sync import shares
    session = Session(unlocked_vault)
    session.import_sources([str(p) for p in SUPPORT])
    created = session.create_share(sharing.selection(types=["Organization"]), expires="1d", label="old",
                                   gateway="http://127.0.0.1:9").created
    folder = unlocked_vault.folder
    session.close()
    _copy_db(folder, tmp_path / "saved")

    with Vault.unlock(folder, PASSPHRASE) as vault:
        assert shares.gateway_lookup(vault)(created.cid) is not None  # served while active
        shares.revoke_share(vault, created.id)
        assert shares.gateway_lookup(vault)(created.cid) is None      # revoked: the gateway has nothing to serve
    _put_back(tmp_path / "saved", folder)

    with pytest.raises(VaultRolledBack) as refused:
        Vault.unlock(folder, PASSPHRASE)
    assert "older than its last saved state" in refused.value.user_message
    assert "nothing was changed" in refused.value.user_message
    # Refused means refused: the old database was not touched, and nothing can serve from it.
    assert (folder / "vault.db").read_bytes() == (tmp_path / "saved" / "vault.db").read_bytes()
    with pytest.raises(VaultRolledBack):
        Vault.unlock(folder, PASSPHRASE)


def test_the_state_file_one_step_behind_is_what_a_crash_leaves_and_opens(unlocked_vault, tmp_path):
    folder = unlocked_vault.folder
    behind = (folder / STATE_NAME).read_bytes()
    unlocked_vault.audit("settings", setting="x")   # a commit; then a crash before the state file was written
    unlocked_vault.close()
    (folder / STATE_NAME).write_bytes(behind)
    with Vault.unlock(folder, PASSPHRASE) as vault:
        assert vault.verify().intact
    assert (folder / STATE_NAME).read_bytes() != behind   # settled to the database's own head


def test_a_deleted_state_file_is_refused(unlocked_vault):
    folder = unlocked_vault.folder
    unlocked_vault.close()
    (folder / STATE_NAME).unlink()
    with pytest.raises(VaultRolledBack) as refused:
        Vault.unlock(folder, PASSPHRASE)
    assert "state file (vault.state) is missing" in refused.value.user_message


@pytest.mark.parametrize("edit", ["mac", "seq", "hash"])
def test_a_tampered_state_file_is_refused(unlocked_vault, edit):
    folder = unlocked_vault.folder
    unlocked_vault.audit("settings", setting="x")
    unlocked_vault.close()
    state = json.loads((folder / STATE_NAME).read_text())
    if edit == "mac":
        state["mac"] = ("0" if state["mac"][0] != "0" else "1") + state["mac"][1:]
    elif edit == "seq":
        state["audit_seq"] = 1   # claims an older state, so that an old database would pass
    else:
        state["audit_hash"] = "00" * 32
    (folder / STATE_NAME).write_text(json.dumps(state))
    with pytest.raises(VaultRolledBack) as refused:
        Vault.unlock(folder, PASSPHRASE)
    assert "state file" in refused.value.user_message


def test_an_older_header_format_cannot_be_put_back_to_skip_the_state_file(unlocked_vault):
    """The header says a state file belongs to the vault; editing it back to format 1 breaks the key slot."""
    from vault.errors import WrongPassphrase
    from vault.header import HEADER_NAME, Header, write_header
    from dataclasses import replace
    folder = unlocked_vault.folder
    unlocked_vault.close()
    header = Header.from_bytes((folder / HEADER_NAME).read_bytes())
    write_header(folder, replace(header, format_version=1, recovery_kind="blake2b-keyed"))
    (folder / STATE_NAME).unlink()
    with pytest.raises((WrongPassphrase, VaultRolledBack)):
        Vault.unlock(folder, PASSPHRASE)


def test_a_frozen_format1_vault_opens_gets_its_state_file_and_is_then_protected(tmp_path):
    folder = tmp_path / "v"
    shutil.copytree(DATA / "vault-format1", folder)
    passphrase = "frozen vault passphrase"
    assert not (folder / STATE_NAME).exists()
    with Vault.unlock(folder, passphrase) as vault:
        assert vault.verify().intact
    assert (folder / STATE_NAME).exists()
    _copy_db(folder, tmp_path / "saved")
    with Vault.unlock(folder, passphrase) as vault:
        vault.audit("settings", setting="x")
    _put_back(tmp_path / "saved", folder)
    with pytest.raises(VaultRolledBack):
        Vault.unlock(folder, passphrase)


def test_accepting_an_older_copy_is_deliberate_and_audited(unlocked_vault, tmp_path):
    folder = unlocked_vault.folder
    unlocked_vault.close()
    _copy_db(folder, tmp_path / "saved")
    with Vault.unlock(folder, PASSPHRASE) as vault:
        vault.audit("settings", setting="x")
    _put_back(tmp_path / "saved", folder)
    with Vault.unlock(folder, PASSPHRASE, accept_older=True) as vault:
        events = [e for e in vault.audit_entries() if e.event == "restore"]
        assert events and events[0].details["action"] == "accepted_older_copy"
        assert vault.verify().intact
    Vault.unlock(folder, PASSPHRASE).close()   # accepted once: the state follows the database from then on


def test_the_cli_says_the_sentence_without_a_traceback(cli, unlocked_vault, tmp_path):
    folder = unlocked_vault.folder
    unlocked_vault.close()
    _copy_db(folder, tmp_path / "saved")
    assert cli(["--vault", str(folder), "audit"]).code == 0
    _put_back(tmp_path / "saved", folder)
    for args in (["audit", "--verify"], ["list"], ["passwd"]):
        result = cli(["--vault", str(folder), *args], env={"MEDVAULT_PASSPHRASE": PASSPHRASE,
                                                          "MEDVAULT_NEW_PASSPHRASE": "another long passphrase"})
        assert result.code == 1, (args, result.err)
        assert "older than its last saved state" in result.err and "Traceback" not in result.err
        assert "--accept-older-backup" in result.err
    accepted = cli(["--vault", str(folder), "--accept-older-backup", "audit", "--verify"])
    assert accepted.code == 0 and "intact" in accepted.out
