"""The consent network as the patient's app uses it: set it up, see its state, send what waits in the outbox.

Every share and revoke queues a signed consent change in the vault; ``sync_now`` sends it at once when the chain is
reachable and otherwise leaves it queued, so sharing never depends on the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

NOT_CONFIGURED = "not configured"


def settings_or_refuse(vault: Any) -> Any:
    from sync import consent_service
    from sync.errors import ChainMismatch
    settings = consent_service.load_settings(vault)
    if settings is None:
        raise ChainMismatch("No consent network is set up; use 'medvault chain deploy' or 'medvault chain connect'.")
    return settings


def sync_now(vault: Any) -> str:
    """Send what the outbox holds right away when the chain is reachable; offline, it simply waits there.
    Returns how it went, as words that fit "Consent on the chain: …"."""
    from sync import consent_service
    from sync.errors import ChainError
    try:
        report = consent_service.sync_outbox(vault)
    except ChainError as exc:
        return f"queued ({exc.user_message})"
    if report.unavailable is not None:
        return "queued; it will be sent when the consent network is reachable ('medvault chain sync')"
    if report.failed:
        return "refused by the consent network; see 'medvault chain status'"
    return "recorded"


def sync(vault: Any, rpc: str | None = None) -> Any:
    """Send every waiting consent change (through ``rpc`` this time, if given); returns the outbox's report."""
    from sync import consent_service
    settings = settings_or_refuse(vault)
    if rpc:
        settings = replace(settings, rpc=rpc)
    return consent_service.sync_outbox(vault, settings)


@dataclass
class ChainStatus:
    configured: bool
    reachable: bool
    detail: str                                   # one sentence fragment: reachable and membership, or why not
    rpc: str | None = None
    contract: str | None = None
    chain_id: int | None = None
    outbox: list[dict] = field(default_factory=list)   # id, kind, state, block, tx, reason, message, attempts

    def counts(self) -> dict[str, int]:
        return {state: sum(1 for r in self.outbox if r["state"] == state) for state in ("pending", "anchored",
                                                                                          "failed")}

    def as_json(self) -> dict:
        return {"configured": self.configured, "reachable": self.reachable, "detail": self.detail, "rpc": self.rpc,
                "contract": self.contract, "chain_id": self.chain_id, "outbox": self.outbox}


def status(vault: Any) -> ChainStatus:
    from sync import consent_service
    from sync.errors import ChainError
    settings = consent_service.load_settings(vault)
    with vault.read():
        entries = consent_service.outbox(vault).entries()
    reachable, detail = False, "no consent network is set up"
    if settings is not None:
        try:
            registry = consent_service.connect(settings)
            member = registry.is_member(vault.identity.eth_address)
            reachable, detail = True, "reachable; " + ("this vault is a member" if member else "not a member")
        except ChainError as exc:
            detail = exc.user_message
    from sync.audit_anchor import ANCHOR
    # consent changes only: the audit anchors that go along with them are bookkeeping (docs/chain.md)
    rows = [{"id": e.id, "kind": e.kind, "state": e.state, "block": e.block_number, "tx": e.tx_hash,
             "reason": e.reason, "message": e.message or e.last_error, "attempts": e.attempts} for e in entries
            if e.kind != ANCHOR]
    return ChainStatus(settings is not None, reachable, detail, settings.rpc if settings else None,
                       settings.contract if settings else None, settings.chain_id if settings else None, rows)


def deploy(vault: Any, rpc: str, *, pay_with_node_account: bool = False) -> Any:
    from sync import consent_service
    return consent_service.deploy(vault, rpc, pay_with_node_account=pay_with_node_account)


def connect(vault: Any, rpc: str, contract: str, *, pay_with_node_account: bool = False) -> tuple[Any, bool]:
    """Use an existing registry (refused if the address holds no consent registry); returns the saved settings
    and whether this vault's account is a member."""
    from sync import consent_service
    from sync.chain import Chain
    chain = Chain.connect(rpc)
    registry = chain.registry(contract)
    settings = consent_service.ChainSettings(rpc=rpc, contract=registry.address, chain_id=chain.chain_id,
                                             pay_with_node_account=pay_with_node_account)
    consent_service.save_settings(vault, settings)
    return settings, registry.is_member(vault.identity.eth_address)


def check_registrable(card: Any) -> None:
    from sync.errors import LinkInvalid
    if not card.address:
        raise LinkInvalid("That card has no chain address, so it cannot be registered as a practitioner.")


def register_practitioner(vault: Any, card: Any) -> Any:
    from sync import consent_service
    check_registrable(card)
    settings = settings_or_refuse(vault)
    registry = consent_service.connect(settings)
    return registry.register_practitioner(consent_service.sender_for(vault, settings, registry), card.address,
                                          card.did)


def add_member(vault: Any, address: str) -> Any:
    from sync import consent_service
    settings = settings_or_refuse(vault)
    registry = consent_service.connect(settings)
    return registry.add_member(consent_service.sender_for(vault, settings, registry), address)
