"""Fixtures for the consent-chain tests: a fresh in-process EVM per test, signing keys, and a real ganache node.

Keys are random per test: nothing depends on a particular address.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from sync import consent_sign as cs
from sync.chain import Chain, ConsentRegistry, Sender
from tests.peers.ganache import Ganache, account_keys


@dataclass
class Party:
    """Someone who signs: a patient or a clinician. Holds a raw key the way the vault hands it over."""

    key: bytes

    @property
    def address(self) -> str:
        return cs.address_of(self.key)


def new_party() -> Party:
    return Party(os.urandom(32))


@pytest.fixture
def evm() -> Chain:
    return Chain.in_process()


@pytest.fixture
def admin(evm: Chain) -> Sender:
    return Sender(node_account=evm.node_accounts()[0])


@pytest.fixture
def registry(evm: Chain, admin: Sender) -> ConsentRegistry:
    return evm.deploy(admin)


@pytest.fixture
def patient() -> Party:
    return new_party()


@pytest.fixture
def clinician() -> Party:
    return new_party()


def signed_grant(
    reg: ConsentRegistry,
    patient: Party,
    *,
    grantee: str = cs.ZERO_ADDRESS,
    expires_in: int = 3600,
    nonce: int = 1,
    deadline_in: int = 600,
    consent_id: bytes | None = None,
    scope: bytes | None = None,
) -> tuple[cs.Grant, cs.Signature]:
    now = reg.chain.block_timestamp()
    grant = cs.Grant(
        consent_id=consent_id or os.urandom(32),
        patient=patient.address,
        grantee=grantee,
        expires_at=now + expires_in,
        scope_hash=scope or os.urandom(32),
        nonce=nonce,
        deadline=now + deadline_in,
    )
    return grant, cs.sign(patient.key, reg.domain, grant)


def signed_revoke(
    reg: ConsentRegistry, signer: Party, consent_id: bytes, *, patient: str | None = None, nonce: int = 2,
    deadline_in: int = 600,
) -> tuple[cs.Revoke, cs.Signature]:
    now = reg.chain.block_timestamp()
    revoke = cs.Revoke(consent_id, patient or signer.address, nonce, now + deadline_in)
    return revoke, cs.sign(signer.key, reg.domain, revoke)


def signed_receipt(reg: ConsentRegistry, accessor: Party, consent_id: bytes, nonce: int = 1, *, patient: str):
    receipt = cs.AccessReceipt(consent_id, patient, accessor.address, reg.chain.block_timestamp(), nonce)
    return receipt, cs.sign(accessor.key, reg.domain, receipt)


def advance(chain: Chain, seconds: int) -> None:
    """Move the in-process chain's clock forward and mine a block at the new time."""
    chain.tester.time_travel(chain.block_timestamp() + seconds + 1)


# ---- real node ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ganache_node(tmp_path_factory) -> Iterator[Ganache]:
    node = Ganache(tmp_path_factory.mktemp("ganache") / "db")
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def ganache_keys() -> list[bytes]:
    return account_keys()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers: a hung node."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                accepted.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        srv.close()


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
