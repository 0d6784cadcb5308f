"""After creating a vault and importing a real patient, no file in the vault folder or the temp directory holds the
patient's name or identifiers, the passphrase, the recovery key, or the vault key, in any common encoding."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import PASSPHRASE, ROOT, TEST_PROFILE


def _needles(patient_file: Path, secrets: dict[str, str]) -> dict[str, bytes]:
    bundle = json.loads(patient_file.read_text(encoding="utf-8"))
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    name = patient["name"][0]
    needles = {"family name": name["family"], "given name": name["given"][0],
               "street": patient["address"][0]["line"][0], "passphrase": PASSPHRASE,
               "recovery key": secrets["recovery_key"]}
    for ident in patient.get("identifier", []):
        if "ssn" in ident.get("system", "").lower():
            needles["ssn"] = ident["value"]
    out = {label: value.encode("utf-8") for label, value in needles.items()}
    out["passphrase utf-16"] = PASSPHRASE.encode("utf-16-le")
    key = bytes.fromhex(secrets["vault_key"])
    out.update({"vault key": key, "vault key hex": key.hex().encode(), "vault key b64": base64.b64encode(key)})
    return out


def test_no_plaintext_in_vault_folder_or_temp(tmp_path, fixtures_dir):
    patient_file = sorted((fixtures_dir / "synthea").glob("[A-Z]*_*.json"), key=lambda p: p.stat().st_size)[0]
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    folder = tmp_path / "vault"
    script = textwrap.dedent(f"""
        import json, sys
        from vault.store import Vault
        from vault.records.importer import ImportService
        vault, key = Vault.create({str(folder)!r}, {PASSPHRASE!r}, kdf_profile={TEST_PROFILE!r})
        for bundle in ("hospitalInformation", "practitionerInformation"):
            pass
        ImportService(vault).import_paths(sorted(__import__("pathlib").Path({str(fixtures_dir / "synthea")!r})
                                                 .glob("*Information*.json")) + [{str(patient_file)!r}])
        with vault.read() as conn:
            count = conn.execute("SELECT count(*) FROM rec_resources").fetchone()[0]
        vault.change_passphrase({PASSPHRASE!r})
        vault.audit("export", resources=count)
        print(json.dumps({{"recovery_key": key, "vault_key": vault._vault_key.hex(), "count": count}}))
        vault.close()
    """)
    env = {**os.environ, "TMPDIR": str(scratch), "TEMP": str(scratch), "TMP": str(scratch)}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    secrets = json.loads(done.stdout.strip().splitlines()[-1])
    assert secrets["count"] > 100  # the patient's records really are in there
    needles = _needles(patient_file, secrets)
    files = [p for base in (folder, scratch) for p in base.rglob("*") if p.is_file()]
    assert any(p.name == "vault.db" for p in files)
    for path in files:
        data = path.read_bytes()
        for label, needle in needles.items():
            assert needle not in data, f"{label} found in clear in {path.relative_to(tmp_path)}"
