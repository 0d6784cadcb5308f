"""A real vault with a Synthea patient imported, for the GUI tests that only read (built once per module)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import FIXTURES, PASSPHRASE, TEST_PROFILE

SYNTHEA = FIXTURES / "synthea"
JULIETTE = "Juliette_Padberg_4acd4ca8-d54b-47f4-bd13-051276711265.json"   # problems, allergies, medicines, labs
FLETCHER = "Fletcher_Hyatt_fe0562b5-f517-4951-8366-32fdab088930.json"     # the largest: 1,111 resources
NED = "Ned_Hintz_e4b9259d-0f54-48d1-a35d-b526729a4dfe.json"


def directory_files() -> list[Path]:
    """The hospital and practitioner bundles that every Synthea patient's references point into."""
    return sorted(SYNTHEA.glob("*Information*.json"))


def synthea_vault(folder: Path, patient: str = JULIETTE):
    """A vault holding one Synthea patient (and the directory bundles), imported through the application layer."""
    from app.services import Session
    from vault.store import Vault
    if not (SYNTHEA / patient).exists():
        raise AssertionError(f"the shared Synthea fixtures are missing: expected {SYNTHEA / patient}")
    vault, _key = Vault.create(folder, PASSPHRASE, kdf_profile=TEST_PROFILE)
    outcomes = Session(vault).import_sources([*directory_files(), SYNTHEA / patient])
    assert all(o.ok for o in outcomes), [o.sentence for o in outcomes]
    return vault
