"""Sharing through a real js-ipfs node, all from the command line: the node chosen as the backend in settings, a
share published to it, opened by ``medvault open`` (a real process) through the node's own HTTP gateway, and
revoked, which unpins it from the node."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from tests.conftest import run_medvault
from tests.peers.ipfs import running_ipfs_node
from tests.share_cli.conftest import cli_in, env_for, record_ids, shared_ids


def _pinned(node, cid: str) -> bool:
    """Asks the node itself; it answers an error for a CID it does not pin."""
    req = urllib.request.Request(f"{node.api_url}/api/v0/pin/ls?arg={cid}&cid-base=base32", method="POST", data=b"")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return cid in json.loads(resp.read()).get("Keys", {})
    except urllib.error.HTTPError as exc:
        if b"not pinned" in exc.read():
            return False
        raise


def test_share_through_a_real_ipfs_node(patient_vault):
    expected = record_ids(patient_vault, "Condition")
    with running_ipfs_node() as node:
        chosen = cli_in(patient_vault, "share", "backend", "--ipfs-api", node.api_url,
                        "--ipfs-gateway", node.gateway_url)
        assert chosen.code == 0, chosen.err
        try:
            res = cli_in(patient_vault, "share", "create", "--type", "Condition", "--json")
            assert res.code == 0, res.err
            created = json.loads(res.out)
            assert created["url"] == f"{node.gateway_url}/ipfs/{created['cid']}"
            assert _pinned(node, created["cid"])  # the node holds it under the CID computed locally

            res = run_medvault(["open", created["link"], "--allow-local-http", "--json"], env_for(None))
            assert res.code == 0, res.err
            opened = json.loads(res.out)
            assert shared_ids(opened) == expected
            assert {c["name"]: c["status"] for c in opened["checks"]}["cid"] == "passed"

            revoked = cli_in(patient_vault, "share", "revoke", created["id"])
            assert revoked.code == 0, revoked.err
            assert "cannot be recalled" in revoked.out
            assert not _pinned(node, created["cid"])
            listed = json.loads(cli_in(patient_vault, "share", "list", "--json").out)
            assert {r["id"]: r["state"] for r in listed}[created["id"]] == "revoked"
        finally:
            assert cli_in(patient_vault, "share", "backend", "--embedded").code == 0


def test_an_ipfs_backend_where_no_node_answers_is_refused(patient_vault):
    from tests.share_cli.conftest import free_port
    before = cli_in(patient_vault, "share", "backend").out
    res = cli_in(patient_vault, "share", "backend", "--ipfs-api", f"http://127.0.0.1:{free_port()}",
                 "--ipfs-gateway", "http://127.0.0.1:8080")
    assert res.code == 1 and len(res.err.strip().splitlines()) == 1
    assert cli_in(patient_vault, "share", "backend").out == before
