"""Units under the vault: recovery key text, header bounds, subkeys, the audit chain."""

from __future__ import annotations

import json

import pytest

from vault import crypto, recovery
from vault.errors import HeaderInvalid, MalformedRecoveryKey
from vault.header import KDF_PROFILES, Header


def test_recovery_key_round_trip_and_look_alikes():
    secret = bytes(range(20))
    text = recovery.format_key(secret)
    assert len(text.split("-")) == 9 and all(len(g) == 4 for g in text.split("-"))
    assert recovery.parse_key(text) == secret
    assert recovery.parse_key(text.lower().replace("-", " ")) == secret
    assert recovery.parse_key(text.replace("0", "O").replace("1", "I")) == secret


def test_recovery_key_typo_is_caught():
    text = recovery.format_key(bytes(range(20)))
    first = text[0]
    typo = ("2" if first != "2" else "3") + text[1:]
    with pytest.raises(MalformedRecoveryKey, match="typo"):
        recovery.parse_key(typo)
    with pytest.raises(MalformedRecoveryKey):
        recovery.parse_key("ABCD")


def test_default_profile_meets_the_design_floor():
    default = KDF_PROFILES["default"]
    assert default.memlimit >= 256 * 1024 * 1024 and default.opslimit >= 3


def test_header_round_trip_and_size_bound(unlocked_vault):
    raw = (unlocked_vault.folder / "vault.header").read_bytes()
    header = Header.from_bytes(raw)
    assert header.to_bytes() == raw
    with pytest.raises(HeaderInvalid):
        Header.from_bytes(raw + b" " * 70000)
    body = json.loads(raw)
    del body["slots"]
    with pytest.raises(HeaderInvalid):
        Header.from_bytes(json.dumps(body).encode())


def test_subkeys_are_distinct_per_purpose():
    root = bytes(32)
    keys = {p: crypto.subkey(root, p) for p in ("sqlcipher-database", "audit-mac", "attachments", "identity")}
    assert len(set(keys.values())) == len(keys)
    assert crypto.subkey(root, "audit-mac") == keys["audit-mac"]


def test_audit_chain_detects_edits_deletions_and_truncation(unlocked_vault):
    for n in range(5):
        unlocked_vault.audit("import", resources=n)
    assert unlocked_vault.verify().intact
    with unlocked_vault.transaction() as conn:
        conn.execute("UPDATE audit SET details = '{\"resources\":99}' WHERE seq = 3")
    report = unlocked_vault.verify()
    assert not report.intact and report.audit.first_broken == 3
    assert "entry 3" in report.sentence()


def test_audit_chain_detects_a_removed_tail(unlocked_vault):
    for n in range(3):
        unlocked_vault.audit("import", resources=n)
    with unlocked_vault.transaction() as conn:
        last = conn.execute("SELECT max(seq) FROM audit").fetchone()[0]
        conn.execute("DELETE FROM audit WHERE seq = ?", (last,))
    report = unlocked_vault.verify()
    assert not report.intact and "removed from the end" in report.sentence()


def test_audit_refuses_unknown_events(unlocked_vault):
    with pytest.raises(ValueError):
        unlocked_vault.audit("patient-name-Jane")


def test_audit_cli_reports_the_first_broken_entry(cli, unlocked_vault):
    unlocked_vault.audit("export", resources=1)
    with unlocked_vault.transaction() as conn:
        conn.execute("UPDATE audit SET event = 'share' WHERE seq = 2")
    folder = unlocked_vault.folder
    unlocked_vault.close()
    result = cli(["--vault", str(folder), "audit", "--verify"])
    assert result.code == 1
    assert "broken at entry 2" in result.out
