"""Real parties for the clinician's half of the story: vaults as ``Session``s, each with its own embedded gateway on a
free loopback port, a Synthea patient, and the real peers the suite starts elsewhere (the js-ipfs node of
``tests/ipfs`` and a ganache node from ``tests/peers``).

A write-back is published by the clinician and fetched by the patient over the wire like any share; nothing here
stands in for the receiver, the gateway or the chain.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.conftest import FIXTURES, PASSPHRASE, TEST_PROFILE  # noqa: E402
from tests.ipfs.conftest import ipfs_node  # noqa: E402,F401  (the suite's real IPFS node, shared)
from tests.peers.ganache import Ganache, free_port  # noqa: E402

SYNTHEA = FIXTURES / "synthea"
PATIENT_FILE = "Ned_Hintz_e4b9259d-0f54-48d1-a35d-b526729a4dfe.json"


@dataclass
class Party:
    """One person's medvault: the session on their vault, and the gateway that serves what they hand over."""

    session: Any
    gateway_url: str
    gateways: list[Any] = field(default_factory=list)

    @property
    def vault(self) -> Any:
        return self.session.vault

    def serve(self) -> Any:
        """Serve this vault's shares and write-backs on its gateway address until the test ends (once)."""
        from urllib.parse import urlsplit
        if self.gateways:
            return self.gateways[0]
        gw = self.session.serve(port=urlsplit(self.gateway_url).port)
        self.gateways.append(gw)
        return gw

    def stop_serving(self) -> None:
        while self.gateways:
            self.gateways.pop().stop()


@pytest.fixture
def party(tmp_path) -> Iterator[Any]:
    """``party(name)``: a new vault with the cheap test KDF, its gateway address remembered; all closed at the
    end of the test."""
    from app.services import Session
    from sync import shares
    from vault.store import Vault
    made: list[Party] = []

    def make(name: str, *, synthea: bool = False) -> Party:
        vault, _ = Vault.create(tmp_path / name, PASSPHRASE, kdf_profile=TEST_PROFILE)
        p = Party(Session(vault), f"http://127.0.0.1:{free_port()}")
        shares.set_gateway_setting(vault, p.gateway_url)
        made.append(p)
        if synthea:
            import_synthea(p.session)
        return p

    yield make
    for p in made:
        p.stop_serving()
        if p.vault.is_open:
            p.session.close()


def import_synthea(session: Any) -> None:
    from vault.records.errors import RecordsError
    if not (SYNTHEA / PATIENT_FILE).exists():
        pytest.fail(f"the Synthea fixtures are missing at {SYNTHEA}", pytrace=False)
    files = sorted(SYNTHEA.glob("hospitalInformation*.json")) + sorted(SYNTHEA.glob("practitionerInformation*.json"))
    for outcome in session.import_files([*files, SYNTHEA / PATIENT_FILE]):
        assert outcome.ok, outcome.sentence
        assert not isinstance(outcome.error, RecordsError)


@pytest.fixture
def chain_node(tmp_path) -> Iterator[Ganache]:
    """A real ganache JSON-RPC node with free gas (as a consortium network runs), stopped and restartable by the
    test on the same chain state."""
    node = Ganache(tmp_path / "chain", free_gas=True)
    with node:
        yield node


def trust_of(vault: Any, rtype: str, rid: str) -> str:
    with vault.read() as conn:
        row = conn.execute("SELECT trust FROM rec_resources WHERE rtype = ? AND id = ?", (rtype, rid)).fetchone()
    assert row is not None, f"{rtype}/{rid} is not in the vault"
    return row[0]


def first_record(vault: Any, rtype: str) -> dict:
    import json
    with vault.read() as conn:
        raw = conn.execute("SELECT json FROM rec_resources WHERE rtype = ? ORDER BY rid LIMIT 1", (rtype,)).fetchone()
    assert raw is not None, f"no {rtype} in the vault"
    return json.loads(raw[0])
