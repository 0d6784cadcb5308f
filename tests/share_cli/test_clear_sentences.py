"""Inputs that used to end in "an unexpected error stopped this command", and a closed pipe: each now gets one
plain sentence (or, for the pipe, quiet), as the issue's reproductions asked."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest

from sync import jwe, links
from sync.errors import DecryptionFailed, LinkInvalid
from tests.conftest import PASSPHRASE, ROOT, TEST_PROFILE, run_cli
from tests.share_cli.conftest import cli_in, env_for

UNEXPECTED = "unexpected error"


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _one_sentence(res) -> str:
    err = res.err.strip()
    assert res.code == 1, (res.code, res.out, res.err)
    assert UNEXPECTED not in err and len(err.splitlines()) == 1 and err.endswith("."), err
    return err


@pytest.mark.parametrize("exp", [b"1e999", b"-1e999", b"1e300", b"1" + b"0" * 30])
def test_an_absurd_expiry_is_a_damaged_link(exp):
    link = "shlink:/" + _b64u(b'{"url":"https://example.org/x","key":"' + b"A" * 43 + b'","flag":"U","exp":' + exp
                              + b"}")
    with pytest.raises(LinkInvalid) as err:
        links.parse_link(link)
    assert "expiry" in err.value.user_message
    res = run_cli(["open", link], env={})
    assert "expiry" in _one_sentence(res)


def test_a_very_long_argument_to_open_is_neither_a_link_nor_a_file():
    res = run_cli(["open", "a" * 300], env={})
    assert "neither a share link nor an image file" in _one_sentence(res)
    res = run_cli(["share", "create", "--type", "Condition", "--to", "b" * 300], env={"MEDVAULT_VAULT": "/nonexistent"})
    assert "card" in _one_sentence(res)


def test_a_deeply_nested_jwe_header_is_not_an_encrypted_file():
    header = _b64u(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(DecryptionFailed):
        jwe.decrypt(header + "..aaaa.bbbb.cccc", b"k" * 32)


def test_a_deeply_nested_vault_header_is_a_damaged_header(tmp_path):
    from vault.store import Vault
    folder = tmp_path / "vault"
    Vault.create(folder, PASSPHRASE, kdf_profile=TEST_PROFILE)[0].close()
    (folder / "vault.header").write_bytes(b"[" * 30_000 + b"]" * 30_000)
    res = cli_in(folder, "list")
    _one_sentence(res)


def test_list_into_a_pipe_closed_early_ends_quietly(tmp_path):
    """``medvault list | head -1``: the reader goes away after one line; medvault stops without a word."""
    from vault.records.importer import ImportOptions, ImportService
    from vault.store import Vault
    folder = tmp_path / "vault"
    vault, _ = Vault.create(folder, PASSPHRASE, kdf_profile=TEST_PROFILE)
    with vault:
        lines = [json.dumps({"resourceType": "Observation", "id": f"o{i}", "status": "final",
                             "code": {"text": "Heart rate"}, "effectiveDateTime": "2021-01-01",
                             "valueQuantity": {"value": i}}) for i in range(3000)]
        (tmp_path / "obs.ndjson").write_text("\n".join(lines) + "\n")
        ImportService(vault, ImportOptions(validation="structural")).import_file(tmp_path / "obs.ndjson")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDVAULT_")}
    env.update(env_for(folder))
    reader = subprocess.Popen(["head", "-n", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    # 3,000 lines are far more than a pipe holds, so medvault is still writing when head has gone.
    proc = subprocess.Popen([sys.executable, "-m", "app", "list", "--limit", "100000"], cwd=ROOT, env=env,
                            stdout=reader.stdin, stderr=subprocess.PIPE)
    reader.stdin.close()  # only head holds the pipe's reading end now
    first = reader.stdout.read()
    reader.wait(timeout=120)
    err = proc.communicate(timeout=120)[1].decode()
    assert len(first.splitlines()) == 1
    assert err == "", err
    assert proc.returncode == 141, proc.returncode  # 128 + SIGPIPE: what a Unix tool reports for a closed pipe
