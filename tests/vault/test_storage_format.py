"""Storage since the performance work: 64 KiB SQLCipher pages (new vaults, and older vaults moved over at unlock,
crash-safely), compressed original payloads (older, uncompressed ones still read), and content hashes that keep
their version per vault, so a vault made before orjson still recognises what it already holds."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from vault import jsonsafe
from vault.header import read_header
from vault.records import jsonutil, store
from vault.records.importer import ImportService
from vault.store import DB_NAME, DB_PAGE_SIZE, STAGED_DB_NAME, Vault

FROZEN = Path(__file__).resolve().parents[1] / "data" / "vault-format1"
FROZEN_PASSPHRASE = "frozen vault passphrase"


@pytest.fixture
def frozen(tmp_path) -> Path:
    folder = tmp_path / "frozen"
    shutil.copytree(FROZEN, folder)
    return folder


def _page_size(vault) -> int:
    with vault.read() as conn:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])


def test_new_vaults_use_large_pages_and_the_new_hash(unlocked_vault):
    assert read_header(unlocked_vault.folder).db_page_size == DB_PAGE_SIZE == 65536
    assert _page_size(unlocked_vault) == DB_PAGE_SIZE
    with unlocked_vault.read() as conn:
        assert store.vault_hash_version(conn) == jsonutil.HASH_V2


def test_an_older_vault_moves_to_large_pages_and_keeps_everything(frozen):
    assert read_header(frozen).db_page_size == 4096
    with Vault.unlock(frozen, FROZEN_PASSPHRASE) as vault:
        with vault.read() as conn:
            hashes = dict(((t, i), h) for t, i, h in conn.execute("SELECT rtype, id, content_sha256 FROM rec_resources"))
            sources = conn.execute("SELECT id, payload_sha256 FROM rec_sources").fetchall()
            # payloads stored before compression existed still read back as the original bytes
            for source_id, sha in sources:
                assert hashlib.sha256(b"".join(store.read_payload(conn, source_id))).hexdigest() == sha
            assert store.vault_hash_version(conn) == jsonutil.HASH_V1
        assert _page_size(vault) == DB_PAGE_SIZE
        assert vault.verify().intact
    assert read_header(frozen).db_page_size == DB_PAGE_SIZE
    assert not (frozen / STAGED_DB_NAME).exists()
    assert len(hashes) == 4 and len(sources) == 4
    with Vault.unlock(frozen, FROZEN_PASSPHRASE) as vault:
        assert _page_size(vault) == DB_PAGE_SIZE
        with vault.read() as conn:
            assert dict(((t, i), h) for t, i, h in
                        conn.execute("SELECT rtype, id, content_sha256 FROM rec_resources")) == hashes


def test_an_older_vault_still_recognises_what_it_holds(frozen, tmp_path):
    """Its stored hashes are version 1 (the standard library's canonical JSON): the same records in other bytes,
    or under another id, are duplicates, not new versions or new records."""
    patient = json.loads((FIXTURES / "us-core" / "patient-example.json").read_bytes())
    same = tmp_path / "same-patient-other-bytes.json"
    same.write_bytes(json.dumps(patient, separators=(",", ":")).encode())
    renumbered = tmp_path / "same-patient-other-id.json"
    renumbered.write_bytes(json.dumps(dict(patient, id="another-number")).encode())
    with Vault.unlock(frozen, FROZEN_PASSPHRASE) as vault:
        first = ImportService(vault).import_file(same)
        second = ImportService(vault).import_file(renumbered)
        with vault.read() as conn:
            count = conn.execute("SELECT count(*) FROM rec_resources").fetchone()[0]
            history = conn.execute("SELECT count(*) FROM rec_history").fetchone()[0]
    assert (first.added, first.duplicates, first.updated) == (0, 1, 0)
    assert (second.added, second.duplicates) == (0, 1)
    assert count == 4 and history == 0


def test_hash_versions_differ_only_where_the_encoders_do(frozen, vault_factory, tmp_path):
    """A decimal below 1e-4 is written 1e-05 by the standard library and 0.00001 by orjson: each vault stores the
    hash of its own version, and re-importing the record into either is recognised."""
    obs = {"resourceType": "Observation", "id": "tiny", "status": "final", "code": {"text": "trace"},
           "valueQuantity": {"value": 1e-05, "unit": "mg"}}
    path = tmp_path / "tiny.json"
    path.write_bytes(json.dumps(obs).encode())
    again = tmp_path / "tiny-again.json"
    again.write_bytes(json.dumps(obs, indent=2).encode())
    body = {k: v for k, v in obs.items() if k != "id"}
    v1 = hashlib.sha256(json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode())
    v2 = hashlib.sha256(jsonsafe.canonical(body))
    assert v1.hexdigest() != v2.hexdigest()
    new = vault_factory("new")
    with Vault.unlock(frozen, FROZEN_PASSPHRASE) as old:
        for vault, expected in ((old, v1.hexdigest()), (new, v2.hexdigest())):
            assert ImportService(vault).import_file(path).added == 1
            assert ImportService(vault).import_file(again).duplicates == 1
            with vault.read() as conn:
                assert conn.execute("SELECT content_sha256 FROM rec_resources WHERE id = 'tiny'").fetchone()[0] \
                    == expected


def test_a_move_interrupted_before_the_header_changed_is_undone(frozen):
    (frozen / STAGED_DB_NAME).write_bytes(b"half a copy")
    with Vault.unlock(frozen, FROZEN_PASSPHRASE) as vault:
        assert _page_size(vault) == DB_PAGE_SIZE
        assert vault.verify().intact
    assert not (frozen / STAGED_DB_NAME).exists()


def test_a_move_interrupted_after_the_header_changed_is_finished(frozen, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(frozen, moved)
    Vault.unlock(moved, FROZEN_PASSPHRASE).close()
    # the state a crash between writing the header and replacing the file leaves: new header, staged copy
    # complete, the old file still in place
    shutil.copy(moved / DB_NAME, frozen / STAGED_DB_NAME)
    shutil.copy(moved / "vault.header", frozen / "vault.header")
    shutil.copy(moved / "vault.state", frozen / "vault.state")   # written by the same unlock, before the crash
    with Vault.unlock(frozen, FROZEN_PASSPHRASE) as vault:
        assert _page_size(vault) == DB_PAGE_SIZE
        assert vault.verify().intact
        with vault.read() as conn:
            assert conn.execute("SELECT count(*) FROM rec_resources").fetchone()[0] == 4
    assert not (frozen / STAGED_DB_NAME).exists()


def test_a_move_that_cannot_be_made_leaves_the_vault_as_it_was(frozen):
    (frozen / STAGED_DB_NAME).mkdir()            # nothing can be written where the copy goes
    (frozen / STAGED_DB_NAME / "keep").write_text("x")
    with Vault.unlock(frozen, FROZEN_PASSPHRASE) as vault:
        assert _page_size(vault) == 4096
        assert vault.verify().intact
    assert read_header(frozen).db_page_size == 4096


def test_payloads_are_stored_compressed(unlocked_vault, fixtures_dir):
    path = max((fixtures_dir / "synthea").glob("*.json"), key=lambda p: p.stat().st_size)
    report = ImportService(unlocked_vault).import_file(path)
    with unlocked_vault.read() as conn:
        stored = sum(len(d) for (d,) in conn.execute("SELECT data FROM rec_source_payload WHERE source_id = ?",
                                                     (report.source_id,)))
        first = conn.execute("SELECT data FROM rec_source_payload WHERE source_id = ? AND seq = 0",
                             (report.source_id,)).fetchone()[0]
        assert b"".join(store.read_payload(conn, report.source_id)) == path.read_bytes()
    assert bytes(first).startswith(store.PAYLOAD_MARK)
    assert stored < path.stat().st_size / 4
