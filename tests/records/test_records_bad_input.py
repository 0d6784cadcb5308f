"""Bad input: each refused with one plain sentence, no traceback, no PHI, and the vault unchanged."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from vault.records.errors import (CardSignatureInvalid, DanglingReference, DocumentInvalid, FileTooLarge,
                                  ImportRejected, MalformedJson, NestingTooDeep, ResourceInvalid, UnknownResourceType)
from vault.records.importer import ImportOptions, ImportService
from vault.records.shc import TrustStore

from records_support import fixture_dir, rows

NAME = "Zebulon Quackenbush"   # a name that must never reach an error message


def _refused(vault, path, error, **options):
    before = rows(vault)
    with pytest.raises(error) as err:
        ImportService(vault, ImportOptions(**options)).import_file(path)
    msg = err.value.user_message
    assert isinstance(msg, str) and msg.strip() and "\n" not in msg and msg.endswith(".")
    assert "Zebulon" not in msg and "Quackenbush" not in msg and str(path.parent) not in msg
    assert rows(vault) == before
    return msg


def _patient(**extra) -> dict:
    return {"resourceType": "Patient", "id": "p1", "name": [{"family": "Quackenbush", "given": ["Zebulon"]}],
            **extra}


def test_malformed_json(vault, tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{"resourceType": "Patient", "name": [{"family": "Quackenbush"}')
    assert "not valid JSON" in _refused(vault, p, MalformedJson)


def test_json_nested_100000_levels(vault, tmp_path):
    p = tmp_path / "deep.json"
    p.write_text('{"resourceType":"Patient","extension":' + "[" * 100_000 + "]" * 100_000 + "}")
    assert "nested too deeply" in _refused(vault, p, NestingTooDeep)


def test_nested_objects_inside_a_bundle_entry(vault, tmp_path):
    deep = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": _patient()}]}
    node = deep["entry"][0]["resource"]
    for _ in range(150):             # 300 levels: above the limit, below the encoder's own
        node["extension"] = [{"url": "x", "extension": []}]
        node = node["extension"][0]
    p = tmp_path / "deep-bundle.json"
    p.write_text(json.dumps(deep))
    _refused(vault, p, NestingTooDeep)


@pytest.mark.parametrize("suffix,limit_option", [(".json", "max_json_bytes"), (".ndjson", "max_ndjson_bytes"),
                                                 (".pdf", "max_document_bytes")])
def test_file_over_the_size_limit_is_refused_before_reading(vault, tmp_path, suffix, limit_option):
    p = tmp_path / f"huge{suffix}"
    head = {".json": b'{"resourceType":"Bundle",', ".ndjson": b'{"resourceType":"Patient"}\n{',
            ".pdf": b"%PDF-1.7\n"}[suffix]
    limit = getattr(ImportOptions(), limit_option)
    with open(p, "wb") as f:
        f.write(head)
    os.truncate(p, limit + 1)                     # sparse: no disk used, but the size the OS reports
    assert p.stat().st_size == limit + 1
    assert "more than the" in _refused(vault, p, FileTooLarge)


def test_a_2_gb_file_is_refused(vault, tmp_path):
    p = tmp_path / "two-gigabytes.ndjson"
    p.write_bytes(b'{"resourceType":"Patient"}\n')
    os.truncate(p, 2 * 1024 ** 3)
    _refused(vault, p, FileTooLarge)


def test_resource_of_the_wrong_shape(vault, tmp_path):
    p = tmp_path / "wrong-shape.json"
    p.write_text(json.dumps(_patient(birthDate={"year": 1980}, gender=["Quackenbush"])))
    msg = _refused(vault, p, ResourceInvalid)
    assert "Patient" in msg


def test_resource_of_the_wrong_shape_inside_a_bundle_refuses_the_whole_bundle(vault, tmp_path):
    good = {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"}}
    bad = {"resourceType": "Observation", "id": "o2", "status": "final"}   # code is required
    p = tmp_path / "bundle.json"
    p.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                             "entry": [{"resource": _patient()}, {"resource": good}, {"resource": bad}]}))
    msg = _refused(vault, p, ResourceInvalid)
    assert msg.startswith("Entry 3") and "code" in msg


def test_unknown_resource_type(vault, tmp_path):
    p = tmp_path / "unknown.json"
    p.write_text(json.dumps({"resourceType": "Spaceship", "id": "x", "captain": NAME}))
    _refused(vault, p, UnknownResourceType)


def test_element_type_is_not_a_resource(vault, tmp_path):
    p = tmp_path / "humanname.json"
    p.write_text(json.dumps({"resourceType": "HumanName", "family": "Quackenbush"}))
    _refused(vault, p, UnknownResourceType)


def test_bundle_whose_references_point_nowhere(vault, tmp_path):
    missing = f"urn:uuid:{uuid.uuid4()}"
    obs = {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"},
           "subject": {"reference": missing}}
    p = tmp_path / "dangling.json"
    p.write_text(json.dumps({"resourceType": "Bundle", "type": "transaction",
                             "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": obs,
                                        "request": {"method": "POST", "url": "Observation"}}]}))
    msg = _refused(vault, p, DanglingReference)
    assert "Observation.subject" in msg and missing not in msg


def test_conditional_reference_matching_nothing(vault, tmp_path):
    enc = {"resourceType": "Encounter", "id": "e1", "status": "finished",
           "class": {"code": "AMB"}, "serviceProvider": {"reference": "Organization?identifier=urn:x|nowhere"}}
    p = tmp_path / "cond.json"
    p.write_text(json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": enc}]}))
    _refused(vault, p, DanglingReference)


def test_card_with_a_bad_signature(vault):
    TrustStore(vault).add_folder("https://spec.smarthealth.cards/examples/issuer", fixture_dir("shl-shc", "issuer"))
    p = fixture_dir("shl-shc", "validation-sdk") / "test-example-00-d-jws-invalid-signature.txt"
    _refused(vault, p, CardSignatureInvalid)


def test_pdf_that_is_not_a_pdf(vault, tmp_path):
    p = tmp_path / "lab-results.pdf"
    p.write_text("Dear Zebulon Quackenbush, your results are normal.")
    assert "PDF" in _refused(vault, p, DocumentInvalid)


def test_truncated_pdf(vault, tmp_path):
    p = tmp_path / "cut.pdf"
    p.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n")
    _refused(vault, p, DocumentInvalid)


def test_png_named_as_pdf(vault, tmp_path):
    p = tmp_path / "scan.pdf"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64 + b"IEND\xaeB`\x82")
    assert "PNG" in _refused(vault, p, DocumentInvalid)


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02binary", b"just some words", b"[1, 2, 3]",
                                     b'"a string"', b'{"no": "resourceType"}', b"\xff\xfe{\x00"])
def test_other_junk(vault, tmp_path, content):
    p = tmp_path / "junk.json"
    p.write_bytes(content)
    _refused(vault, p, ImportRejected)


def test_missing_file_and_directory(vault, tmp_path):
    before = rows(vault)
    for p in (tmp_path / "nope.json", tmp_path):
        with pytest.raises(ImportRejected):
            ImportService(vault).import_file(p)
    assert rows(vault) == before


def test_ndjson_bad_line_refuses_whole_file(vault, tmp_path):
    p = tmp_path / "bulk.ndjson"
    p.write_text(json.dumps(_patient()) + "\n" + '{"resourceType": "Observation", "id": "o1"\n')
    msg = _refused(vault, p, MalformedJson)
    assert msg.startswith("Line 2")


def test_deep_json_is_refused_even_when_the_recursion_limit_was_raised(tmp_path):
    """py_ecc raises Python's recursion limit to 100,000 for the whole process; the C JSON scanner would then
    overflow the C stack. Run in a child process so a failure is a failed test, not a dead test run."""
    import subprocess
    import sys
    deep = tmp_path / "deep.json"
    deep.write_text('{"resourceType":"Patient","extension":' + "[" * 100_000 + "]" * 100_000 + "}")
    tricky = tmp_path / "tricky.json"        # brackets inside strings must not hide real nesting
    tricky.write_text("[" + '"]",[' * 100_000 + "]" * 100_000 + "]")
    unclosed = tmp_path / "unclosed.json"
    unclosed.write_text("[" * 100_000)
    code = (
        "import sys; sys.setrecursionlimit(100_000)\n"
        "from vault.records import jsonutil\n"
        "from vault.records.errors import NestingTooDeep\n"
        "for p in sys.argv[1:]:\n"
        "    try:\n"
        "        jsonutil.loads(open(p, 'rb').read()); print('parsed')\n"
        "    except NestingTooDeep:\n"
        "        print('refused')\n")
    out = subprocess.run([sys.executable, "-c", code, str(deep), str(tricky), str(unclosed)],
                         capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.split() == ["refused", "refused", "refused"]


def test_ordinary_json_with_brackets_in_strings_parses(vault, tmp_path):
    p = tmp_path / "brackets.json"
    p.write_text(json.dumps(_patient(id="p2", name=[{"text": "[[[{{{ ]]] }}} \\\" \\\\"}])))
    assert ImportService(vault).import_file(p).added == 1
