"""Every schema a released build wrote, from the first, opens with today's code: the missing migrations run on that
real old data, and the records, persons, shares, consent changes and audit chain written then are all still there.

The vaults in ``tests/data/`` were written by the code of their time (see its README); they are copied before
opening, since opening migrates and appends to the audit log.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from vault import store as vault_store
from vault.schema import SCHEMA_VERSION
from vault.store import Vault

DATA = Path(__file__).resolve().parents[1] / "data"
PASSPHRASE = "frozen vault passphrase"


@dataclass(frozen=True)
class Frozen:
    folder: str
    schema: int                          # PRAGMA user_version as written
    recovery_key: str
    records: frozenset[tuple[str, str]] = frozenset()
    persons: int = 0                     # how many persons the records name (0: none yet)
    shares: dict[str, str] = field(default_factory=dict)     # id -> state
    outbox: tuple[str, ...] = ()         # kinds of the consent changes waiting, in order
    audit: tuple[str, ...] = ()          # events written then, oldest first


FROZEN = [
    Frozen("vault-schema1", 1, "XGF6-C82Q-4KQC-PD42-DJEC-KB60-TZ53-21MB-MNQ5",
           audit=("init", "unlock", "passwd", "unlock")),
    Frozen("vault-schema3", 3, "Z1TS-GQ4M-44AW-W2Y8-6QE8-DHWA-FYZ9-4N2N-P16G",
           records=frozenset({("Patient", "example"), ("Observation", "blood-pressure"), ("Immunization", "imm-1"),
                              ("MedicationRequest", "medicationrequest-coded-oral-axid")}),
           persons=1, outbox=("grant",), audit=("init", "unlock", "import", "import", "import", "import")),
    Frozen("vault-format1", 4, "9MEF-FD9T-Q2HY-ABZA-1GJQ-V2G1-7TZT-4DYA-1RCC",
           records=frozenset({("Patient", "example"), ("Condition", "condition-duodenal-ulcer"),
                              ("Observation", "serum-glucose"), ("AllergyIntolerance", "example")}),
           persons=1, audit=("init", "import", "import", "import", "import")),
    Frozen("vault-schema5", 5, "H2TF-H4D9-PPA6-MNG3-6653-HD04-XK1G-YRA7-VRAS",
           records=frozenset({("Patient", "example"), ("Observation", "weight"), ("Observation", "heart-rate"),
                              ("Condition", "condition-duodenal-ulcer"), ("Patient", "child-example")}),
           persons=2, shares={"da83a9cbd65d": "active", "d2d42993749f": "active", "10e6b3c1f678": "revoked"},
           outbox=("grant", "grant", "revoke"),
           audit=("init", "unlock", "import", "import", "import", "import", "unlock", "import", "unlock", "share",
                  "unlock", "share", "share", "revoke")),
    Frozen("vault-format2", 6, "9MEF-FD9T-Q2HY-ABZA-1GJQ-V2G1-7TZT-4DYA-1RCC",
           records=frozenset({("Patient", "example"), ("Condition", "condition-duodenal-ulcer"),
                              ("Observation", "serum-glucose"), ("AllergyIntolerance", "example")}),
           persons=1, audit=("init", "import", "import", "import", "import", "recover")),
]


def test_frozen_vaults_start_at_schema_1_and_cover_every_released_schema_before_this_one():
    schemas = {f.schema for f in FROZEN}
    assert min(schemas) == 1
    # schema 2 (core and records without the outbox) was never written: both steps landed together (tests/data);
    # the newest schema needs a frozen vault once a build with a later step is released
    assert set(range(1, SCHEMA_VERSION)) - {2} <= schemas <= set(range(1, SCHEMA_VERSION + 1))
    for f in FROZEN:
        assert (DATA / f.folder / "vault.header").is_file() and (DATA / f.folder / "vault.db").is_file()


@pytest.fixture
def opened(tmp_path, monkeypatch):
    """Copies a frozen vault and unlocks it, noting the schema the migrations started from."""
    started_at: list[int] = []
    migrate = vault_store._migrate

    def noting(conn):
        started_at.append(conn.execute("PRAGMA user_version").fetchone()[0])
        migrate(conn)

    monkeypatch.setattr(vault_store, "_migrate", noting)

    def open_(frozen: Frozen) -> tuple[Vault, list[int], Path]:
        folder = tmp_path / frozen.folder
        shutil.copytree(DATA / frozen.folder, folder)
        return Vault.unlock(folder, PASSPHRASE), started_at, folder

    return open_


@pytest.mark.parametrize("frozen", FROZEN, ids=[f.folder for f in FROZEN])
def test_frozen_vault_migrates_and_keeps_what_it_held(opened, frozen):
    vault, started_at, _ = opened(frozen)
    with vault:
        # migrated from the schema it was written at (a vault of today's schema needs no step)
        assert started_at == ([frozen.schema] if frozen.schema < SCHEMA_VERSION else [])
        with vault.read() as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            records = {(t, i) for t, i in conn.execute("SELECT rtype, id FROM rec_resources")}
            unassigned = conn.execute("SELECT count(*) FROM rec_resources WHERE person IS NULL").fetchone()[0]
            persons = conn.execute("SELECT count(*) FROM persons").fetchone()[0]
            shares = {i: s for i, s in conn.execute("SELECT id, state FROM shares")}
            blobs = {c for (c,) in conn.execute("SELECT cid FROM share_blobs")}
            share_cids = {i: c for i, c in conn.execute("SELECT id, cid FROM shares")}
            links = [link for (link,) in conn.execute("SELECT link FROM shares")]
            outbox = [(k, s) for k, s in conn.execute("SELECT kind, state FROM chain_outbox ORDER BY id")]
        assert records == frozen.records
        assert unassigned == 0 and persons == frozen.persons      # persons-v1 assigned every old record
        assert shares == frozen.shares
        for share_id, state in shares.items():                     # an active share still has its file, only it
            assert (share_cids[share_id] in blobs) == (state == "active")
        assert links == [None] * len(shares)                       # shares-v2: no link was kept before it
        assert outbox == [(kind, "pending") for kind in frozen.outbox]
        events = [e.event for e in reversed(vault.audit_entries())]
        assert tuple(events[:len(frozen.audit)]) == frozen.audit and events[-1] == "unlock"
        assert vault.verify().intact


def test_waiting_consent_changes_still_carry_the_patients_signature(opened):
    from sync import consent_sign as cs
    from sync.outbox import Outbox
    from vault.outbox_store import SqlOutboxStore
    for frozen in (f for f in FROZEN if f.outbox):
        vault, _, _ = opened(frozen)
        with vault, vault.read() as conn:
            entries = Outbox(SqlOutboxStore(conn)).entries()
            assert [e.kind for e in entries] == list(frozen.outbox)
            for entry in entries:
                domain = cs.Domain(entry.payload["domain"]["chain_id"], entry.payload["domain"]["verifying_contract"])
                typed = cs.from_jsonable(entry.payload["typed"])
                signature = cs.Signature.from_bytes(bytes.fromhex(entry.payload["signature"][2:]))
                assert cs.recover(domain, typed, signature).lower() == vault.identity.eth_address.lower()


@pytest.mark.parametrize("frozen", FROZEN, ids=[f.folder for f in FROZEN])
def test_frozen_vault_recovers_with_its_recovery_key_and_takes_new_records(opened, frozen, cli):
    vault, _, folder = opened(frozen)
    vault.close()
    with Vault.recover(folder, frozen.recovery_key, "a new passphrase for it"):
        pass
    result = cli(["--vault", str(folder), "import", "--other-person",
                  str(FIXTURES / "us-core" / "patient-infant-example.json")],
                 {"MEDVAULT_PASSPHRASE": "a new passphrase for it"})
    assert result.code == 0, result.err
    with Vault.unlock(folder, "a new passphrase for it") as vault:
        with vault.read() as conn:
            count = conn.execute("SELECT count(*) FROM rec_resources").fetchone()[0]
        assert count == len(frozen.records) + 1
        assert vault.verify().intact
