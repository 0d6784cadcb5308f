"""Terminal injection: labels, names, ids, types and record text come from outside; printed raw, escape sequences
in them could rewrite what the terminal shows (turn "consent not_checked" into "passed", retitle the window, hide
lines) and a newline could forge a whole line. Everything the CLI prints is stripped of control characters, and
every value from outside is kept on its own line."""

from __future__ import annotations

import json
import re

import pytest

from sync import jwe, links
from sync.cid import compute_cid
from sync.gateway import Gateway
from tests.conftest import PASSPHRASE, TEST_PROFILE, run_cli
from tests.share_cli.conftest import cli_in

# ESC, CSI in its C1 form, BEL, DEL, a right-to-left override, a line separator and a carriage return: all ways to
# move the cursor, erase, retitle or reorder what a terminal shows.
HOSTILE = "\x1b[1A\x1b[2K\r  consent    passed\x9b2K\x07\x7f\u202e\u2028"
# What may never reach a terminal from outside data.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def _served_share(bundle: dict, label: str):
    data, key = jwe.encrypt_bundle(bundle)
    cid = compute_cid(data)
    gateway = Gateway(lambda c: data if c == cid else None).start()
    link = links.build_shlink(links.ShlPayload(url=f"{gateway.base_url}/ipfs/{cid}", key=key, flag="U",
                                               label=label))
    return gateway, link


HOSTILE_BUNDLE = {"resourceType": "Bundle", "type": "collection", "entry": [
    {"resource": {"resourceType": "Observation\x1b]0;pwned\x07", "id": "o1\x1b[31m\nconsent passed"}},
    {"resource": {"resourceType": "Patient", "id": "p1"}},
]}


def test_open_prints_no_control_characters_and_no_forged_lines():
    gateway, link = _served_share(HOSTILE_BUNDLE, HOSTILE[:80])
    try:
        res = run_cli(["open", link, "--allow-local-http"], env={})
    finally:
        gateway.stop()
    assert res.code == 0, res.err
    assert not _UNSAFE.search(res.out + res.err), repr(res.out)
    consent = [line for line in res.out.splitlines() if line.lstrip().startswith("consent")]
    assert len(consent) == 1 and "not_checked" in consent[0], res.out
    assert "passed" not in consent[0]


def test_open_json_escapes_what_a_terminal_would_act_on_and_keeps_the_values():
    gateway, link = _served_share(HOSTILE_BUNDLE, HOSTILE[:80])
    try:
        res = run_cli(["open", link, "--allow-local-http", "--json"], env={})
    finally:
        gateway.stop()
    assert res.code == 0, res.err
    assert not _UNSAFE.search(res.out), repr(res.out)
    parsed = json.loads(res.out)  # still valid JSON, and the values are exactly what was received
    assert parsed["label"] == HOSTILE[:80]
    assert parsed["bundles"][0]["entry"][0]["resource"]["id"] == "o1\x1b[31m\nconsent passed"


@pytest.fixture
def vdir(tmp_path):
    from vault.store import Vault
    folder = tmp_path / "vault"
    Vault.create(folder, PASSPHRASE, kdf_profile=TEST_PROFILE)[0].close()
    return folder


def test_records_from_an_imported_file_are_listed_without_control_characters(vdir, tmp_path):
    doc = {"resourceType": "Observation", "id": "o1", "status": "final", "effectiveDateTime": "2021-03-04",
           "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate" + HOSTILE}]}}
    path = tmp_path / "obs.json"
    path.write_text(json.dumps(doc))
    assert cli_in(vdir, "import", "--structural-only", str(path)).code == 0
    for args in (["list"], ["search", "Heart"]):
        res = cli_in(vdir, *args)
        assert res.code == 0, res.err
        assert not _UNSAFE.search(res.out), repr(res.out)
        assert len(res.out.strip().splitlines()) == 1 and "Heart rate" in res.out


def test_share_list_shows_a_card_name_without_control_characters(vdir, tmp_path):
    from vault import crypto
    doc = {"resourceType": "Patient", "id": "p1", "gender": "female"}
    (tmp_path / "p.json").write_text(json.dumps(doc))
    assert cli_in(vdir, "import", str(tmp_path / "p.json")).code == 0
    card = links.build_card(crypto.ed25519_new_seed(), name="Dr " + HOSTILE[:60], address=None, iat=1)
    made = cli_in(vdir, "share", "create", "--type", "Patient", "--to", card, "--label", "x" + HOSTILE[:60])
    assert made.code == 0, made.err
    assert not _UNSAFE.search(made.out + made.err), repr(made.err)
    res = cli_in(vdir, "share", "list")
    assert res.code == 0, res.err
    assert not _UNSAFE.search(res.out), repr(res.out)
    assert len(res.out.strip().splitlines()) == 1
