"""A share published through a real backend is fetched back through its gateway and opened.

Two backends: the embedded default (files kept locally, served by medvault's built-in read-only gateway) and a real
js-ipfs daemon on loopback (its own gateway). Revocation is checked on the embedded one: after unpinning, the same
link no longer opens, while a copy fetched before revocation stays readable (what revocation cannot do).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from sync import jwe, links, qr, receiver
from sync.errors import LinkInactive
from sync.gateway import Gateway
from sync.ipfs_backend import DirectoryBlobStorage, EmbeddedContentStore

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:  # a bare `pytest` does not put the root on sys.path; the peer helpers need it
    sys.path.insert(0, _ROOT)

NOW = 1_800_000_000
BUNDLE = {"resourceType": "Bundle", "type": "collection", "entry": [
    {"resource": {"resourceType": "Patient", "id": "p", "name": [{"text": "Amara Okafor"}]}},
    {"resource": {"resourceType": "Consent", "id": "c", "status": "active", "scope": {"text": "share"},
                  "category": [{"text": "share"}]}},
]}


def _share_file() -> tuple[bytes, bytes]:
    token, key = jwe.encrypt(json.dumps(BUNDLE).encode(), cty=jwe.CTY_FHIR)
    return token.encode("ascii"), key


def test_embedded_gateway_publish_open_then_revoke(tmp_path):
    store = EmbeddedContentStore(DirectoryBlobStorage(tmp_path / "blobs"))
    data, key = _share_file()
    with Gateway(store.storage.get) as gw:
        store.gateway_base = gw.base_url
        cid = store.add(data)
        link = links.build_shlink(links.ShlPayload(url=store.gateway_url(cid), key=key, flag="U",
                                                   exp=NOW + 3600, label="For Dr. Rivera"))
        png = qr.write_png(link, tmp_path / "share.png")
        first = receiver.open_link(png, recipient="Dr. Rivera", allow_local_http=True, now=NOW)
        assert first.bundles == [BUNDLE] and first.check("cid").status == "passed"
        assert first.files[0].cid == cid

        store.unpin(cid)  # revoke: the gateway stops serving the file
        with pytest.raises(LinkInactive) as err:
            receiver.open_link(link, recipient="Dr. Rivera", allow_local_http=True, now=NOW)
        assert err.value.user_message.endswith(".")
    # The copy fetched before revocation is still in the first receiver's hands.
    assert first.bundles == [BUNDLE]


@pytest.mark.integration
def test_real_ipfs_node_publish_and_open_through_its_gateway(tmp_path):
    from sync.ipfs_node import IpfsNodeStore
    from tests.peers.ipfs import running_ipfs_node

    data, key = _share_file()
    with running_ipfs_node() as node:
        with IpfsNodeStore(node.api_multiaddr, node.gateway_url, timeout=60) as store:
            cid = store.add(data)
            url = store.gateway_url(cid)
            link = links.build_shlink(links.ShlPayload(url=url, key=key, flag="U", exp=NOW + 60, label="IPFS"))
            result = receiver.open_link(qr.write_png(link, tmp_path / "s.png"), recipient="Dr. Rivera",
                                        allow_local_http=True, now=NOW)
    assert result.bundles == [BUNDLE]
    assert result.check("cid").status == "passed" and result.files[0].cid == cid
