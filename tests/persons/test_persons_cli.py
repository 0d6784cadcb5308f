"""A vault belongs to one person, from the command line: a second Synthea patient is refused with one sentence and
nothing written, kept apart with --other-person, and list, search, export and share work per person."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, PASSPHRASE, TEST_PROFILE, run_cli

from persons_support import table_counts

SYNTHEA = FIXTURES / "synthea"
NED = SYNTHEA / "Ned_Hintz_e4b9259d-0f54-48d1-a35d-b526729a4dfe.json"
BUSTER = SYNTHEA / "Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json"
REFUSAL = ("medvault: Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json: This file is about someone other "
           "than the person this vault belongs to, so nothing was imported; add --other-person to keep it as a "
           "separate person.\n")


def patient_id(path: Path) -> str:
    doc = json.loads(path.read_text(encoding="utf-8"))
    return next(e["resource"]["id"] for e in doc["entry"] if e["resource"]["resourceType"] == "Patient")


def counts_in(folder: Path) -> dict:
    from vault.store import Vault
    with Vault.unlock(folder, PASSPHRASE) as vault, vault.read() as conn:
        return table_counts(conn)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    from vault.store import Vault
    path = tmp_path_factory.mktemp("persons") / "vault"
    Vault.create(path, PASSPHRASE, kdf_profile=TEST_PROFILE)[0].close()
    return path


def cli(folder: Path, *args: str):
    return run_cli(["--vault", str(folder), *args])


def ok_json(folder: Path, *args: str):
    r = cli(folder, *args, "--json")
    assert r.code == 0, r.err
    return json.loads(r.out)


@pytest.fixture(scope="module")
def two_people(folder: Path) -> Path:
    support = sorted(str(p) for p in SYNTHEA.glob("*Information*.json"))
    r = cli(folder, "import", *support, str(NED))
    assert r.code == 0, r.err
    assert ok_json(folder, "persons")[0]["display_name"] == "Ned Hintz"

    before = counts_in(folder)
    refused = cli(folder, "import", str(BUSTER))
    assert (refused.code, refused.out, refused.err) == (1, "", REFUSAL)
    assert counts_in(folder) == before              # not one row written, not even a person
    assert "Buster" not in refused.err.split(":", 2)[2] and "Hoeger" not in refused.err.split(":", 2)[2]

    kept = cli(folder, "import", "--other-person", str(BUSTER))
    assert kept.code == 0, kept.err
    assert kept.out.startswith("Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json: Imported ")
    return folder


def test_persons_lists_the_vaults_own_person_first(two_people):
    people = ok_json(two_people, "persons")
    assert people == [{"id": 1, "display_name": "Ned Hintz", "birth_date": "1993-12-08", "is_primary": True},
                      {"id": 2, "display_name": "Buster Hoeger", "birth_date": "1988-03-16", "is_primary": False}]
    text = cli(two_people, "persons").out.splitlines()
    assert text == ["   1  Ned Hintz, born 1993-12-08  (the vault's own person)",
                    "   2  Buster Hoeger, born 1988-03-16"]


def test_list_is_per_person(two_people):
    def ids(*args):
        return {(r["rtype"], r["id"]) for r in ok_json(two_people, "list", "--limit", "100000", *args)}

    assert ids("--type", "Patient") == {("Patient", patient_id(NED))}
    assert ids("--type", "Patient", "--person", "2") == {("Patient", patient_id(BUSTER))}
    ned, buster = ids("--type", "Condition"), ids("--type", "Condition", "--person", "2")
    assert ned and buster and not ned & buster
    for path, mine in ((NED, ned), (BUSTER, buster)):
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert mine == {("Condition", e["resource"]["id"]) for e in doc["entry"]
                        if e["resource"]["resourceType"] == "Condition"}
    assert ids("--person", "1") == ids()


def test_an_unknown_person_is_one_sentence(two_people):
    r = cli(two_people, "list", "--person", "7")
    assert (r.code, r.err) == (1, "medvault: There is no such person in this vault; 'medvault persons' lists them.\n")


def test_search_is_per_person(two_people):
    mine = ok_json(two_people, "search", "Hoeger")
    theirs = ok_json(two_people, "search", "Hoeger", "--person", "2")
    assert not any(r["rtype"] == "Patient" for r in mine)
    assert any(r["rtype"] == "Patient" and r["id"] == patient_id(BUSTER) for r in theirs)


def test_export_is_per_person(two_people, tmp_path):
    out = tmp_path / "buster.json"
    r = cli(two_people, "export", "--person", "2", "-o", str(out))
    assert r.code == 0, r.err
    entries = [e["resource"] for e in json.loads(out.read_text())["entry"]]
    assert [p["id"] for p in entries if p["resourceType"] == "Patient"] == [patient_id(BUSTER)]
    subjects = {e["subject"]["reference"] for e in entries if "subject" in e}
    assert subjects == {f"Patient/{patient_id(BUSTER)}"}
    # the practitioners and organisations Buster's records name came with Ned's file first, and still travel along
    held = {f"{e['resourceType']}/{e['id']}" for e in entries}
    named = set(re.findall(r'"reference": "((?:Organization|Practitioner)/[^"]+)"', json.dumps(entries)))
    assert named and named <= held

    ips = tmp_path / "ned-ips.json"
    assert cli(two_people, "export", "--format", "ips", "-o", str(ips)).code == 0
    composition = json.loads(ips.read_text())["entry"][0]["resource"]
    patient = next(e["resource"] for e in json.loads(ips.read_text())["entry"]
                   if e["resource"]["resourceType"] == "Patient")
    from vault.records.export import full_url
    assert patient["id"] == patient_id(NED)
    assert composition["subject"]["reference"] == full_url("Patient", patient_id(NED))


def test_share_create_is_per_person(two_people):
    mine = ok_json(two_people, "share", "create", "--type", "Condition")
    theirs = ok_json(two_people, "share", "create", "--type", "Condition", "--person", "2")
    conditions = {p: {f"Condition/{i}" for t, i in ((r["rtype"], r["id"]) for r in ok_json(
        two_people, "list", "--type", "Condition", "--limit", "1000", "--person", str(p)))} for p in (1, 2)}
    assert set(mine["resources"]) == conditions[1]
    assert set(theirs["resources"]) == conditions[2]
    ips = ok_json(two_people, "share", "create", "--ips", "--person", "2")
    assert f"Patient/{patient_id(BUSTER)}" in ips["resources"]
    assert f"Patient/{patient_id(NED)}" not in ips["resources"]


def test_a_known_other_person_needs_no_flag_again(two_people, tmp_path):
    """Another file about Buster (a different payload) goes to Buster without --other-person; a file with no
    Patient goes to the patient its records name."""
    doc = json.loads(BUSTER.read_text(encoding="utf-8"))
    patient = next(e for e in doc["entry"] if e["resource"]["resourceType"] == "Patient")
    followup = {"resourceType": "Bundle", "type": "collection", "entry": [
        patient,
        {"fullUrl": "urn:uuid:5d1a7f9e-0000-4000-8000-000000000001",
         "resource": {"resourceType": "Observation", "id": "later-weight", "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                      "subject": {"reference": f"Patient/{patient_id(BUSTER)}"},
                      "effectiveDateTime": "2031-01-01",
                      "valueQuantity": {"value": 80, "unit": "kg"}}}]}
    f = tmp_path / "followup.json"
    f.write_text(json.dumps(followup))
    r = cli(two_people, "import", str(f))
    assert r.code == 0, r.err
    orphan = {"resourceType": "Observation", "id": "no-patient-in-file", "status": "final",
              "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
              "subject": {"reference": f"Patient/{patient_id(BUSTER)}"}, "effectiveDateTime": "2031-02-01",
              "valueQuantity": {"value": 81, "unit": "kg"}}
    g = tmp_path / "observation.json"
    g.write_text(json.dumps(orphan))
    assert cli(two_people, "import", str(g)).code == 0
    buster = {r["id"] for r in ok_json(two_people, "list", "--type", "Observation", "--person", "2", "--code",
                                       "29463-7", "--limit", "1000")}
    assert {"later-weight", "no-patient-in-file"} <= buster
    assert not {"later-weight", "no-patient-in-file"} & {r["id"] for r in ok_json(
        two_people, "list", "--type", "Observation", "--code", "29463-7", "--limit", "1000")}
    assert len(ok_json(two_people, "persons")) == 2


def test_json_output_carries_the_refusal(two_people):
    other = SYNTHEA / "Clemente_Kreiger_1484a42d-0eaf-4654-9cbf-6b050a5cd73b.json"
    r = cli(two_people, "import", "--json", str(other))
    assert r.code == 1
    assert json.loads(r.out) == [{"source": str(other), "error": REFUSAL.split(": ", 2)[2].strip()}]
