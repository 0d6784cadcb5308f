"""One share through a real js-ipfs node: published with the node backend, opened by ``medvault open`` (a real
process) through the node's own HTTP gateway."""

from __future__ import annotations

import json
from datetime import timedelta

from sync import shares
from sync.ipfs_node import IpfsNodeStore
from tests.conftest import PASSPHRASE, run_medvault
from tests.peers.ipfs import running_ipfs_node
from tests.share_cli.conftest import env_for, record_ids, shared_ids
from vault.store import Vault


def test_share_through_a_real_ipfs_node(patient_vault):
    expected = record_ids(patient_vault, "Condition")
    with running_ipfs_node() as node:
        with IpfsNodeStore(node.api_multiaddr, gateway_base=node.gateway_url) as store:
            with Vault.unlock(patient_vault, PASSPHRASE) as vault:
                created = shares.create_share(vault, shares.Selection(types=("Condition",)),
                                              expires=timedelta(days=1), store=store, backend="ipfs")
            assert created.url == f"{node.gateway_url}/ipfs/{created.cid}"
            assert store.cat(created.cid)  # the node holds it under the CID we computed
            res = run_medvault(["open", created.link, "--allow-local-http", "--json"], env_for(None))
            assert res.code == 0, res.err
            opened = json.loads(res.out)
            assert shared_ids(opened) == expected
            assert {c["name"]: c["status"] for c in opened["checks"]}["cid"] == "passed"

            # Revoking a node-backed share needs that node; the CLI (embedded backend only) says so, changing nothing.
            res = run_medvault(["share", "revoke", created.id], env_for(patient_vault))
            assert res.code == 1 and "not configured here" in res.err
            with Vault.unlock(patient_vault, PASSPHRASE) as vault:
                sentence = shares.revoke_share(vault, created.id, store=store)
                assert "cannot be recalled" in sentence
                states = {r["id"]: r["state"] for r in shares.list_shares(vault)}
                assert states[created.id] == "revoked"
