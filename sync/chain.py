"""Client for the ConsentRegistry contract. The only module in medvault that imports web3.

Two backends behind one class: any Ethereum JSON-RPC endpoint (a consortium's Besu/GoQuorum nodes, ganache in
tests) and the in-process EVM (eth-tester + py-evm) for the self-contained demo and unit tests.

Transactions are signed locally with a raw secp256k1 key handed in by the caller (the vault's own account or a
member relayer), so no node needs unlocked accounts; a node-managed account can be used instead by address.
Every failure surfaces as a typed ``sync.errors.ChainError`` with a sentence fit for a patient or clinician.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

import requests
from eth_account import Account
from eth_tester.exceptions import TransactionFailed
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address
from web3 import EthereumTesterProvider, HTTPProvider, Web3
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ProviderConnectionError,
    TimeExhausted,
    Web3RPCError,
)

import medvault_resources
from sync import consent_sign as cs
from sync.errors import (
    ChainError,
    ChainMismatch,
    ChainUnavailable,
    ConsentRejected,
    ConsentSignatureInvalid,
    NotAMember,
)

T = TypeVar("T")

# ``eth-tester:NAME`` in place of a JSON-RPC URL: the in-process chain this process published under NAME (the
# headless demo runs the services, which connect by URL, on an in-process EVM). Nothing outside the process can
# reach it, and it is gone when the process ends or ``withdraw_in_process`` is called.
IN_PROCESS_SCHEME = "eth-tester:"
_IN_PROCESS: dict[str, "Chain"] = {}

# Contract error name -> (error class, sentence for the user). Names come from ConsentRegistry.sol.
_REVERTS: dict[str, tuple[type[ConsentRejected], str]] = {
    "NotAdmin": (ConsentRejected, "Only the consent network's administrator can do this."),
    "NotMember": (NotAMember, "This account is not allowed to write to the consent network; ask its administrator."),
    "ZeroAddress": (ConsentRejected, "The consent network refused an empty address."),
    "SignatureExpired": (
        ConsentSignatureInvalid,
        "The signed change expired before it reached the consent network; it must be signed again.",
    ),
    "InvalidSignature": (ConsentSignatureInvalid, "The signature on this consent is not valid."),
    "NonceCancelled": (ConsentRejected, "The patient cancelled this change before it was sent."),
    "ConsentExists": (ConsentRejected, "A consent with this identifier is already recorded."),
    "UnknownConsent": (ConsentRejected, "The consent network has no record of this consent."),
    "AlreadyRevoked": (ConsentRejected, "This consent is already revoked."),
    "NotPatient": (ConsentSignatureInvalid, "Only the patient who gave this consent can revoke it."),
    "ExpiryInPast": (ConsentRejected, "The consent's expiry date has already passed."),
    "GranteeNotPractitioner": (ConsentRejected, "The recipient is not a registered practitioner."),
    "EmptyBatch": (ConsentRejected, "There were no access receipts to anchor."),
    "RootAlreadyAnchored": (ConsentRejected, "These access receipts are already anchored."),
}


def load_artifact() -> dict[str, Any]:
    return json.loads(medvault_resources.consent_registry_artifact())


@dataclass(frozen=True)
class TxResult:
    tx_hash: bytes
    block_number: int
    gas_used: int


@dataclass(frozen=True)
class Anchor:
    """Where an operation landed: found either from our own receipt or, for idempotence, from the event log."""

    block_number: int
    tx_hash: bytes


@dataclass(frozen=True)
class ConsentRecord:
    patient: str
    grantee: str
    granted_at: int
    expires_at: int
    scope_tag: bytes  # first 12 bytes of the scope hash; the full hash is in the ConsentGranted event
    revoked: bool

    def scope_matches(self, scope_hash: bytes) -> bool:
        return scope_hash[:12] == self.scope_tag


class Sender:
    """Who pays for and sends transactions: a raw key (signed here) or an account the node manages."""

    def __init__(self, private_key: bytes | None = None, node_account: str | None = None) -> None:
        if (private_key is None) == (node_account is None):
            raise ValueError("give exactly one of private_key or node_account")
        self._account = Account.from_key(private_key) if private_key is not None else None
        self.address = self._account.address if self._account else to_checksum_address(node_account)

    @property
    def local(self) -> bool:
        return self._account is not None

    def sign(self, tx: dict[str, Any]) -> bytes:
        assert self._account is not None
        return bytes(self._account.sign_transaction(tx).raw_transaction)


class Chain:
    """A connection to one chain. ``registry(address)`` binds it to a deployed contract."""

    def __init__(
        self, w3: Web3, *, timeout: float = 10.0, gas_price: int | None = None, receipt_timeout: float = 120.0
    ) -> None:
        self.w3 = w3
        self.timeout = timeout
        # Waiting for inclusion spans several blocks, so it has its own, longer bound than a single request.
        self.receipt_timeout = receipt_timeout
        self._gas_price_override = gas_price
        self.artifact = load_artifact()

    # ---- constructors ----------------------------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        rpc_url: str,
        *,
        expected_chain_id: int | None = None,
        timeout: float = 10.0,
        gas_price: int | None = None,
        receipt_timeout: float = 120.0,
    ) -> Chain:
        """Connect to a JSON-RPC endpoint. ``timeout`` bounds every request, so a node that accepts the
        connection but never answers fails fast instead of hanging the app."""
        if rpc_url.startswith(IN_PROCESS_SCHEME):
            published = _IN_PROCESS.get(rpc_url[len(IN_PROCESS_SCHEME):])
            if published is None:
                raise ChainUnavailable()
            published.check_chain_id(expected_chain_id)
            return published
        provider = HTTPProvider(
            rpc_url,
            request_kwargs={"timeout": timeout},
            # Retrying a dead node only multiplies the wait; the outbox is the retry mechanism.
            exception_retry_configuration=None,
        )
        chain = cls(Web3(provider), timeout=timeout, gas_price=gas_price, receipt_timeout=receipt_timeout)
        chain.check_chain_id(expected_chain_id)
        return chain

    @classmethod
    def in_process(cls, publish_as: str | None = None) -> Chain:
        """A fresh in-process EVM (eth-tester + py-evm) with funded, node-managed test accounts; ``publish_as``
        makes ``connect("eth-tester:NAME")`` return it, for code in this process that connects by URL."""
        chain = cls(Web3(EthereumTesterProvider()))
        if publish_as is not None:
            _IN_PROCESS[publish_as] = chain
        return chain

    @staticmethod
    def withdraw_in_process(name: str) -> None:
        """``eth-tester:NAME`` answers as an unreachable node from now on (until published again)."""
        _IN_PROCESS.pop(name, None)

    # ---- basic queries ---------------------------------------------------------------------------------------

    @cached_property
    def chain_id(self) -> int:
        return self._call(lambda: self.w3.eth.chain_id)

    def check_chain_id(self, expected: int | None) -> None:
        actual = self.chain_id
        if expected is not None and actual != expected:
            raise ChainMismatch(
                f"The consent network answered as chain {actual}, not the configured chain {expected}; "
                "check the chain settings."
            )

    def block_timestamp(self) -> int:
        return self._call(lambda: self.w3.eth.get_block("latest")["timestamp"])

    @property
    def tester(self) -> Any:
        """The eth-tester backend (in-process only), for tests that move time."""
        return self.w3.provider.ethereum_tester  # type: ignore[attr-defined]

    def node_accounts(self) -> list[str]:
        return list(self._call(lambda: self.w3.eth.accounts))

    # ---- contracts -------------------------------------------------------------------------------------------

    def deploy(self, sender: Sender) -> ConsentRegistry:
        factory = self.w3.eth.contract(abi=self.artifact["abi"], bytecode=self.artifact["bytecode"])
        fees = self._fee_fields()
        tx = self._call(lambda: factory.constructor().build_transaction({"from": sender.address, "gas": 0, **fees}))
        tx.pop("gas")
        result = self._transact(sender, tx)
        receipt = self._call(lambda: self.w3.eth.get_transaction_receipt(result.tx_hash))
        return self.registry(receipt["contractAddress"], from_block=result.block_number)

    def registry(self, address: str, *, from_block: int = 0) -> ConsentRegistry:
        """Bind to a deployed registry, refusing an address with no code or with some other contract's code."""
        try:
            address = to_checksum_address(address)
        except ValueError as exc:
            raise ChainMismatch("The configured consent registry address is not a valid address.") from exc
        code = bytes(self._call(lambda: self.w3.eth.get_code(address)))
        if not code:
            raise ChainMismatch("There is no consent registry at the configured address on this network.")
        if not _same_runtime(code, self.artifact):
            raise ChainMismatch("The contract at the configured address is not a medvault consent registry.")
        return ConsentRegistry(self, address, from_block)

    # ---- transactions ----------------------------------------------------------------------------------------

    def _fee_fields(self) -> dict[str, int]:
        """Legacy gas pricing works everywhere: free-gas consortium networks (price 0, no or zero base fee),
        pre-London chains, and London chains (a legacy price at or above the base fee is accepted)."""
        if self._gas_price_override is not None:
            return {"gasPrice": self._gas_price_override}
        price = self._call(lambda: self.w3.eth.gas_price)
        base = self._call(lambda: self.w3.eth.get_block("latest").get("baseFeePerGas"))
        if base:
            # Head-room for a base fee that rises before inclusion.
            price = max(price, 2 * base)
        return {"gasPrice": price}

    def _transact(self, sender: Sender, tx: dict[str, Any]) -> TxResult:
        tx = dict(tx)
        tx.setdefault("from", sender.address)
        tx["chainId"] = self.chain_id
        # Estimating first is also a dry run: a revert surfaces here with its reason, before anything is sent.
        estimate = self._call(lambda: self.w3.eth.estimate_gas(tx))
        tx["gas"] = estimate + estimate // 5 + 10_000
        if sender.local:
            tx["nonce"] = self._call(lambda: self.w3.eth.get_transaction_count(sender.address, "pending"))
            raw = sender.sign(tx)
            tx_hash = self._call(lambda: self.w3.eth.send_raw_transaction(raw))
        else:
            tx_hash = self._call(lambda: self.w3.eth.send_transaction(tx))
        try:
            receipt = self._call(
                lambda: self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout)
            )
        except TimeExhausted as exc:
            raise ChainUnavailable(
                "The consent network has not confirmed the change yet; it will be checked again later."
            ) from exc
        if receipt["status"] != 1:
            self._explain_failure(tx, receipt["blockNumber"])
        return TxResult(bytes(tx_hash), receipt["blockNumber"], receipt["gasUsed"])

    def _explain_failure(self, tx: dict[str, Any], block: int) -> None:
        """Re-run a failed transaction as a call at its block to recover the revert reason."""
        call = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
        self._call(lambda: self.w3.eth.call(call, block))
        raise ConsentRejected("The consent network refused this change.", reason="reverted")

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except ChainError:
            raise
        except ContractCustomError as exc:
            raise self._decode_revert(exc.data) from None
        except ContractLogicError as exc:
            data = exc.data
            if isinstance(data, dict):
                # ganache puts the revert data under "result"; other nodes under "data".
                data = data.get("result") or data.get("data")
            data = data if isinstance(data, str) else None
            if data and len(data) >= 10 and data[:10] in self._error_selectors:
                raise self._decode_revert(data) from None
            raise ConsentRejected(
                "The consent network refused this change.", reason=str(exc.message or exc)
            ) from None
        except TransactionFailed as exc:
            # The in-process EVM reports reverts this way; the raw revert data sits in the exception chain.
            raise self._decode_revert(_tester_revert_data(exc)) from None
        except (requests.ConnectionError, requests.Timeout, ProviderConnectionError, ConnectionError) as exc:
            raise ChainUnavailable() from exc
        except OSError as exc:
            raise ChainUnavailable() from exc
        except Web3RPCError as exc:
            text = str(exc).lower()
            if "insufficient funds" in text:
                raise ChainUnavailable(
                    "The account that pays for consent changes has no funds; the change is saved and will be "
                    "sent later."
                ) from exc
            raise ChainError(f"The consent network reported an error: {_first_line(exc)}") from exc
        except ValueError as exc:
            # Malformed answers (not JSON, wrong shape) from something that is not an Ethereum node.
            raise ChainMismatch("The configured address did not answer like an Ethereum node.") from exc

    @cached_property
    def _error_selectors(self) -> dict[str, str]:
        out = {}
        for item in self.artifact["abi"]:
            if item["type"] == "error":
                sig = f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"
                out["0x" + function_signature_to_4byte_selector(sig).hex()] = item["name"]
        return out

    def _decode_revert(self, data: Any) -> ConsentRejected:
        name = self._error_selectors.get(str(data)[:10], "")
        cls, sentence = _REVERTS.get(name, (ConsentRejected, "The consent network refused this change."))
        return cls(sentence, reason=name or str(data))


