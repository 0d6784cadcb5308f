"""The vault's life cycle as a user drives it from the command line: init, audit, passwd, recover."""

from __future__ import annotations

import re

from tests.conftest import PASSPHRASE, TEST_PROFILE, run_medvault

KEY_RE = re.compile(r"\b([0-9A-Z]{4}(?:-[0-9A-Z]{4}){8})\b")
NEW = "a brand new passphrase"


def _init(cli, folder):
    result = cli(["--vault", str(folder), "init", "--kdf-profile", TEST_PROFILE])
    assert result.code == 0, result.err
    match = KEY_RE.search(result.out)
    assert match, result.out
    return match.group(1)


def test_init_prints_the_recovery_key_once_and_the_identity(cli, tmp_path):
    result = cli(["--vault", str(tmp_path / "v"), "init", "--kdf-profile", TEST_PROFILE])
    assert result.code == 0
    assert len(KEY_RE.findall(result.out)) == 1
    assert "did:key:z6Mk" in result.out
    assert "test-insecure" in result.err  # the cheap profile is never silent
    again = cli(["--vault", str(tmp_path / "v"), "audit"])
    assert again.code == 0
    assert not KEY_RE.search(again.out)  # shown once: nothing prints it later
    assert "init" in again.out and "unlock" in again.out


def test_init_refuses_an_existing_vault_and_leaves_it(cli, tmp_path):
    _init(cli, tmp_path / "v")
    before = (tmp_path / "v" / "vault.header").read_bytes()
    result = cli(["--vault", str(tmp_path / "v"), "init", "--kdf-profile", TEST_PROFILE])
    assert result.code == 1
    assert "already exists" in result.err
    assert (tmp_path / "v" / "vault.header").read_bytes() == before


def test_passwd_changes_only_the_passphrase(cli, tmp_path):
    folder = tmp_path / "v"
    _init(cli, folder)
    db_before = (folder / "vault.db").stat().st_size
    result = cli(["--vault", str(folder), "passwd"], env={"MEDVAULT_PASSPHRASE": PASSPHRASE,
                                                          "MEDVAULT_NEW_PASSPHRASE": NEW})
    assert result.code == 0, result.err
    old = cli(["--vault", str(folder), "audit"])
    assert old.code == 1 and "passphrase is wrong" in old.err
    new = cli(["--vault", str(folder), "audit", "--verify"], env={"MEDVAULT_PASSPHRASE": NEW})
    assert new.code == 0 and "intact" in new.out
    assert (folder / "vault.db").stat().st_size >= db_before


def test_recover_with_the_recovery_key_keeps_everything(cli, tmp_path, vault_factory):
    folder = tmp_path / "v"
    key = _init(cli, folder)
    from vault.store import Vault
    with Vault.unlock(folder, PASSPHRASE) as vault:
        vault.audit("import", resources=3)
        did = vault.identity.did
    result = cli(["--vault", str(folder), "recover"], env={"MEDVAULT_RECOVERY_KEY": key.lower().replace("-", " "),
                                                           "MEDVAULT_NEW_PASSPHRASE": NEW})
    assert result.code == 0, result.err
    with Vault.unlock(folder, NEW) as vault:
        assert vault.identity.did == did
        assert [e.event for e in vault.audit_entries()][:2] == ["unlock", "recover"]
        assert any(e.event == "import" and e.details == {"resources": 3} for e in vault.audit_entries())
        assert vault.verify().intact


def test_wrong_and_malformed_recovery_keys(cli, tmp_path):
    folder = tmp_path / "v"
    key = _init(cli, folder)
    other = _init(cli, tmp_path / "other")
    header = (folder / "vault.header").read_bytes()
    wrong = cli(["--vault", str(folder), "recover"], env={"MEDVAULT_RECOVERY_KEY": other,
                                                          "MEDVAULT_NEW_PASSPHRASE": NEW})
    assert wrong.code == 1 and "does not open this vault" in wrong.err
    typo = key[:-1] + ("0" if key[-1] != "0" else "1")
    typo_result = cli(["--vault", str(folder), "recover"], env={"MEDVAULT_RECOVERY_KEY": typo,
                                                                "MEDVAULT_NEW_PASSPHRASE": NEW})
    assert typo_result.code == 1 and "typo" in typo_result.err
    junk = cli(["--vault", str(folder), "recover"], env={"MEDVAULT_RECOVERY_KEY": "hello",
                                                         "MEDVAULT_NEW_PASSPHRASE": NEW})
    assert junk.code == 1 and "not a medvault recovery key" in junk.err
    assert (folder / "vault.header").read_bytes() == header


def test_passphrase_file_and_usage_errors(cli, tmp_path):
    folder = tmp_path / "v"
    _init(cli, folder)
    secret = tmp_path / "pass.txt"
    secret.write_text(PASSPHRASE + "\n")
    ok = cli(["--vault", str(folder), "--passphrase-file", str(secret), "audit", "--verify"], env={})
    assert ok.code == 0
    missing = cli(["--vault", str(folder), "audit"], env={})
    assert missing.code == 2 and "MEDVAULT_PASSPHRASE" in missing.err
    bad = cli(["--vault", str(folder), "no-such-command"])
    assert bad.code == 2


def test_short_passphrase_is_refused_with_advice(cli, tmp_path):
    result = cli(["--vault", str(tmp_path / "v"), "init", "--kdf-profile", TEST_PROFILE],
                 env={"MEDVAULT_PASSPHRASE": "short"})
    assert result.code == 1 and "at least 10 characters" in result.err
    assert not (tmp_path / "v").exists()


def test_real_process_exit_codes(tmp_path):
    env = {"MEDVAULT_PASSPHRASE": PASSPHRASE}
    created = run_medvault(["--vault", str(tmp_path / "v"), "init", "--kdf-profile", TEST_PROFILE], env)
    assert created.code == 0, created.err
    wrong = run_medvault(["--vault", str(tmp_path / "v"), "audit"], {"MEDVAULT_PASSPHRASE": "not the passphrase"})
    assert wrong.code == 1
    assert wrong.err.count("\n") == 1 and "Traceback" not in wrong.err
    usage = run_medvault(["--vault", str(tmp_path / "v"), "audit", "--bogus"], env)
    assert usage.code == 2


def test_recovery_qr_decodes_to_the_printed_key(cli, tmp_path):
    import zxingcpp
    from PIL import Image
    qr = tmp_path / "kit.png"
    result = cli(["--vault", str(tmp_path / "v"), "init", "--kdf-profile", TEST_PROFILE, "--recovery-qr", str(qr)])
    assert result.code == 0, result.err
    printed = KEY_RE.search(result.out).group(1)
    assert [b.text for b in zxingcpp.read_barcodes(Image.open(qr))] == [printed]
