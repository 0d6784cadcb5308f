"""Inputs that used to end in "an unexpected error stopped this command": each now gets a plain sentence saying
what is wrong with it, and the vault is unchanged."""

from __future__ import annotations

import json
import time

import pytest

from records_support import rows

UNEXPECTED = "unexpected error"


@pytest.fixture
def vdir(make_vault):
    v = make_vault()
    folder = v.folder
    v.close()
    return folder


def _import(cli, vdir, *args):
    from tests.conftest import PASSPHRASE
    return cli(["--vault", str(vdir), "import", *args], {"MEDVAULT_PASSPHRASE": PASSPHRASE})


def _counts(vdir):
    from tests.conftest import PASSPHRASE
    from vault.store import Vault
    with Vault.unlock(vdir, PASSPHRASE) as v:
        return rows(v)


def _refused(res, *words: str) -> None:
    assert res.code == 1, (res.code, res.out, res.err)
    err = res.err.strip()
    assert UNEXPECTED not in err and len(err.splitlines()) == 1 and err.endswith("."), err
    for w in words:
        assert w in err, err


BIG_INT = "9" * 4400


@pytest.mark.parametrize("name, text, words", [
    ("bundle-type-object.json",
     json.dumps({"resourceType": "Bundle", "type": {"coding": []}, "entry": []}), ["Bundle", "type"]),
    ("bundle-type-list.json",
     json.dumps({"resourceType": "Bundle", "type": ["collection"], "entry": []}), ["Bundle", "type"]),
    ("entry-without-resourcetype.json",
     json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"id": "x"}}]}),
     ["Entry 1", "resourceType"]),
    ("big-integer.json",
     '{"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "x"}, "valueInteger": '
     + BIG_INT + "}", ["number"]),
    ("big-integer.ndjson",
     '{"resourceType": "Patient", "id": "a"}\n{"resourceType": "Patient", "id": "b", "x": ' + BIG_INT + "}\n",
     ["Line 2", "number"]),
    ("lone-surrogate.json", '{"resourceType": "Patient", "id": "p", "name": [{"text": "\\ud800"}]}', ["Unicode"]),
    ("lone-surrogate.ndjson", '{"resourceType": "Patient", "id": "a"}\n'
     '{"resourceType": "Patient", "id": "p", "name": [{"text": "x\\udc00y"}]}\n', ["Unicode"]),
])
@pytest.mark.parametrize("structural", [False, True], ids=["full", "structural-only"])
def test_malformed_files_get_a_sentence(cli, vdir, tmp_path, name, text, words, structural):
    path = tmp_path / name
    path.write_text(text)
    before = _counts(vdir)
    res = _import(cli, vdir, *(["--structural-only"] if structural else []), str(path))
    _refused(res, *words)
    assert _counts(vdir) == before


def test_a_surrogate_pair_is_still_fine(cli, vdir, tmp_path):
    path = tmp_path / "emoji.json"
    path.write_text('{"resourceType": "Patient", "id": "p", "name": [{"text": "Ana \\ud83d\\ude00"}]}')
    res = _import(cli, vdir, "--structural-only", str(path))
    assert res.code == 0, res.err


@pytest.mark.parametrize("text, words", [
    ("shc:/" + "5" * 5000 + "/2/" + "56" * 10, ["QR chunk"]),
    ("shc:/1/" + "9" * 5000 + "/" + "56" * 10, ["QR chunk"]),
    ("shc:/1/999999999999/" + "56" * 10, ["QR chunk"]),
])
def test_health_card_qr_text_with_absurd_chunk_numbers(cli, vdir, text, words):
    started = time.monotonic()
    res = _import(cli, vdir, text)
    _refused(res, *words)
    assert time.monotonic() - started < 20, "a huge chunk count must not be counted through"
