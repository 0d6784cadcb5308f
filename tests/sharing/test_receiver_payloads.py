"""The receiver parses a share once and keeps the decrypted bytes; saving imports exactly those bytes, so nothing is
encoded again and the vault's record of the source is the sender's own bytes. Share files use DEFLATE level 1."""

from __future__ import annotations

import hashlib
import json
import zlib
from urllib.parse import urlsplit

from sync import jwe, links, receiver
from vault.records.importer import ImportService

from test_receiver import open_local, rewrite_to


def test_the_spec_ips_share_is_saved_as_its_decrypted_bytes(server, shl_dir, vault_factory):
    spec = shl_dir / "spec"
    link = (spec / "IPS_IG-bundle-01-shl.txt").read_text()
    server.serve_bytes(urlsplit(links.parse_shlink(link).url).path, (spec / "IPS_IG-bundle-01-enc.txt").read_bytes())
    result = open_local(rewrite_to(link, server.origin))
    key = links.parse_shlink(link).key
    decrypted = jwe.decrypt((spec / "IPS_IG-bundle-01-enc.txt").read_bytes(), key).plaintext
    assert result.payloads() == [decrypted]
    assert json.loads(decrypted) == result.bundles[0]
    assert "plaintext" not in json.dumps(result.to_json())
    vault = vault_factory()
    report = ImportService(vault).import_data(result.payloads()[0], "shared.json")
    assert report.added == len(result.bundles[0]["entry"])
    with vault.read() as conn:
        stored = conn.execute("SELECT payload_sha256 FROM rec_sources WHERE id = ?", (report.source_id,)).fetchone()
    assert stored[0] == hashlib.sha256(decrypted).hexdigest()


def test_share_files_use_deflate_level_1_by_default():
    data = json.dumps({"resourceType": "Bundle", "type": "collection",
                       "entry": [{"resource": {"resourceType": "Basic", "id": str(i), "code": {"text": "x" * 50}}}
                                 for i in range(300)]}).encode()
    token, key = jwe.encrypt(data, cty=jwe.CTY_FHIR)
    assert jwe.decrypt(token, key).plaintext == data
    fast, slow = zlib.compressobj(1, zlib.DEFLATED, -15), zlib.compressobj(6, zlib.DEFLATED, -15)
    assert len(fast.compress(data) + fast.flush()) != len(slow.compress(data) + slow.flush())
    encrypted = len(links.b64u_decode(token.split(".")[3]))     # AES-GCM keeps the length of what it encrypts
    assert encrypted == len(zlib.compress(data, 1)) - 6            # raw DEFLATE: zlib's 2-byte header, 4-byte check


def test_a_single_resource_share_is_saved_as_it_came(server, vault_factory):
    resource = {"resourceType": "Patient", "id": "solo", "name": [{"family": "Example"}]}
    data = json.dumps(resource, indent=3).encode()
    token, key = jwe.encrypt(data, cty=jwe.CTY_FHIR)
    server.serve_bytes("/f", token.encode())
    link = links.build_shlink(links.ShlPayload(url=server.origin + "/f", key=key, flag="U"))
    result = receiver.open_link(link, recipient="Dr. Test", allow_local_http=True)
    assert result.bundles[0]["entry"][0]["resource"] == resource
    assert result.payloads() == [data]
    assert ImportService(vault_factory()).import_data(result.payloads()[0], "shared.json").added == 1
