"""Memory amplification on import: a file, or the health cards in it, must not become gigabytes of Python objects.

Each import runs in a child process on a real vault, and the growth of its peak memory is measured
(tests/peak_memory.py). The vault must be unchanged after each refusal.
"""

from __future__ import annotations

import json

from tests.peak_memory import bundle_of_empty_entries, health_card_of_empty_entries, measure

PEAK_LIMIT_MB = 400

_SETUP = """
from vault.store import Vault
from vault.records.importer import ImportService
from vault.records.errors import RecordsError
vault, _ = Vault.create({folder!r}, "correct horse battery staple", kdf_profile="test-insecure")
"""

_RUN = """
try:
    ImportService(vault).import_file({path!r})
except RecordsError:
    with vault.read() as conn:
        stored = conn.execute("SELECT count(*) FROM rec_sources").fetchone()[0]
    assert stored == 0, "a refused import left a source behind"
    raise
return "imported"
"""


def _import_in_child(tmp_path, path) -> dict:
    return measure(_SETUP.format(folder=str(tmp_path / "vault")), _RUN.format(path=str(path)))


def _refused(result: dict) -> bool:
    return isinstance(result["error"], dict) and result["error"]["type"] not in ("MemoryError", "AssertionError")


def test_100_health_cards_in_one_import_are_bounded_together(tmp_path):
    # Each card inflates to about 4 MB (under the per-card limit) and 2.6 million values; 100 of them cost >7 GB.
    card = health_card_of_empty_entries(1_300_000)
    path = tmp_path / "cards.smart-health-card"
    path.write_text(json.dumps({"verifiableCredential": [card] * 100}))
    assert path.stat().st_size < 1_000_000
    result = _import_in_child(tmp_path, path)
    assert _refused(result), result
    assert result["error"]["message"].endswith("nothing was imported."), result
    assert result["grew_mb"] < PEAK_LIMIT_MB, result


def test_a_json_file_of_20_million_empty_entries_is_refused_before_parsing(tmp_path):
    path = tmp_path / "bundle.json"
    path.write_bytes(bundle_of_empty_entries(20_000_000))  # 60 MB: under the 64 MB file limit
    result = _import_in_child(tmp_path, path)
    assert _refused(result), result
    assert result["error"]["message"].endswith("nothing was imported."), result
    # The file's bytes are read whole (60 MB) and hashed; the 20 million dicts (1.6 GB) never exist.
    assert result["grew_mb"] < PEAK_LIMIT_MB, result
