"""The log file: events a user or helper can read (unlock, imports, shares, errors by class), never health data."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from app import logfile
from tests.conftest import FIXTURES, PASSPHRASE
from vault import eventlog

SYNTHEA = FIXTURES / "synthea"
PATIENT_FILE = "Ned_Hintz_e4b9259d-0f54-48d1-a35d-b526729a4dfe.json"


def _log() -> Path:
    path = Path(os.environ["XDG_STATE_HOME"]) / "medvault" / "medvault.log"
    assert path == logfile.log_path()
    return path


def _events(text: str) -> list[tuple[str, dict[str, str]]]:
    out = []
    for line in text.splitlines():
        _when, name, *fields = line.split(" ")
        out.append((name, dict(f.split("=", 1) for f in fields)))
    return out


def _phi(patient_file: Path) -> list[str]:
    """What must never be in the log: the patient's names, birth date, address, and text of their records."""
    bundle = json.loads(patient_file.read_text())
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    found = {patient["birthDate"]}
    for name in patient["name"]:
        found.update(name.get("given", []))
        found.add(name["family"])
    for address in patient.get("address", []):
        found.add(address["city"])
        found.update(address.get("line", []))
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] in ("Condition", "Observation", "MedicationRequest", "Procedure"):
            code = resource.get("code") or resource.get("medicationCodeableConcept") or {}
            found.update(c["display"] for c in code.get("coding", []) if "display" in c)
    found = {s for s in found if len(s) >= 3}
    assert len(found) > 20
    return sorted(found)


def test_import_share_and_failures_leave_events_and_no_health_data(cli, vault_factory, tmp_path):
    vault_factory("v").close()
    folder = tmp_path / "v"
    env = {"MEDVAULT_PASSPHRASE": PASSPHRASE, "MEDVAULT_VAULT": str(folder)}
    patient = SYNTHEA / PATIENT_FILE
    support = sorted(SYNTHEA.glob("hospitalInformation*.json")) + sorted(SYNTHEA.glob("practitionerInformation*.json"))

    wrong = cli(["list"], env={**env, "MEDVAULT_PASSPHRASE": "not the passphrase at all"})
    assert wrong.code == 1
    done = cli(["import", *map(str, support), str(patient)], env=env)
    assert done.code == 0, done.err
    shared = cli(["share", "create", "--type", "Condition", "--json"], env=env)
    assert shared.code == 0, shared.err
    share_id = json.loads(shared.out)["id"]
    # A file named for the patient, in a folder named for them, that is not a record: refused.
    named = tmp_path / "Ned Hintz 1950" / "Ned_Hintz_records.json"
    named.parent.mkdir()
    named.write_text('{"resourceType": "Bundle", "entry": [')
    refused = cli(["import", str(named)], env=env)
    assert refused.code == 1

    log = _log()
    text = log.read_text()
    events = _events(text)
    names = [name for name, _ in events]
    assert ("unlock", {"outcome": "wrong_passphrase"}) in events
    assert ("error", {"command": "list", "error": "WrongPassphrase"}) in events
    assert names.count("unlock") >= 4 and ("unlock", {"outcome": "ok"}) in events
    imports = [f for name, f in events if name == "import"]
    assert [f["outcome"] for f in imports] == ["ok"] * (len(support) + 1) + ["refused"]
    assert int(imports[len(support)]["added"]) > 50 and imports[-1]["error"] == "MalformedJson"
    assert ("share_created", {"share_id": share_id, "kind": "open",
                              "resources": [f for n, f in events if n == "share_created"][0]["resources"]}) in events
    assert "?" not in text      # every value had its allowed form

    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    lowered = text.lower()
    leaked = [s for s in _phi(patient) + [named.name, named.parent.name, "Ned", "Hintz", str(tmp_path)]
              if s.lower() in lowered]
    assert leaked == []


@pytest.fixture
def installed(tmp_path):
    handler = logfile.install(tmp_path / "state" / "medvault.log")
    yield tmp_path / "state" / "medvault.log"
    logfile.uninstall(handler)


def test_only_allowed_fields_of_the_allowed_form_are_written(installed):
    eventlog.event("import", outcome="ok", added=3, note="Ned Hintz, born 1950-03-01", kind="fhir json Ned")
    eventlog.event("share_created", share_id="Ned Hintz", resources=True)
    eventlog.event("error", error="Hypertension is back", command="import")
    eventlog.event("patient_named", name="Ned Hintz")
    logging.getLogger(eventlog.LOGGER_NAME).warning("Ned Hintz has %s", "Hypertension")
    logging.getLogger(eventlog.LOGGER_NAME + ".child").error("Ned Hintz")
    lines = [line.split(" ", 1)[1] for line in installed.read_text().splitlines()]
    assert lines == ["import added=3 kind=? outcome=ok", "share_created resources=? share_id=?",
                     "error command=import error=?", "?"]


def test_the_log_rotates_within_its_bound_and_stays_private(installed):
    for n in range(12000):
        eventlog.event("share_created", share_id=f"{n:012x}", kind="open", resources=n)
    files = sorted(installed.parent.glob("medvault.log*"))
    assert [f.name for f in files] == ["medvault.log", "medvault.log.1", "medvault.log.2"]
    for f in files:
        assert f.stat().st_size <= logfile.MAX_BYTES
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert installed.read_text().splitlines()[-1].endswith(f"share_id={11999:012x}")


def test_the_log_is_never_written_through_a_link(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("someone else's file\n")
    path = tmp_path / "state" / "medvault.log"
    path.parent.mkdir()
    path.symlink_to(target)
    handler = logfile.install(path)
    try:
        eventlog.event("unlock", outcome="ok")     # refused quietly: nothing on stderr, the command goes on
    finally:
        logfile.uninstall(handler)
    assert target.read_text() == "someone else's file\n"
    assert path.is_symlink()
