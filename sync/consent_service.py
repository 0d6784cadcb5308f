"""The consent chain as the rest of medvault uses it: settings kept in the vault, the signing domain, connecting,
draining the outbox, checking a consent when a share is opened, and recording access.

Everything that needs no network works offline: the EIP-712 domain comes from the saved settings, so a share made
on a plane is signed at once and its grant waits in the outbox until ``sync_outbox`` finds the chain.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sync import consent_sign as cs
from sync.errors import ChainMismatch, ChainUnavailable
from vault import jsonsafe

SETTINGS_KEY = "chain"
ZERO_ADDRESS = "0x" + "0" * 40


@dataclass(frozen=True)
class ChainSettings:
    rpc: str
    contract: str
    chain_id: int
    from_block: int = 0
    # On a development node (ganache) a node-managed, funded account pays; on a consortium network with free gas
    # the vault's own account sends its transactions.
    pay_with_node_account: bool = False

    @property
    def domain(self) -> cs.Domain:
        return cs.Domain(chain_id=self.chain_id, verifying_contract=self.contract)


def load_settings(vault: Any) -> ChainSettings | None:
    raw = vault.setting(SETTINGS_KEY)
    if raw is None:
        return None
    try:
        return ChainSettings(**jsonsafe.loads(raw))
    except (TypeError, ValueError):
        raise ChainMismatch("The saved consent network settings are damaged; set them again with "
                            "'medvault chain connect'.") from None


def save_settings(vault: Any, settings: ChainSettings) -> None:
    vault.set_setting(SETTINGS_KEY, jsonsafe.canonical(asdict(settings)).decode("utf-8"), chain_id=settings.chain_id)


def domain_for(vault: Any) -> cs.Domain | None:
    settings = load_settings(vault)
    return settings.domain if settings else None


def connect(settings: ChainSettings, timeout: float = 10.0) -> Any:
    """The deployed registry, after checking the node is the configured chain and the contract is ours."""
    from sync.chain import Chain
    chain = Chain.connect(settings.rpc, expected_chain_id=settings.chain_id, timeout=timeout)
    return chain.registry(settings.contract, from_block=settings.from_block)


def sender_for(vault: Any, settings: ChainSettings, registry: Any) -> Any:
    from sync.chain import Sender
    if settings.pay_with_node_account:
        accounts = registry.chain.node_accounts()
        if not accounts:
            raise ChainUnavailable("The consent network's node has no account to pay with; "
                                   "use a network with free gas or a funded member account.")
        return Sender(node_account=accounts[0])
    return Sender(private_key=vault.identity_keys.secp256k1_private)


def deploy(vault: Any, rpc: str, *, pay_with_node_account: bool = False, timeout: float = 10.0) -> ChainSettings:
    """Deploy a new registry (this vault's account becomes its admin and first member) and save the settings."""
    from sync.chain import Chain, Sender
    chain = Chain.connect(rpc, timeout=timeout)
    if pay_with_node_account:
        sender = Sender(node_account=chain.node_accounts()[0])
    else:
        sender = Sender(private_key=vault.identity_keys.secp256k1_private)
    registry = chain.deploy(sender)
    if sender.address.lower() != vault.identity.eth_address.lower():
        registry.add_member(sender, vault.identity.eth_address)
    settings = ChainSettings(rpc=rpc, contract=registry.address, chain_id=chain.chain_id,
                             from_block=registry.from_block, pay_with_node_account=pay_with_node_account)
    save_settings(vault, settings)
    return settings


def outbox(vault: Any) -> Any:
    from sync.outbox import Outbox
    from vault.outbox_store import SqlOutboxStore
    return Outbox(SqlOutboxStore(vault.conn), clock=lambda: vault.now().timestamp())


def sync_outbox(vault: Any, settings: ChainSettings | None = None) -> Any:
    """Submit what is pending; returns the outbox's report (anchored, failed, or stopped because unreachable)."""
    settings = settings or load_settings(vault)
    if settings is None:
        raise ChainMismatch("No consent network is set up; use 'medvault chain deploy' or 'medvault chain connect'.")
    box = outbox(vault)
    from sync import audit_anchor
    audit_anchor.queue(vault, settings.domain)   # so that an older copy of this vault can be told from it later
    with vault.read():  # one writer at a time on the vault's connection
        if not box.store.pending():
            from sync.outbox import SyncReport
            return SyncReport()
    try:
        registry = connect(settings)
        sender = sender_for(vault, settings, registry)
    except ChainUnavailable as exc:
        from sync.outbox import SyncReport
        report = SyncReport()
        report.unavailable = exc
        with vault.read():
            report.remaining = len(box.store.pending())
            return _without_anchors(report, box)
    with vault.read():
        return _without_anchors(box.sync(registry, sender), box)


def _without_anchors(report: Any, box: Any) -> Any:
    """The report in terms of consent changes: audit anchors (sync/audit_anchor.py) go along with them, but are
    bookkeeping the patient did not ask for, so they are not counted as changes sent or waiting."""
    from sync.audit_anchor import ANCHOR
    anchors = {e.id for e in box.store.all() if e.kind == ANCHOR}
    report.anchored = [i for i in report.anchored if i not in anchors]
    report.failed = [i for i in report.failed if i not in anchors]
    report.already_on_chain = [i for i in report.already_on_chain if i not in anchors]
    if report.remaining:
        report.remaining = sum(1 for e in box.store.pending() if e.id not in anchors)
    return report


def consent_checker(registry: Any, accessor: str) -> Callable[[bytes, str], bool]:
    """For the receiver: is the consent behind a link, as recorded by the patient the link names, active for
    ``accessor`` right now?

    A chain that cannot be reached is not a "no": it raises ChainUnavailable, and the receiver reports that the
    chain could not be checked instead of refusing or pretending."""
    def check(consent_id: bytes, patient: str) -> bool:
        return registry.is_active(consent_id, accessor, patient=patient)

    return check


def queue_access_receipt(vault: Any, settings: ChainSettings, consent_id: bytes, *, patient: str,
                         accessed_at: int | None = None) -> int:
    """The clinician's signed receipt that they opened the share of ``patient``, queued for the chain."""
    when = int(accessed_at if accessed_at is not None else vault.now().timestamp())
    receipt = cs.AccessReceipt(consent_id=consent_id, patient=patient, accessor=vault.identity.eth_address,
                               accessed_at=when, nonce=time.time_ns())
    signature = cs.sign(vault.identity_keys.secp256k1_private, settings.domain, receipt)
    from sync.outbox import Outbox
    from vault.outbox_store import SqlOutboxStore
    with vault.transaction() as conn:
        entry = Outbox(SqlOutboxStore(conn, own_transactions=False)).queue_access(settings.domain, receipt, signature)
        vault.audit("access", conn=conn, consent_id=consent_id.hex(), outbox=entry)
    return entry



def check_scope(registry: Any, consent_id: bytes, patient: str, bundles: list[dict]) -> str:
    """After decryption: the FHIR Consent inside the share must hash to the scope the patient signed on chain, so
    a share whose records were swapped or trimmed is caught even though its key and link are genuine."""
    from sync.errors import ShareRevoked
    consents = [e.get("resource", {}) for b in bundles for e in b.get("entry", [])
                if isinstance(e, dict) and e.get("resource", {}).get("resourceType") == "Consent"]
    if len(consents) != 1:
        raise ShareRevoked("This share does not carry exactly one consent record, so it cannot be matched to "
                           "the patient's consent on the chain.")
    record = registry.get_consent(consent_id, patient=patient)
    if record is None:
        raise ShareRevoked("The consent network has no record of this share's consent.")
    if not record.scope_matches(cs.scope_hash(consents[0])):
        raise ShareRevoked("The records in this share are not the ones the patient consented to.")
    return "The consent record in the share matches the scope the patient signed on the chain."
