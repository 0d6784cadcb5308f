"""Sharing with the consent chain, end to end from the command line, against a real JSON-RPC node (ganache) with
free gas, as a consortium network runs: the patient deploys the registry and registers the clinician; a directed
share's grant is recorded on chain; the clinician's receiver checks the consent and logs a signed access receipt;
revoking revokes on chain, and the receiver then refuses before fetching anything. Offline, consent changes wait in
the outbox and are sent when the node is back."""

from __future__ import annotations

import json
import re

from tests.peers.ganache import Ganache
from tests.share_cli.conftest import cli_in, free_port, serving


def _ok(result):
    assert result.code == 0, (result.code, result.err, result.out)
    return result


def test_directed_share_consent_on_a_real_chain(patient_vault, clinician_vault, stranger_vault, tmp_path):
    node = Ganache(tmp_path / "chain", free_gas=True)
    with node:
        deployed = _ok(cli_in(patient_vault, "chain", "deploy", "--rpc", node.url))
        contract = re.search(r"0x[0-9a-fA-F]{40}", deployed.out).group(0)
        _ok(cli_in(clinician_vault, "chain", "connect", "--rpc", node.url, "--contract", contract))
        card = tmp_path / "card.txt"
        card.write_text(_ok(cli_in(clinician_vault, "card", "--name", "Dr Chain")).out.strip())
        _ok(cli_in(patient_vault, "chain", "register", str(card)))
        # The clinician's clinic is a member of the consortium (here the admin is the vault that deployed), so the
        # clinician's access receipts may be sent; before that the network refuses them.
        from sync.links import card_from_link
        _ok(cli_in(patient_vault, "chain", "member", card_from_link(card.read_text()).address))

        port = free_port()
        created = json.loads(_ok(cli_in(patient_vault, "share", "create", "--type", "Condition", "--to", str(card),
                                        "--gateway", f"http://127.0.0.1:{port}", "--json")).out)
        assert created["chain"] == "recorded"
        with serving(patient_vault, port):
            opened = json.loads(_ok(cli_in(clinician_vault, "open", created["link"], "--allow-local-http",
                                           "--check-chain", "--json")).out)
        status = {c["name"]: c["status"] for c in opened["checks"]}
        assert status["consent"] == "passed" and status["consent-scope"] == "passed"

        clinician_status = json.loads(_ok(cli_in(clinician_vault, "chain", "status", "--json")).out)
        assert clinician_status["reachable"]
        assert [(e["kind"], e["state"]) for e in clinician_status["outbox"]] == [("access", "anchored")], \
            [(e["reason"], e["message"]) for e in clinician_status["outbox"]]

        revoked = _ok(cli_in(patient_vault, "share", "revoke", created["id"]))
        assert "cannot be recalled" in revoked.out
        assert "Revocation on the consent chain: recorded" in revoked.out
        refused = cli_in(clinician_vault, "open", created["link"], "--allow-local-http", "--check-chain")
        assert refused.code == 1 and "revoked" in refused.err

        patient_status = json.loads(_ok(cli_in(patient_vault, "chain", "status", "--json")).out)
        assert [(e["kind"], e["state"]) for e in patient_status["outbox"]] == [("grant", "anchored"),
                                                                                ("revoke", "anchored")]
        audit = json.loads(_ok(cli_in(patient_vault, "audit", "--json")).out)
        assert {"share", "revoke"} <= {e["event"] for e in audit}

        # The chain is down: a new share still works, its grant waits, and nothing is lost.
        node.stop()
        offline = json.loads(_ok(cli_in(patient_vault, "share", "create", "--type", "Condition",
                                        "--gateway", f"http://127.0.0.1:{port}", "--json")).out)
        assert offline["chain"].startswith("queued")
        waiting = json.loads(_ok(cli_in(patient_vault, "chain", "status", "--json")).out)
        assert not waiting["reachable"] and waiting["outbox"][-1]["state"] == "pending"
        stuck = cli_in(patient_vault, "chain", "sync")
        assert stuck.code == 1 and "1 still waiting" in stuck.out

        node.start()
        _ok(cli_in(patient_vault, "chain", "sync"))
        drained = json.loads(_ok(cli_in(patient_vault, "chain", "status", "--json")).out)
        assert [e["state"] for e in drained["outbox"]] == ["anchored"] * 3


def test_chain_commands_without_a_network_say_what_to_do(clinician_vault):
    status = _ok(cli_in(clinician_vault, "chain", "status"))
    assert "no consent network is set up" in status.out
    result = cli_in(clinician_vault, "chain", "sync")
    assert result.code == 1 and "chain deploy" in result.err
    closed = cli_in(clinician_vault, "chain", "deploy", "--rpc", f"http://127.0.0.1:{free_port()}")
    assert closed.code == 1 and "cannot be reached" in closed.err


def test_a_share_whose_consent_record_was_swapped_is_refused():
    """The key and the link are genuine, but the Consent inside does not hash to the scope signed on chain."""
    import os

    import pytest

    from sync import consent_service
    from sync.chain import Chain, Sender
    from sync.errors import ShareRevoked
    from tests.chain.chain_support import grant_for_share

    chain = Chain.in_process()
    admin = Sender(node_account=chain.node_accounts()[0])
    registry = chain.deploy(admin)
    patient_key = os.urandom(32)
    signed = {"resourceType": "Consent", "id": "c1", "status": "active"}
    now = chain.block_timestamp()
    grant, sig = grant_for_share(patient_key, registry.domain, share_key=b"k" * 32, fhir_consent=signed,
                                    expires_at=now + 3600, nonce=1, deadline=now + 3600)
    registry.grant(admin, grant, sig)
    def bundle(consent):
        return [{"resourceType": "Bundle", "entry": [{"resource": consent}]}]

    assert "matches" in consent_service.check_scope(registry, grant.consent_id, grant.patient, bundle(signed))
    with pytest.raises(ShareRevoked, match="not the ones the patient consented to"):
        consent_service.check_scope(registry, grant.consent_id, grant.patient, bundle({**signed, "status": "inactive"}))
    with pytest.raises(ShareRevoked, match="exactly one consent"):
        consent_service.check_scope(registry, grant.consent_id, grant.patient, bundle({"resourceType": "Patient"}))