class ConsentRegistry:
    """Operations on one deployed ConsentRegistry."""

    def __init__(self, chain: Chain, address: str, from_block: int = 0) -> None:
        self.chain = chain
        self.address = to_checksum_address(address)
        # Event searches start at the deployment block, so idempotence checks stay cheap on long chains.
        self.from_block = from_block
        self.contract = chain.w3.eth.contract(address=self.address, abi=chain.artifact["abi"])

    @property
    def domain(self) -> cs.Domain:
        return cs.Domain(chain_id=self.chain.chain_id, verifying_contract=self.address)

    # ---- administration ----------------------------------------------------------------------------------

    def add_member(self, sender: Sender, member: str) -> TxResult:
        return self._send(sender, self.contract.functions.addMember(to_checksum_address(member)))

    def remove_member(self, sender: Sender, member: str) -> TxResult:
        return self._send(sender, self.contract.functions.removeMember(to_checksum_address(member)))

    def register_practitioner(self, sender: Sender, practitioner: str, did: str) -> TxResult:
        did_hash = keccak(text=did)
        fn = self.contract.functions.registerPractitioner(to_checksum_address(practitioner), did_hash)
        return self._send(sender, fn)

    def deactivate_practitioner(self, sender: Sender, practitioner: str) -> TxResult:
        return self._send(sender, self.contract.functions.deactivatePractitioner(to_checksum_address(practitioner)))

    # ---- signed operations -------------------------------------------------------------------------------

    def grant(self, sender: Sender, g: cs.Grant, sig: cs.Signature) -> TxResult:
        r, vs = sig.compact()
        fn = self.contract.functions.grant(
            g.consent_id,
            to_checksum_address(g.patient),
            to_checksum_address(g.grantee),
            g.expires_at,
            g.scope_hash,
            g.nonce,
            g.deadline,
            r,
            vs,
        )
        return self._send(sender, fn)

    def revoke(self, sender: Sender, rv: cs.Revoke, sig: cs.Signature) -> TxResult:
        r, vs = sig.compact()
        fn = self.contract.functions.revoke(to_checksum_address(rv.patient), rv.consent_id, rv.nonce, rv.deadline,
                                            r, vs)
        return self._send(sender, fn)

    def cancel_nonces(self, sender: Sender, c: cs.CancelNonces, sig: cs.Signature) -> TxResult:
        r, vs = sig.compact()
        fn = self.contract.functions.cancelNonces(to_checksum_address(c.patient), c.nonce_floor, c.deadline, r, vs)
        return self._send(sender, fn)

    def log_access(self, sender: Sender, rc: cs.AccessReceipt, sig: cs.Signature) -> TxResult:
        r, vs = sig.compact()
        fn = self.contract.functions.logAccess(
            to_checksum_address(rc.patient), rc.consent_id, to_checksum_address(rc.accessor), rc.accessed_at,
            rc.nonce, r, vs
        )
        return self._send(sender, fn)

    def anchor_batch(self, sender: Sender, root: bytes, count: int) -> TxResult:
        return self._send(sender, self.contract.functions.anchorBatch(root, count))

    # ---- reads -------------------------------------------------------------------------------------------

    # Reads name the patient as well as the id: anyone who saw a link can register its id under their own key,
    # so "the consent with this id" is only meaningful together with whose it is.

    def is_active(self, consent_id: bytes, accessor: str, *, patient: str) -> bool:
        fn = self.contract.functions.isActive(to_checksum_address(patient), consent_id, to_checksum_address(accessor))
        return bool(self.chain._call(fn.call))

    def get_consent(self, consent_id: bytes, *, patient: str) -> ConsentRecord | None:
        p, g, granted, expires, tag, revoked = self.chain._call(
            self.contract.functions.getConsent(to_checksum_address(patient), consent_id).call
        )
        if int(p, 16) == 0:
            return None
        return ConsentRecord(p, g, granted, expires, bytes(tag), revoked)

    def is_member(self, address: str) -> bool:
        return bool(self.chain._call(self.contract.functions.isMember(to_checksum_address(address)).call))

    def admin(self) -> str:
        return self.chain._call(self.contract.functions.admin().call)

    def practitioner(self, address: str) -> tuple[bytes, bool]:
        did_hash, active = self.chain._call(
            self.contract.functions.practitioners(to_checksum_address(address)).call
        )
        return bytes(did_hash), active

    def practitioner_state(self, address: str, did: str) -> str:
        """"active" when ``address`` is registered as a practitioner under exactly ``did`` and not deactivated,
        "inactive" when registered under ``did`` but deactivated, "unknown" otherwise (never registered, or
        registered under another key: an address claimed by someone else's note proves nothing)."""
        did_hash, active = self.practitioner(address)
        if did_hash != bytes(keccak(text=did)):
            return "unknown"
        return "active" if active else "inactive"

    def nonce_floor(self, patient: str) -> int:
        return self.chain._call(self.contract.functions.nonceFloor(to_checksum_address(patient)).call)

    def anchored_at(self, root: bytes) -> int:
        return self.chain._call(self.contract.functions.anchoredAt(root).call)

    # ---- events (an auditor rebuilds the history from these alone) ---------------------------------------

    def events(self, name: str, **filters: Any) -> list[dict[str, Any]]:
        event = getattr(self.contract.events, name)
        logs = self.chain._call(
            lambda: event.get_logs(from_block=self.from_block, argument_filters=filters or None)
        )
        return [
            {
                "event": name,
                "block_number": log["blockNumber"],
                "tx_hash": bytes(log["transactionHash"]),
                "log_index": log["logIndex"],
                "args": dict(log["args"]),
            }
            for log in logs
        ]

    def find_grant(self, consent_id: bytes, *, patient: str) -> Anchor | None:
        return _first_anchor(self.events("ConsentGranted", consentId=consent_id,
                                         patient=to_checksum_address(patient)))

    def find_revoke(self, consent_id: bytes, *, patient: str) -> Anchor | None:
        return _first_anchor(self.events("ConsentRevoked", consentId=consent_id,
                                         patient=to_checksum_address(patient)))

    def find_access(self, consent_id: bytes, receipt_digest: bytes) -> Anchor | None:
        logs = self.events("AccessLogged", consentId=consent_id)
        return _first_anchor([e for e in logs if bytes(e["args"]["receiptDigest"]) == receipt_digest])

    def find_batch(self, root: bytes) -> Anchor | None:
        return _first_anchor(self.events("BatchAnchored", root=root))

    def find_cancel(self, patient: str, nonce_floor: int) -> Anchor | None:
        logs = self.events("NoncesCancelled", patient=to_checksum_address(patient))
        return _first_anchor([e for e in logs if e["args"]["nonceFloor"] == nonce_floor])

    def _send(self, sender: Sender, fn: Any) -> TxResult:
        fees = self.chain._fee_fields()
        tx = self.chain._call(lambda: fn.build_transaction({"from": sender.address, "gas": 0, **fees}))
        tx.pop("gas")  # re-estimated in _transact, where a revert is decoded into a typed error
        return self.chain._transact(sender, tx)


def _same_runtime(code: bytes, artifact: dict[str, Any]) -> bool:
    """Deployed code equals the artifact's runtime code outside the immutable slots the constructor filled."""
    expected = bytearray.fromhex(artifact["deployedBytecode"][2:])
    if len(code) != len(expected):
        return False
    actual = bytearray(code)
    for refs in artifact.get("immutableReferences", {}).values():
        for ref in refs:
            start, length = ref["start"], ref["length"]
            actual[start : start + length] = bytes(length)
            expected[start : start + length] = bytes(length)
    return actual == expected


def _tester_revert_data(exc: BaseException) -> str:
    seen: BaseException | None = exc
    while seen is not None:
        for arg in seen.args:
            if isinstance(arg, (bytes, bytearray)):
                return "0x" + bytes(arg).hex()
            if isinstance(arg, BaseException):
                for inner in arg.args:
                    if isinstance(inner, (bytes, bytearray)):
                        return "0x" + bytes(inner).hex()
        seen = seen.__cause__ or seen.__context__
    return ""


def _first_anchor(events: list[dict[str, Any]]) -> Anchor | None:
    if not events:
        return None
    return Anchor(events[0]["block_number"], events[0]["tx_hash"])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
